"""One rendered object as the policy input holds it: its manifest, the file it is
written to, the catalog location that caused it, its source files and, for vLLM's
containers, their command lines as vLLM reads them.

Apart from :mod:`kitchen_gitops.policy.inputs` so that the gate's cache
(:mod:`kitchen_gitops.render_memo`) can keep a tenant's items as the input holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .argv import container_argv, serving_containers, vllm_flags
from .findings import Location


def loc(location: Location) -> dict[str, Any]:
    return {"file": location.file, "line": location.line, "col": location.col}


def resource_item(manifest: Any, file: str, source: Location, sources: Sequence[str]) -> dict[str, Any]:
    """The input's item of one rendered object (``file``: where its output is written,
    below the output folder)."""
    return read_vllm_flags({"manifest": manifest, "file": file, "_source": loc(source), "sources": list(sources)})


def read_vllm_flags(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with ``vllm_flags``: each vLLM container's argv read as vLLM reads it, by
    the container's path, so that the rules do not parse every argv in Rego."""
    serving = serving_containers(item.get("manifest"))
    if serving:
        item["vllm_flags"] = {path: vllm_flags(container_argv(c)) for path, c in serving}
    else:
        item.pop("vllm_flags", None)
    return item


def namespace_of(item: Any) -> str | None:
    """The namespace an item's resource is in (a Namespace's own name), or None."""
    manifest = item.get("manifest") if isinstance(item, dict) else None
    if not isinstance(manifest, dict) or not isinstance(meta := manifest.get("metadata"), dict):
        return None
    ns = meta.get("namespace")
    if isinstance(ns, str) and ns:
        return ns
    name = meta.get("name")
    return name if manifest.get("kind") == "Namespace" and isinstance(name, str) else None
