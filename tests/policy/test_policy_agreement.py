"""The embedded engine (regorus) agrees with the real OPA engine (OPA 1.20.2, in-process
through opa-golib-python-bindings) on the whole library: every unit test, and the raw
violations of every fixture — the example catalog and every acceptance case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kitchen_gitops import pipeline
from kitchen_gitops.policy.engines import Engine, OpaLibEngine, RegorusEngine
from kitchen_gitops.policy.gate import GATE_QUERY
from kitchen_gitops.policy.inputs import build_inputs
from kitchen_gitops.policy.library import Library
from kitchen_gitops.policy.testing import run_tests
from tests.conftest import CASES, copy_catalog
from tests.policy.policy_cases import REPO, build_repo, cases


def test_every_unit_test_passes_on_both_engines(library: Library) -> None:
    outcomes = {}
    for name, engine in (("regorus", RegorusEngine()), ("opa", OpaLibEngine())):
        results = run_tests(library, engine)
        outcomes[name] = {f"{r.test.package}.{r.test.name}": (r.passed, r.error) for r in results}
        assert all(r.passed for r in results), [r.format() for r in results if not r.passed]
    assert outcomes["regorus"] == outcomes["opa"]
    # a passing and a failing case for every rule
    for rule in library.rules.values():
        names = [t for t in outcomes["opa"] if t.startswith(f"{rule.package}_test.")]
        assert any(".test_pass" in n for n in names), rule.id
        assert any(".test_fail" in n for n in names), rule.id


def _canonical(value: Any) -> str:
    # sets come back as arrays; their order is the engine's own
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((norm(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
        return v

    return json.dumps(norm(value), sort_keys=True)


def _fixtures(tmp_path: Path) -> list[tuple[str, Path, list[str] | None]]:
    out: list[tuple[str, Path, list[str] | None]] = [("example", REPO, None)]
    for name in ("versions", "llmisvc"):  # two versions of a flavor; the LLMInferenceService API
        out.append((name, copy_catalog(CASES / name, tmp_path / name), None))
    for case in cases():
        if not case.is_policy:
            continue
        out.append((case.name, build_repo(case, tmp_path / case.name), case.environments))
    return out


def test_identical_violations_on_every_fixture(engines: dict[str, Engine], tmp_path: Path) -> None:
    compared = 0
    for name, root, envs in _fixtures(tmp_path):
        outcome = pipeline.render(root, envs)
        assert outcome.ok, name
        for env, doc in build_inputs(outcome.catalog, outcome.plans, outcome.rendered).items():
            results = {e: _canonical(engine.evaluate(GATE_QUERY, doc)) for e, engine in engines.items()}
            assert results["regorus"] == results["opa"], f"{name}/{env}"
            compared += 1
    assert compared >= 3 + len([c for c in cases() if c.is_policy])


def test_the_floor_limits_the_data_schema_accepts_are_the_ones_the_rule_reads(
        engines: dict[str, Engine]) -> None:
    """policies/data.yaml is checked against ``FLOOR_LIMITS``; ``policy.gate-floor`` reads
    its own ``limits``: a field accepted on one side and not read on the other would be a
    floor that floors nothing."""
    from kitchen_gitops.policy.library import FLOOR_LIMITS

    for name, engine in engines.items():
        limits = engine.evaluate("kitchen.rules.gate_floor.limits", {})
        assert {s: set(fields) for s, fields in limits.items()} == \
            {s: set(f) for s, f in FLOOR_LIMITS.items()}, name
        assert all(way in ("min", "max") for fields in limits.values() for way in fields.values()), limits


def test_the_monitoring_namespace_the_floor_reads_is_the_one_kitchen_renders(engines: dict[str, Engine]) -> None:
    """``policy.gate-floor`` and ``policy.observability-scrape-target`` read the monitoring
    namespace from the policy library (``data.kitchen.lib.monitoring_namespace``); the
    NetworkPolicies admit the one the environment model gives. A default that differed
    would floor one namespace while another is admitted."""
    from kitchen_gitops.environment import Observability

    for platform in ("openshift", "kubernetes"):
        for named in (None, "prometheus"):
            env = {"cluster": {"platform": platform}, "observability": {"monitoring_namespace": named}}
            want = Observability(monitoring_namespace=named).prometheus_namespace(platform)
            for name, engine in engines.items():
                got = engine.evaluate("kitchen.lib.monitoring_namespace", {"environment": env})
                assert got == want, (name, platform, named)
