"""Benchmark the policy gate on the synthetic organisation.

    python -m bench.policy_bench [--bases 20 --flavors 2000 --tenants 500 --envs 3] [--repeat 3]

Measures, side by side:

- **embedded, per environment** (what ``kitchen check`` does): regorus, the library
  compiled once, one evaluation per environment over its whole input document;
- **embedded, per resource** (what conftest does): one evaluation per rendered manifest,
  each input holding that manifest and the environment only (catalog-wide rules then
  see no catalog; the figure is the cost of the evaluation model, not the same findings);
- the same two on the **real OPA engine** (OPA 1.20.2 in-process, opa-golib-python-bindings).

"Evaluation" is the time from handing each input document to the engine to having every
rule's violations back, for all environments; input building and compiling are reported
separately.  Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.generate import add_org_arguments, generate_from_args
from kitchen_gitops import pipeline
from kitchen_gitops.policy.engines import Engine, OpaLibEngine, RegorusEngine
from kitchen_gitops.policy.gate import GATE_QUERY, evaluate_policies, prepare
from kitchen_gitops.policy.inputs import build_inputs
from kitchen_gitops.policy.library import load_library

REPO = Path(__file__).resolve().parent.parent


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _count(result: Any) -> int:
    return sum(len(v) for v in (result or {}).values())


def per_environment(engine: Engine, docs: dict[str, dict[str, Any]]) -> int:
    if isinstance(engine, RegorusEngine):
        total = 0
        for doc in docs.values():
            engine.set_input_json(json.dumps(doc))
            total += _count(engine.evaluate_current(GATE_QUERY))
        return total
    return sum(_count(engine.evaluate(GATE_QUERY, doc)) for doc in docs.values())


def resource_docs(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for doc in docs.values():
        empty = {"bases": {}, "flavors": {}, "tenants": {}}
        for r in doc["resources"]:
            out.append({"environment": doc["environment"], "promotion": doc["promotion"],
                        "catalog": empty, "plan": {"tenants": []}, "resources": [r]})
    return out


def per_resource(engine: Engine, docs: list[dict[str, Any]]) -> int:
    if isinstance(engine, RegorusEngine):
        total = 0
        for doc in docs:
            engine.set_input_json(json.dumps(doc))
            total += _count(engine.evaluate_current(GATE_QUERY))
        return total
    return sum(_count(engine.evaluate(GATE_QUERY, doc)) for doc in docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_org_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-opa", action="store_true", help="skip the real OPA engine")
    ap.add_argument("--target", type=float, default=3.0, help="seconds allowed for embedded evaluation")
    a = ap.parse_args()

    library = load_library(REPO / "policies", REPO)
    with tempfile.TemporaryDirectory(prefix="kitchen-policy-bench-") as tmp:
        root = generate_from_args(Path(tmp) / "org", a)
        t0 = time.perf_counter()
        outcome = pipeline.render(root)
        t1 = time.perf_counter()
        if not outcome.ok:
            raise SystemExit("synthetic catalog has findings: " + outcome.findings[0].format_text())
        docs = build_inputs(outcome.catalog, outcome.plans, outcome.rendered)
        t2 = time.perf_counter()
    resources = sum(len(d["resources"]) for d in docs.values())
    size = sum(len(json.dumps(d)) for d in docs.values())
    print(f"organisation: {a.bases} bases × {a.flavors} flavors × {a.tenants} tenants × {a.envs} "
          f"environments; {len(library.rules)} rules; {resources} rendered resources")
    print(f"validate+plan+render {t1 - t0:.2f} s; policy input built in {t2 - t1:.2f} s "
          f"({size / 1e6:.1f} MB of JSON over {len(docs)} documents)")

    rows: list[tuple[str, str, int, float, int, float]] = []
    one_per_resource = resource_docs(docs)
    engines: list[tuple[str, Callable[[], Engine]]] = [("regorus (embedded)", RegorusEngine)]
    if not a.no_opa:
        engines.append(("OPA 1.20.2 (in-process)", OpaLibEngine))
    for label, make in engines:
        c0 = time.perf_counter()
        engine = prepare(library, make())
        compile_s = time.perf_counter() - c0
        secs, found = _best(lambda engine=engine: per_environment(engine, docs), a.repeat)
        rows.append((label, "per environment", len(docs), secs, found, compile_s))
        repeat = 1 if isinstance(engine, OpaLibEngine) else a.repeat
        secs, found = _best(lambda engine=engine: per_resource(engine, one_per_resource), repeat)
        rows.append((label, "per resource", len(one_per_resource), secs, found, compile_s))

    print()
    print("| engine | evaluation | evaluations | seconds | violations | compile |")
    print("|---|---|---|---|---|---|")
    for label, mode, n, secs, found, compile_s in rows:
        print(f"| {label} | {mode} | {n:,} | {secs:.2f} s | {found} | {compile_s:.2f} s |")
    embedded = rows[0][3]
    print()
    verdict = "within" if embedded < a.target else "ABOVE"
    print(f"embedded evaluation, all rules over all environments: {embedded:.2f} s "
          f"({verdict} the {a.target:g} s target)")
    # the findings the gate reports, as kitchen check would (sanity check of the measured path)
    engine = prepare(library, RegorusEngine())
    print(f"findings on the synthetic organisation: {len(evaluate_policies(library, engine, docs))}")


if __name__ == "__main__":
    main()
