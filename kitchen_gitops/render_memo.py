"""Rendered objects in the gate's cache, at two grains.

**A tenant's objects** (:class:`TenantMemo`), found whole by the files they are made of:
the environment's, the tenant's, its flavors' and their bases' (each catalog document's
digest), with the templates folder's digest.  A one-flavor change renders again the
tenants that serve the flavor; every other tenant is one lookup, and its objects go into
the policy input as the JSON they were kept as.

**One object** (:class:`ObjectMemo`): what one template made of one context, found again by
exactly that context, for the environment's own objects (its kustomization, the
Application, the conformance Job and expectations, the dashboard) and for a tenant whose
files have no digest.  A template reads nothing but its context: the sandbox gives it no
file, clock or environment, and the templates folder (with kitchen's code) is in every
key.  So the key of one object is the digest of its template's name, the folder's digest
and every value :meth:`~kitchen_gitops.render.EnvironmentRenderer.emit` gives the
template, as JSON.

- A context holding a value of another type than JSON's and dataclasses of them (a
  catalog model, a subclass of ``str``, a set) gives no key: that object is rendered
  every time.  The key digests the context's pickle (never read back), which tells a
  tuple from a list, ``1`` from ``1.0`` and ``True``, and NaN from null.
- Only what is rendered exactly as kitchen intends is stored (the closed world found no
  difference), where JSON gives it back as itself; anything else is rendered, read and
  compared every time.
- A text the renderer derives before a template sees it (the dashboard's JSON) is kept
  by exactly what it is made of (:meth:`ObjectMemo.derived`): a run that finds it does
  not make it.
- Entries are kept in packs, one per environment, templates folder and share of the
  tenants: a catalog edit rewrites the share of the tenant it touches, a template edit
  starts new packs (the old ones go when the size bound needs their room).  Packs are
  written only when no file the gate reads changed during the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import pickle
import re
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import orjson

from .cache import Cache, Digest, Pack
from .findings import Location
from .input_items import ItemsGone, KeptItem, namespace_of, resource_item

KIND = "object"
DERIVED = "derived"
T = TypeVar("T")
SHARES = 32  # packs per environment
_STRICT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


class ObjectMemo:
    """The rendered objects of one environment, looked up and stored by their context."""

    def __init__(self, cache: Cache, environment: str, templates: bytes) -> None:
        self.cache, self.environment = cache, environment
        self._scope = Digest(KIND).text(environment).add(templates).hexdigest()
        self._packs: dict[int, Pack] = {}
        self._derived: Pack | None = None

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

    def derived(self, what: str, reads: Sequence[str], make: Callable[[], str]) -> str:
        """A text the renderer derives from exactly ``reads`` (strings: documents' digests,
        names) before any template sees it, found by them where a run made it before,
        else made and kept: the dashboard is made with a library that a run which finds
        it neither imports nor calls."""
        key = Digest(DERIVED).text(self._scope, what, *reads).hexdigest()
        pack = self._derived_pack()
        found = pack.read(key, _decode_text, "not a text")
        if found is not None:
            return found
        text = make()
        with contextlib.suppress(UnicodeEncodeError):
            pack.put(key, text.encode("utf-8"))
        return text

    def _derived_pack(self) -> Pack:
        if self._derived is None:
            self._derived = self.cache.pack(DERIVED, self._scope)
        return self._derived

    def flush(self) -> None:
        for share in sorted(self._packs):
            self._packs[share].flush()
        if self._derived is not None:
            self._derived.flush()


def derived(memo: ObjectMemo | None, what: str, reads: Sequence[str] | None, make: Callable[[], str]) -> str:
    """:meth:`ObjectMemo.derived`, or ``make()`` where there is no memo or the reads are
    not known (a document loaded without the cache has no digest)."""
    return memo.derived(what, reads, make) if memo is not None and reads is not None else make()


def _decode_text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


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


UNIT = "tenant"
ITEMS = "tenant-items"  # the units' items, apart: read only where an input that holds them is evaluated
PART = "tenant-part"
_SHA256 = re.compile(r"[0-9a-f]{64}")  # a kept file's digest of its text

# one object of a tenant, as rendered: apiVersion, kind, name, namespace, its catalog
# location (file, line, column), its source files, its manifest
RenderedEntry = tuple[str, str, str, str, tuple[str, int, int], tuple[str, ...], Any]
# as found: the same without the manifest, with the object's item of the policy input
# (its JSON, read when first needed) and the namespace that item is in (None: none)
StoredObject = tuple[str, str, str, str, tuple[str, int, int], tuple[str, ...], KeptItem, str | None]
StoredFile = tuple[str, str, list[StoredObject]]  # path, its text's SHA-256 (hex), objects


class TenantMemo:
    """Every object of one tenant in one environment, found by the files it comes from.

    What the renderer makes for a tenant (its own objects and what the contributions add
    in its namespace) reads the tenant's plan, the environment, the catalog positions of
    both, and the templates; the tenant's plan reads nothing but the environment, the
    tenant, the flavors it lists and their bases (:func:`kitchen_gitops.plan.plan_environment`),
    and each of those catalog objects is a function of its file's shown path and bytes
    (its ``Document.digest``).  So a unit's key digests the environment's name, the
    templates folder's digest, the contributions that add to it, the output folder the
    items name, and those files' digests: a one-flavor edit renders again the tenants
    that list the flavor, and every other tenant of the environment is one lookup.

    A unit keeps each file's path and the SHA-256 of its text (what the staleness check
    compares the committed file with; no run reads a kept text), and each object's item
    of the policy input as JSON (what the input holds: its manifest, file, location,
    sources and vLLM flags), which goes into the input unread; the renderer reads the
    manifests the checks of the render read.  The items are kept apart (``tenant-items``,
    with their SHA-256 in the unit): a run reads them only for an input whose answer it
    does not find, which it finds by their digest (:func:`~kitchen_gitops.input_items.input_digest`).

    - A catalog object without a digest (loaded without the cache) gives no key: its
      tenant is rendered every time.
    - Only a unit whose every object is rendered exactly as kitchen intends is stored
      (:meth:`put` says when its JSON is exact): a unit with a closed-world difference is
      rendered, read and compared on every run.
    - Units are kept in packs, one per environment, templates folder and share of the
      tenants, like the objects.
    """

    def __init__(self, cache: Cache, environment: str, templates: bytes, contributions: str,
                 prefix: str = "rendered") -> None:
        self.cache, self.environment, self.prefix = cache, environment, prefix
        self._scope = Digest(UNIT).text(environment, contributions, prefix).add(templates).hexdigest()
        self._packs: dict[int, Pack] = {}
        self._item_packs: dict[int, Pack] = {}
        self._parts: dict[tuple[str, bytes], UnitParts] = {}
        self.lazy = True  # a found unit's items read when first needed (else at once, and a lost one is a miss)
        # each tenant's files key (its unit's key without the templates), by its name, as
        # the render made it: what the tenant's parts are found by
        self.files: dict[str, str | None] = {}

    def key(self, files: str | None) -> str | None:
        """The key of a tenant's unit from its :meth:`files_key` (None: none): the files
        with this memo's scope (the templates folder, the stages, the output folder)."""
        return Digest(UNIT).text(self._scope, files).hexdigest() if files is not None else None

    def files_key(self, digests: list[tuple[str, str, str]]) -> str | None:
        """The key of the files a tenant's render reads, in this environment, from ``(kind,
        catalog key, document digest)`` of each of those catalog objects: what the tenant's
        plan and expectations read (no template); None where one has no digest."""
        d = Digest(PART).text(self.environment)
        for kind, name, digest in sorted(set(digests)):
            if not digest:
                return None
            d.text(kind, name, digest)
        return d.hexdigest()

    def _pack(self, tenant: str) -> Pack:
        return _share_pack(self.cache, self._packs, UNIT, self._scope, tenant)

    def _items(self, tenant: str) -> Pack:
        return _share_pack(self.cache, self._item_packs, ITEMS, self._scope, tenant)

    def parts(self, what: str, reads: bytes) -> UnitParts:
        """Where an environment-wide object keeps what it takes from each tenant (``what``),
        found by the tenant's files key and ``reads``: what else that part reads."""
        if (what, reads) not in self._parts:
            scope = Digest(PART).text(self.environment, what).add(reads).hexdigest()
            self._parts[(what, reads)] = UnitParts(self.cache, scope)
        return self._parts[(what, reads)]

    def get(self, key: str, tenant: str) -> list[StoredFile] | None:
        """The files of the unit ``key``: each file's path and digest and its objects, each
        object's item of the policy input read from the unit's items when first needed
        (:attr:`lazy`), else at once (a unit whose items are lost is then a miss)."""
        items = _UnitItems(self, tenant, key)
        found = self._pack(tenant).read(key, partial(_decode_unit, items=items), "not a tenant's rendered files")
        if found is not None and not self.lazy:
            try:
                items.data()
            except ItemsGone:
                return None
        return found

    def items_of(self, tenant: str, key: str, digest: str, size: int) -> bytes:
        """The items of the unit ``key`` (``size`` bytes, their SHA-256: ``digest``), or
        :class:`ItemsGone`."""
        found = self._items(tenant).read(
            key, lambda p: p if len(p) == size and hashlib.sha256(p).hexdigest() == digest else None,
            "not the unit's items")
        if found is None:
            raise ItemsGone(f"tenant {tenant}'s items in {self.environment} are no longer in the cache")
        return found

    def put(self, key: str, tenant: str,
            files: list[tuple[str, str, list[RenderedEntry]]]) -> list[list[tuple[KeptItem, str | None]]] | None:
        """Store a tenant's files: each text's SHA-256, and each object's item of the policy
        input as the input would hold it; returns the items as stored (each one as a
        :class:`KeptItem` of the unit, as a later run finds it, and its namespace, by file
        and object), or None where the unit is not stored.

        The item is written as the input writes it (orjson), and kept where that JSON is
        exact: a manifest is what the manifest reader built from YAML, and what YAML's other
        tags build (timestamps, sets, binary), an integer beyond 64 bits and text that is
        not Unicode are refused here (``_STRICT``); of what orjson writes, only a float
        that is not finite comes back as something else (null), so an item whose JSON
        holds ``null`` is read back and compared.  An object without a manifest (no
        mapping) keeps the unit out."""
        header: list[Any] = []
        blob: list[bytes] = []
        kept = _UnitItems(self, tenant, key)
        at = 0
        items: list[list[tuple[KeptItem, str | None]]] = []
        try:
            for path, text, objects in files:
                digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
                entries = []
                items.append([])
                for api_version, kind, name, namespace, where, sources, manifest in objects:
                    if type(manifest) is not dict:
                        return None
                    item = resource_item(manifest, f"{self.prefix}/{self.environment}/{path}",
                                         Location(*where), sources)
                    as_json = orjson.dumps(item, option=_STRICT)
                    if b"null" in as_json and orjson.loads(as_json) != item:  # a NaN, an infinity
                        return None
                    input_ns = namespace_of(item)
                    entries.append([api_version, kind, name, namespace, *where, list(sources), input_ns,
                                    len(as_json)])
                    blob.append(as_json)
                    items[-1].append((KeptItem(kept, at, at + len(as_json)), input_ns))
                    at += len(as_json)
                header.append([path, digest, entries])
            kept.data_ = b"".join(blob)
            kept.digest, kept.size = hashlib.sha256(kept.data_).hexdigest(), at
            payload = orjson.dumps([kept.digest, header], option=_STRICT)
        except (TypeError, UnicodeEncodeError):
            return None
        self._pack(tenant).put(key, payload)
        self._items(tenant).put(key, kept.data_)
        return items

    def flush(self) -> None:
        """Write the packs this run changed.  A unit's items stay as long as its files:
        a pack of items written keeps every unit whose files this run found, and one not
        read is marked used with the files' pack, so that the size bound keeps the two
        alike."""
        for share in sorted(self._packs):
            files = self._packs[share]
            items = self._item_packs.get(share)
            if items is not None:
                items.used |= files.used & items.records.keys()
                items.flush()
            else:
                self.cache.touch_pack(ITEMS, f"{self._scope}/{share}")
            files.flush()
        for parts in self._parts.values():
            parts.flush()


class UnitParts:
    """What an environment-wide object takes from each tenant (the conformance
    expectations of its services, its part of the plan in the policy input), kept per
    tenant and found by the tenant's files key (:meth:`TenantMemo.files_key`): a function of
    the tenant's files, and of what the scope's ``reads`` names besides — no template, so a
    template edit finds every part.  Its payload is read back by the caller's reader."""

    def __init__(self, cache: Cache, scope: str) -> None:
        self.cache, self._scope = cache, scope
        self._packs: dict[int, Pack] = {}

    def key(self, files: str) -> str:
        return Digest(PART).text(self._scope, files).hexdigest()

    def get(self, key: str, tenant: str, decode: Callable[[bytes], T | None], refused: str) -> T | None:
        return _share_pack(self.cache, self._packs, PART, self._scope, tenant).read(key, decode, refused)

    def put(self, key: str, tenant: str, payload: bytes) -> None:
        _share_pack(self.cache, self._packs, PART, self._scope, tenant).put(key, payload)

    def flush(self) -> None:
        for share in sorted(self._packs):
            self._packs[share].flush()


def exact_json(value: Any) -> bytes | None:
    """``value`` as JSON where reading it back gives ``value`` exactly (no NaN or infinity,
    no integer beyond 64 bits, only JSON's types), else None: what a part may be kept as."""
    try:
        payload = orjson.dumps(value, option=_STRICT)
    except TypeError:
        return None
    return None if b"null" in payload and orjson.loads(payload) != value else payload


def _share_pack(cache: Cache, packs: dict[int, Pack], kind: str, scope: str, tenant: str) -> Pack:
    """The pack of ``tenant``'s share (fixed by its name) of a scope's entries."""
    share = zlib.crc32(tenant.encode("utf-8", "surrogateescape")) % SHARES
    if share not in packs:
        packs[share] = cache.pack(kind, f"{scope}/{share}")
    return packs[share]


class _UnitItems:
    """The items of one found unit, read from the cache when first needed."""

    __slots__ = ("data_", "digest", "key", "memo", "size", "tenant")

    def __init__(self, memo: TenantMemo, tenant: str, key: str) -> None:
        self.memo, self.tenant, self.key = memo, tenant, key
        self.digest, self.size = "", 0  # the items' SHA-256 and length, as the unit's files keep them
        self.data_: bytes | None = None  # read, or as this run stored them

    def data(self) -> bytes:
        if self.data_ is None:
            self.data_ = self.memo.items_of(self.tenant, self.key, self.digest, self.size)
        return self.data_


# the types each field of a kept object may have
_OBJECT_TYPES: tuple[set[type], ...] = ({str}, {str}, {str}, {str}, {str}, {int}, {int}, {list},
                                        {str, type(None)}, {int})


def _decode_unit(payload: bytes, items: _UnitItems) -> list[StoredFile] | None:
    """The files a unit holds, or None where the payload is not a unit's shape (its items
    are spans of ``items``, which go into the policy input unread).  Each field of every
    object is checked column by column (the types of a column at once)."""
    try:
        items_digest, header = orjson.loads(payload)
        if type(header) is not list or type(items_digest) is not str or not _SHA256.fullmatch(items_digest):
            return None
        if not all(type(entry) is list and len(entry) == 3 for entry in header):
            return None
        paths, digests, entries = zip(*header, strict=True) if header else ((), (), ())
        if not (_all_of(paths, str) and _all_of(digests, str) and all(map(_SHA256.fullmatch, digests))
                and _all_of(entries, list)):
            return None
        rows = [row for objects in entries for row in objects]
        if not all(type(row) is list and len(row) == len(_OBJECT_TYPES) for row in rows):
            return None
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_OBJECT_TYPES)
        if not all({type(v) for v in column} <= kinds for column, kinds in zip(columns, _OBJECT_TYPES, strict=True)):
            return None
        lengths = columns[9]
        if (lengths and min(lengths) < 0) or not {type(s) for sources in columns[7] for s in sources} <= {str}:
            return None
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    ends = list(itertools.accumulate(lengths))
    items.digest, items.size = items_digest, ends[-1] if ends else 0
    made = iter([(api_version, kind, name, namespace, (file, line, col), tuple(sources),
                  KeptItem(items, stop - length, stop), input_ns)
                 for (api_version, kind, name, namespace, file, line, col, sources, input_ns, length), stop
                 in zip(rows, ends, strict=True)])
    return [(path, digest, list(itertools.islice(made, len(objects))))
            for path, digest, objects in zip(paths, digests, entries, strict=True)]


def _all_of(values: Sequence[Any], kind: type) -> bool:
    return {type(v) for v in values} <= {kind}
