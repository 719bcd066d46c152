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
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from .cache import Cache, Digest
from .findings import Finding
from .load import MAX_INT, Document, Job, Loaded, PathKey, Span, discover, parse_files, read_regular_file

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
        if DATE in value:  # the file's own key, which the entry would read back as a date's tag
            raise _NotPlain("a key that is the date tag")
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


def encode_data(data: dict[str, Any]) -> bytes | None:
    """A mapping alone (no positions) as an entry, or None when it holds a value JSON would change."""
    try:
        return orjson.dumps(_freeze(data))
    except _NotPlain:
        return None


def decode_data(payload: bytes) -> dict[str, Any] | None:
    """What :func:`encode_data` gave, back, or None when the payload is not its shape."""
    try:
        data = _thaw(orjson.loads(payload))
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def encode(doc: Document) -> bytes | None:
    """The entry of ``doc``, or None when its data holds a value JSON would change."""
    if not isinstance(doc.data, dict):
        return None
    try:
        data = _freeze(doc.data)
    except _NotPlain:
        return None
    marks = [m for s in doc.spans.values() for m in (s.key_line, s.key_col, s.value_line, s.value_col)]
    return orjson.dumps({"data": data, "paths": [list(p) for p in doc.spans], "marks": marks})


class _Spans(dict[PathKey, Span]):
    """A cached document's span index, built when first read: a run that finds nothing in
    a file never reads its positions."""

    def __init__(self, paths: list[list[str | int]], marks: list[int]) -> None:
        super().__init__()
        self._raw: tuple[list[list[str | int]], list[int]] | None = (paths, marks)

    def _fill(self) -> None:
        if self._raw is None:
            return
        paths, marks = self._raw
        self._raw = None
        for i, path in enumerate(paths):
            j = 4 * i
            dict.__setitem__(self, tuple(path), Span(marks[j], marks[j + 1], marks[j + 2], marks[j + 3]))

    def __contains__(self, key: object) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __getitem__(self, key: PathKey) -> Span:
        self._fill()
        return dict.__getitem__(self, key)

    def get(self, key: PathKey, default: Any = None) -> Any:
        self._fill()
        return dict.get(self, key, default)

    def __iter__(self) -> Iterator[PathKey]:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def copy(self) -> dict[PathKey, Span]:
        self._fill()
        return dict(dict.items(self))

    def __reduce__(self) -> Any:
        self._fill()
        return (dict, (dict(dict.items(self)),))


def _spans(paths: Any, marks: Any) -> _Spans:
    """The span index an entry holds, its shape checked at once (in C where it can be)."""
    if not (isinstance(paths, list) and isinstance(marks, list) and len(marks) == 4 * len(paths)):
        raise ValueError("a span index is a list of paths and four marks per path")
    if not set(map(type, paths)) <= {list} or not {type(x) for p in paths for x in p} <= {str, int}:
        raise ValueError("a path is a list of keys and indexes")
    if not set(map(type, marks)) <= {int} or (marks and min(marks) < 1):
        raise ValueError("a mark is a line or column from 1")
    if not paths or paths[0] != []:
        raise ValueError("the first span is the document's own")
    return _Spans(paths, marks)


def decode(payload: bytes, path: Path, display: str) -> Document | None:
    """The document an entry holds, or None when it is not an entry's shape."""
    try:
        obj = orjson.loads(payload)
        if not (isinstance(obj, dict) and obj.keys() == {"data", "paths", "marks"}
                and isinstance(obj["data"], dict)):
            return None
        data = _thaw(obj["data"])
        spans = _spans(obj["paths"], obj["marks"])
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return Document(path, display, data, spans)


def load_documents(root: Path, cache: Cache) -> tuple[list[tuple[str, Document]], list[Finding]]:
    """:func:`kitchen_gitops.load.load_documents` with ``cache``: a file whose shown path
    and bytes were parsed before is read from it, and every file parsed here without a
    finding is stored in it (the bytes hashed are the bytes parsed), all in one pack."""
    files, findings = discover(root)
    results: list[Loaded | None] = [None] * len(files)
    jobs: list[Job] = []
    where: list[int] = []
    keys: dict[int, str] = {}
    pack = cache.pack(KIND) if cache.enabled else None
    for i, (kind, path, display) in enumerate(files):
        raw = None
        if pack is not None and kind:
            try:
                raw = read_regular_file(path)
            except OSError:
                raw = None  # parse_text's caller reports it
            if raw is not None:
                keys[i] = key(display, raw)
                doc = pack.read(keys[i], partial(decode, path=path, display=display), "not a parsed document")
                if doc is not None:
                    doc.digest = keys[i]
                    results[i] = (kind, doc, [])
                    continue
        jobs.append((kind, path, display, raw))
        where.append(i)
    for i, loaded in zip(where, parse_files(root, jobs), strict=True):
        results[i] = loaded
        kind, doc, problems = loaded
        if doc is not None and i in keys:
            doc.digest = keys[i]
        if pack is not None and i in keys and doc is not None and not problems:
            payload = encode(doc)
            if payload is not None:
                pack.put(keys[i], payload)
    if pack is not None:
        pack.flush()
    docs = [(kind, doc) for kind, doc, _ in filter(None, results) if doc is not None]
    return docs, findings + [f for r in results if r is not None for f in r[2]]
