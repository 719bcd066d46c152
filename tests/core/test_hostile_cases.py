"""Acceptance cases for hostile and broken input: one folder per class of problem.

Each ``tests/cases/hostile/<case>/`` holds files laid over a catalog (``catalog/``,
``environments/``, ``templates/``, ``policies/``), ``case.yaml`` and ``expected.txt``:

    description: what a careless or hostile author does
    base: minimal            # minimal (tests/cases/minimal) or example (the repository's)
    setup:                   # what Git cannot store, in order
      - symlink: [catalog/flavors/x.yaml, /etc/hostname]
      - fifo: catalog/bases/pipe.yaml
      - rename: [catalog/tenants/support.yaml, "catalog/tenants/a\\nb.yaml"]
      - big: [catalog/flavors/big.yaml, 2000000]
      - bytes: [rendered/old/kustomization.yaml, "# Generated\\xff"]  # each character a byte
      - git-commit: base
      - remove: catalog/flavors/x.yaml
    command: [validate]      # --root <copy> is added
    env: {KITCHEN_POLICY_TIMEOUT: "2"}
    exit: 1

``expected.txt`` is stdout then stderr, exactly, with the copy's path written ``<root>``.
Every line of output must be one record: no control character but the newline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kitchen_gitops.cli import main
from tests.conftest import CASES, REPO, copy_catalog

HOSTILE_CASES = sorted(p for p in (CASES / "hostile").iterdir() if p.is_dir())
OVERLAY_DIRS = ("catalog", "environments", "evaluations", "evidence", "templates", "policies", "rendered")
# what may appear in output: printable text, no escape sequence, no forged line
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _setup(root: Path, actions: list[dict[str, Any]]) -> None:
    for action in actions:
        (name, arg), = action.items()
        if name == "symlink":
            link = root / arg[0]
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(str(arg[1]).replace("<root>", str(root)))
        elif name == "fifo":
            (root / arg).unlink(missing_ok=True)
            os.mkfifo(root / arg)
        elif name == "rename":
            (root / arg[0]).rename(root / arg[1])
        elif name == "big":
            line = b"# " + b"x" * 97 + b"\n"
            (root / arg[0]).write_bytes(b"kind: Flavor\n" + line * (int(arg[1]) // len(line) + 1))
        elif name == "bytes":
            (root / arg[0]).parent.mkdir(parents=True, exist_ok=True)
            (root / arg[0]).write_bytes(str(arg[1]).encode("latin-1"))
        elif name == "remove":
            (root / arg).unlink()
        elif name == "git-commit":
            for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", str(arg)]):
                subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                               cwd=root, check=True, capture_output=True)
        else:  # pragma: no cover - a typo in a case
            raise AssertionError(f"unknown setup action {name}")


def _prepare(case: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    spec = YAML(typ="safe").load((case / "case.yaml").read_text())
    base = CASES / "minimal" if spec.get("base", "minimal") == "minimal" else REPO
    root = copy_catalog(base, tmp_path / "repo")
    if not (root / "policies").exists():
        shutil.copytree(REPO / "policies", root / "policies")
        (root / "policies" / "waivers.yaml").unlink()
    for src in sorted(case.rglob("*")):
        rel = src.relative_to(case)
        if src.is_file() and rel.parts[0] in OVERLAY_DIRS:
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    _setup(root, spec.get("setup") or [])
    return root, spec


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[p.name for p in HOSTILE_CASES])
def test_hostile_case(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    root, spec = _prepare(case, tmp_path)
    for key, value in (spec.get("env") or {}).items():
        monkeypatch.setenv(key, str(value))
    args = [str(a).replace("<root>", str(root)) for a in spec["command"]]
    code = main([*args, "--root", str(root)])
    out, err = capsys.readouterr()
    # durations vary from run to run: the expected output names none
    text = re.sub(r"\((\d+\.\d+)s\)| in (\d+\.\d+)s$", lambda m: "(<t>s)" if m.group(1) else " in <t>s",
                  (out + err).replace(str(root), "<root>"), flags=re.M)
    assert "Traceback" not in text
    assert code == spec["exit"], text
    for line in text.splitlines():
        assert not CONTROL.search(line), f"control character in output line {line!r}"
    expected_file = case / "expected.txt"
    if update_golden:
        expected_file.write_text(text)
    assert text == expected_file.read_text()
