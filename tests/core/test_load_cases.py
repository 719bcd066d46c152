"""Acceptance cases for bad catalog input: one folder per class of problem.

Each ``tests/cases/load/<case>/`` holds files laid over the minimal catalog and
``expected.txt``, the exact output of ``kitchen validate`` (findings with file:line:col).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.conftest import CASES, copy_catalog

LOAD_CASES = sorted(p for p in (CASES / "load").iterdir() if p.is_dir())


def _overlay(case: Path, root: Path) -> None:
    for src in sorted(case.rglob("*")):
        rel = src.relative_to(case)
        if src.is_file() and rel.parts[0] in ("catalog", "environments", "evaluations"):
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


@pytest.mark.parametrize("case", LOAD_CASES, ids=[p.name for p in LOAD_CASES])
def test_bad_input_case(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        update_golden: bool) -> None:
    root = copy_catalog(CASES / "minimal", tmp_path / "repo")
    _overlay(case, root)
    code = main(["validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 1, out + err
    expected_file = case / "expected.txt"
    if update_golden:
        expected_file.write_text(out)
    assert out == expected_file.read_text()
    # every finding line points at file:line:col
    for line in out.splitlines()[:-1]:
        location = line.split(": ", 1)[0]
        path, lineno, col = location.rsplit(":", 2)
        assert (root / path).is_file() and int(lineno) >= 1 and int(col) >= 1, line


def test_minimal_catalog_is_clean(minimal_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--root", str(minimal_repo)]) == 0
    assert "catalog ok: 1 bases, 2 flavors, 1 tenants, 1 environments" in capsys.readouterr().out


def test_nothing_rendered_when_catalog_is_broken(minimal_repo: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _overlay(CASES / "load" / "many-at-once", minimal_repo)
    out = minimal_repo / "rendered"
    assert main(["render", "--root", str(minimal_repo)]) == 1
    assert not out.exists()
    assert "nothing written" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_root_that_is_not_a_catalog_is_a_usage_error(where: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "nothing-here"
    if where == "empty":
        root.mkdir()
    assert main(["validate", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert str(root) in err and "Traceback" not in err
