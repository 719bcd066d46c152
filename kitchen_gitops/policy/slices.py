"""One environment's policy input cut into parts by what the rules read, so that an edit
evaluates again the parts it changed and finds the others' answers in the gate's cache.

A rule declares in its METADATA (``custom.scope``) what it is evaluated on:

- ``whole`` (the default): the whole input;
- ``environment``: the whole input but the tenants' resources (:func:`environment_part`);
- ``plan``: the whole input but the tenants' resources and the catalog's flavors
  (:func:`plan_part`): the environment, the promotion section, its plan (every tenant's),
  the catalog's bases and tenants, and the resources in no tenant's namespace.  An edit of
  a flavor that leaves the plan as it was leaves this part as it was;
- ``tenant``: each slice below, never the whole: each of its violations is found from one
  tenant's own part of the input — the rendered objects in its namespaces, its plan, its
  catalog entry and the flavors it lists or serves — or from one flavor the environment's
  tenants neither list nor serve (in the environment's own slice).

The slices (:func:`slices`), each a complete input document:

- **one per share of the tenants** (:data:`SHARES` shares, a tenant's share fixed by its
  name): the resources whose namespace (a Namespace's own name) is a namespace of one of
  the share's tenants (its own, its services'), the plan with only those tenants, the
  catalog's tenants of the share, the flavors they list or serve, every base;
- **the environment's own**: the resources in no tenant's namespace (the conformance
  Job, cluster-scoped objects), the plan and the catalog without tenants, and the flavors
  no tenant of the environment lists or serves.

A slice's flavors come with every flavor of the catalog that loads the same ``source`` (a
rule may compare the flavors that share an adapter); a flavor whose ``source`` is not a
string comes with every other such flavor.  Every slice has the environment, the promotion
section and every base whole, and of the plan exactly its ``environment``,
``vllm_release`` and ``gpu`` (the totals over all the tenants are no tenant's).  A
tenant-scoped rule's answers of all the slices, united (a violation two slices find alike
is one), are its violations; a test holds each scope's violations equal to the rule's on
the whole input, on every acceptance folder and on generated inputs, on both engines.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ..input_items import namespace_of
from .errors import PolicyError

SHARES = 32
ENVIRONMENT_SLICE = "environment"
PLAN_KEYS = ("environment", "vllm_release", "gpu")  # what a slice keeps of the plan but its tenants


@functools.lru_cache(maxsize=1 << 16)
def share_of(tenant: str) -> str:
    """The share a tenant's slice is in: fixed by its name, whatever else the catalog holds
    (remembered: each resource of a tenant asks for it again)."""
    return f"share-{zlib.crc32(tenant.encode('utf-8', 'surrogateescape')) % SHARES:02d}"


def _tenant_namespaces(plan_tenants: Iterable[Any]) -> dict[str, str]:
    """Each namespace of a planned tenant (its own, its services'), by the tenant's name."""
    out: dict[str, str] = {}
    for t in plan_tenants:
        if not isinstance(t, dict) or not isinstance(t.get("tenant"), str):
            continue
        spaces = [t.get("namespace"), *(s.get("namespace") for s in t.get("services") or [] if isinstance(s, dict))]
        for ns in spaces:
            if isinstance(ns, str):
                out.setdefault(ns, t["tenant"])
    return out


def _listed_flavors(tenant: Any, env: str) -> set[str]:
    """The flavor references a catalog tenant lists for ``env``."""
    envs = tenant.get("environments") if isinstance(tenant, dict) else None
    spec = envs.get(env) if isinstance(envs, dict) else None
    out = set()
    for f in (spec.get("flavors") if isinstance(spec, dict) else None) or []:
        if isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("version"), str):
            out.add(f"{f['name']}@{f['version']}")
    return out


def _mapping(parent: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def environment_part(doc: Mapping[str, Any], cut: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The input of the rules of the environment's scope: the whole input but the tenants'
    resources (those of ``cut``'s environment slice only)."""
    return {**doc, "resources": cut[ENVIRONMENT_SLICE]["resources"]}


def plan_part(doc: Mapping[str, Any], cut: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The input of the rules of the plan's scope: the whole input but the tenants'
    resources and the catalog's flavors."""
    catalog = doc.get("catalog")
    kept = {k: v for k, v in catalog.items() if k != "flavors"} if isinstance(catalog, dict) else catalog
    return {**doc, "catalog": kept, "resources": cut[ENVIRONMENT_SLICE]["resources"]}


_OTHER = object()  # the group of the flavors whose source is not a string


def _source_groups(flavors: Mapping[str, Any], sources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Each flavor's group of adapters: its ``source`` where it is a string, else one group
    for all the others. An item given as JSON (``orjson.Fragment``) is read for it, unless
    ``sources`` (the catalog's, by reference) names it."""
    out: dict[str, Any] = {}
    for ref, item in flavors.items():
        if type(item) is orjson.Fragment:
            item = {"source": sources[ref]} if sources is not None and ref in sources \
                else orjson.loads(orjson.dumps(item))
        source = item.get("source") if isinstance(item, dict) else None
        out[ref] = source if isinstance(source, str) else _OTHER
    return out


def _with_partners(refs: Iterable[str], groups: Mapping[str, Any], members: Mapping[Any, list[str]]) -> list[str]:
    """``refs`` that the catalog holds, and every flavor of the same group, in order."""
    out = set()
    for r in refs:
        if r in groups:
            out.update(members[groups[r]])
    return sorted(out)


def slices(doc: Mapping[str, Any], namespaces: Sequence[str | None] | None = None,
           sources: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The slices of one environment's input, by name (the environment's own first, then the
    shares that hold a tenant, in order); ``namespaces``: each resource's namespace, where
    the caller read it already (:func:`kitchen_gitops.policy.inputs.resource_namespaces`);
    ``sources``: each flavor's ``source``, where the caller knows it (the catalog's)."""
    plan = _mapping(doc, "plan")
    catalog = _mapping(doc, "catalog")
    plan_tenants = [t for t in plan.get("tenants") or [] if isinstance(t, dict) and isinstance(t.get("tenant"), str)]
    catalog_tenants = _mapping(catalog, "tenants")
    flavors = _mapping(catalog, "flavors")
    env_name = str(_mapping(doc, "environment").get("name", ""))
    owner = _tenant_namespaces(plan_tenants)

    names = sorted({share_of(t["tenant"]) for t in plan_tenants} | {share_of(n) for n in catalog_tenants})
    parts: dict[str, dict[str, Any]] = {n: {"tenants": [], "catalog": {}, "refs": set(), "resources": []}
                                        for n in [ENVIRONMENT_SLICE, *names]}
    for t in plan_tenants:
        part = parts[share_of(t["tenant"])]
        part["tenants"].append(t)
        part["refs"].update(r for s in t.get("services") or [] if isinstance(s, dict)
                            for r in s.get("flavors") or [] if isinstance(r, str))
    for name, item in catalog_tenants.items():
        part = parts[share_of(name)]
        part["catalog"][name] = item
        part["refs"].update(_listed_flavors(item, env_name))
    resources = doc.get("resources") or []
    if namespaces is None:
        namespaces = [namespace_of(item) for item in resources]
    for item, namespace in zip(resources, namespaces, strict=True):
        tenant = owner.get(namespace or "")
        parts[share_of(tenant) if tenant is not None else ENVIRONMENT_SLICE]["resources"].append(item)

    groups = _source_groups(flavors, sources)
    members: dict[Any, list[str]] = {}
    for ref, group in groups.items():
        members.setdefault(group, []).append(ref)
    listed = set().union(*(part["refs"] for part in parts.values()))
    parts[ENVIRONMENT_SLICE]["refs"] = {r for r in flavors if r not in listed}
    common = {k: v for k, v in doc.items() if k not in ("plan", "catalog", "resources")}
    kept_plan = {k: plan[k] for k in PLAN_KEYS if k in plan}
    out = {}
    for name, part in parts.items():
        out[name] = {
            **common,
            "catalog": {"bases": catalog.get("bases", {}),
                        "flavors": {r: flavors[r] for r in _with_partners(part["refs"], groups, members)},
                        "tenants": part["catalog"]},
            "plan": {**kept_plan, "tenants": part["tenants"]},
            "resources": part["resources"],
        }
    return out


def merge(answers: Iterable[Any]) -> dict[str, list[Any]]:
    """The union of the slices' answers (``{rule package: [violation]}``), each rule's
    violations without repeats, in a fixed order."""
    seen: dict[str, dict[str, Any]] = {}
    for answer in answers:
        if not isinstance(answer, dict):
            raise PolicyError(None, f"a slice's answer is not an object (got {type(answer).__name__})")
        for package, violations in answer.items():
            into = seen.setdefault(package, {})
            if not isinstance(violations, list):
                raise PolicyError(None, f"{package}.violation is not a set (got {type(violations).__name__})")
            for v in violations:
                into.setdefault(json.dumps(v, sort_keys=True, ensure_ascii=False), v)
    return {package: [vs[k] for k in sorted(vs)] for package, vs in sorted(seen.items())}
