"""The types of plain data: what a JSON or YAML reader returns and what a JSON writer takes.

``JsonValue`` is recursive: a mapping's values and a list's items are plain data again.
Objects kitchen builds to write (manifests, index entries, records) are ``JsonObject``s;
a function that only reads plain data takes ``Mapping[str, object]`` or ``object`` and
narrows with ``isinstance``.
"""

from __future__ import annotations

from typing import NoReturn, TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
JsonArray: TypeAlias = list[JsonValue]


def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json.loads``'s ``object_pairs_hook`` for files from a pull request: a key twice in
    one object is refused (readers disagree on which copy wins)."""
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def no_constants(name: str) -> NoReturn:
    """``json.loads``'s ``parse_constant``: NaN and Infinity are no JSON numbers."""
    raise ValueError(f"{name} is not a number JSON allows")


def pretty_json(value: object) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)``, byte for byte:
    written by orjson (ten times faster on the megabytes of an environment's conformance
    expectations) where its text is provably the same, else by the standard library.

    The two write strings, integers of 64 bits, booleans, null and the containers alike;
    they differ only for a float written with an exponent (``1e-05`` against ``1e-5``),
    NaN and infinity, an integer beyond 64 bits, a lone surrogate and any type orjson
    does not write as the standard library does (a tuple, a subclass).  Every float is
    checked to be written without one (shortest round-trip digits, as ``repr``)."""
    import json

    import orjson

    if _orjson_like(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # an integer beyond 64 bits, a lone surrogate
            pass
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _orjson_like(value: object) -> bool:
    """Only the exact types ``dict`` (with ``str`` keys), ``list``, ``str``, ``int``,
    ``bool``, ``None`` and floats that ``repr`` writes without an exponent."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            assert isinstance(v, dict)
            if not all(type(k) is str for k in v):
                return False
            stack.extend(v.values())
        elif t is list:
            assert isinstance(v, list)
            stack.extend(v)
        elif t is float:
            assert isinstance(v, float)
            if not (v == 0.0 or 1e-4 <= abs(v) < 1e16):  # NaN and infinity fail too
                return False
        elif t not in (str, int, bool, type(None)):
            return False
    return True
