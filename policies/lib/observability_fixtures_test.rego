# The clean policy input with the observability objects of its one InferenceService.
package kitchen.observability_fixtures

import data.kitchen.fixtures

podmonitor := {
	"manifest": {
		"apiVersion": "monitoring.coreos.com/v1",
		"kind": "PodMonitor",
		"metadata": {"name": "qwen", "namespace": "support"},
		"spec": {
			"selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "qwen", "component": "predictor"}},
			"podMetricsEndpoints": [{"port": "http1", "path": "/metrics"}],
		},
	},
	"_source": fixtures.loc("catalog/tenants/support.yaml", 10),
}

allow_monitoring := {
	"manifest": {
		"apiVersion": "networking.k8s.io/v1",
		"kind": "NetworkPolicy",
		"metadata": {"name": "allow-monitoring-scrape", "namespace": "support"},
		"spec": {"podSelector": {"matchLabels": {"component": "predictor"}}, "policyTypes": ["Ingress"], "ingress": [{
			"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
			"ports": [{"protocol": "TCP", "port": 8080}],
		}]},
	},
	"_source": fixtures.loc("environments/prod.yaml", 60),
}

alert(name, expr, labels) := {"alert": name, "expr": expr, "for": "10m", "labels": labels}

alerts := [
	alert("KitchenTTFTAboveSLO", `kitchen:ttft:p95_5m{namespace="support"} > 0.5`, {"slo": "ttft_p95_ms"}),
	alert("KitchenTPOTAboveSLO", `kitchen:tpot:p95_5m{namespace="support"} > 0.04`, {"slo": "tpot_p95_ms"}),
	alert("KitchenOutputThroughputBelowSLO", `kitchen:tok:rate5m{namespace="support"} < 800 unless on (namespace) kitchen:w{namespace="support"} == 0`, {"slo": "min_output_tokens_per_s"}),
	alert("KitchenGoodputBudgetBurnFast", `kitchen:bad:ratio_rate1h{namespace="support"} > 0.72 and kitchen:bad:ratio_rate5m{namespace="support"} > 0.72`, {"slo": "goodput_min_ratio", "long_window": "1h"}),
	alert("KitchenGoodputBudgetBurnSlow", `kitchen:bad:ratio_rate6h{namespace="support"} > 0.3 and kitchen:bad:ratio_rate30m{namespace="support"} > 0.3`, {"slo": "goodput_min_ratio", "long_window": "6h"}),
	alert("KitchenVllmTargetDown", `up{namespace="support"} == 0`, {}),
]

prometheusrule_with(alert_list) := {
	"manifest": {
		"apiVersion": "monitoring.coreos.com/v1",
		"kind": "PrometheusRule",
		"metadata": {"name": "kitchen-vllm", "namespace": "support"},
		"spec": {"groups": [{"name": "kitchen-vllm.alerts", "rules": alert_list}]},
	},
	"_source": fixtures.loc("environments/prod.yaml", 50),
}

slo := {"ttft_p95_ms": 500, "tpot_p95_ms": 40, "e2e_p95_ms": null, "min_output_tokens_per_s": 800, "goodput_min_ratio": 0.95}

# The clean input, observability on, with `rules` as the namespace's alerts.
with_rules(alert_list) := with_slo(alert_list, {})

# The same with the environment's SLO deep-merged with `patch`.
with_slo(alert_list, patch) := object.union(fixtures.clean, {
	"environment": {"slo": object.union(slo, patch), "observability": {"enabled": true, "monitoring_namespace": null}, "cluster": {"platform": "kubernetes"}},
	"resources": array.concat(fixtures.clean.resources, [podmonitor, allow_monitoring, prometheusrule_with(alert_list)]),
})

clean := with_rules(alerts)

# The clean input without the resources named `name`.
without(name) := object.union(clean, {"resources": [r | some r in clean.resources; r.manifest.metadata.name != name]})

# The alerts with the expression of `name` replaced.
alerts_with_expr(name, expr) := array.concat(
	[a | some a in alerts; a.alert != name],
	[object.union(a, {"expr": expr}) | some a in alerts; a.alert == name],
)
