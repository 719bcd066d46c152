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
