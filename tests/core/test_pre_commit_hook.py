"""The pre-commit hook catalog repositories use: it runs ``kitchen check`` on the whole
repository whenever a commit touches a folder whose files change what the gate finds."""

from __future__ import annotations

import re
import shlex

import yaml

from kitchen_gitops.check_cache import READ_FOLDERS
from kitchen_gitops.cli import app
from tests.conftest import REPO


def test_the_hook_runs_kitchen_check_on_every_folder_the_gate_reads() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "kitchen-check"]
    assert shlex.split(hook["entry"]) == ["kitchen", "check"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for folder in (*READ_FOLDERS, "templates", "rendered"):
        assert files.search(f"{folder}/x.yaml"), folder
    assert not files.search("README.md") and not files.search(".kitchen-cache/document/ab/cd")
    assert "check" in {c.name for c in app.registered_commands}


def test_the_gate_does_not_load_the_conformance_http_client() -> None:
    """Every commit waits for the command's imports: ``kitchen check`` loads what the gate
    runs, not the HTTP client of ``kitchen conform`` (aiohttp, a fifth of the start-up)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom kitchen_gitops.cli import main\n"
             "code = main(['check', '--no-cache', '--format', 'json', '--root', '.'])\n"
             "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO)
    assert out.stderr.strip().splitlines()[-1] == "0 []", out.stderr
