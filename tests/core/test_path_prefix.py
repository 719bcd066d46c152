"""``argocd.path_prefix`` names the folder of rendered output for render, check, the policy
input and every Application alike; environments that disagree are a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kitchen_gitops.cli import main
from tests.conftest import copy_catalog

REPO = Path(__file__).resolve().parents[2]
ENVS = ("dev", "prod", "staging")


def _prefix(root: Path, prefix: str, envs: tuple[str, ...] = ENVS) -> None:
    for env in envs:
        path = root / f"environments/{env}.yaml"
        text = path.read_text()
        assert text.count("\nargocd:\n") == 1
        path.write_text(text.replace("\nargocd:\n", f"\nargocd:\n  path_prefix: {prefix}\n"))


def test_one_prefix_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    _prefix(root, "deploy/out")
    assert main(["render", "--root", str(root)]) == 0
    app = yaml.safe_load((root / "deploy/out/prod/application.yaml").read_text())
    assert app["spec"]["source"]["path"] == "deploy/out/prod"
    assert main(["check", "--root", str(root)]) == 0  # compares deploy/out, not rendered/
    (root / "deploy/out/prod/cs-llm/namespace.yaml").write_text("# edited\n")
    capsys.readouterr()
    assert main(["check", "--root", str(root)]) == 1
    assert "deploy/out/prod/cs-llm/namespace.yaml: [error] committed rendered output is out of date" \
        in capsys.readouterr().out


def test_disagreeing_prefixes_are_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    _prefix(root, "elsewhere", ("prod",))
    assert main(["validate", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "environments/prod.yaml:" in out and "(catalog.path-prefix)" in out
