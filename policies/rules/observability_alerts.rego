# METADATA
# title: Every served InferenceService has its SLO alerts when observability is on
# description: >-
#   In an environment with observability on, the PrometheusRule of each served
#   InferenceService's namespace has an alert for each objective the environment sets
#   (TTFT and TPOT p95; end-to-end p95 when set; the output-token floor when above zero;
#   both goodput burn-rate alerts when the goodput objective is above zero) and the
#   scrape-target alert.
# custom:
#   id: policy.observability-slo-alerts
#   severity: error
#   scope: tenant
package kitchen.rules.observability_alerts

import data.kitchen.lib

enabled if object.get(data.kitchen.lib.env, ["observability", "enabled"], true) == true

slo := object.get(data.kitchen.lib.env, "slo", {})

required contains "KitchenTTFTAboveSLO"

required contains "KitchenTPOTAboveSLO"

required contains "KitchenVllmTargetDown"

required contains "KitchenE2ELatencyAboveSLO" if object.get(slo, "e2e_p95_ms", null) != null

required contains "KitchenOutputThroughputBelowSLO" if object.get(slo, "min_output_tokens_per_s", 0) > 0

required contains name if {
	object.get(slo, "goodput_min_ratio", 0) > 0
	some name in ["KitchenGoodputBudgetBurnFast", "KitchenGoodputBudgetBurnSlow"]
}

# [namespace, alert name] of every alert rendered in a PrometheusRule.
alerts contains [ns, name] if {
	some r in lib.resources_of_kind("PrometheusRule")
	ns := r.manifest.metadata.namespace
	some g in lib.list_at(r.manifest.spec, "groups")
	some rule in lib.list_at(g, "rules")
	name := rule.alert
	name
}

violation contains v if {
	enabled
	some s in data.kitchen.lib.services
	some name in required
	not [s.namespace, name] in alerts
	msg := sprintf("%s/%s has no alert %s in its namespace's PrometheusRule, although observability is on in %s", [s.namespace, s.inference_service, name, data.kitchen.lib.env.name])
	v := {
		"msg": msg,
		"at": lib.at(data.kitchen.lib.env, "slo"),
		"resource": lib.service_resource(s),
		"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
		"expected": sprintf("alert %s (docs/observability.md)", [name]),
	}
}
