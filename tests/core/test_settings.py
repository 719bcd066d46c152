"""Settings are declared once (kitchen_gitops/settings.py): no other module reads the
process environment or spells a variable's name, and each variable says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

from kitchen_gitops import settings

PACKAGE = Path(__file__).resolve().parents[2] / "kitchen_gitops"
NAMES = {v.name for v in settings.VARIABLES}


def _offences(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            out.append(f"{path.name}:{node.lineno}: reads os.{node.attr}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value in NAMES or (node.value.startswith("KITCHEN_") and node.value.isupper())):
            out.append(f"{path.name}:{node.lineno}: names ${node.value}")
    return sorted(out)


def test_only_settings_reads_the_environment() -> None:
    offences = [o for p in sorted(PACKAGE.rglob("*.py")) if p.name != "settings.py" for o in _offences(p)]
    assert offences == []


def test_the_check_finds_a_module_that_reads_the_environment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('import os\nJOBS = os.environ.get("KITCHEN_JOBS")\nX = "KITCHEN_NEW"\n')
    assert _offences(bad) == ["bad.py:2: names $KITCHEN_JOBS", "bad.py:2: reads os.environ",
                              "bad.py:3: names $KITCHEN_NEW"]


def test_every_variable_is_declared_once_with_its_help() -> None:
    names = [v.name for v in settings.VARIABLES]
    assert len(names) == len(set(names))
    declared = {v.name for v in vars(settings).values() if isinstance(v, settings.Variable)}
    assert declared == set(names)
    assert all(v.help.endswith((".", ")")) and v.kind in (str, int, float, bool, Path) for v in settings.VARIABLES)
