"""Parsed catalog files in the gate's cache: a :class:`~kitchen_gitops.load.Document` as
JSON (its data and its span index), keyed by the file's shown path and bytes.

Only a file that parsed without a finding is stored, and only when JSON gives its data
back as itself: strings, booleans, null, finite floats, integers within Kubernetes' int64,
lists, string-keyed mappings, and dates written as ``{"\0date": "YYYY-MM-DD"}`` (no key of
the catalog holds a NUL, so no mapping of the catalog reads as a date).  A file with a
timestamp (or anything else) is parsed every time.  Reading an entry checks its shape
again; one that does not have it is refused.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import orjson

from .cache import Digest
from .load import MAX_INT, Document, PathKey, Span

KIND = "document"


def key(display: str, raw: bytes) -> str:
    return Digest(KIND).text(display).add(raw).hexdigest()


DATE = "\0date"


class _NotPlain(ValueError):
    pass


def _freeze(value: Any) -> Any:
    """``value`` as JSON keeps it (dates tagged), or :class:`_NotPlain`."""
    t = type(value)
    if t is str or t is bool or value is None or (t is int and abs(value) <= MAX_INT) \
            or (t is float and math.isfinite(value)):
        return value
    if t is list:
        return [_freeze(v) for v in value]
    if t is dict:
        if not all(type(k) is str for k in value):
            raise _NotPlain("a key that is not a string")
        return {k: _freeze(v) for k, v in value.items()}
    if t is dt.date:
        return {DATE: value.isoformat()}
    raise _NotPlain(f"a {t.__name__}")


def _thaw(value: Any) -> Any:
    """What :func:`_freeze` gave, back; :class:`_NotPlain` for anything it cannot give."""
    t = type(value)
    if t is str or t is bool or value is None or (t is int and abs(value) <= MAX_INT) \
            or (t is float and math.isfinite(value)):
        return value
    if t is list:
        return [_thaw(v) for v in value]
    if t is dict:
        if DATE in value:
            if len(value) != 1 or type(value[DATE]) is not str:
                raise _NotPlain("a malformed date")
            return dt.date.fromisoformat(value[DATE])
        return {k: _thaw(v) for k, v in value.items()}
    raise _NotPlain(f"a {t.__name__}")


def encode(doc: Document) -> bytes | None:
    """The entry of ``doc``, or None when its data holds a value JSON would change."""
    if not isinstance(doc.data, dict):
        return None
    try:
        data = _freeze(doc.data)
    except _NotPlain:
        return None
    spans = [[list(p), s.key_line, s.key_col, s.value_line, s.value_col] for p, s in doc.spans.items()]
    return orjson.dumps({"data": data, "spans": spans})


def _span(item: Any) -> tuple[PathKey, Span]:
    path, *marks = item
    if not (isinstance(path, list) and all(type(p) in (str, int) for p in path)
            and len(marks) == 4 and all(type(m) is int and m > 0 for m in marks)):
        raise ValueError("a span is [path, key line, key column, value line, value column]")
    return tuple(path), Span(*marks)


def decode(payload: bytes, path: Path, display: str) -> Document | None:
    """The document an entry holds, or None when it is not an entry's shape."""
    try:
        obj = orjson.loads(payload)
        if not (isinstance(obj, dict) and obj.keys() == {"data", "spans"} and isinstance(obj["data"], dict)
                and isinstance(obj["spans"], list)):
            return None
        data = _thaw(obj["data"])
        spans = dict(_span(item) for item in obj["spans"])
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if () not in spans or not isinstance(data, dict):
        return None
    return Document(path, display, data, spans)
