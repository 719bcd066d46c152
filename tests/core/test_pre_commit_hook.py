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
