"""What changes in the rendered objects of an environment, field by field.

``kitchen diff`` compares what both sides render as the objects Argo CD applies, not as
text: comments, key order, quoting and indentation are not part of an object.  An object
is named by the apiVersion, kind, namespace and name its manifest states (a ``…List``
with ``items`` stands for its items, as kustomize reads it); the kustomization, which is
kustomize's own file rather than an object, by its path.  A second object with the same
name, or one whose manifest names nothing, is named by its file too.

The fields are compared by :class:`kitchen_gitops.value_diff.Walk` (types included,
aliases and self-containing nodes handled), which stops after :data:`MAX_VALUES` values
per object.  What the report shows is bounded: at most
``max_fields`` field paths per object, values in JSON notation shortened to
:data:`VALUE_CHARS` characters; escaping for each output sink is the formatter's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from .manifest_reader import load_manifest
from .render import RenderedFile
from .value_diff import ABSENT, Walk, path_text
from .value_diff import json_text as _json

KUSTOMIZATION = "Kustomization"
MAX_FIELDS = 10  # field paths shown per changed object
VALUE_CHARS = 80  # a value's JSON text, shortened beyond
PATH_CHARS = 120  # a field path, shortened in the middle beyond
MAX_VALUES = 1_000_000  # values compared per object before giving up on field paths
ROOT = "(object)"


@dataclass(frozen=True)
class ObjectId:
    """What names a rendered object: its manifest's identity, or ``path`` for the
    kustomization and for an object that has no identity of its own."""

    api_version: str
    kind: str
    namespace: str
    name: str
    path: str = ""

    def label(self) -> str:
        if not self.kind and not self.name:
            return self.path
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        label = f"{self.kind} {where} ({self.api_version})"
        return f"{label} in {self.path}" if self.path else label

    def order(self) -> tuple[str, str, str, str, str]:
        return (self.namespace, self.kind, self.name, self.api_version, self.path)

    def as_dict(self) -> dict[str, str]:
        out = {"api_version": self.api_version, "kind": self.kind, "namespace": self.namespace,
               "name": self.name}
        if self.path:
            out["path"] = self.path
        return out


@dataclass(frozen=True)
class FieldChange:
    """One field path whose value changes; values in JSON notation, shortened, None where
    the field is absent on that side."""

    path: str
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ObjectChange:
    environment: str
    obj: ObjectId
    change: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()
    more_fields: int = 0  # changed paths not listed in ``fields``
    incomplete: bool = False  # the comparison stopped at MAX_VALUES: more paths may change

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"environment": self.environment, **self.obj.as_dict(),
                                  "change": self.change}
        if self.change == "changed":
            out["fields"] = [f.as_dict() for f in self.fields]
            out["more_fields"] = self.more_fields
            if self.incomplete:
                out["incomplete"] = True
        return out


@dataclass(frozen=True)
class _Rendered:
    manifest: object
    origin: tuple[str, int]  # the file's text and the item's index in it: same origin, same object


def _text(value: object) -> str:
    return value if isinstance(value, str) else _json(value)


def _identity(manifest: object) -> tuple[str, str, str, str] | None:
    if not isinstance(manifest, dict):
        return None
    meta = manifest.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    api_version, kind, name = manifest.get("apiVersion"), manifest.get("kind"), meta.get("name")
    if api_version is None or kind is None or name is None:
        return None
    return _text(api_version), _text(kind), _text(meta.get("namespace") or ""), _text(name)


def _items(manifest: object) -> list[object]:
    """The objects a manifest stands for: a ``…List``'s items (recursively), else itself."""
    out: list[object] = []
    stack = [manifest]
    expanded: set[int] = set()
    while stack:
        m = stack.pop()
        if isinstance(m, dict):
            kind, items = m.get("kind"), m.get("items")
            if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list) \
                    and id(m) not in expanded:
                expanded.add(id(m))  # a List among its own items is an object there
                stack += reversed(items)
                continue
        out.append(m)
    return out


def rendered_objects(files: Sequence[RenderedFile]) -> dict[ObjectId, _Rendered]:
    """Every object of one environment's rendered files, by what names it."""
    out: dict[ObjectId, _Rendered] = {}
    for f in sorted(files, key=lambda f: f.path):
        obj = f.objects[0] if f.objects else None
        if obj is not None and obj.kind == KUSTOMIZATION:
            try:
                manifest = load_manifest(f.content)
            except (yaml.YAMLError, RecursionError):  # not YAML: compared as the text the template wrote
                manifest = f.content
            out[ObjectId("", "", "", "", f.path)] = _Rendered(manifest, (f.content, 0))
            continue
        manifest = obj.manifest if obj is not None else None
        for i, item in enumerate(_items(manifest)):
            ident = _identity(item)
            key = ObjectId(*ident) if ident else ObjectId("", "", "", "", f.path if i == 0 else f"{f.path} items[{i}]")
            n = 1
            while key in out:  # a second object of the same name: named by its file
                suffix = f" ({n})" if n > 1 else ""
                key = ObjectId(key.api_version, key.kind, key.namespace, key.name, f"{f.path}{suffix}")
                n += 1
            out[key] = _Rendered(item, (f.content, i))
    return out


# ---------------------------------------------------------------- values and paths


def _shorten(text: str, limit: int, *, middle: bool = False) -> str:
    if len(text) <= limit:
        return text
    if middle:
        head = limit // 3
        return text[:head] + "…" + text[len(text) - (limit - head - 1):]
    return text[:limit - 1] + "…"



def shown(value: object) -> str | None:
    """A value as the report shows it: JSON notation, shortened; None where absent."""
    return None if value is ABSENT else _shorten(_json(value), VALUE_CHARS)


CONTEXT_CHARS = 20  # shown before the first difference of two long values


def shown_pair(old: object, new: object) -> tuple[str | None, str | None]:
    """Two values as the report shows them; where both are long, each from a little before
    the first character in which they differ, so that the shortened texts show the change."""
    if old is ABSENT or new is ABSENT:
        return shown(old), shown(new)
    a, b = _json(old), _json(new)
    if len(a) <= VALUE_CHARS and len(b) <= VALUE_CHARS:
        return a, b
    same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, same - CONTEXT_CHARS)

    def window(text: str) -> str:
        return ("…" if start else "") + _shorten(text[start:], VALUE_CHARS - (1 if start else 0))

    return window(a), window(b)


def _path_text(path: tuple[object, ...]) -> str:
    text = path_text(path)
    return _shorten(text, PATH_CHARS, middle=True) if text else ROOT


def compare_objects(environment: str, old: Mapping[ObjectId, _Rendered], new: Mapping[ObjectId, _Rendered],
                    max_fields: int = MAX_FIELDS) -> list[ObjectChange]:
    """Objects added, removed and changed (with up to ``max_fields`` changed paths each)."""
    out: list[ObjectChange] = []
    for key in sorted(old.keys() | new.keys(), key=ObjectId.order):
        if key not in old:
            out.append(ObjectChange(environment, key, "added"))
        elif key not in new:
            out.append(ObjectChange(environment, key, "removed"))
        elif old[key].origin != new[key].origin:
            walk = Walk(MAX_VALUES)
            fields: list[FieldChange] = []
            more = 0
            for path, a, b in walk.changes(old[key].manifest, new[key].manifest):
                if len(fields) < max_fields:
                    fields.append(FieldChange(_path_text(path), *shown_pair(a, b)))
                else:
                    more += 1
            if fields or walk.stopped:
                out.append(ObjectChange(environment, key, "changed", tuple(fields), more, walk.stopped))
    return out


def diff_rendered(old: Mapping[str, Sequence[RenderedFile]], new: Mapping[str, Sequence[RenderedFile]],
                  max_fields: int = MAX_FIELDS) -> list[ObjectChange]:
    """The object changes of every environment rendered on either side."""
    out: list[ObjectChange] = []
    for env in sorted(old.keys() | new.keys()):
        out += compare_objects(env, rendered_objects(old.get(env, ())), rendered_objects(new.get(env, ())),
                               max_fields)
    return out
