"""The one exit rule: a warning in an environment whose gate fails on warnings fails the
run whichever environments were asked for, and each environment's finding is its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.findings import CheckRecord, Finding, Gates, Location, Severity, Status, exit_code
from tests.conftest import copy_catalog
from tests.policy.test_policy_cases import sarif_validator

REPO = Path(__file__).resolve().parents[2]
FLAVOR = "catalog/flavors/faq-answerer@v3.yaml"


@pytest.fixture
def misnamed(tmp_path: Path) -> Path:
    """The example catalog with faq-answerer v3's adapter stored under v2's path: a
    policy.storage-naming warning in dev, staging and prod; prod has fail_on_warn."""
    root = copy_catalog(REPO, tmp_path / "repo")
    path = root / FLAVOR
    text = path.read_text()
    assert text.count("source: s3://lora/faq-answerer/v3/") == 1
    path.write_text(text.replace("source: s3://lora/faq-answerer/v3/", "source: s3://lora/faq-answerer/v2/"))
    return root


def _check(root: Path, *args: str) -> list[str]:
    return ["check", "--root", str(root), "--no-render-check", *args]


def test_prod_gate_holds_without_env(misnamed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_check(misnamed)) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "(policy.storage-naming)" in line]
    assert len(lines) == 3, lines  # once per environment: two identical lines never hide two problems
    assert sorted(line.split("[env ", 1)[1].split(",", 1)[0] for line in lines) == ["dev", "prod", "staging"]
    assert all("Flavor/faq-answerer@v3]" in line for line in lines)
    assert all(line.startswith(f"{FLAVOR}:8:1: [warning] ") for line in lines)


def test_each_selection_gives_the_same_verdict_for_prod(misnamed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_check(misnamed, "--env", "prod")) == 1
    assert main(_check(misnamed, "--env", "dev", "--env", "prod")) == 1
    assert main(_check(misnamed, "--env", "dev")) == 0  # dev's gate lets warnings through
    assert main(_check(misnamed, "--env", "dev", "--fail-on-warn")) == 1


def test_json_and_sarif_hold_every_environment(misnamed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_check(misnamed, "-f", "json")) == 1
    doc = json.loads(capsys.readouterr().out)
    found = [f for f in doc["findings"] if f["rule_id"] == "policy.storage-naming"]
    assert sorted(f["environment"] for f in found) == ["dev", "prod", "staging"]
    assert doc["exit_code"] == 1 and doc["summary"]["warning"] == 3
    assert main(_check(misnamed, "-f", "sarif")) == 1
    sarif = json.loads(capsys.readouterr().out)
    sarif_validator().validate(sarif)
    results = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "policy.storage-naming"]
    assert sorted(r["properties"]["environment"] for r in results) == ["dev", "prod", "staging"]
    prod = next(r for r in results if r["properties"]["environment"] == "prod")
    assert {"name": "prod", "kind": "namespace", "fullyQualifiedName": "environment/prod"} \
        in prod["locations"][0]["logicalLocations"]


def _f(severity: Severity, env: str = "", waived: str = "") -> Finding:
    return Finding("x.y", severity, "m", Location("f.yaml", 1, 1), environment=env, waived_by=waived)


@pytest.mark.parametrize(("findings", "gates", "code"), [
    ([], Gates(), 0),
    ([_f(Severity.INFO, "prod")], Gates(frozenset({"prod"}), True), 0),
    ([_f(Severity.WARNING, "dev")], Gates(frozenset({"prod"})), 0),
    ([_f(Severity.WARNING, "prod")], Gates(frozenset({"prod"})), 1),
    ([_f(Severity.WARNING, "prod", waived="w")], Gates(frozenset({"prod"})), 0),
    ([_f(Severity.WARNING)], Gates(frozenset({"prod"})), 1),  # catalog-wide: prod's too
    ([_f(Severity.WARNING)], Gates(), 0),
    ([_f(Severity.WARNING, "dev")], Gates(all_warnings=True), 1),
    ([_f(Severity.ERROR, "dev")], Gates(), 1),
    ([_f(Severity.ERROR, "dev", waived="w")], Gates(), 0),
])
def test_exit_rule_table(findings: list[Finding], gates: Gates, code: int) -> None:
    assert exit_code(findings, None, gates) == code


def test_exit_rule_with_check_records() -> None:
    ok = CheckRecord("a", "s", Status.PASS)
    failed = CheckRecord("b", "s")
    failed.add(_f(Severity.ERROR, "prod"))
    broken = CheckRecord("c", "s")
    broken.could_not_run(_f(Severity.ERROR, "prod"))
    warned = CheckRecord("d", "s")
    warned.add(_f(Severity.WARNING, "prod"))
    assert exit_code([], [ok]) == 0
    assert exit_code([], []) == 2  # checks were expected and none ran
    assert exit_code([], [ok, broken]) == 2  # could not run is not proof of failure
    assert exit_code([], [failed, broken]) == 1  # a proven failure wins
    assert exit_code([], [warned]) == 0
    assert exit_code([], [warned], Gates(frozenset({"prod"}))) == 1
