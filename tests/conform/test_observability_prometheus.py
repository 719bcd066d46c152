"""End to end: a real Prometheus on 127.0.0.1 scraping the tests' real vLLM (``clean_server``,
shared with the conformance tests), with the rendered rules loaded.

The vLLM target is scraped twice, as the PodMonitors of two tenant namespaces would see
it: ``obs-loose`` (an environment with reachable SLOs) and ``obs-tight`` (an impossible
TTFT objective). The scrape configuration is derived from the rendered PodMonitor (path,
scheme, its relabelling), since no operator runs here. After a short load, every recording
rule returns a series with the expected labels, the impossible SLO's alert is pending or
firing through the HTTP API and the reachable one's is not, every metric name a rule or
panel uses is in the live scrape, and every dashboard query parses.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kitchen_gitops import observability as obs
from tests.conform.conform_support import BASE, CLEAN_FLAVORS
from tests.observability.obs_support import edited_repo, rendered_docs
from tests.support.prometheus_server import PrometheusServer, require_prometheus
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow
ISVC = "llama-3-1-8b-instruct"
LOOSE = {"ttft_p95_ms": 600000, "tpot_p95_ms": 600000, "e2e_p95_ms": 6000000, "min_output_tokens_per_s": 0,
         "goodput_min_ratio": 0.5}
TIGHT = {"ttft_p95_ms": 0.001, "tpot_p95_ms": 600000, "min_output_tokens_per_s": 0, "goodput_min_ratio": 0.5}


def _render(tmp: Path, namespace: str, slo: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The PrometheusRule, PodMonitor and dashboard of customer-support's namespace renamed ``namespace``."""
    root = edited_repo(tmp / namespace, slo=slo, observability={"slo_for_minutes": 1, "scrape_interval_s": 5})
    tenant = root / "catalog/tenants/customer-support.yaml"
    tenant.write_text(tenant.read_text().replace("namespace: cs-llm", f"namespace: {namespace}"))
    text = (root / "environments/prod.yaml").read_text()
    if "e2e_p95_ms" not in slo:
        (root / "environments/prod.yaml").write_text("\n".join(
            ln for ln in text.splitlines() if not ln.strip().startswith("e2e_p95_ms")) + "\n")
    docs = rendered_docs(root, "prod")
    dash = yaml.safe_load(docs["kitchen-conformance/configmap-kitchen-dashboard.yaml"]["data"]["kitchen-prod.json"])
    return (docs[f"{namespace}/prometheusrule-kitchen-vllm.yaml"], docs[f"{namespace}/podmonitor-{ISVC}.yaml"], dash)


def _scrape_config(monitor: dict[str, Any], target: str) -> dict[str, Any]:
    """What prometheus-operator generates from the PodMonitor, for one known pod."""
    ns = monitor["metadata"]["namespace"]
    (ep,) = monitor["spec"]["podMetricsEndpoints"]
    pod_labels = monitor["spec"]["selector"]["matchLabels"]
    meta = {f"__meta_kubernetes_pod_label_{k.replace('.', '_').replace('/', '_').replace('-', '_')}": v
            for k, v in pod_labels.items()}
    return {
        "job_name": f"podMonitor/{ns}/{monitor['metadata']['name']}/0",
        "metrics_path": ep["path"], "scheme": ep["scheme"], "scrape_interval": "1s",
        "static_configs": [{"targets": [target], "labels": {**meta, "namespace": ns, "pod": f"{ISVC}-predictor-0"}}],
        "relabel_configs": [{"action": r["action"], "source_labels": r["sourceLabels"],
                             "target_label": r["targetLabel"]} for r in ep["relabelings"]],
    }


def _scraped_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def _wait(what: str, check: Any, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(2)


def test_prometheus_scrapes_vllm_and_evaluates_the_rendered_rules(clean_server: VllmServer, tmp_path: Path) -> None:
    require_prometheus()
    loose_rule, loose_mon, dash = _render(tmp_path, "obs-loose", LOOSE)
    tight_rule, tight_mon, _ = _render(tmp_path, "obs-tight", TIGHT)
    files = []
    for rule in (loose_rule, tight_rule):
        files.append(tmp_path / f"{rule['metadata']['namespace']}.rules.yaml")
        files[-1].write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    target = clean_server.base_url.removeprefix("http://")
    scrapes = [_scrape_config(m, target) for m in (loose_mon, tight_mon)]

    with PrometheusServer(tmp_path / "prometheus", scrapes, files) as prom:
        _wait("both targets up", lambda: len([r for r in prom.query("up == 1")]) == 2, 60)
        models = [*CLEAN_FLAVORS, BASE]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: clean_server.complete(models[i % len(models)], f"{i} tell me about the kitchen",
                                                          max_tokens=12), range(16)))
        # (vLLM exports lora_requests_info from its first LoRA request on)
        # every metric name a rule or panel uses is one this vLLM exports (not a renamed one)
        live = _scraped_names(httpx.get(f"{clean_server.base_url}/metrics", timeout=30).text)
        used: set[str] = set()
        for rule in (loose_rule, tight_rule):
            used |= {n for g in rule["spec"]["groups"] for r in g["rules"] for n in obs.metric_names(r["expr"])}
        used |= {n for q in obs.dashboard_queries(dash) for n in obs.metric_names(q)}
        external = {n for n in used if n.startswith("kitchen:")} | set(obs.EXTERNAL_METRICS)
        assert used - external - live == set()
        for name in obs.VLLM_METRICS:
            assert name in live or f"{name}_bucket" in live, name
        for metric, bounds in obs.BUCKETS.items():
            text = httpx.get(f"{clean_server.base_url}/metrics", timeout=30).text
            les = {line.split('le="')[1].split('"')[0] for line in text.splitlines()
                   if line.startswith(f"{metric}_bucket{{")}
            assert {float(x) for x in les if x != "+Inf"} == set(bounds), metric
        recorded = sorted(obs.recorded_names(tight_rule["spec"]["groups"]))

        def all_recorded() -> bool:
            return all(prom.query(f'{name}{{namespace="obs-tight"}}') for name in recorded)

        _wait("a series for every recording rule", all_recorded)
        for name in recorded:
            for series in prom.query(f'{name}{{namespace=~"obs-.*"}}'):
                labels = series["metric"]
                assert labels["inferenceservice"] == ISVC and labels["namespace"] in ("obs-loose", "obs-tight")
                if name.startswith(obs.SLO_BAD):
                    assert labels["criterion"] in ("ttft", "tpot", "e2e", "error")
        def ttft_p95() -> float | None:
            # a rate needs an increase between two scrapes: on a shared, busy server the
            # first load may all land before Prometheus's first scrape, so keep some coming
            clean_server.complete(BASE, "once more about the kitchen", max_tokens=4)
            found = prom.query(f'{obs.rule_name(obs.TTFT, "p95_5m")}{{namespace="obs-tight"}}')
            value = float(found[0]["value"][1]) if found else math.nan
            return value if math.isfinite(value) else None

        p95 = _wait("a finite TTFT p95 from the recording rule", ttft_p95)
        assert 0 < p95 < 60, p95

        def ttft_alert() -> list[dict[str, Any]]:
            alerts = prom.api("alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "KitchenTTFTAboveSLO"]

        (alert,) = _wait("the impossible TTFT objective's alert", ttft_alert, 120)
        assert alert["state"] in ("pending", "firing")
        assert alert["labels"]["namespace"] == "obs-tight" and alert["labels"]["slo"] == "ttft_p95_ms"
        assert alert["annotations"]["description"].startswith(f"Time to first token p95 of obs-tight/{ISVC} is ")
        assert alert["annotations"]["runbook_url"].endswith("#kitchenttftaboveslo")
        slo_alerts = [a for a in prom.api("alerts")["data"]["alerts"] if "slo" in a["labels"]]
        assert [a for a in slo_alerts if a["labels"]["namespace"] == "obs-loose"] == []

        # every dashboard query parses and runs; the latency panels show the load
        values = {"$namespace": "obs-tight", "$inferenceservice": ".+", "${datasource}": ""}
        for q in obs.dashboard_queries(dash):
            for k, v in values.items():
                q = q.replace(k, v)
            data = prom.api("query", query=q)
            assert data["status"] == "success", (q, data)
        ttft_panel = next(p for p in dash["panels"] if p.get("title") == "Time to first token")
        q = ttft_panel["targets"][1]["expr"].replace("$namespace", "obs-tight").replace("$inferenceservice", ".+")
        assert prom.query(q)
