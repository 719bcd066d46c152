package kitchen.rules.observability_scrape_test

import data.kitchen.observability_fixtures as fx
import data.kitchen.rules.observability_scrape

test_pass_scraped_and_admitted if {
	count(observability_scrape.violation) == 0 with input as fx.clean
}

test_fail_without_podmonitor if {
	vs := observability_scrape.violation with input as fx.without("qwen")
	count(vs) == 1
	some v in vs
	v.resource.name == "qwen"
	contains(v.msg, "no PodMonitor")
}

test_fail_without_network_policy if {
	vs := observability_scrape.violation with input as fx.without("allow-monitoring-scrape")
	count(vs) == 1
	some v in vs
	contains(v.msg, "monitoring namespace monitoring")
}

test_fail_admitting_another_namespace if {
	patched := object.union(fx.clean, {"environment": {"observability": {"monitoring_namespace": "prometheus"}}})
	count(observability_scrape.violation) == 1 with input as patched
}

test_pass_observability_off if {
	patched := object.union(fx.without("qwen"), {"environment": {"observability": {"enabled": false}}})
	count(observability_scrape.violation) == 0 with input as patched
}

# An LLMInferenceService's workload: pods named by app.kubernetes.io/name, vLLM on port 8000.
llm_service := object.union(fx.clean.plan.tenants[0].services[0], {"kind": "LLMInferenceService", "api_version": "serving.kserve.io/v1alpha2"})

llm_input(selector_label, port) := object.union(fx.clean, {
	"plan": {"tenants": [object.union(fx.clean.plan.tenants[0], {"services": [llm_service]})]},
	"resources": array.concat([r | some r in fx.clean.resources; not r.manifest.kind in {"PodMonitor", "NetworkPolicy"}], [
		object.union(fx.podmonitor, {"manifest": {"spec": {
			"selector": {"matchLabels": {selector_label: "qwen", "kserve.io/component": "workload"}},
			"podMetricsEndpoints": [{"portNumber": 8000, "path": "/metrics"}],
		}}}),
		object.union(fx.allow_monitoring, {"manifest": {"spec": {"ingress": [{
			"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
			"ports": [{"protocol": "TCP", "port": port}],
		}]}}}),
	]),
})

test_pass_llm_inference_service_scraped_on_its_port if {
	count(observability_scrape.violation) == 0 with input as llm_input("app.kubernetes.io/name", 8000)
}

test_fail_llm_inference_service_selected_as_a_predictor if {
	vs := observability_scrape.violation with input as llm_input("serving.kserve.io/inferenceservice", 8080)
	count(vs) == 2
	some v in vs
	contains(v.msg, "port 8000")
}
