"""The types of plain data: what a JSON or YAML reader returns and what a JSON writer takes.

``JsonValue`` is recursive: a mapping's values and a list's items are plain data again.
Objects kitchen builds to write (manifests, index entries, records) are ``JsonObject``s;
a function that only reads plain data takes ``Mapping[str, object]`` or ``object`` and
narrows with ``isinstance``.
"""

from __future__ import annotations

from typing import TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
JsonArray: TypeAlias = list[JsonValue]
