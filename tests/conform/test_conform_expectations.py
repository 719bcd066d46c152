"""Expectations: built from the catalog, round-tripped through JSON, and smoke matchers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.conform.expectations import (
    Expectations,
    build_expectations,
    describe,
    parse_expectations,
    unmet,
)
from kitchen_gitops.errors import ConfigError
from kitchen_gitops.model import Expectation

REPO = Path(__file__).resolve().parents[2]


def test_built_from_the_example_catalog_with_positions() -> None:
    outcome = pipeline.plan(REPO, ["prod"])
    assert outcome.ok
    exp = build_expectations(outcome.catalog, outcome.plans["prod"])
    assert exp.environment == "prod"
    assert exp.gpu is not None and exp.gpu.product == "NVIDIA-H100-80GB-HBM3"
    assert exp.load.concurrency == outcome.catalog.environments["prod"].conformance.concurrency
    keys = [s.key for s in exp.services]
    assert keys == sorted(keys) or keys  # order follows the plan
    cs = next(s for s in exp.services if s.namespace == "cs-llm")
    assert cs.endpoint == f"http://{cs.name}-predictor.cs-llm.svc.cluster.local"
    faq = next(f for f in cs.flavors if f.name == "faq-answerer-v3")  # the served name
    assert faq.ref == "faq-answerer@v3"
    assert cs.aliases == {"helpdesk-classifier": "helpdesk-classifier-v2026-02-01"}
    assert faq.source.file == "catalog/flavors/faq-answerer@v3.yaml" and faq.source.line > 0
    assert faq.smoke and faq.smoke[0].source.line > faq.source.line
    assert exp.slo.source.file == "environments/prod.yaml"
    # the ConfigMap's JSON reads back to the same expectations
    assert parse_expectations(exp.to_json(), "cm") == exp


def test_select_by_tenant_and_service() -> None:
    outcome = pipeline.plan(REPO, ["dev"])
    exp = build_expectations(outcome.catalog, outcome.plans["dev"])
    only = exp.select(["legal-ai"])
    assert only.services and {s.tenant for s in only.services} == {"legal-ai"}
    one = exp.select(None, [only.services[0].key])
    assert [s.key for s in one.services] == [only.services[0].key]
    assert exp.select(["nobody"]).services == []


@pytest.mark.parametrize("text, problem", [
    ("not json", "not JSON"),
    ('{"environment": "x"}', "invalid expectations at slo"),
    ('{"version": 9, "environment": "x", "slo": {"ttft_p95_ms": 1, "tpot_p95_ms": 1}}', "version 9"),
])
def test_bad_expectations_are_configuration_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_expectations(text, "expectations.json")


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    from kitchen_gitops.conform.expectations import load_expectations

    with pytest.raises(ConfigError, match="cannot read"):
        load_expectations(tmp_path / "nope.json")


SCHEMA = {"type": "object", "required": ["label"],
          "properties": {"label": {"enum": ["billing", "bug"]}}}


@pytest.mark.parametrize("expect, text, problems", [
    ({"contains": "Paris"}, "Paris is the capital", []),
    ({"contains": "Paris"}, "Lyon", ["does not contain 'Paris'"]),
    ({"not_contains": "password"}, "reset it", []),
    ({"not_contains": "password"}, "your password is", ["contains 'password'"]),
    ({"regex": r"^Label: (billing|bug)$"}, "Label: bug", []),
    ({"regex": r"^Label: (billing|bug)$"}, "Label: other", ["does not match /^Label: (billing|bug)$/"]),
    ({"json_schema": SCHEMA}, '{"label": "billing"}', []),
    ({"json_schema": SCHEMA}, 'Sure! {"label": "bug"} done', []),
    ({"json_schema": SCHEMA}, '{"label": "refund"}', ["JSON at label: 'refund' is not one of ['billing', 'bug']"]),
    ({"json_schema": SCHEMA}, "no json here", ["no JSON value in the output"]),
    ({"contains": "a", "regex": "z"}, "b", ["does not contain 'a'", "does not match /z/"]),
])
def test_smoke_matchers(expect: dict[str, object], text: str, problems: list[str]) -> None:
    e = Expectation.model_validate(expect)
    assert unmet(e, text) == problems
    assert describe(e)


def test_describe_is_readable() -> None:
    e = Expectation.model_validate({"contains": "Paris", "not_contains": "Lyon"})
    assert describe(e) == "contains 'Paris' and does not contain 'Lyon'"


def test_expectations_round_trip_minimal() -> None:
    exp = Expectations.model_validate({"environment": "e", "slo": {"ttft_p95_ms": 1, "tpot_p95_ms": 2}})
    assert parse_expectations(exp.to_json(), "x") == exp
