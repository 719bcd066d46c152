"""docs/compatibility.md's vLLM table is what the release tables say."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compatibility_docs", REPO / "scripts" / "compatibility_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compatibility_page_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--check"]) == 0, capsys.readouterr().err


def test_a_stale_page_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "compatibility.md"
    page.write_text((REPO / "docs" / "compatibility.md").read_text().replace("| `0.92` |", "| `0.9` |", 1))
    assert _script().main(["--check", "--doc", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert _script().main(["--doc", str(page)]) == 0
    assert page.read_text() == (REPO / "docs" / "compatibility.md").read_text()


def test_generated_table_lists_every_supported_release() -> None:
    from kitchen_gitops.vllm_release import supported

    header = next(line for line in _script().generate().splitlines() if line.startswith("| flag"))
    assert header == "| flag (default) | " + " | ".join(supported()) + " |"
