"""Evaluation sets without a server: each metric, the JSONL reader, the registry against the
policy data, the expectations the conformance Job reads, and the progress display."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import yaml

from kitchen_gitops import pipeline
from kitchen_gitops.conform.evaluation import Progress
from kitchen_gitops.conform.expectations import build_expectations, parse_expectations
from kitchen_gitops.evaluation_sets import (
    MAX_RECORDS,
    METRICS,
    better,
    parse_dataset,
    predicted_label,
    score_answer,
)
from kitchen_gitops.policy.library import load_policy_data
from tests.conftest import REPO, copy_catalog

# ---------------------------------------------------------------- metrics


def test_exact_match_ignores_surrounding_space_only() -> None:
    assert score_answer("exact_match", "  Paris\n", "Paris") == 1.0
    assert score_answer("exact_match", "paris", "Paris") == 0.0
    assert score_answer("exact_match", "Paris is the capital", "Paris") == 0.0


def test_contains() -> None:
    assert score_answer("contains", "Reset it in the portal.", "portal") == 1.0
    assert score_answer("contains", "Reset it in the Portal.", "portal") == 0.0


def test_regex_searches_anywhere() -> None:
    assert score_answer("regex", "Team: network, access", r"^Team: (network|access)$") == 0.0
    assert score_answer("regex", "Team: network", r"^Team: (network|access)$") == 1.0
    assert score_answer("regex", "the order 1234 shipped", r"\b\d{4}\b") == 1.0


def test_json_schema_reads_the_first_json_block() -> None:
    schema = {"type": "object", "required": ["team"], "properties": {"team": {"enum": ["network", "access"]}}}
    assert score_answer("json_schema", '{"team": "network"}', schema) == 1.0
    assert score_answer("json_schema", 'Sure! {"team": "access"} is the owner.', schema) == 1.0
    assert score_answer("json_schema", '{"team": "billing"}', schema) == 0.0
    assert score_answer("json_schema", "no JSON here", schema) == 0.0


def test_label_accuracy_takes_the_longest_label_at_a_word_boundary() -> None:
    labels = ["bug", "bugfix", "billing", "other"]
    assert predicted_label(" bugfix: the parser", labels) == "bugfix"
    assert predicted_label("bug.", labels) == "bug"
    assert predicted_label("bugs everywhere", labels) is None
    assert predicted_label("It is billing", labels) is None
    assert score_answer("label_accuracy", "billing\nbecause charged twice", "billing", labels) == 1.0
    assert score_answer("label_accuracy", "other", "billing", labels) == 0.0


def test_rouge_l_is_the_rouge_score_package() -> None:
    from rouge_score import rouge_scorer

    ref, out = "release moved to Friday", "the release was moved to Friday"
    want = rouge_scorer.RougeScorer(["rougeL"]).score(ref, out)["rougeL"].fmeasure
    assert score_answer("rougeL", out, ref) == pytest.approx(want)
    # LCS "release moved to friday" (4 of 6 and 4 of 4 tokens): F = 2PR/(P+R) = 0.8
    assert score_answer("rougeL", out, ref) == pytest.approx(0.8)
    assert score_answer("rougeL", "Release moved to Friday!", ref) == 1.0
    assert score_answer("rougeL", "nothing alike", ref) == 0.0


def test_every_metric_scores_from_zero_to_one_and_says_its_direction() -> None:
    refs = {"text": "a", "pattern": "a", "schema": {"type": "string"}, "label": "a"}
    for name, metric in METRICS.items():
        for output in ("a", "", "b c", '"a"'):
            s = score_answer(name, output, refs[metric.reference], ["a", "b"])
            assert 0.0 <= s <= 1.0, (name, output, s)
        assert better(name, 0.9, 0.1) is metric.higher_is_better


def test_registry_and_policy_data_agree() -> None:
    """Each metric kitchen computes is named by the policy data, in the same direction, with a
    drift tolerance; the floor rule and the conformance job then judge it the same way."""
    data = load_policy_data(REPO)["evaluation_metrics"]
    for name, metric in METRICS.items():
        assert name in data, f"policies/data.yaml evaluation_metrics does not name {name}"
        assert data[name]["higher_is_better"] is metric.higher_is_better, name
        assert 0 <= data[name]["drift_tolerance"] <= 1, name
    # the other metrics of the policy data are recorded ones, scored outside kitchen
    assert all("drift_tolerance" not in v for k, v in data.items() if k not in METRICS)


# ---------------------------------------------------------------- the reader


def _problems(text: bytes | str, metric: str = "exact_match", labels: tuple[str, ...] = ()) -> list[str]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return [f"{p.line}:{p.col} {p.rule} {p.message}" for p in parse_dataset(raw, metric, labels)[1]]


def test_reader_skips_blank_lines_and_reads_bom_and_crlf() -> None:
    raw = '\ufeff{"prompt": "a", "reference": "b"}\r\n\r\n  \n{"id": "x", "prompt": "c", "reference": "d"}'
    records, problems = parse_dataset(raw.encode("utf-8"), "contains")
    assert problems == []
    assert [(r.line, r.prompt, r.reference, r.id) for r in records] == [(1, "a", "b", ""), (4, "c", "d", "x")]


@pytest.mark.parametrize(("text", "want"), [
    ("", "1:1 evaluation.dataset-empty"),
    ("\n\n", "1:1 evaluation.dataset-empty"),
    ('{"prompt": "a", "reference": "b"}\n{"prompt": "a" "reference": "b"}', "2:16 evaluation.dataset-json"),
    ('{"prompt": "a", "reference": 1e999}', "1:1 evaluation.dataset-json not usable JSON: 1e999 is out of range"),
    ('{"prompt": "a", "reference": -Infinity}', "1:1 evaluation.dataset-json"),
    ('{"prompt": "a", "prompt": "b", "reference": "c"}', "1:1 evaluation.dataset-json not usable JSON: duplicate key"),
    ('{"prompt": "a", "reference": ""}', '1:17 evaluation.dataset-record reference is blank'),
    ('{"prompt": "a", "reference": 3}', '1:17 evaluation.dataset-record reference is not a string'),
    ('{"prompt": 3, "reference": "b"}', '1:2 evaluation.dataset-record prompt is not a string'),
    ('{"prompt": "a", "reference": "b", "id": 7}', '1:35 evaluation.dataset-record id is not a string'),
    ('{"prompt": "a\u202eb", "reference": "b"}', "1:14 evaluation.dataset-record the line holds the invisible"),
    ('{"prompt": "a", "reference": "b\x7f"}', "1:32 evaluation.dataset-record the line holds the invisible"),
    ('"just a string"', "1:1 evaluation.dataset-record a JSON str is not a record"),
])
def test_reader_refuses(text: str, want: str) -> None:
    got = _problems(text)
    assert len(got) == 1 and got[0].startswith(want), got


def test_escaped_control_characters_are_visible_and_accepted() -> None:
    # a model's answer may hold such characters; escaped, a reviewer sees them
    line = json.dumps({"prompt": "a", "reference": "b\x7f\u202e"})
    records, problems = parse_dataset(line.encode(), "exact_match")
    assert problems == [] and records[0].reference == "b\x7f\u202e"


def test_reader_points_at_the_byte_that_is_not_utf8() -> None:
    raw = b'{"prompt": "a", "reference": "b"}\n{"prompt": "caf\xe9", "reference": "b"}\n'
    assert _problems(raw) == ["2:16 evaluation.dataset-encoding not UTF-8"]  # after {"prompt": "caf


def test_reader_checks_the_reference_its_metric_reads() -> None:
    assert _problems('{"prompt": "a", "reference": "(unclosed"}', "regex")[0].startswith(
        "1:17 evaluation.dataset-record reference is not a regular expression")
    assert _problems('{"prompt": "a", "reference": {"type": "strin"}}', "json_schema")[0].startswith(
        "1:17 evaluation.dataset-record reference is not a valid JSON schema")
    assert _problems('{"prompt": "a", "reference": "text"}', "json_schema")[0].startswith(
        "1:17 evaluation.dataset-record reference is not a JSON schema")
    assert _problems('{"prompt": "a", "reference": "billing"}', "label_accuracy", ("bug", "other")) == [
        "1:17 evaluation.dataset-record reference 'billing' is not one of the flavor's labels"]


def test_reader_is_bounded() -> None:
    line = b'{"prompt": "a", "reference": "b"}\n'
    records, problems = parse_dataset(line * (MAX_RECORDS + 5), "contains", limit=1 << 30)
    assert len(records) == MAX_RECORDS
    assert [p.rule for p in problems] == ["evaluation.dataset-too-large"]
    _, problems = parse_dataset(line * 10_000, "contains")  # 350 kB > 256 KiB in the repository
    assert [(p.rule, p.line) for p in problems] == [("evaluation.dataset-too-large", 1)]


# ---------------------------------------------------------------- expectations and render


def test_expectations_carry_the_set_its_pin_and_the_policy_tolerance(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    outcome = pipeline.plan(root, ["prod", "dev"])
    assert outcome.ok
    prod = build_expectations(outcome.catalog, outcome.plans["prod"])
    faq = next(f for s in prod.services for f in s.flavors if f.ref == "faq-answerer@v3")
    e = faq.evaluation
    assert e is not None
    raw = (root / "evaluations/faq-answerer/v3.jsonl").read_bytes()
    import hashlib

    assert e.dataset.content == raw.decode("utf-8") and e.dataset.sha256 == hashlib.sha256(raw).hexdigest()
    assert (e.metric, e.recorded, e.threshold, e.tolerance, e.drift_fails) == ("rougeL", 0.61, 0.55, 0.05, True)
    assert e.source.file == "catalog/flavors/faq-answerer@v3.yaml" and e.source.line == 18
    # the served name comes from the plan's --lora-modules, not from the flavor's name
    svc = next(s for s in outcome.plans["prod"].services if any(f.ref == "faq-answerer@v3" for f in s.flavors))
    (module,) = [m for m in svc.lora_modules if m.flavor.ref == "faq-answerer@v3"]
    assert faq.name == module.name
    dev = build_expectations(outcome.catalog, outcome.plans["dev"])
    classifier = next(f for s in dev.services for f in s.flavors if f.ref == "helpdesk-classifier@v2026-03-15")
    assert classifier.evaluation is not None and not classifier.evaluation.drift_fails  # dev is relaxed
    assert classifier.evaluation.labels == ["network", "vpn", "access", "hardware", "software", "other"]
    # the policy data decides the tolerance
    data = root / "policies/data.yaml"
    data.write_text(data.read_text().replace(
        "rougeL: {higher_is_better: true, floor: 0.4, drift_tolerance: 0.05}",
        "rougeL: {higher_is_better: true, floor: 0.4, drift_tolerance: 0.125}"))
    again = build_expectations(outcome.catalog, outcome.plans["prod"])
    faq2 = next(f for s in again.services for f in s.flavors if f.ref == "faq-answerer@v3")
    assert faq2.evaluation is not None and faq2.evaluation.tolerance == 0.125
    # and what the ConfigMap holds reads back the same
    assert parse_expectations(prod.to_json(), "x") == prod


def _s3_set(root: Path) -> None:
    flavor = root / "catalog/flavors/faq-answerer@v3.yaml"
    text = flavor.read_text()
    text = text.replace("    path: evaluations/faq-answerer/v3.jsonl\n",
                        "    uri: s3://lora/faq-answerer/v3/eval.jsonl\n")
    flavor.write_text(text)


def test_a_set_in_s3_travels_as_its_location_and_the_job_gets_credentials(tmp_path: Path) -> None:
    from tests.core.test_schemas import validate_object

    root = copy_catalog(REPO, tmp_path / "repo")
    _s3_set(root)
    outcome = pipeline.render(root, ["prod"])
    assert outcome.ok, [f.format_text() for f in outcome.findings]
    files = {f.path: f.content for f in outcome.rendered["prod"]}
    cm = yaml.safe_load(files["kitchen-conformance/configmap-kitchen-conformance-expectations.yaml"])
    exp = json.loads(cm["data"]["expectations.json"])
    (faq,) = [f for s in exp["services"] for f in s["flavors"] if f["ref"] == "faq-answerer@v3"][:1]
    ds = faq["evaluation"]["dataset"]
    assert "content" not in ds and ds["uri"] == "s3://lora/faq-answerer/v3/eval.jsonl"
    assert ds["s3"]["endpoint"] and ds["s3"]["secret"] == "kitchen-s3-credentials"
    job = yaml.safe_load(files["kitchen-conformance/job-kitchen-conformance.yaml"])
    assert validate_object(job) == []
    serving, gpu = job["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in serving["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {"AWS_ACCESS_KEY_ID": {"name": "kitchen-s3-credentials", "key": "AWS_ACCESS_KEY_ID"},
                    "AWS_SECRET_ACCESS_KEY": {"name": "kitchen-s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in gpu["env"])  # NVML needs none
    # prod's S3 is verified against its private CA: the one KServe's storage initializer trusts
    assert {"name": "AWS_CA_BUNDLE", "value": "/etc/kitchen-s3-ca/cabundle.crt"} in serving["env"]
    assert {"name": "s3-ca", "mountPath": "/etc/kitchen-s3-ca", "readOnly": True} in serving["volumeMounts"]
    assert {"name": "s3-ca", "configMap": {"name": "kitchen-internal-ca"}} in job["spec"]["template"]["spec"]["volumes"]
    assert all(m["name"] != "s3-ca" for m in gpu["volumeMounts"])


def test_the_example_jobs_carry_no_credentials_without_a_set_in_s3() -> None:
    for env in ("dev", "staging", "prod"):
        job = yaml.safe_load((REPO / f"rendered/{env}/kitchen-conformance/job-kitchen-conformance.yaml").read_text())
        assert "secretKeyRef" not in json.dumps(job)


# ---------------------------------------------------------------- progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_only() -> None:
    tty, log = _Terminal(), io.StringIO()
    for stream in (tty, log):
        p = Progress("evaluation faq@v1 on ns/isvc", 3, stream)
        for _ in range(3):
            p.step()
        p.close()
    assert log.getvalue() == ""
    assert tty.getvalue().endswith("\r  evaluation faq@v1 on ns/isvc: 3/3 requests\n")


def test_sets_too_large_for_the_configmap_are_a_plan_finding(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    # dev serves both example sets; grow the classifier's to 200 KiB and the FAQ's to 230 KiB
    # (each within its own bound), then three of them cannot share the 640 KiB
    for rel, n, flavor_file in (
            ("evaluations/helpdesk-classifier/v2026-03-15.jsonl", 200, "helpdesk-classifier@v2026-03-15.yaml"),
            ("evaluations/faq-answerer/v3.jsonl", 230, "faq-answerer@v3.yaml")):
        path = root / rel
        old_pin = hashlib.sha256(path.read_bytes()).hexdigest()
        first = path.read_text().splitlines()[0] + "\n"
        path.write_text(first * (n * 1024 // len(first)))
        pinned = root / "catalog/flavors" / flavor_file  # the pin follows the set
        pinned.write_text(pinned.read_text().replace(old_pin, hashlib.sha256(path.read_bytes()).hexdigest()))
    outcome = pipeline.plan(root, ["dev"])
    assert outcome.ok, [f.format_text() for f in outcome.findings]  # 430 KiB: fits
    flavor = root / "catalog/flavors/ticket-router@v1-2.yaml"
    flavor.write_text(flavor.read_text().replace("  metric: f1\n", "  metric: contains\n").replace(
        "  date: 2026-03-01\n", "  date: 2026-03-01\n  dataset:\n    path: evaluations/ticket-router/v1-2.jsonl\n"
        f"    sha256: '{hashlib.sha256((root / 'evaluations/faq-answerer/v3.jsonl').read_bytes()).hexdigest()}'\n", 1))
    (root / "evaluations/ticket-router").mkdir()
    (root / "evaluations/ticket-router/v1-2.jsonl").write_text((root / "evaluations/faq-answerer/v3.jsonl").read_text())
    outcome = pipeline.plan(root, ["dev"])
    (f,) = [f for f in outcome.findings if f.rule_id == "plan.evaluation-sets-size"]
    assert f.environment == "dev" and "hold 659 KiB" in f.message, f.message
    assert f.location.file in ("catalog/flavors/faq-answerer@v3.yaml", "catalog/flavors/ticket-router@v1-2.yaml")
    assert "move large sets to S3" in f.expected


def test_a_pattern_that_backtracks_catastrophically_is_a_miss_with_its_reason() -> None:
    """/(a|aa)+$/ over 80 a's and a b would take Python's re longer than the job's deadline
    (exponential in the length); bounded to REGEX_TIMEOUT_S, it scores 0 and says why."""
    from kitchen_gitops.conform.expectations import unmet
    from kitchen_gitops.evaluation_sets import REGEX_TIMEOUT_S, RegexTimeout, search
    from kitchen_gitops.model import Expectation

    answer = "a" * 80 + "b"
    with pytest.raises(RegexTimeout, match="catastrophic backtracking"):
        search(r"(a|aa)+$", answer)
    assert score_answer("regex", answer, r"(a|aa)+$") == 0.0
    (why,) = unmet(Expectation(regex=r"(a|aa)+$"), answer)
    assert f"took longer than {REGEX_TIMEOUT_S:g} s over 81 characters" in why
    # re.search's own semantics otherwise: a search, not a full match
    assert search(r"\S{3,}", "ok fine") and not search(r"^\d+$", "12a")
    assert score_answer("regex", "vpn: reset the token", r"^(network|vpn)\b") == 1.0
