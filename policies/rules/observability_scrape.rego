# METADATA
# title: Every served InferenceService is scraped when observability is on
# description: >-
#   In an environment whose `observability.enabled` is on (the default), each
#   InferenceService of the plan has a PodMonitor in its namespace that selects its
#   predictor pods (`serving.kserve.io/inferenceservice`) on vLLM's `/metrics`, and a
#   NetworkPolicy there admits the monitoring namespace to vLLM's port 8080. Without them
#   no alert about the service can fire.
# custom:
#   id: policy.observability-scrape-target
#   severity: error
#   scope: tenant
package kitchen.rules.observability_scrape

import data.kitchen.lib

enabled if object.get(data.kitchen.lib.env, ["observability", "enabled"], true) == true

monitoring_namespace := data.kitchen.lib.monitoring_namespace

# [namespace, InferenceService] pairs a PodMonitor scrapes on /metrics.
# (The namespace is bound in the body: a head term that is undefined made regorus fail
# the whole evaluation where OPA left the element out.)
# The label naming a serving object's pods, and vLLM's port in them, by kind: KServe's
# predictor pods (InferenceService) or its workload pods (LLMInferenceService).
pod_label := {"InferenceService": "serving.kserve.io/inferenceservice", "LLMInferenceService": "app.kubernetes.io/name"}

vllm_port := {"InferenceService": 8080, "LLMInferenceService": 8000}

kind_of(s) := object.get(s, "kind", "InferenceService")

scraped contains [ns, kind, name] if {
	some r in lib.resources_of_kind("PodMonitor")
	ns := r.manifest.metadata.namespace
	some kind, label in pod_label
	name := r.manifest.spec.selector.matchLabels[label]
	some ep in r.manifest.spec.podMetricsEndpoints
	object.get(ep, "path", "/metrics") == "/metrics"
}

# Namespaces whose NetworkPolicies admit the monitoring namespace to port 8080.
admitted contains [ns, number] if {
	some r in lib.resources_of_kind("NetworkPolicy")
	ns := r.manifest.metadata.namespace
	some rule in object.get(r.manifest.spec, "ingress", [])
	some peer in rule.from
	peer.namespaceSelector.matchLabels["kubernetes.io/metadata.name"] == monitoring_namespace
	some port in rule.ports
	number := port.port
}

violation contains v if {
	enabled
	some s in data.kitchen.lib.services
	not [s.namespace, kind_of(s), s.inference_service] in scraped
	msg := sprintf("%s/%s has no PodMonitor scraping its /metrics, although observability is on in %s", [s.namespace, s.inference_service, data.kitchen.lib.env.name])
	v := observability_violation(s, msg, sprintf("a PodMonitor selecting %s: %s on path /metrics", [pod_label[kind_of(s)], s.inference_service]))
}

violation contains v if {
	enabled
	some s in data.kitchen.lib.services
	port := vllm_port[kind_of(s)]
	not [s.namespace, port] in admitted
	msg := sprintf("no NetworkPolicy in %s admits the monitoring namespace %s to vLLM's port %d", [s.namespace, monitoring_namespace, port])
	v := observability_violation(s, msg, sprintf("an ingress rule from namespace %s to port %d", [monitoring_namespace, port]))
}

observability_violation(s, msg, expected) := {
	"msg": msg,
	"at": lib.at(data.kitchen.lib.env, "observability"),
	"resource": lib.service_resource(s),
	"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
	"expected": expected,
}
