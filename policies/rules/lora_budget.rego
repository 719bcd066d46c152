# METADATA
# title: Flavors per InferenceService within the max_loras budget
# description: >-
#   An InferenceService serves at most the environment's `serving.vllm.max_loras`
#   adapter names: flavor versions and aliases (vLLM loads an alias as an adapter of
#   its own). Beyond that budget adapters are swapped between CPU and GPU on every
#   batch that mixes them, and latency SLOs stop holding.
# custom:
#   id: policy.lora-budget
#   severity: error
#   scope: tenant
package kitchen.rules.lora_budget

import data.kitchen.lib

violation contains v if {
	budget := data.kitchen.lib.env.serving.vllm.max_loras
	some t in input.plan.tenants
	some s in t.services
	served := count(lib.list_at(s, "adapters"))
	served > budget
	tenant := input.catalog.tenants[t.tenant]
	msg := sprintf("%s/%s serves %d adapters (flavor versions and aliases), above environment %s's max_loras budget of %d", [s.namespace, s.inference_service, served, data.kitchen.lib.env.name, budget])
	v := lib.service_violation(s, tenant, sprintf("environments.%s.flavors", [data.kitchen.lib.env.name]), sprintf("Tenant/%s", [t.tenant]), msg, sprintf("at most %d adapters per base model", [budget]))
}
