"""The example catalog is clean; report formats; --format auto; docs/policies.md up to date."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.findings import Finding, Location, ResourceRef, Result, Severity
from kitchen_gitops.policy.docs import DOC_PATH, render_docs
from kitchen_gitops.policy.library import load_library
from kitchen_gitops.report import report, resolve_format
from tests.policy.policy_cases import REPO
from tests.policy.test_policy_cases import sarif_validator


def test_example_catalog_passes_kitchen_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--root", str(REPO)]) == 0
    rules = len(load_library(REPO / "policies", REPO).rules)
    assert capsys.readouterr().out.startswith(f"check ok: dev, prod, staging; {rules} rules; rendered/ up to date")


def test_clean_reports_are_well_formed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--root", str(REPO), "-f", "sarif"]) == 0
    sarif = json.loads(capsys.readouterr().out)
    sarif_validator().validate(sarif)
    rules = len(load_library(REPO / "policies", REPO).rules)
    assert sarif["runs"][0]["results"] == [] and len(sarif["runs"][0]["tool"]["driver"]["rules"]) == rules
    assert main(["check", "--root", str(REPO), "-f", "junit"]) == 0
    suite = ET.fromstring(capsys.readouterr().out).find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == str(rules)


def test_stale_rendered_output_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    root = tmp_path / "repo"
    for part in ("catalog", "environments", "evaluations", "templates", "policies", "rendered"):
        shutil.copytree(REPO / part, root / part)
    (root / "rendered/prod/cs-llm/namespace.yaml").write_text("# edited by hand\n")
    assert main(["check", "--root", str(root)]) == 1
    assert "rendered/prod/cs-llm/namespace.yaml: [error] committed rendered output is out of date" \
        in capsys.readouterr().out


def test_auto_format_follows_github_actions(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_format("auto", {"GITHUB_ACTIONS": "true"}) == "github"
    assert resolve_format("auto", {}) == "text"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["check", "--root", str(REPO), "-f", "auto"]) == 0
    assert capsys.readouterr().out.strip() == "0 error(s), 0 warning(s), 0 info, 0 waived"


def test_github_commands_escape_their_values() -> None:
    f = Finding("policy.x", Severity.WARNING, "50% done,\nnext line", Location("a,b:c.yaml", 3, 0),
                resource=ResourceRef("InferenceService", "m", "ns"), environment="prod")
    line = report(Result("check", [f]), "github").splitlines()[0]
    assert line == ("::warning file=a%2Cb%3Ac.yaml,line=3,col=1,title=policy.x::"
                    "50%25 done,%0Anext line [env prod, InferenceService ns/m]")


def test_waived_findings_in_sarif_are_suppressed_and_in_junit_skipped() -> None:
    f = Finding("policy.x", Severity.ERROR, "m", Location("f.yaml", 1, 2), waived_by="w.yaml:2:5 by me")
    sarif = json.loads(report(Result("check", [f]), "sarif"))
    sarif_validator().validate(sarif)
    assert sarif["runs"][0]["results"][0]["suppressions"] == [{"kind": "external", "justification": "w.yaml:2:5 by me"}]
    junit = ET.fromstring(report(Result("check", [f]), "junit"))
    assert junit.find("testsuite/testcase/skipped") is not None
    assert "Waived findings" in report(Result("check", [f]), "markdown")


def test_docs_are_up_to_date() -> None:
    library = load_library(REPO / "policies", REPO)
    text = render_docs(library)
    assert (REPO / DOC_PATH).read_text(encoding="utf-8") == text, "run `kitchen policy docs`"
    for rule in library.rules.values():
        section = text.split(f"### {rule.id}\n", 1)[1].split("\n### ", 1)[0]
        assert "Passing example" in section and "Failing example" in section, rule.id


def test_policy_docs_check_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "docs", "--root", str(REPO), "--check"]) == 0


def test_policy_docs_are_neither_read_nor_written_through_a_link(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A committed ``docs/policies.md`` that is a link (to a file the kernel refuses to
    read) is out of date, and ``policy docs`` replaces it by the file; a ``docs`` folder
    that is a link out of the repository is out of date, and nothing is written there."""
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    shutil.copytree(REPO / "policies", root / "policies")
    (root / DOC_PATH).symlink_to("/proc/self/mem")
    assert main(["policy", "docs", "--root", str(root), "--check"]) == 1
    assert "(policy.docs-stale)" in capsys.readouterr().out
    assert main(["policy", "docs", "--root", str(root)]) == 0
    assert not (root / DOC_PATH).is_symlink() and main(["policy", "docs", "--root", str(root), "--check"]) == 0
    outside = tmp_path / "outside"
    (root / "docs").rename(outside)
    (root / "docs").symlink_to(outside)
    (outside / "policies.md").write_text("old\n")
    assert main(["policy", "docs", "--root", str(root), "--check"]) == 1
    assert main(["policy", "docs", "--root", str(root)]) == 2
    assert "docs: a symbolic link on the way to docs/policies.md" in capsys.readouterr().err
    assert (outside / "policies.md").read_text() == "old\n"


def test_policy_test_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", "--root", str(REPO)]) == 0
    rules = len(load_library(REPO / "policies", REPO).rules)
    assert f"policy tests passed (regorus, {rules} rules)" in capsys.readouterr().out
