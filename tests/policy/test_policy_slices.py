"""The rules of the environment's scope, evaluated on the input without the tenants'
resources, those of the plan's scope, on that input without the catalog's flavors, and
those of the tenant's scope, on each slice of it (what ``kitchen check`` does), find
exactly what they find on the whole input: on every
acceptance folder and the example catalogs, on both engines, every such rule firing
somewhere.  What a slice holds is exactly the tenants of its share."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.policy.engines import Engine
from kitchen_gitops.policy.gate import GATE_QUERY, requests_of, united
from kitchen_gitops.policy.inputs import build_inputs
from kitchen_gitops.policy.library import ENVIRONMENT_SCOPE, PLAN_SCOPE, TENANT_SCOPE, Library
from kitchen_gitops.policy.slices import ENVIRONMENT_SLICE, SHARES, merge, share_of, slices
from tests.policy.test_policy_agreement import _canonical, _fixtures


def sliced(engine: Engine, library: Library, doc: dict[str, Any]) -> dict[str, Any]:
    """What the gate evaluates for one environment: each scope's rules on their part of the
    input (the environment's without the tenants' resources, the plan's without the
    catalog's flavors too, the tenant's on each slice), united."""
    requests = requests_of(library, doc)
    return united(requests, [engine.evaluate(r.path, r.doc) for r in requests])


def _with_unserved(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a copy of every base, flavor and tenant under a name no service serves
    and no tenant plans: what the catalog holds beyond the environment's services, which a
    rule of the tenant's scope judges only in the environment's own slice.  Each flavor's
    copy loads the same adapter, trained on another base: a served flavor's slice must
    hold the copy for a rule that compares the flavors that share an adapter."""
    out = copy.deepcopy(doc)
    for kind in ("bases", "flavors", "tenants"):
        for key, item in list(out["catalog"][kind].items()):
            copied = {**item, "name": f"unserved-{item.get('name', key)}"}
            if kind == "flavors" and isinstance(item.get("base"), dict):
                copied["base"] = {**item["base"], "version": "unserved"}
            out["catalog"][kind][f"unserved-{key}"] = copied
    return out


def test_slices_find_what_the_whole_input_finds(library: Library, engines: dict[str, Engine],
                                               tmp_path: Path) -> None:
    tenant_rules = {p for p, r in library.rules.items() if r.scope in (TENANT_SCOPE, PLAN_SCOPE, ENVIRONMENT_SCOPE)}
    assert len(tenant_rules) == len(library.rules)  # none of kitchen's rules needs the whole input
    fired: set[str] = set()
    compared = 0
    for name, root, envs in _fixtures(tmp_path):
        outcome = pipeline.render(root, envs)
        assert outcome.ok, name
        for env, original in build_inputs(outcome.catalog, outcome.plans, outcome.rendered).items():
            for doc in (original, _with_unserved(original)):
                for engine_name, engine in engines.items():
                    whole = engine.evaluate(GATE_QUERY, doc)
                    assert _canonical(sliced(engine, library, doc)) == _canonical(whole), \
                        f"{name}/{env} {engine_name}"
                    fired |= {p for p in tenant_rules if whole.get(p)}
                compared += 1
    assert compared > 20
    assert fired == tenant_rules, f"never fired: {sorted(tenant_rules - fired)}"


def test_a_slice_holds_its_share_of_the_tenants_and_nothing_of_the_others() -> None:
    doc = build_inputs(*_example())["prod"]
    parts = slices(doc)
    assert next(iter(parts)) == ENVIRONMENT_SLICE
    namespaces = {t["tenant"]: {t["namespace"], *(s["namespace"] for s in t["services"])}
                  for t in doc["plan"]["tenants"]}
    seen_resources = 0
    for name, part in parts.items():
        tenants = {t["tenant"] for t in part["plan"]["tenants"]}
        assert set(part["catalog"]["tenants"]) == tenants
        assert all(share_of(t) == name for t in tenants)
        assert part["catalog"]["bases"] == doc["catalog"]["bases"]
        assert part["environment"] == doc["environment"] and part["promotion"] == doc["promotion"]
        assert set(part["plan"]) == {"environment", "vllm_release", "gpu", "tenants"}
        served = {r for t in part["plan"]["tenants"] for s in t["services"] for r in s["flavors"]}
        assert served <= set(part["catalog"]["flavors"])
        own = set().union(*(namespaces[t] for t in tenants)) if tenants else set()
        for r in part["resources"]:
            meta = r["manifest"]["metadata"]
            ns = meta.get("namespace") or (meta["name"] if r["manifest"]["kind"] == "Namespace" else None)
            assert (ns in own) if name != ENVIRONMENT_SLICE else not any(ns in n for n in namespaces.values())
        seen_resources += len(part["resources"])
    assert seen_resources == len(doc["resources"])
    assert 1 < len(parts) <= SHARES + 1


def test_a_violation_two_shares_find_alike_is_one() -> None:
    v = {"msg": "flavor x has no approved base", "at": {"file": "catalog/flavors/x.yaml", "line": 1, "col": 1}}
    merged = merge([{"kitchen.rules.a": [v]}, {"kitchen.rules.a": [copy.deepcopy(v)], "kitchen.rules.b": []}])
    assert merged == {"kitchen.rules.a": [v], "kitchen.rules.b": []}
    assert json.dumps(merge([{"r": [{"b": 1}, {"a": 2}]}])) == json.dumps(merge([{"r": [{"a": 2}]}, {"r": [{"b": 1}]}]))


def _example() -> tuple[Any, Any, Any]:
    from tests.policy.policy_cases import REPO

    outcome = pipeline.render(REPO, None)
    assert outcome.ok
    return outcome.catalog, outcome.plans, outcome.rendered


@pytest.mark.parametrize("hostile", ["no metadata", "namespace of another tenant", "cluster-scoped"])
def test_every_resource_is_in_exactly_one_slice(hostile: str) -> None:
    doc = build_inputs(*_example())["prod"]
    other = doc["plan"]["tenants"][-1]["namespace"]
    item = copy.deepcopy(doc["resources"][0])
    if hostile == "no metadata":
        item["manifest"]["metadata"] = "not a mapping"
    elif hostile == "namespace of another tenant":
        item["manifest"]["metadata"]["namespace"] = other
    else:
        item["manifest"] = {"kind": "ClusterRole", "metadata": {"name": other}}
    doc["resources"].append(item)
    parts = slices(doc)
    holders = [n for n, p in parts.items() if any(r is item for r in p["resources"])]
    assert len(holders) == 1
    expected = share_of(doc["plan"]["tenants"][-1]["tenant"]) if hostile == "namespace of another tenant" \
        else ENVIRONMENT_SLICE
    assert holders == [expected]
