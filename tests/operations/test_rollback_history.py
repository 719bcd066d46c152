"""``kitchen rollback`` and ``kitchen history`` on hostile or broken repositories: an
evidence record rewritten or deleted in a commit, a revision the repository lacks, a
catalog outside Git.  Each is a finding or a one-line error with a non-zero exit, never a
traceback, and nothing is written."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from tests.conftest import REPO, copy_catalog
from tests.operations.evidence_kit import commit, conformance_record, git, keys

TENANT = "catalog/tenants/customer-support.yaml"
OLD, NEW = "helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"
PROD_LINE = f"{TENANT}:31:9"


def _set(root: Path, env: str, old: str, new: str) -> None:
    path = root / TENANT
    text = path.read_text(encoding="utf-8")
    start = text.index(f"  {env}:")
    end = text.index("  prod:") if env == "staging" else len(text)
    path.write_text(text[:start] + text[start:end].replace(old, new) + text[end:], encoding="utf-8")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example in Git: the catalog, staging on NEW, NEW promoted to prod with signed evidence."""
    tmp = tmp_path_factory.mktemp("operations")
    root = copy_catalog(REPO, tmp / "repo")
    signing = keys(root, tmp, "staging", "prod")
    git(root, "init", "-q", "-b", "main")
    first = commit(root, "the catalog", "2026-11-20T09:00:00Z")
    _set(root, "staging", OLD, NEW)
    commit(root, "staging: v2026-03-15", "2026-11-30T10:00:00Z")
    record = conformance_record(root, "staging", signing["staging"], tmp / "ev",
                                dt.datetime(2026, 11, 30, 11, 0, tzinfo=dt.UTC))
    assert main(["promote", "--root", str(root), "--env", "prod", "--evidence", str(record.parent), "--now",
                 "2026-12-01T08:00:00Z", "--write"]) == 0
    third = commit(root, "promote", "2026-12-01T09:00:00Z")
    return {"root": root, "first": first, "promoted": third, "record": record.name}


@pytest.fixture
def repo(promoted: dict[str, Any], tmp_path: Path) -> Path:
    return Path(shutil.copytree(promoted["root"], tmp_path / "repo", symlinks=True))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    rc = main([*args, "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, (json.loads(out) if out.strip() else {}), err


def _found(doc: dict[str, Any]) -> list[tuple[str, str]]:
    def at(loc: dict[str, Any]) -> str:
        return f"{loc['file']}:{loc['line']}:{loc['col']}" if loc.get("line") else loc["file"]

    return sorted((f["rule_id"], at(f["location"])) for f in doc["findings"])


def _tamper(repo: Path, promoted: dict[str, Any], how: str) -> str:
    """A commit that rewrites (one score) or deletes prod's copy of the promotion record,
    then prod listed back at OLD in the working tree (so that state is a rollback target)."""
    path = repo / "evidence/prod/records" / promoted["record"]
    if how == "rewritten":
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["record"]["evaluations"][0]["score"] = 0.99
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.unlink()
    sha = commit(repo, f"evidence {how}", "2026-12-02T09:00:00Z", "mallory")
    _set(repo, "prod", NEW, OLD)
    _set(repo, "prod", f"helpdesk-classifier: {NEW}", f"helpdesk-classifier: {OLD}")
    return sha


@pytest.mark.parametrize(("how", "why"), [("rewritten", "sha256 differs"),
                                          ("missing", "is not a file of its records/ folder")])
def test_a_rollback_to_a_state_whose_record_was_rewritten_or_deleted_is_refused(
        repo: Path, promoted: dict[str, Any], capsys: pytest.CaptureFixture[str], how: str, why: str) -> None:
    tampered = _tamper(repo, promoted, how)
    before = {p: p.read_bytes() for p in (repo / TENANT, repo / "evidence/prod/index.json")}
    rc, doc, _ = _run(capsys, "rollback", "--root", str(repo), "--env", "prod", "--to", tampered[:10], "--write")
    assert rc == 1
    assert _found(doc) == [("rollback.unproven", PROD_LINE)]
    assert why in doc["findings"][0]["message"] and doc["findings"][0]["message"].startswith(f"at {tampered[:12]}")
    assert {p: p.read_bytes() for p in before} == before  # nothing written
    # by default the tampered state is passed over: the same state as promoted, whose record verifies
    rc, doc, _ = _run(capsys, "rollback", "--root", str(repo), "--env", "prod")
    assert rc == 0 and doc["info"]["to"]["commit"] == promoted["promoted"]
    assert [p["commit"] for p in doc["info"]["passed_over"]] == [tampered]


@pytest.mark.parametrize("how", ["rewritten", "missing"])
def test_history_reports_a_rewritten_or_missing_record(repo: Path, promoted: dict[str, Any],
                                                      capsys: pytest.CaptureFixture[str], how: str) -> None:
    tampered = _tamper(repo, promoted, how)
    rc, doc, _ = _run(capsys, "history", "--root", str(repo), "--env", "prod")
    assert rc == 1
    line = next(i for i, t in enumerate((repo / "evidence/prod/index.json").read_text().splitlines(), 1)
                if f'"{NEW}":' in t)
    assert _found(doc) == [("history.evidence-invalid", f"evidence/prod/index.json:{line}:5")]
    assert doc["findings"][0]["message"].startswith(f"at {tampered[:12]}: ")
    stint = next(s for s in doc["info"]["history"] if s["flavor"] == NEW)
    assert stint["evidence"]["record"] == promoted["record"]  # verified when it entered
    assert stint["evidence_problem"]


def test_without_any_proven_earlier_state_the_rollback_is_refused(repo: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """staging keeps no evidence index: none of its states is proven."""
    rc, doc, _ = _run(capsys, "rollback", "--root", str(repo), "--env", "staging")
    assert rc == 1 and ("rollback.no-proven-state", "evidence/staging/index.json") in _found(doc)
    assert any(f["rule_id"] == "rollback.unproven" and "no promotion evidence" in f["message"]
               for f in doc["findings"])


def test_bad_revision_and_non_git_root_are_errors_not_tracebacks(repo: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for to in ("no-such-rev", "--all", "HEAD~99"):
        rc, _, err = _run(capsys, "rollback", "--root", str(repo), "--env", "prod", "--to", to)
        assert rc == 2 and "--to" in err and "is not a" in err
    plain = copy_catalog(REPO, tmp_path / "plain")
    for args in (["rollback", "--env", "prod"], ["history", "--env", "prod"]):
        rc, _, err = _run(capsys, *args, "--root", str(plain))
        assert rc == 2 and "not a Git checkout" in err
    rc, _, err = _run(capsys, "history", "--root", str(repo), "--env", "nope")
    assert rc == 2 and "unknown environment nope" in err
