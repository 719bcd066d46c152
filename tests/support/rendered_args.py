"""The vLLM command lines a catalog renders, read back from the rendered manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kitchen_gitops import pipeline


def rendered_command_lines(root: Path) -> list[tuple[str, list[str]]]:
    """``(env/namespace/name, argv)`` per InferenceService: the ServingRuntime container's
    arguments followed by the predictor's, as KServe merges them."""
    outcome = pipeline.render(root)
    assert outcome.ok, [str(f) for f in outcome.findings]
    out = []
    for env, files in outcome.rendered.items():
        runtimes: dict[str, list[str]] = {}
        docs: list[dict[str, Any]] = [yaml.safe_load(f.content) for f in files if f.path.endswith(".yaml")]
        for d in docs:
            if d.get("kind") == "ServingRuntime":
                runtimes[d["metadata"]["namespace"]] = d["spec"]["containers"][0]["args"]
        for d in docs:
            if d.get("kind") == "InferenceService":
                meta = d["metadata"]
                args = runtimes[meta["namespace"]] + d["spec"]["predictor"]["model"]["args"]
                out.append((f"{env}/{meta['namespace']}/{meta['name']}", args))
    return out
