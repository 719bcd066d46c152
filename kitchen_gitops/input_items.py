"""One rendered object as the policy input holds it: its manifest, the file it is
written to, the catalog location that caused it, its source files and, for vLLM's
containers, their command lines as vLLM reads them.

Apart from :mod:`kitchen_gitops.policy.inputs` so that the gate's cache
(:mod:`kitchen_gitops.render_memo`) can keep a tenant's items as the input holds them.

An item the cache kept is handed on unread: as its JSON (``orjson.Fragment``), or, for a
tenant found whole, as a :class:`KeptItem`, whose JSON is read only where an input that
holds it is evaluated.  :func:`input_digest` names an input exactly without reading them
(what the engine's answers are found by); :func:`input_json` writes the input the engine
reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from .argv import container_argv, serving_containers, vllm_flags
from .findings import Location


class ItemsGone(Exception):
    """A found tenant's items are no longer where its unit said (the cache lost them
    since): its environment is rendered again without taking tenants unread."""


class KeptItems(Protocol):
    """The JSON of a found tenant's items, one after the other, read when first needed;
    ``digest``: their SHA-256 (hex), kept with the unit's files when they were stored."""

    digest: str

    def data(self) -> bytes: ...


class KeptItem:
    """One object's item of the policy input in a tenant found whole in the gate's cache:
    a span of its unit's items, read only where an input that holds it is evaluated.
    The items' SHA-256 and the span name its bytes exactly (the items are checked against
    that digest when they are read)."""

    __slots__ = ("items", "start", "stop")

    def __init__(self, items: KeptItems, start: int, stop: int) -> None:
        self.items, self.start, self.stop = items, start, stop

    def json(self) -> bytes:
        return self.items.data()[self.start:self.stop]

    @property
    def token(self) -> str:
        """What stands for the item in :func:`input_digest`: a string no item is (every
        item is a JSON object), naming the items' digest and the span."""
        return f"\0kept:{self.items.digest}:{self.start}:{self.stop}"


KEPT = (orjson.Fragment, KeptItem)  # the types of an item the cache gave as JSON, unread


def _token(value: Any) -> str:
    if type(value) is KeptItem:
        return value.token
    raise TypeError(f"{type(value).__name__} is not JSON")


def _kept_json(value: Any) -> orjson.Fragment:
    if type(value) is KeptItem:
        return orjson.Fragment(value.json())
    raise TypeError(f"{type(value).__name__} is not JSON")


def input_digest(doc: Any) -> bytes | None:
    """The SHA-256 that names an input exactly: of its JSON, each :class:`KeptItem` written
    as its token; an input without one is named by its JSON's digest.  None where orjson
    cannot write it (an integer beyond 64 bits)."""
    try:
        return hashlib.sha256(orjson.dumps(doc, default=_token)).digest()
    except TypeError:
        return None


def input_json(doc: Any) -> bytes | None:
    """An input as the engine reads it (JSON), each :class:`KeptItem` read; None where
    orjson cannot write it (an integer beyond 64 bits). :class:`ItemsGone` where a kept
    item can no longer be read."""
    try:
        return orjson.dumps(doc, default=_kept_json)
    except TypeError as exc:
        if isinstance(exc.__cause__, ItemsGone):
            raise exc.__cause__ from None
        return None


def read_kept(item: Any) -> Any:
    """An item as a document: one the cache gave as JSON, read."""
    if type(item) is KeptItem:
        return orjson.loads(item.json())
    if type(item) is orjson.Fragment:
        return orjson.loads(orjson.dumps(item))
    return item


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
