"""Engine agreement by construction: many inputs per rule, both engines, every rule's
violation set compared.

The inputs are the example catalog's documents, each with one mutation: a field deleted
or set to null (a defaulted field), a value of another type, an image with no tag or no
registry, a container without its securityContext, env or args, … — the shapes that make
a helper rule undefined, where OPA and regorus have disagreed (OPA hoists a call out of
``not``).  Each rule must fire on some input and stay silent on another, so that the
comparison means something for every rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.policy.engines import Engine
from kitchen_gitops.policy.gate import GATE_QUERY
from kitchen_gitops.policy.inputs import build_inputs, read_vllm_flags
from kitchen_gitops.policy.library import Library, load_library
from tests.policy.policy_cases import REPO, build_repo, cases
from tests.policy.test_policy_slices import sliced

Doc = dict[str, Any]
Mutation = tuple[str, Callable[[Doc], None]]

_MISSING = object()
_LIBRARY = load_library(REPO / "policies", REPO)
IMAGES = (
    "registry.prod.kitchen.internal:5000/vllm/vllm-openai",         # no tag, no digest
    "registry.prod.kitchen.internal:5000/vllm/vllm-openai:latest",
    "vllm/vllm-openai",                                               # Docker Hub, untagged
    "vllm-openai:latest",
    "localhost:5000/x",
    "",
    "registry.prod.kitchen.internal:5000/vllm@sha256:" + "0" * 64,
    "docker.io/vllm/vllm-openai:v0.11.0@sha256:" + "a" * 64,
)
# what a catalog file may leave to its default (null in the input) or a template leave out
ODD_VALUES: tuple[Any, ...] = (None, _MISSING)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        node: Any = doc
        for p in path[:-1]:
            node = node[p]
        if value is _MISSING:
            if isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)
    return apply


def _label(path: tuple[Any, ...], value: Any) -> str:
    shown = "<deleted>" if value is _MISSING else json.dumps(value)
    return f"{'.'.join(map(str, path))}={shown}"


def _fields(doc: Doc, path: tuple[Any, ...], depth: int) -> Iterator[tuple[Any, ...]]:
    """Every field under ``path`` down to ``depth`` levels (first item of each list)."""
    node: Any = doc
    for p in path:
        node = node[p]
    if depth == 0:
        return
    if isinstance(node, dict):
        for k in sorted(node):
            if k == "_source":
                continue
            yield (*path, k)
            yield from _fields(doc, (*path, k), depth - 1)
    elif isinstance(node, list) and node:
        yield (*path, 0)
        yield from _fields(doc, (*path, 0), depth - 1)


def _pod_spec_path(manifest: Doc) -> tuple[Any, ...] | None:
    kind = manifest.get("kind")
    if kind in ("ServingRuntime", "Pod"):
        return ("spec",)
    if kind == "InferenceService":
        return ("spec", "predictor")
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    if isinstance(manifest.get("spec"), dict) and "template" in manifest["spec"]:
        return ("spec", "template", "spec")
    return None


def mutations(doc: Doc) -> Iterator[Mutation]:
    yield "unchanged", lambda d: None
    for value in (None, {}, {"from": "staging", "flavors": {}}):
        yield _label(("promotion",), value), _set(("promotion",), value)
    # the environment: every field to depth 3 deleted, null or of another type
    for path in _fields(doc, ("environment",), 2):
        for value in ODD_VALUES:
            yield _label(path, value), _set(path, value)
    # one item of each catalog kind, and the plan's first service
    for kind in ("bases", "flavors", "tenants"):
        first = sorted(doc["catalog"][kind])[:1]
        for key in first:
            for path in _fields(doc, ("catalog", kind, key), 3):
                for value in ODD_VALUES:
                    yield _label(path, value), _set(path, value)
    services = [("plan", "tenants", i, "services", j)
                for i, t in enumerate(doc["plan"]["tenants"]) for j in range(len(t["services"]))][:1]
    for svc in services:
        for path in _fields(doc, svc, 2):
            yield _label(path, _MISSING), _set(path, _MISSING)
    # one rendered resource of each kind: metadata, spec, and each container's fields
    seen: set[str] = set()
    for i, r in enumerate(doc["resources"]):
        m = r["manifest"]
        if m.get("kind") in seen:
            continue
        seen.add(m.get("kind"))
        base = ("resources", i, "manifest")
        for path in ((*base, "metadata", "namespace"), (*base, "metadata", "annotations"), (*base, "spec")):
            for value in (None, _MISSING, {}):
                yield _label(path, value), _set(path, value)
        spec = _pod_spec_path(m)
        if spec is None:
            continue
        yield _label((*base, *spec, "securityContext"), _MISSING), _set((*base, *spec, "securityContext"), _MISSING)
        node: Any = m
        for p in spec:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        for c, _container in enumerate(node.get("containers", []) if isinstance(node, dict) else []):
            cpath = (*base, *spec, "containers", c)
            for image in IMAGES:
                yield _label((*cpath, "image"), image), _set((*cpath, "image"), image)
            for field in ("securityContext", "env", "args", "command", "resources", "name"):
                for value in (_MISSING, None, []):
                    yield _label((*cpath, field), value), _set((*cpath, field), value)
            yield _label((*cpath, "args"), ["--trust_remote_code"]), _set((*cpath, "args"), ["--trust_remote_code"])
            yield (_label((*cpath, "env"), "HF_HUB_OFFLINE=0"),
                   _set((*cpath, "env"), [{"name": "HF_HUB_OFFLINE", "value": "0"}]))


# What makes a violation a finding: where it points, the resource and the object.  The
# message is left out here: a null spliced into sprintf is spelled by each engine its own
# way (Go's %!d(string=null)); the acceptance cases compare whole findings on real edits.
IDENTITY = ("at", "resource", "object")


def _canonical(value: Any) -> dict[str, str]:
    """Each rule's violations as one sorted JSON text (sets come back in engine order)."""
    if not isinstance(value, dict):
        return {"<result>": json.dumps(value, sort_keys=True)}
    return {rule: json.dumps(sorted(json.dumps({k: v.get(k) for k in IDENTITY} if isinstance(v, dict) else v,
                                               sort_keys=True) for v in vs or []))
            for rule, vs in sorted(value.items())}


def _evaluate(engine: Engine, doc: Doc) -> dict[str, str]:
    try:
        return _canonical(engine.evaluate(GATE_QUERY, doc))
    except Exception as exc:  # an engine error is an outcome to compare, not a test crash
        return {"<error>": type(exc).__name__}


def _sliced(engine: Engine, doc: Doc) -> dict[str, str]:
    """What the gate finds: the environment's rules on the whole input, the tenant's on
    each slice (tests/policy/test_policy_slices.py)."""
    try:
        return _canonical(sliced(engine, _LIBRARY, doc))
    except Exception as exc:
        return {"<error>": type(exc).__name__}


def _copy(doc: Doc) -> Doc:
    """A copy of an input to mutate: what the engines read of it is JSON (a deep copy of a
    prod input took a sixth of this test)."""
    copied: Doc = orjson.loads(orjson.dumps(doc))
    return copied


def _item_path(doc: Doc, at: Any) -> tuple[Any, ...] | None:
    """The input path of the catalog field a violation points at (``lib.at``)."""
    if not isinstance(at, dict) or not isinstance(at.get("path"), str):
        return None
    items = [(("environment",), doc["environment"])]
    items += [(("catalog", kind, key), item) for kind in ("bases", "flavors", "tenants")
              for key, item in doc["catalog"][kind].items()]
    for prefix, item in items:
        if item.get("_source", {}).get("file") == at.get("file"):
            return (*prefix, *(int(p) if p.isdigit() else p for p in at["path"].split(".")))
    return None


def pointed_mutations(doc: Doc, result: Any, limit: int = 3) -> Iterator[Mutation]:
    """The fields the violations point at (the first ``limit``), and the object above each,
    null or deleted: the input shapes (explicit, defaulted) of exactly what the rule reads."""
    seen: set[tuple[Any, ...]] = set()
    for vs in (result or {}).values():
        for v in vs or []:
            path = _item_path(doc, v.get("at") if isinstance(v, dict) else None)
            for p in (path, path[:-1] if path and len(path) > 3 else None):
                if p is None or p in seen or len(seen) >= 2 * limit:
                    continue
                seen.add(p)
                for value in ODD_VALUES:
                    yield _label(p, value), _set(p, value)


def _seeds() -> Iterator[tuple[str, Doc, str]]:
    """(name, input document, label prefix of the mutations to try)."""
    outcome = pipeline.render(REPO, None)
    assert outcome.ok
    docs = build_inputs(outcome.catalog, outcome.plans, outcome.rendered)
    # prod whole (the environment to depth 2); dev (other gates) for its rendered objects
    yield "prod", docs["prod"], ""
    yield "dev", docs["dev"], "resources."


def _as_built(doc: Doc) -> Doc:
    """A mutated document as kitchen would have built it: each vLLM container's flags read
    again from its (mutated) argv."""
    for item in doc["resources"]:
        read_vllm_flags(item)
    return doc


def _compare(engines: dict[str, Engine], doc: Doc, where: str, tally: dict[str, Any]) -> Any:
    _as_built(doc)
    got = {name: _evaluate(engine, doc) for name, engine in engines.items()}
    tally["count"] += 1
    if any(word in where for word in ("args", "command", "containers", "model")):
        # the argv read by kitchen (argv.py) and by the policy library (lib.vllm_flags) agree
        unread = _copy(doc)
        for item in unread["resources"]:
            item.pop("vllm_flags", None)
        if _evaluate(engines["regorus"], unread) != got["regorus"]:
            tally["disagreements"].append(f"{where}: argv read in Rego differs from argv.py")
    if _sliced(engines["regorus"], doc) != got["regorus"]:
        tally["disagreements"].append(f"{where}: the slices find other violations than the whole input")
    if got["regorus"] != got["opa"]:
        rules = sorted(k for k in set(got["regorus"]) | set(got["opa"]) if got["regorus"].get(k) != got["opa"].get(k))
        tally["disagreements"].append(f"{where}: {', '.join(rules)}")
        return None
    for rule, vs in got["opa"].items():
        tally["fired" if vs != "[]" else "silent"].add(rule)
    return got


def test_every_rule_agrees_on_generated_inputs(library: Library, engines: dict[str, Engine],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    tally: dict[str, Any] = {"count": 0, "disagreements": [], "fired": set(), "silent": set()}
    for env, original, only in _seeds():
        for label, mutate in mutations(original):
            if label.startswith(only):
                doc = _copy(original)
                mutate(doc)
                _compare(engines, doc, f"{env} {label}", tally)
    # every acceptance case: its rule fires; then each field it points at, null or deleted
    for case in (c for c in cases() if c.is_policy):
        root = build_repo(case, tmp_path_factory.mktemp(case.name) / "repo")
        outcome = pipeline.render(root, case.environments)
        assert outcome.ok, case.name
        for env, original in build_inputs(outcome.catalog, outcome.plans, outcome.rendered).items():
            result = engines["opa"].evaluate(GATE_QUERY, original)
            _compare(engines, original, f"{case.name}/{env}", tally)
            for label, mutate in pointed_mutations(original, result):
                doc = _copy(original)
                mutate(doc)
                _compare(engines, doc, f"{case.name}/{env} {label}", tally)
    disagreements, fired, silent = tally["disagreements"], tally["fired"], tally["silent"]
    assert disagreements == [], "\n".join(disagreements[:40])
    assert tally["count"] > 500, tally["count"]
    packages = set(library.rules)
    assert packages <= fired, f"never fired: {sorted(packages - fired)}"
    assert packages <= silent, f"never silent: {sorted(packages - silent)}"
