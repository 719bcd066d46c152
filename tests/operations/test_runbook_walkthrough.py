"""docs/operations.md, walked on the example catalog in a temporary Git repository: a
release to prod with staging's conformance evidence, prod's own conformance run failing an
evaluation, the rollback to the last proven state, and the history that shows all of it.
Each step runs the command the runbook names, as the operator would."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from tests.conftest import REPO, copy_catalog
from tests.operations.evidence_kit import commit, conformance_record, git, keys

TENANT = "catalog/tenants/customer-support.yaml"
OLD, NEW = "helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    rc = main([*args, "--format", "json"])
    return rc, json.loads(capsys.readouterr().out)


def _bump_staging(root: Path) -> None:
    path = root / TENANT
    text = path.read_text(encoding="utf-8")
    start, end = text.index("  staging:"), text.index("  prod:")
    path.write_text(text[:start] + text[start:end].replace(OLD, NEW) + text[end:], encoding="utf-8")


def _prod_block(root: Path) -> str:
    text = (root / TENANT).read_text(encoding="utf-8")
    return text[text.index("  prod:"):]


def test_release_failing_evaluation_rollback_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    signing = keys(root, tmp_path, "staging", "prod")
    assert main(["render", "--root", str(root)]) == 0
    git(root, "init", "-q", "-b", "main")
    first = commit(root, "the catalog", "2026-11-20T09:00:00Z", "platform")
    before = _prod_block(root)

    # 1. release: staging serves the new version and its Job signs passing evidence
    _bump_staging(root)
    assert main(["render", "--root", str(root)]) == 0
    commit(root, "staging: helpdesk-classifier v2026-03-15", "2026-11-30T10:00:00Z", "ai-team")
    staging = conformance_record(root, "staging", signing["staging"], tmp_path / "staging-evidence",
                                 dt.datetime(2026, 11, 30, 11, 0, tzinfo=dt.UTC))

    # 2. promote to prod with it; the gate accepts the result
    rc, doc = _run(capsys, "promote", "--root", str(root), "--env", "prod", "--evidence", str(staging.parent),
                   "--now", "2026-12-01T08:00:00Z")
    assert rc == 0 and [p["flavor"] for p in doc["info"]["promotions"]] == [NEW]
    assert main(["promote", "--root", str(root), "--env", "prod", "--evidence", str(staging.parent),
                 "--now", "2026-12-01T08:00:00Z", "--write"]) == 0
    assert main(["render", "--root", str(root)]) == 0
    assert main(["check", "--root", str(root), "--env", "prod"]) == 0
    promoted = commit(root, "promote helpdesk-classifier v2026-03-15 to prod", "2026-12-01T09:00:00Z", "release")
    assert f"- {NEW}" in _prod_block(root) and f"helpdesk-classifier: {NEW}" in _prod_block(root)

    # 3. prod's own conformance run after the sync fails the new version's evaluation
    failed = conformance_record(root, "prod", signing["prod"], tmp_path / "prod-evidence",
                                dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
                                failing=NEW)
    assert json.loads(failed.read_text(encoding="utf-8"))["record"]["verdict"] == "FAIL"

    # 4. roll back, weeks later: the evidence of the state returned to has expired, which
    #    does not block a rollback; what it returns to is shown before anything is written
    rc, doc = _run(capsys, "rollback", "--root", str(root), "--env", "prod", "--now", "2027-01-20T00:00:00Z")
    assert (rc, doc["findings"]) == (0, [])
    assert doc["info"]["to"]["subject"] == "staging: helpdesk-classifier v2026-03-15"  # prod then served OLD
    assert [(c["flavor"], c["replaces"], c["evidence"]) for c in doc["info"]["changes"]] == [(OLD, NEW, "baseline")]
    assert doc["info"]["aliases"] == [{"tenant": "customer-support", "alias": "helpdesk-classifier",
                                       "replaces": NEW, "to": OLD}]
    reason = f"prod evaluation failed: {failed.name}"
    assert main(["rollback", "--root", str(root), "--env", "prod", "--now", "2027-01-20T00:00:00Z", "--write",
                 "--reason", reason]) == 0
    assert _prod_block(root) == before  # every byte, the comments and the alias included
    assert main(["render", "--root", str(root)]) == 0
    assert main(["check", "--root", str(root), "--env", "prod"]) == 0  # no new evidence, no promotion order
    rolled = commit(root, "roll prod back: helpdesk-classifier v2026-03-15 failed its evaluation",
                    "2027-01-20T01:00:00Z", "oncall")
    capsys.readouterr()
    assert main(["rollback", "--root", str(root), "--env", "prod", "--to", rolled]) == 0
    assert "nothing to roll back" in capsys.readouterr().out

    # 5. the history shows all of it
    rc, doc = _run(capsys, "history", "--root", str(root), "--env", "prod", "--flavor", "helpdesk-classifier")
    assert (rc, doc["findings"]) == (0, [])
    stints = doc["info"]["history"]
    assert [(s["flavor"], s["kind"], s["entered"]["commit"], (s["left"] or {}).get("commit")) for s in stints] == [
        (OLD, "baseline", first, promoted), (NEW, "promotion", promoted, rolled), (OLD, "baseline", rolled, None)]
    new = stints[1]
    assert new["entered"]["author"] == "release" and new["left"]["author"] == "oncall"
    assert new["evidence"]["record"] == staging.name and new["evidence"]["signed_by"] == "staging-2026"
    assert new["evidence"]["verdict"] == "PASS" and new["evidence"]["scores"][0]["score"] == 0.91
    assert new["evidence"]["slo"] == [{"service": "cs-llm/llama-3-1-8b-instruct", "status": "pass",
                                       "metrics": new["evidence"]["slo"][0]["metrics"]}]
    assert new["rollback"]["reason"] == reason and new["rollback"]["from"] == promoted
    capsys.readouterr()
    for fmt in ("text", "markdown"):
        assert main(["history", "--root", str(root), "--env", "prod", "--flavor", OLD, "--format", fmt]) == 0
    text = capsys.readouterr().out
    assert f"customer-support: {OLD}" in text and "| customer-support | helpdesk" in text
    assert NEW not in text.replace(f"{NEW} to prod", "")  # --flavor NAME@VERSION: that version only
