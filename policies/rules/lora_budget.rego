# METADATA
# title: Flavors per InferenceService within the max_loras budget
# description: >-
#   An InferenceService serves at most the environment's `serving.vllm.max_loras`
#   flavors. Beyond that budget adapters are swapped between CPU and GPU on every
#   batch that mixes them, and latency SLOs stop holding.
# custom:
#   id: policy.lora-budget
#   severity: error
package kitchen.rules.lora_budget

import data.kitchen.lib

violation contains v if {
	budget := lib.env.serving.vllm.max_loras
	some t in input.plan.tenants
	some s in t.services
	count(s.flavors) > budget
	tenant := input.catalog.tenants[t.tenant]
	msg := sprintf("%s/%s serves %d flavors, above environment %s's max_loras budget of %d", [s.namespace, s.inference_service, count(s.flavors), lib.env.name, budget])
	v := lib.service_violation(s, tenant, sprintf("environments.%s.flavors", [lib.env.name]), sprintf("Tenant/%s", [t.tenant]), msg, sprintf("at most %d flavors per base model", [budget]))
}
