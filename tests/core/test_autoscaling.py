"""Autoscaling from the catalog: what is rendered for each serving API and deployment mode
(validated against KServe's CRDs), the scaling query through promtool, the plan at full
scale, and the catalog findings of what cannot mean what it says."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops import pipeline
from kitchen_gitops.cli import main
from kitchen_gitops.vllm_metrics import KV_CACHE, RUNNING, WAITING
from tests.conftest import CASES, REPO, copy_catalog
from tests.core.test_schemas import SCHEMAS, validate_object
from tests.support.prometheus_server import promtool, require_prometheus

PROM = "https://thanos-querier.openshift-monitoring.svc:9092"
ENV_SCALING = f"  autoscaling:\n    prometheus_url: {PROM}\n    authentication: kitchen-keda-prometheus\n"
CS_PROD = "    gpu_quota: 4\n    replicas: 2\n"


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (rel, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def example(tmp: Path, tenant_block: str, env_block: str = ENV_SCALING) -> Path:
    """The example repository with prod's Prometheus for KEDA and customer-support's prod block replaced."""
    root = copy_catalog(REPO, tmp / "repo")
    edit(root, "environments/prod.yaml", "  replicas: 2\n  min_gpus_per_replica: 1\n",
         f"  replicas: 2\n{env_block}  min_gpus_per_replica: 1\n")
    edit(root, "catalog/tenants/customer-support.yaml", CS_PROD, tenant_block)
    return root


def rendered(root: Path, env: str) -> dict[str, dict[str, Any]]:
    outcome = pipeline.render(root, [env])
    assert outcome.ok, [f.format_text() for f in outcome.findings]
    return {f.path: yaml.safe_load(f.content) for f in outcome.rendered[env]}


def findings(root: Path) -> list[tuple[str, str, str]]:
    outcome = pipeline.plan(root)
    return [(f.rule_id, str(f.location), f.message) for f in outcome.findings]


SCALES = ("    gpu_quota: 4\n    autoscaling:\n      min: 2\n      max: 4\n      signal: requests_running\n"
          "      target: 24\n      window_s: 90\n")


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="CRD schemas not found")
def test_raw_deployment_renders_keda_on_the_vllm_signal(tmp_path: Path) -> None:
    docs = rendered(example(tmp_path, SCALES), "prod")
    isvc = docs["cs-llm/inferenceservice-llama-3-1-8b-instruct.yaml"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4)
    (metric,) = predictor["autoScaling"]["metrics"]
    assert metric == {"type": "External", "external": {
        "metric": {"backend": "prometheus", "serverAddress": PROM, "namespace": "cs-llm",
                   "query": f'sum(avg_over_time({RUNNING}{{namespace="cs-llm", '
                            f'inferenceservice="llama-3-1-8b-instruct"}}[90s]))'},
        "target": {"type": "AverageValue", "averageValue": "24"},
        "authenticationRef": {"authModes": "bearer", "authenticationRef": {"name": "kitchen-keda-prometheus"}}}}
    assert predictor["autoScaling"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    assert validate_object(isvc) == []
    broken = copy.deepcopy(isvc)
    broken["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["metric"]["querry"] = "x"
    assert any("querry" in e for e in validate_object(broken))
    # a tenant that does not autoscale keeps its fixed replicas and KServe's autoscaler off
    other = docs["legal-ai/inferenceservice-llama-3-1-8b-instruct.yaml"]
    assert other["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    assert other["spec"]["predictor"]["minReplicas"] == other["spec"]["predictor"]["maxReplicas"] == 2
    assert "autoScaling" not in other["spec"]["predictor"]


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="CRD schemas not found")
def test_llm_inference_service_scales_with_keda_instead_of_replicas(tmp_path: Path) -> None:
    root = copy_catalog(CASES / "llmisvc", tmp_path / "repo")
    env = next((root / "environments").glob("*.yaml"))
    edit(root, f"environments/{env.name}", "  replicas: 2\n",
         "  replicas: 2\n  autoscaling:\n    prometheus_url: http://prometheus-operated.monitoring.svc:9090\n"
         "    max: 4\n    signal: kv_cache_usage\n    target: 0.75\n")
    tenant = next((root / "catalog/tenants").glob("*.yaml"))
    edit(root, f"catalog/tenants/{tenant.name}", "gpu_quota: 2", "gpu_quota: 4")
    docs = rendered(root, env.stem)
    (doc,) = [d for d in docs.values() if d["kind"] == "LLMInferenceService"]
    assert "replicas" not in doc["spec"]  # KServe refuses replicas beside scaling
    scaling = doc["spec"]["scaling"]
    assert (scaling["minReplicas"], scaling["maxReplicas"]) == (2, 4)
    (trigger,) = scaling["keda"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["threshold"] == "0.75"
    assert trigger["metadata"]["query"].startswith(f"sum(avg_over_time({KV_CACHE}{{namespace=")
    assert validate_object(doc) == []
    broken = copy.deepcopy(doc)
    broken["spec"]["scaling"]["keda"]["pollingIntervall"] = 5
    assert any("pollingIntervall" in e for e in validate_object(broken))


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="CRD schemas not found")
def test_serverless_scales_on_knative_concurrency(tmp_path: Path) -> None:
    root = copy_catalog(CASES / "minimal", tmp_path / "repo")
    edit(root, "catalog/tenants/support.yaml", "    gpu_quota: 1\n",
         "    gpu_quota: 2\n    autoscaling:\n      max: 2\n      signal: requests_running\n      target: 8\n")
    docs = rendered(root, "dev")
    (isvc,) = [d for d in docs.values() if d["kind"] == "InferenceService"]
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert "autoScaling" not in predictor
    assert validate_object(isvc) == []


def test_plan_shows_gpus_from_min_to_max(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = example(tmp_path, SCALES)
    assert main(["plan", "--root", str(root), "--env", "prod"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("cs-llm/"))
    assert "2→4" in row.split() and "2→4 GPUs" in row
    outcome = pipeline.plan(root, ["prod"])
    svc = outcome.plans["prod"].as_dict()["tenants"][0]["services"][0]
    assert (svc["replicas"], svc["max_replicas"], svc["gpus"], svc["gpus_max"]) == (2, 4, 2, 4)


def test_catalogs_without_autoscaling_render_what_they_rendered(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    assert main(["render", "--root", str(root), "--check"]) == 0


@pytest.mark.parametrize(("tenant_block", "env_block", "rule", "where", "words"), [
    ("    gpu_quota: 4\n    replicas: 2\n    autoscaling:\n      max: 4\n", ENV_SCALING,
     "catalog.autoscaling", "customer-support.yaml:29:5", "both replicas and autoscaling"),
    ("    gpu_quota: 4\n    autoscaling:\n      min: 3\n", ENV_SCALING,
     "catalog.autoscaling", "customer-support.yaml:29:5", "without a max"),
    ("    gpu_quota: 4\n    autoscaling:\n      max: 3\n", "", "catalog.autoscaling", "prod.yaml:39:1",
     "names no Prometheus"),
    ("    gpu_quota: 4\n    autoscaling:\n      max: 3\n      signal: kv_cache_usage\n      target: 80\n",
     ENV_SCALING, "schema.value-error", "customer-support.yaml:30:7", "exceeds what kv_cache_usage can reach"),
    ("    gpu_quota: 4\n    autoscaling:\n      max: 3\n      signal: requests_waiting\n", ENV_SCALING,
     "schema.value-error", "customer-support.yaml:30:7", "signal and target are given together"),
    ("    gpu_quota: 4\n    autoscaling:\n      max: 3\n      window_s: 30\n", ENV_SCALING,
     "catalog.autoscaling", "customer-support.yaml:29:5", "less than two scrapes"),
])
def test_autoscaling_that_cannot_mean_what_it_says_is_a_finding(
        tmp_path: Path, tenant_block: str, env_block: str, rule: str, where: str, words: str) -> None:
    root = example(tmp_path, tenant_block, env_block)
    got = findings(root)
    assert any(r == rule and loc.endswith(where) and words in msg for r, loc, msg in got), got
    assert main(["validate", "--root", str(root)]) == 1


def test_hostile_prometheus_url_is_refused(tmp_path: Path) -> None:
    root = example(tmp_path, CS_PROD, "  autoscaling:\n    prometheus_url: http://user:pw@evil.example/?q=1\n")
    got = findings(root)
    assert any(r.startswith("schema.") and "prod.yaml:43:21" in loc for r, loc, _ in got), got


def test_full_scale_across_environments_of_one_cluster(tmp_path: Path) -> None:
    """Two environments naming one cluster share its GPUs: at max replicas they must fit together."""
    root = example(tmp_path, "    gpu_quota: 12\n    autoscaling:\n      max: 12\n")
    edit(root, "environments/staging.yaml", "  name: ocp-stg-tokyo\n", "  name: ocp-prod-osaka\n")
    got = [f for f in findings(root) if f[0] == "plan.cluster-gpu-capacity"]
    assert len(got) == 1, got
    assert got[0][1].endswith("customer-support.yaml:30:7")  # the line of max
    assert "share cluster ocp-prod-osaka" in got[0][2]


def test_promtool_evaluates_the_scaling_query(tmp_path: Path) -> None:
    """The query parses, and over two replicas it is the sum of each one's average over the
    window: KEDA divides it by the replicas (AverageValue) to compare with the target."""
    require_prometheus()
    docs = rendered(example(tmp_path, "    gpu_quota: 4\n    autoscaling:\n      max: 4\n      window_s: 60\n"),
                    "prod")
    query = docs["cs-llm/inferenceservice-llama-3-1-8b-instruct.yaml"]["spec"]["predictor"][
        "autoScaling"]["metrics"][0]["external"]["metric"]["query"]
    assert WAITING in query
    rules = tmp_path / "scaling.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "scaling", "rules": [
        {"record": "kitchen:scaling_query:test", "expr": query}]}]}), encoding="utf-8")
    check = promtool("check", "rules", str(rules))
    assert check.returncode == 0, check.stdout + check.stderr
    labels = 'namespace="cs-llm", inferenceservice="llama-3-1-8b-instruct"'
    unit = {"rule_files": [str(rules)], "evaluation_interval": "15s", "tests": [{
        "interval": "15s",
        "input_series": [
            {"series": f'{WAITING}{{{labels}, pod="p0"}}', "values": "2 2 2 2 2"},
            {"series": f'{WAITING}{{{labels}, pod="p1"}}', "values": "6 6 6 6 6"},
            {"series": f'{WAITING}{{namespace="other", inferenceservice="llama-3-1-8b-instruct", pod="x"}}',
             "values": "100 100 100 100 100"},
        ],
        "promql_expr_test": [{"expr": query, "eval_time": "1m", "exp_samples": [{"labels": "{}", "value": 8}]}],
    }]}
    (tmp_path / "unit.yaml").write_text(yaml.safe_dump(unit), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / "unit.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
