"""Observability objects rendered from the catalog: what is emitted, thresholds, edge values,
an environment with observability off, the dashboard against the SDK's types, the runbook."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops import observability as obs
from kitchen_gitops.cli import main
from tests.conftest import REPO
from tests.observability.obs_support import edited_repo, of_kind, rendered_docs


def _alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def _threshold(expr: str) -> set[str]:
    return set(re.findall(r"[<>] (\S+)", expr))


def test_prod_emits_a_scrape_target_per_service_and_rules_per_namespace(tmp_path: Path) -> None:
    docs = rendered_docs(edited_repo(tmp_path / "r"), "prod")
    services = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in of_kind(docs, "InferenceService").values()}
    monitors = of_kind(docs, "PodMonitor").values()
    selected = {(m["metadata"]["namespace"], m["spec"]["selector"]["matchLabels"][obs.ISVC_POD_LABEL])
                for m in monitors}
    assert selected == services and len(services) == 4
    for m in monitors:
        (endpoint,) = m["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http1", "/metrics", "30s")
    rules = {d["metadata"]["namespace"]: d for d in of_kind(docs, "PrometheusRule").values()}
    assert set(rules) == {ns for ns, _ in services}
    alerts = _alerts(rules["cs-llm"])
    # prod: TTFT 500 ms, TPOT 40 ms, E2E 6000 ms, 800 tok/s, goodput 95 %
    assert _threshold(alerts["KitchenTTFTAboveSLO"]["expr"]) == {"0.5"}
    assert _threshold(alerts["KitchenTPOTAboveSLO"]["expr"]) == {"0.04"}
    assert _threshold(alerts["KitchenE2ELatencyAboveSLO"]["expr"]) == {"6"}
    assert _threshold(alerts["KitchenOutputThroughputBelowSLO"]["expr"]) == {"800"}
    assert _threshold(alerts["KitchenGoodputBudgetBurnFast"]["expr"]) == {"0.72"}  # 14.4 × 5 %
    assert _threshold(alerts["KitchenGoodputBudgetBurnSlow"]["expr"]) == {"0.3"}  # 6 × 5 %
    assert _threshold(alerts["KitchenKVCacheNearFull"]["expr"]) == {"0.9"}
    assert _threshold(alerts["KitchenRequestsWaiting"]["expr"]) == {"16"}
    for name, a in alerts.items():
        assert a["annotations"]["runbook_url"].endswith(f"/docs/operations.md#{name.lower()}")
        assert a["labels"]["severity"] in ("warning", "critical")
    # every expression selects its own namespace only: rules of several namespaces never collide
    for g in rules["legal-ai"]["spec"]["groups"]:
        for r in g["rules"]:
            assert set(re.findall(r'namespace="([^"]*)"', r["expr"])) == {"legal-ai"}, r


def test_monitoring_is_admitted_to_the_metrics_port_only(tmp_path: Path) -> None:
    docs = rendered_docs(edited_repo(tmp_path / "r"), "prod")
    np = docs["cs-llm/networkpolicy-allow-monitoring.yaml"]
    assert np["spec"]["podSelector"] == {"matchLabels": {"component": "predictor"}}
    (rule,) = np["spec"]["ingress"]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]] == [
        "openshift-user-workload-monitoring"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    serving = docs["cs-llm/networkpolicy-allow-serving.yaml"]
    peers = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
             for r in serving["spec"]["ingress"] for p in r["from"]}
    assert not any("monitoring" in p for p in peers)


def test_observability_off_renders_none_of_it(tmp_path: Path) -> None:
    root = edited_repo(tmp_path / "r", observability={"enabled": False})
    docs = rendered_docs(root, "prod")
    assert not of_kind(docs, "PodMonitor") and not of_kind(docs, "PrometheusRule")
    assert not [p for p in docs if "allow-monitoring" in p or "dashboard" in p]
    kustomization = docs["kustomization.yaml"]["resources"]
    assert not [p for p in kustomization if "podmonitor" in p or "prometheusrule" in p]
    # other environments keep theirs
    assert of_kind(rendered_docs(root, "staging"), "PodMonitor")


def test_platform_and_mode_choose_namespace_and_port(tmp_path: Path) -> None:
    root = edited_repo(tmp_path / "r", cluster={"platform": "kubernetes"},
                       serving={"deployment_mode": "Serverless"},
                       observability={"dashboard": False, "scrape_interval_s": 15})
    docs = rendered_docs(root, "prod")
    np = docs["cs-llm/networkpolicy-allow-monitoring.yaml"]
    assert np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    (endpoint,) = docs["cs-llm/podmonitor-llama-3-1-8b-instruct.yaml"]["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["interval"]) == ("user-port", "15s")
    assert not of_kind(docs, "ConfigMap").keys() & {"kitchen-conformance/configmap-kitchen-dashboard.yaml"}


def test_edge_objectives(tmp_path: Path) -> None:
    """A goodput objective of 100 % burns on any bad request; 0 % has no budget to burn and no
    burn alert; no throughput floor, no throughput alert; no E2E objective, no E2E alert;
    objectives far beyond any real latency (the schema's largest, 1e9 ms) still make valid,
    readable thresholds."""
    slo = {"ttft_p95_ms": 1e9, "tpot_p95_ms": 0.001, "min_output_tokens_per_s": 0,
           "goodput_min_ratio": 1.0}
    prod = edited_repo(tmp_path / "a", slo=slo)
    text = (prod / "environments/prod.yaml").read_text()
    (prod / "environments/prod.yaml").write_text(text.replace("  e2e_p95_ms: 6000\n", ""))
    alerts = _alerts(rendered_docs(prod, "prod")["cs-llm/prometheusrule-kitchen-vllm.yaml"])
    assert _threshold(alerts["KitchenTTFTAboveSLO"]["expr"]) == {"1000000"}
    assert _threshold(alerts["KitchenTPOTAboveSLO"]["expr"]) == {"1e-06"}
    assert _threshold(alerts["KitchenGoodputBudgetBurnFast"]["expr"]) == {"0"}
    assert "KitchenOutputThroughputBelowSLO" not in alerts and "KitchenE2ELatencyAboveSLO" not in alerts
    zero = edited_repo(tmp_path / "b", slo={"goodput_min_ratio": 0})
    alerts = _alerts(rendered_docs(zero, "prod")["cs-llm/prometheusrule-kitchen-vllm.yaml"])
    assert not [a for a in alerts if "Burn" in a]


@pytest.mark.parametrize(("field", "value"), [("ttft_p95_ms", ".nan"), ("tpot_p95_ms", ".inf"),
                                              ("goodput_min_ratio", "1.5"), ("e2e_p95_ms", "-1")])
def test_unusable_objectives_are_findings_not_tracebacks(field: str, value: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = edited_repo(tmp_path / "r")
    path = root / "environments/prod.yaml"
    text = path.read_text()
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{field}:"))
    path.write_text(text.replace(line, f"  {field}: {value}"))
    assert main(["render", "--root", str(root), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    # .nan and .inf are refused by the loader at the value; the others by the SLO's schema
    assert re.search(rf"environments/prod.yaml:\d+:\d+: \[error\] (slo\.{field}|'[^']*' is not a finite number)",
                     out.out), out.out
    assert not (tmp_path / "out").exists()


def test_observability_fields_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = edited_repo(tmp_path / "r", observability={"scrape_interval_s": 1, "enable": True,
                                                      "saturation": {"kv_cache_usage_max": 1.2}})
    assert main(["validate", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "observability.scrape_interval_s" in out and "unknown field 'observability.enable'" in out
    assert "observability.saturation.kv_cache_usage_max" in out


def test_dashboard_validates_against_the_sdk_types_and_rules_record_every_name(tmp_path: Path) -> None:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    docs = rendered_docs(edited_repo(tmp_path / "r"), "prod")
    cm = docs["kitchen-conformance/configmap-kitchen-dashboard.yaml"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    dash = json.loads(text)
    # the SDK's typed model keeps only the fields the dashboard schema defines: a round
    # trip that changes nothing means no unknown or misplaced field
    again = json.loads(json.dumps(Dashboard.from_json(dash), cls=JSONEncoder, sort_keys=True))
    assert again == dash
    broken = json.loads(text)
    broken["panels"][1]["fieldConfig"]["defaults"]["treshold"] = {}
    assert json.loads(json.dumps(Dashboard.from_json(broken), cls=JSONEncoder)) != broken
    assert [p["type"] for p in dash["panels"]].count("row") == 1
    assert dash["panels"][0]["repeat"] == "namespace"
    (ns_var,) = [v for v in dash["templating"]["list"] if v["name"] == "namespace"]
    assert ns_var["query"] == "cs-llm,legal-ai,mkt-sentiment"
    recorded = set()
    for rule in of_kind(docs, "PrometheusRule").values():
        recorded |= obs.recorded_names(rule["spec"]["groups"])
        for g in rule["spec"]["groups"]:
            for r in g["rules"]:
                used = {n for n in obs.metric_names(r["expr"]) if n.startswith("kitchen:")}
                assert used <= recorded, (r, used - recorded)
    for q in obs.dashboard_queries(dash):
        names = obs.metric_names(q)
        assert names, q
        assert {n for n in names if n.startswith("kitchen:")} <= recorded, q
        assert names <= recorded | set(obs.EXTERNAL_METRICS), q


def test_conformance_report_names_rules_that_are_rendered(tmp_path: Path) -> None:
    from kitchen_gitops.conform.report import perf_lines

    docs = rendered_docs(edited_repo(tmp_path / "r"), "prod")
    recorded = obs.recorded_names(docs["cs-llm/prometheusrule-kitchen-vllm.yaml"]["spec"]["groups"])
    named = {n for names in obs.CONFORMANCE_RULES.values() for n in names}
    assert named <= recorded
    dist = {"median": 1.0, "p95": 2.0, "p99": 3.0, "mean": 1.5}
    details = {"load": {"requests": 4, "concurrency": 2, "output_tokens": 8, "models": ["m"]},
               "metrics": {"ttft_ms": dist, "tpot_ms": dist, "itl_ms": dist, "e2e_ms": dist,
                           "request_throughput_per_s": 1.0, "output_token_throughput_per_s": 8.0,
                           "total_token_throughput_per_s": 9.0, "goodput_requests_per_s": 1.0,
                           "goodput_ratio": 1.0, "completed": 4, "failed": 0, "duration_s": 4.0},
               "server_metrics": {"ttft": {"client_mean_ms": 1.0, "server_mean_ms": 1.0, "server_p50_ms": 1.0,
                                           "server_p95_ms": 2.0, "observations": 4, "agrees": True,
                                           "recording_rules": list(obs.CONFORMANCE_RULES["ttft"])}}}
    text = "\n".join(perf_lines(details))
    assert "kitchen:vllm_time_to_first_token_seconds:p95_5m" in text


def test_metric_names_scanner_finds_what_it_must() -> None:
    expr = ('histogram_quantile(0.95, sum by (namespace, le) (rate(vllm:gpu_cache_usage_perc{namespace="a",'
            'le=~"1|1.0"}[5m]))) > 0.5 and on (pod) up == 0 unless absent(vllm:x_total) or foo_bar')
    assert obs.metric_names(expr) == {"vllm:gpu_cache_usage_perc", "up", "vllm:x_total", "foo_bar"}


def test_goodput_counts_against_a_bucket_boundary() -> None:
    assert obs.bucket(obs.TTFT, 0.5) == 0.5
    assert obs.bucket(obs.TTFT, 0.3) == 0.25  # between boundaries: the lower one, conservatively
    assert obs.bucket(obs.TTFT, 1e-9) == 0.001
    assert obs.le_matcher(1.0) == 'le=~"1|1.0"' and obs.le_matcher(0.25) == 'le="0.25"'
    assert obs.fmt(1 - 0.95) == "0.05" and obs.fmt(14.4 * (1 - 0.95)) == "0.72" and obs.fmt(800.0) == "800"


def test_runbook_in_docs_is_generated_and_every_alert_has_its_section(update_golden: bool) -> None:
    path = REPO / "docs/operations.md"
    text = path.read_text(encoding="utf-8")
    begin, end = text.index(obs.RUNBOOK_BEGIN), text.index(obs.RUNBOOK_END) + len(obs.RUNBOOK_END) + 1
    if update_golden:
        text = text[:begin] + obs.runbook_markdown() + text[end:]
        path.write_text(text, encoding="utf-8")
        end = begin + len(obs.runbook_markdown())
    assert text[begin:end] == obs.runbook_markdown(), "run pytest --update-golden to regenerate the runbook"
    for a in obs.ALERTS:
        assert f"\n### {a.name}\n" in text
    rendered = yaml.safe_load((REPO / "rendered/prod/cs-llm/prometheusrule-kitchen-vllm.yaml").read_text())
    assert set(_alerts(rendered)) == {a.name for a in obs.ALERTS}
