"""The policy input: one document per environment.

    {
      "environment": {...Environment, "_source": loc},
      "promotion":   {"from": "staging", "flavors": {"name@version": true, …}} | null,
      "catalog":     {"bases": {ref: item}, "flavors": {ref: item}, "tenants": {name: item}},
      "plan":        EnvironmentPlan.as_dict(),
      "resources":   [{"manifest": {...}, "file": "rendered/<env>/…", "_source": loc,
                       "sources": [catalog files],
                       "vllm_flags": {container path: {flag: value}}  # vLLM's containers
                      }]
    }

Every catalog item carries ``_source``: where the object starts (``{file, line, col}``).
A rule points at a field with ``lib.at(item, "environments.prod.flavors.0")``, which adds
the dotted ``path`` to the object's ``_source``; the policy stage resolves it to the exact
``file:line:col`` through the catalog's position accessor — positions are looked up for
the few findings there are, not shipped to the engine for every key of every object.
Rendered resources carry the catalog location that caused them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..cache import Cache, Pack
from ..findings import Location
from ..input_items import KEPT, loc, namespace_of, resource_item
from ..input_items import read_vllm_flags as read_vllm_flags
from ..model import Catalog, Strict
from ..plan import EnvironmentPlan
from ..render import FoundFile, RenderedFile
from ..render_memo import TenantMemo, exact_json

ITEM = "catalog-item"


class _Items:
    """Catalog items as input, each serialised once and shared by every environment; with
    the gate's cache, found by their document's digest (what the catalog object is built
    from: the digest of its file's shown path and bytes) instead of being serialised
    again.  A base's or a flavor's item found so goes into the input unread
    (``orjson.Fragment``: no code of kitchen reads them); a tenant's and an environment's
    are read (the slices and the findings read them)."""

    def __init__(self, catalog: Catalog, pack: Pack | None = None) -> None:
        self.catalog, self.pack = catalog, pack
        self._cache: dict[tuple[str, str], Any] = {}

    def item(self, kind: str, key: str, obj: Strict) -> Any:
        cached = self._cache.get((kind, key))
        if cached is None:
            doc = self.catalog.documents.get((kind, key))
            stored = doc.digest if self.pack is not None and doc is not None else ""
            if stored and self.pack is not None:
                cached = self.pack.read(stored, _fragment if kind in _UNREAD else json_dict, "not a catalog item")
            if cached is None:
                cached = self._made(kind, key, obj)
                payload = exact_json(cached) if stored and self.pack is not None else None
                if payload is not None and self.pack is not None:
                    self.pack.put(stored, payload)
            self._cache[(kind, key)] = cached
        return cached

    def _made(self, kind: str, key: str, obj: Strict) -> dict[str, Any]:
        made = obj.model_dump(mode="json", by_alias=True)
        doc = self.catalog.documents.get((kind, key))
        if doc is not None:
            made["_source"] = loc(doc.location())
        else:  # built in memory (tests): no position
            made["_source"] = loc(Location(f"<{kind} {key}>"))
        if kind in ("Base", "Flavor"):
            made["ref"] = key
        return made


_UNREAD = frozenset({"Base", "Flavor"})  # the kinds whose found items go into the input unread


def _fragment(payload: bytes) -> orjson.Fragment | None:
    return orjson.Fragment(payload) if payload[:1] == b"{" and payload[-1:] == b"}" else None


def json_dict(payload: bytes) -> dict[str, Any] | None:
    """A part of the input kept as JSON: an object, or None."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def resource_items(env: str, files: Sequence[RenderedFile], prefix: str = "rendered") -> list[Any]:
    """The rendered objects of one environment, as the render stage read them from the
    templates' output (what Argo CD applies), with the catalog location that caused each.

    An object the gate's cache gave with its item's JSON (``RenderedObject.input_json``)
    is that JSON as it is (an ``orjson.Fragment``: written into the input unread); one of a
    tenant found whole is its :class:`~kitchen_gitops.input_items.KeptItem` (its JSON read
    only where an input that holds it is evaluated)."""
    out: list[Any] = []
    for f in files:
        if isinstance(f, FoundFile):
            out += [kept[6] for kept in f.stored]
            continue
        for obj in f.objects:
            if obj.input_json is not None:
                out.append(obj.input_json)
            elif isinstance(obj.manifest, dict) and obj.kind != "Kustomization":
                out.append(resource_item(obj.manifest, f"{prefix}/{env}/{f.path}", obj.source, obj.sources))
    return out


def resource_namespaces(files: Sequence[RenderedFile], items: Sequence[Any]) -> list[str | None]:
    """The namespace of each of ``resource_items``' items (a Namespace's own name), by
    which the policy input is cut into slices: read from the item, or the one the cache
    kept with an item it gave as JSON (read from the same item when it was kept)."""
    given = [namespace for f in files
             for namespace in ([kept[7] for kept in f.stored] if isinstance(f, FoundFile) else
                               [obj.input_namespace for obj in f.objects if obj.input_json is not None])]
    found = iter(given)
    return [next(found) if type(item) in KEPT else namespace_of(item) for item in items]


def promotion(catalog: Catalog, env_name: str) -> dict[str, Any] | None:
    """The flavor versions deployed in the environment ``env_name`` promotes from."""
    src = catalog.environments[env_name].promotes_from
    if not src:
        return None
    deployed = {str(ref): True for t in catalog.tenants.values()
                for ref in (t.environments[src].flavors if src in t.environments else [])}
    return {"from": src, "flavors": dict(sorted(deployed.items()))}


class InputBuilder:
    """Builds the documents; catalog items are converted once for all environments.

    With the gate's cache (``cache``, and the environment whose items it keeps), each
    catalog item is found by its document's digest, and each tenant's plan by its files
    key (``units``: the tenants' units of the environment's render)."""

    def __init__(self, catalog: Catalog, cache: Cache | None = None, environment: str = "") -> None:
        self.catalog = catalog
        self.items = _Items(catalog, cache.pack(ITEM, environment) if cache is not None and cache.enabled else None)

    def flush(self) -> None:
        """Write the catalog items this builder kept."""
        if self.items.pack is not None:
            self.items.pack.flush()

    def catalog_section(self, env_name: str) -> dict[str, Any]:
        c = self.catalog
        return {
            "bases": {k: self.items.item("Base", k, b) for k, b in sorted(c.bases.items())},
            "flavors": {k: self.items.item("Flavor", k, f) for k, f in sorted(c.flavors.items())},
            "tenants": {k: self.items.item("Tenant", k, t) for k, t in sorted(c.tenants.items())
                        if env_name in t.environments},
        }

    def build(self, plan: EnvironmentPlan, files: Sequence[RenderedFile],
              resources: list[dict[str, Any]] | None = None, prefix: str = "rendered",
              units: TenantMemo | None = None) -> dict[str, Any]:
        env = plan.environment
        return {
            "environment": self.items.item("Environment", env.name, env),
            "promotion": promotion(self.catalog, env.name),
            "catalog": self.catalog_section(env.name),
            "plan": plan.as_dict(_plan_tenants(plan, units) if units is not None else None),
            "resources": resources if resources is not None else resource_items(env.name, files, prefix),
        }


def _plan_tenants(plan: EnvironmentPlan, units: TenantMemo) -> list[dict[str, Any]]:
    """Each tenant's part of the plan as the input holds it: found by the tenant's files key
    (a tenant's plan reads the files its unit is made of, and no template), else made and
    kept."""
    parts = units.parts("plan", b"")
    out = []
    for t in plan.tenants:
        files = units.files.get(t.tenant.name)
        if files is None:
            out.append(t.as_dict())
            continue
        key = parts.key(files)
        found = parts.get(key, t.tenant.name, json_dict, "not a tenant's plan")
        if found is None:
            found = t.as_dict()
            payload = exact_json(found)
            if payload is not None:
                parts.put(key, t.tenant.name, payload)
        out.append(found)
    return out


def build_inputs(catalog: Catalog, plans: Mapping[str, EnvironmentPlan],
                 rendered: Mapping[str, Sequence[RenderedFile]], prefix: str = "rendered") -> dict[str, dict[str, Any]]:
    """One input document per environment, by environment name; ``prefix`` is the folder
    of rendered output (the environments' ``argocd.path_prefix``)."""
    builder = InputBuilder(catalog)
    return {env: builder.build(plans[env], rendered.get(env, []), prefix=prefix) for env in sorted(plans)}
