"""Where two parsed YAML values differ, field by field, types included.

One walk serves the closed world (a rendered object against the one kitchen intends) and
``kitchen diff`` (an object as two revisions render it).  Rendered values come from pull
requests, so they may be huge, share nodes through aliases or even contain themselves:
the walk keeps its own stack, never descends into a node it is already inside, and stops
after ``limit`` values.  Values are compared with their types (``1``, ``1.0``, ``true``
and ``"1"`` all differ).  Inserted and removed list items are lined up (difflib on a
structural hash of each item), so an insertion is one change, not every later item
shifting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from difflib import SequenceMatcher
from typing import Any, TypeAlias

MAX_ALIGN = 250_000  # list length product up to which elements are aligned, not paired by index
ABSENT: object = object()  # the side of a change where the field does not exist

_Path: TypeAlias = tuple["_Path", object] | None  # (parent, key or index): a tuple is built only for the paths reported


def path_tuple(path: _Path) -> tuple[object, ...]:
    parts: list[object] = []
    while path is not None:
        path, step = path
        parts.append(step)
    return tuple(reversed(parts))


def _segment(key: object) -> str:
    if isinstance(key, str) and key and (key[0].isascii() and (key[0].isalpha() or key[0] == "_")) \
            and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return f".{key}"
    return f"[{json_text(key)}]"


def path_text(path: tuple[object, ...]) -> str:
    """A path of :meth:`Walk.changes` as people write it: ``spec.containers[0]["a/b"]``."""
    return "".join(_segment(step) for step in path).removeprefix(".")


def json_text(value: object) -> str:
    """A value in JSON notation, whatever it holds (mixed keys, a node inside itself)."""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):  # keys of mixed types, a node inside itself
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            return repr(value)


def _scalar_digest(value: object) -> int:
    try:
        return hash((type(value).__name__, value))
    except TypeError:  # an unhashable scalar (a YAML set)
        return hash((type(value).__name__, repr(value)))


def _digest(value: object, memo: dict[int, int]) -> int:
    """A structural hash (equal values, equal hashes; collisions possible): used only to
    line up list elements, never to decide that two values are equal."""
    if not isinstance(value, dict | list):
        return _scalar_digest(value)
    stack: list[tuple[dict[object, object] | list[object], bool]] = [(value, False)]
    busy: set[int] = set()
    while stack:
        node, done = stack.pop()
        if id(node) in memo:
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if not done:
            busy.add(id(node))
            stack.append((node, True))
            stack += [(c, False) for c in children if isinstance(c, dict | list)
                      and id(c) not in memo and id(c) not in busy]
            continue
        busy.discard(id(node))

        def of(c: object) -> int:
            return memo.get(id(c), 0) if isinstance(c, dict | list) else _scalar_digest(c)

        if isinstance(node, dict):
            memo[id(node)] = hash(("d", tuple(sorted((_scalar_digest(k), of(v)) for k, v in node.items()))))
        else:
            memo[id(node)] = hash(("l", tuple(of(c) for c in node)))
    return memo[id(value)]


def same_scalar(a: object, b: object) -> bool:
    """Equal and of one type (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b) or (a != a and b != b)  # NaN is NaN
    except Exception:  # values that do not compare are shown as changed
        return False


def _key_order(key: object) -> tuple[str, str]:
    return (type(key).__name__, json_text(key))


class Walk:
    """The changed paths between two values, depth first, in a stable order."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.visited = 0
        self.stopped = False
        self._memo_a: dict[int, int] = {}
        self._memo_b: dict[int, int] = {}

    def _dict(self, path: _Path, a: dict[object, object], b: dict[object, object]
              ) -> Iterator[tuple[_Path, object, object]]:
        for key in sorted(a.keys() | b.keys(), key=_key_order):
            yield (path, key), a.get(key, ABSENT), b.get(key, ABSENT)

    def _list(self, path: _Path, a: list[object], b: list[object]) -> Iterator[tuple[_Path, object, object]]:
        if len(a) * len(b) > MAX_ALIGN:
            for i in range(max(len(a), len(b))):
                yield (path, i), a[i] if i < len(a) else ABSENT, b[i] if i < len(b) else ABSENT
            return
        ha = [_digest(x, self._memo_a) for x in a]
        hb = [_digest(x, self._memo_b) for x in b]
        for _, i1, i2, j1, j2 in SequenceMatcher(None, ha, hb, autojunk=False).get_opcodes():
            paired = min(i2 - i1, j2 - j1)  # equal or replaced element by element
            for k in range(paired):
                yield (path, j1 + k), a[i1 + k], b[j1 + k]
            for i in range(i1 + paired, i2):
                yield (path, i), a[i], ABSENT
            for j in range(j1 + paired, j2):
                yield (path, j), ABSENT, b[j]

    def changes(self, old: object, new: object) -> Iterator[tuple[tuple[Any, ...], object, object]]:
        """(path, old, new) for each changed field; a subtree present on one side only is
        one change at its root.  A path's steps are list indexes and mapping keys: the
        callers read them as ``str | int``, though a YAML mapping may have keys of any type."""
        stack: list[tuple[Iterator[tuple[_Path, object, object]], int, int]] = [(iter([(None, old, new)]), 0, 0)]
        inside_a: set[int] = set()
        inside_b: set[int] = set()
        while stack:
            it, ida, idb = stack[-1]
            item = next(it, None)
            if item is None:
                stack.pop()
                inside_a.discard(ida)
                inside_b.discard(idb)
                continue
            self.visited += 1
            if self.visited > self.limit:
                self.stopped = True
                return
            path, a, b = item
            if a is b and a is not ABSENT:
                continue  # one node reached on both sides (the same alias): nothing changes below it
            if id(a) in inside_a or id(b) in inside_b:  # a node inside itself: compared no deeper
                if json_text(a) != json_text(b):
                    yield path_tuple(path), a, b
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                children: Iterator[tuple[_Path, object, object]] = self._dict(path, a, b)
            elif isinstance(a, list) and isinstance(b, list):
                children = self._list(path, a, b)
            else:
                if not same_scalar(a, b):
                    yield path_tuple(path), a, b
                continue
            inside_a.add(id(a))
            inside_b.add(id(b))
            stack.append((children, id(a), id(b)))
