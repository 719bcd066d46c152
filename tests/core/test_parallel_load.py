"""A large catalog is parsed by two processes; what comes back is what one process reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import generate_org
from kitchen_gitops import load


def test_two_processes_read_what_one_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate_org(tmp_path / "org", bases=2, flavors=40, tenants=12, envs=2)
    # a file with problems in each half: findings keep their order and position
    (root / "catalog" / "flavors" / "aaa-broken.yaml").write_text("kind: Flavor\nname: [unclosed\n")
    (root / "catalog" / "tenants" / "zzz-tab.yaml").write_text("kind: Tenant\n\tname: x\n")
    monkeypatch.setenv("KITCHEN_JOBS", "1")
    one = load.load_documents(root)
    monkeypatch.setenv("KITCHEN_JOBS", "2")
    monkeypatch.setattr(load, "PARALLEL_LOAD_MIN_FILES", 2)
    assert load._parallel(len(load.discover(root)[0]))
    two = load.load_documents(root)
    assert two == one
    assert [(f.rule_id, f.location.file, f.location.line) for f in one[1]] == [
        ("load.syntax", "catalog/flavors/aaa-broken.yaml", 3), ("load.tab", "catalog/tenants/zzz-tab.yaml", 2)]


def test_the_benchmark_organisation_passes_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/check_bench.py measures a gate that passes: the synthetic organisation meets
    the floors of the repository's own policies/ (which it copies), or the benchmark
    stops at its findings and measures nothing."""
    from kitchen_gitops.cli import main

    root = generate_org(tmp_path / "org", bases=2, flavors=40, tenants=12, envs=3)
    assert main(["check", "--root", str(root), "--no-render-check"]) == 0, capsys.readouterr().out
