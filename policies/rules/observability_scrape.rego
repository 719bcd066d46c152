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
package kitchen.rules.observability_scrape

import data.kitchen.lib

enabled if object.get(lib.env, ["observability", "enabled"], true) == true

monitoring_namespace := ns if {
	ns := object.get(lib.env, ["observability", "monitoring_namespace"], null)
	ns != null
} else := "openshift-user-workload-monitoring" if {
	object.get(lib.env, ["cluster", "platform"], "openshift") == "openshift"
} else := "monitoring"

# [namespace, InferenceService] pairs a PodMonitor scrapes on /metrics.
# (The namespace is bound in the body: a head term that is undefined made regorus fail
# the whole evaluation where OPA left the element out.)
scraped contains [ns, name] if {
	some r in lib.resources_of_kind("PodMonitor")
	ns := r.manifest.metadata.namespace
	name := r.manifest.spec.selector.matchLabels["serving.kserve.io/inferenceservice"]
	some ep in r.manifest.spec.podMetricsEndpoints
	object.get(ep, "path", "/metrics") == "/metrics"
}

# Namespaces whose NetworkPolicies admit the monitoring namespace to port 8080.
admitted contains ns if {
	some r in lib.resources_of_kind("NetworkPolicy")
	ns := r.manifest.metadata.namespace
	some rule in object.get(r.manifest.spec, "ingress", [])
	some peer in rule.from
	peer.namespaceSelector.matchLabels["kubernetes.io/metadata.name"] == monitoring_namespace
	some port in rule.ports
	port.port == 8080
}

violation contains v if {
	enabled
	some s in lib.services
	not [s.namespace, s.inference_service] in scraped
	msg := sprintf("%s/%s has no PodMonitor scraping its /metrics, although observability is on in %s", [s.namespace, s.inference_service, lib.env.name])
	v := observability_violation(s, msg, sprintf("a PodMonitor selecting serving.kserve.io/inferenceservice: %s on path /metrics", [s.inference_service]))
}

violation contains v if {
	enabled
	some s in lib.services
	not s.namespace in admitted
	msg := sprintf("no NetworkPolicy in %s admits the monitoring namespace %s to vLLM's port 8080", [s.namespace, monitoring_namespace])
	v := observability_violation(s, msg, sprintf("an ingress rule from namespace %s to port 8080", [monitoring_namespace]))
}

observability_violation(s, msg, expected) := {
	"msg": msg,
	"at": lib.at(lib.env, "observability"),
	"resource": lib.service_resource(s),
	"object": sprintf("Environment/%s", [lib.env.name]),
	"expected": expected,
}
