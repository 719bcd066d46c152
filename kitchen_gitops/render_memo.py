"""Rendered objects in the gate's cache: what one template made of one context, found
again by exactly that context.

A template reads nothing but its context: the sandbox gives it no file, clock or
environment, and the templates folder (with kitchen's code) is in every key.  So the key
of one object is the digest of its template's name, the folder's digest and every value
:meth:`~kitchen_gitops.render.EnvironmentRenderer.emit` gives the template, as JSON.  A
one-flavor change alters the contexts of that flavor's tenants' objects only: every other
object of the environment is found, and its template is neither rendered nor its output
read again.

- A context holding a value of another type than JSON's and dataclasses of them (a
  catalog model, a subclass of ``str``, a set) gives no key: that object is rendered
  every time.  The key digests the context's pickle (never read back), which tells a
  tuple from a list, ``1`` from ``1.0`` and ``True``, and NaN from null.
- Only an object rendered exactly as kitchen intends is stored (the closed world found no
  difference), with its text and its manifest, where JSON gives the manifest back as
  itself; anything else is rendered, read and compared every time.
- Entries are kept in packs, one per environment, templates folder and share of the
  tenants' folders: a catalog edit rewrites the share of the tenant it touches, a template
  edit starts new packs (the old ones go when the size bound needs their room).  Packs are
  written only when no file the gate reads changed during the run.
"""

from __future__ import annotations

import hashlib
import pickle
import zlib
from typing import Any

import orjson

from .cache import Cache, Digest, Pack

KIND = "object"
SHARES = 32  # packs per environment
_STRICT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


class ObjectMemo:
    """The rendered objects of one environment, looked up and stored by their context."""

    def __init__(self, cache: Cache, environment: str, templates: bytes) -> None:
        self.cache, self.environment = cache, environment
        self._scope = Digest(KIND).text(environment).add(templates).hexdigest()
        self._packs: dict[int, Pack] = {}

    def key(self, template: str, values: list[Any]) -> str | None:
        """The key of what ``template`` renders from ``values``, or None where they hold
        another type than JSON's (strings, numbers, booleans, null, lists, tuples and
        string-keyed mappings) and dataclasses of them.

        JSON alone would not tell a tuple from a list (``|string`` shows either) nor NaN
        from null, so the key digests the values' pickle, which keeps every type and bit;
        the pickle is only hashed, never read back."""
        try:
            orjson.dumps(values, option=_STRICT)  # raises for any other type
            raw = pickle.dumps(values, protocol=5)
        except (Exception, RecursionError):  # whatever a value's pickling raises: no key
            return None
        return hashlib.sha256(self._scope.encode() + template.encode("utf-8", "surrogateescape") + b"\0"
                              + raw).hexdigest()

    def _pack(self, path: str) -> Pack:
        share = zlib.crc32(path.partition("/")[0].encode("utf-8", "surrogateescape")) % SHARES
        if share not in self._packs:
            self._packs[share] = self.cache.pack(KIND, f"{self._scope}/{share}")
        return self._packs[share]

    def get(self, key: str, path: str) -> tuple[str, Any] | None:
        """The text and manifest stored for ``key``, or None."""
        return self._pack(path).read(key, _decode, "not a rendered object")

    def put(self, key: str, path: str, text: str, manifest: Any) -> None:
        """Store an object rendered as kitchen intends, where JSON holds its text and its
        manifest exactly."""
        try:
            raw = text.encode("utf-8")
            as_json = orjson.dumps(manifest, option=_STRICT)
        except (TypeError, UnicodeEncodeError):
            return
        if orjson.loads(as_json) != manifest:  # a NaN, a tuple: JSON would give back something else
            return
        self._pack(path).put(key, b"%d\n" % len(raw) + raw + as_json)

    def flush(self) -> None:
        for share in sorted(self._packs):
            self._packs[share].flush()


def _decode(payload: bytes) -> tuple[str, Any] | None:
    head, sep, rest = payload.partition(b"\n")
    if not sep or not head.isdigit() or int(head) > len(rest):
        return None
    size = int(head)
    try:
        text = rest[:size].decode("utf-8")
        manifest = orjson.loads(rest[size:])
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    if manifest is not None and not isinstance(manifest, dict):
        return None
    return text, manifest
