"""The catalog as loaded: every object of every kind with where it was written, and the
positions of its fields (``file:line:col`` from load to report)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
)

from .catalog_kinds import Base, Flavor, Tenant
from .environment import Environment
from .findings import Location
from .load import CATALOG_DIRS, Document

# ---------------------------------------------------------------- catalog


@dataclass
class Catalog:
    root: Path
    bases: dict[str, Base] = field(default_factory=dict)  # key name@version
    flavors: dict[str, Flavor] = field(default_factory=dict)  # key name@version
    tenants: dict[str, Tenant] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    # objects whose file exists but did not validate: references to them are not dangling
    invalid: set[tuple[str, str]] = field(default_factory=set)
    # files that could not be loaded at all (syntax, encoding, ...): they may define what is missing
    unloaded: tuple[str, ...] = ()

    def unloaded_hint(self, kind: str, name: str) -> str:
        """``; <file>, which may define it, could not be loaded`` for a failed file named like ``name``."""
        folder = CATALOG_DIRS[kind] + "/"
        files = [f for f in self.unloaded
                 if f.startswith(folder) and Path(f).stem.partition("@")[0] == name]
        return f"; {', '.join(files)}, which may define it, could not be loaded" if files else ""

    def doc(self, kind: str, key: str) -> Document:
        return self.documents[(kind, key)]

    def location(self, kind: str, key: str, path: Iterable[str | int] = (), *, value: bool = False) -> Location:
        """Where ``path`` of a catalog object is written: the one strict position accessor.

        A path the file does not write but the object's model has (a defaulted field, an
        optional mapping left out) is located at its nearest written parent — that is where
        a person would add it.  A path the model does not have is a programming error in
        the caller (a rule or a stage naming a field that does not exist): PositionError.
        """
        doc = self.documents.get((kind, key))
        if doc is None:
            raise PositionError(f"no {kind} '{key}' in the catalog")
        segments = tuple(path)
        if segments in doc.spans:
            return doc.location(segments, value=value)
        obj = self._object(kind, key)
        if not model_has_path(obj, segments):
            raise PositionError(f"{kind} {key} has no field {'.'.join(map(str, segments))}")
        return doc.location(segments, value=value)

    def _object(self, kind: str, key: str) -> Any:
        registries: dict[str, dict[str, Any]] = {"Base": self.bases, "Flavor": self.flavors,
                                                 "Tenant": self.tenants, "Environment": self.environments}
        return registries[kind].get(key)

    def locate(self, file: str, dotted: str) -> Location:
        """``location`` for a catalog file and a dotted path (``environments.prod.flavors.0``),
        as the policy rules name them; keys with dots in them are matched whole."""
        for (kind, key), doc in self.documents.items():
            if doc.display_path == file:
                segments = split_dotted(self._object(kind, key), dotted, doc)
                if segments is None:
                    raise PositionError(f"{kind} {key} ({file}) has no field {dotted}")
                return self.location(kind, key, segments)
        raise PositionError(f"{file} is not a catalog file")

    def source_file(self, kind: str, key: str) -> str:
        return self.documents[(kind, key)].display_path


class PositionError(LookupError):
    """A position asked for a field the object's model does not have."""


def _field_value(obj: Any, name: str | int) -> tuple[bool, Any]:
    """(exists, value) of one path segment in a model, mapping or list."""
    if isinstance(obj, BaseModel):
        for fname, info in type(obj).model_fields.items():
            if name in (fname, info.alias):
                return True, getattr(obj, fname)
        return False, None
    if isinstance(obj, dict):
        return (name in obj), obj.get(name)
    if isinstance(obj, list | tuple):
        try:
            index = int(name)
        except (TypeError, ValueError):
            return False, None
        return (0 <= index < len(obj)), (obj[index] if 0 <= index < len(obj) else None)
    return False, None


def model_has_path(obj: Any, path: Iterable[str | int]) -> bool:
    """Whether ``path`` names a field of the (validated) object ``obj``; below an unset
    optional field (None) the rest cannot be checked and is accepted."""
    for segment in path:
        if obj is None:
            return True
        exists, obj = _field_value(obj, segment)
        if not exists:
            return False
    return True


def split_dotted(obj: Any, dotted: str, doc: Document | None = None) -> tuple[str | int, ...] | None:
    """A dotted path as segments, matching keys that contain dots (``adapter_config.json``)
    whole: the longest key of the object (or of the document) that the rest starts with."""
    if not dotted:
        return ()
    out: list[str | int] = []
    rest = dotted
    while rest:
        candidates: list[str] = []
        if isinstance(obj, BaseModel):
            for fname, info in type(obj).model_fields.items():
                candidates += [fname] + ([info.alias] if info.alias else [])
        elif isinstance(obj, dict):
            candidates += [str(k) for k in obj]
        elif isinstance(obj, list | tuple):
            candidates += [str(i) for i in range(len(obj))]
        if doc is not None:
            prefix = tuple(out)
            candidates += [str(k[len(prefix)]) for k in doc.spans if len(k) > len(prefix) and k[:len(prefix)] == prefix]
        match = max((c for c in candidates if rest == c or rest.startswith(c + ".")), key=len, default=None)
        if match is None:
            if obj is None:  # below an unset optional field
                out += rest.split(".")
                return tuple(out)
            return None
        segment: str | int = int(match) if isinstance(obj, list | tuple) else match
        out.append(segment)
        _, obj = _field_value(obj, segment)
        rest = rest[len(match) + 1:]
    return tuple(out)
