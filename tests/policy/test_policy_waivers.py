"""Waivers: waived findings are reported as waived; expired waivers waive nothing and are
reported; stale waivers are reported; a bad waivers file gives file:line:col findings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.pipeline import CheckOptions, check
from tests.policy.policy_cases import build_repo, cases

TODAY = dt.date(2026, 11, 23)
RANK = "catalog/flavors/faq-answerer@v3.yaml:9:1"


@pytest.fixture
def rank_repo(tmp_path: Path) -> Path:
    return build_repo(next(c for c in cases() if c.name == "lora-rank"), tmp_path / "repo")


def _waivers(root: Path, body: str) -> Path:
    path = root / "policies" / "waivers.yaml"
    path.write_text(body, encoding="utf-8")
    return path


WAIVER = """\
waivers:
  - rule: policy.lora-rank
    object: Flavor/faq-answerer@v3
    environment: prod
    owner: ai-platform@example.com
    reason: rank 128 evaluated on H100 with 4 slots
    expires: {expires}
"""


def test_waived_finding_is_reported_as_waived(rank_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _waivers(rank_repo, WAIVER.format(expires="2026-12-31"))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    rank = [f for f in out.findings if f.rule_id == "policy.lora-rank"]
    assert len(rank) == 1 and rank[0].waived
    assert rank[0].waived_by.startswith("policies/waivers.yaml:2:5 by ai-platform@example.com until 2026-12-31")
    assert out.exit_code == 0
    assert main(["check", "--root", str(rank_repo), "-e", "prod", "--no-render-check",
                 "--today", "2026-11-23", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["waived"] == 1 and doc["findings"][0]["waived_by"]


def test_expiry_day_still_waives(rank_repo: Path) -> None:
    _waivers(rank_repo, WAIVER.format(expires="2026-11-23"))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    assert all(f.waived for f in out.findings if f.rule_id == "policy.lora-rank")


def test_expired_waiver_stops_waiving_and_is_reported(rank_repo: Path) -> None:
    _waivers(rank_repo, WAIVER.format(expires="2026-11-22"))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    rank = [f for f in out.findings if f.rule_id == "policy.lora-rank"]
    assert len(rank) == 1 and not rank[0].waived and str(rank[0].location) == RANK
    expired = [f for f in out.findings if f.rule_id == "policy.waiver-expired"]
    assert [str(f.location) for f in expired] == ["policies/waivers.yaml:2:5"]
    assert "expired on 2026-11-22" in expired[0].message
    assert out.exit_code == 1


def test_stale_waiver_is_reported(tmp_path: Path) -> None:
    root = build_repo(next(c for c in cases() if c.name == "storage-naming"), tmp_path / "repo")
    _waivers(root, WAIVER.format(expires="2026-12-31").replace("    environment: prod\n", ""))
    out = check(CheckOptions(root, render_check=False, today=TODAY))
    stale = [f for f in out.findings if f.rule_id == "policy.waiver-stale"]
    assert [(str(f.location), f.severity.value) for f in stale] == [("policies/waivers.yaml:2:5", "warning")]
    # only when every environment ran: a partial run cannot know
    partial = check(CheckOptions(root, ("dev",), render_check=False, today=TODAY))
    assert not [f for f in partial.findings if f.rule_id == "policy.waiver-stale"]


def test_waiver_can_name_the_rendered_resource(rank_repo: Path) -> None:
    _waivers(rank_repo, WAIVER.format(expires="2026-12-31").replace(
        "Flavor/faq-answerer@v3", "InferenceService/cs-llm/llama-3-1-8b-instruct"))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    assert [f for f in out.findings if f.rule_id == "policy.lora-rank"]
    assert all(f.waived for f in out.findings if f.rule_id == "policy.lora-rank")


def test_glob_waiver_waives_where_the_floor_allows_it_only(rank_repo: Path) -> None:
    # prod's floor sets waiver_wildcards: false; dev's does not
    glob = WAIVER.format(expires="2026-12-31").replace("Flavor/faq-answerer@v3", "InferenceService/cs-llm/*")
    _waivers(rank_repo, glob)
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    assert not any(f.waived for f in out.findings if f.rule_id == "policy.lora-rank")
    wide = [f for f in out.findings if f.rule_id == "policy.waiver-too-wide"]
    assert [(str(f.location), f.environment, f.severity.value) for f in wide] == [
        ("policies/waivers.yaml:2:5", "prod", "error")]
    assert out.exit_code == 1
    _waivers(rank_repo, glob.replace("environment: prod", "environment: dev"))
    dev = check(CheckOptions(rank_repo, ("dev",), render_check=False, today=TODAY))
    assert not [f for f in dev.findings if f.rule_id == "policy.waiver-too-wide"]


def test_waiver_expiry_at_most_max_days_ahead(rank_repo: Path) -> None:
    _waivers(rank_repo, WAIVER.format(expires=(TODAY + dt.timedelta(days=90)).isoformat()))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    assert all(f.waived for f in out.findings if f.rule_id == "policy.lora-rank")
    _waivers(rank_repo, WAIVER.format(expires=(TODAY + dt.timedelta(days=91)).isoformat()))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    assert not any(f.waived for f in out.findings if f.rule_id == "policy.lora-rank")
    assert [f.environment for f in out.findings if f.rule_id == "policy.waiver-too-long"] == ["prod"]


@pytest.mark.parametrize(("owner", "ok"), [
    ("ai-platform@example.com", True), ("ai-platform", True), ('"@kitchen-org/security"', True),
    ('" "', False), ("'someone, probably'", False), ("Bob", False)])
def test_waiver_owner_is_an_address_or_a_team_id(rank_repo: Path, owner: str, ok: bool) -> None:
    _waivers(rank_repo, WAIVER.format(expires="2026-12-31").replace("ai-platform@example.com", owner))
    out = check(CheckOptions(rank_repo, ("prod",), render_check=False, today=TODAY))
    invalid = [f for f in out.findings if f.rule_id == "policy.waiver-invalid"]
    assert (not invalid) is ok, invalid


def test_stale_waiver_concerns_its_environment(tmp_path: Path) -> None:
    # stale in prod (fail_on_warn) fails the run; stale in dev (warnings allowed) does not
    root = build_repo(next(c for c in cases() if c.name == "storage-naming"), tmp_path / "repo")
    _waivers(root, WAIVER.format(expires="2026-12-31"))
    out = check(CheckOptions(root, ("prod",), render_check=False, today=TODAY))
    stale = [f for f in out.findings if f.rule_id == "policy.waiver-stale"]
    assert [f.environment for f in stale] == ["prod"] and out.exit_code == 1
    _waivers(root, WAIVER.format(expires="2026-12-31").replace("environment: prod", "environment: dev"))
    out = check(CheckOptions(root, ("dev",), render_check=False, today=TODAY))
    stale = [f for f in out.findings if f.rule_id == "policy.waiver-stale"]
    assert [f.environment for f in stale] == ["dev"]
    assert out.exit_code == (1 if any(f.severity.value == "error" for f in out.findings) else 0)


def test_bad_waivers_file_gives_positions(rank_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _waivers(rank_repo, """\
waivers:
  - rule: policy.no-such-rule
    object: Flavor/faq-answerer@v3
    owner: me@example.com
    reason: testing
    expires: 2026-12-31
  - rule: policy.lora-rank
    object: Flavor/faq-answerer@v3
    reason: no owner
    expires: next week
    colour: blue
""")
    assert main(["check", "--root", str(rank_repo), "-e", "prod", "--no-render-check"]) == 1
    out = capsys.readouterr().out
    assert "policies/waivers.yaml:2:11: [error] waiver names unknown rule 'policy.no-such-rule'" in out
    assert "policies/waivers.yaml:7:5: [error] waiver 2 has no 'owner'" in out
    assert "policies/waivers.yaml:10:14: [error] expires: 'next week' is not a date" in out
    assert "policies/waivers.yaml:11:5: [error] unknown waiver field 'colour'" in out
    assert "(policy.waiver-invalid)" in out


def test_waivers_file_with_yaml_syntax_error(rank_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _waivers(rank_repo, "waivers:\n  - rule: [unclosed\n")
    assert main(["check", "--root", str(rank_repo), "-e", "prod", "--no-render-check"]) == 1
    out = capsys.readouterr().out
    assert "policies/waivers.yaml:3:1: [error] YAML syntax error" in out and "(policy.waiver-invalid)" in out
