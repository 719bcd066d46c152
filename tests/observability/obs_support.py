"""Helpers shared by the observability tests: a catalog copy with edited environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kitchen_gitops import pipeline
from tests.conftest import REPO, copy_catalog


def edited_repo(dst: Path, env: str = "prod", **sections: dict[str, Any]) -> Path:
    """The example repository with sections of ``environments/<env>.yaml`` merged with ``sections``."""
    root = copy_catalog(REPO, dst)
    path = root / "environments" / f"{env}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def rendered_docs(root: Path, env: str) -> dict[str, dict[str, Any]]:
    """``path → manifest`` of one environment rendered in memory."""
    outcome = pipeline.render(root, [env])
    assert outcome.ok, [f.format_text() for f in outcome.findings]
    return {f.path: yaml.safe_load(f.content) for f in outcome.rendered[env]}


def of_kind(docs: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {p: d for p, d in docs.items() if d.get("kind") == kind}
