# METADATA
# title: Adapter rank within the environment's maximum
# description: >-
#   A flavor's LoRA rank is at most the environment's `serving.vllm.max_lora_rank`.
#   vLLM preallocates every LoRA slot at `--max-lora-rank`, so one high-rank adapter
#   costs GPU memory for all of them — or fails to load. The rendered
#   `--max-lora-rank` of every InferenceService (read as vLLM reads its argv) is held
#   to the same maximum: a maximum vLLM does not support (48) renders the next rank
#   it does (64).
# custom:
#   id: policy.lora-rank
#   severity: error
#   scope: tenant
package kitchen.rules.lora_rank

import data.kitchen.lib

violation contains v if {
	max_rank := data.kitchen.lib.env.serving.vllm.max_lora_rank
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	f.rank > max_rank
	msg := sprintf("flavor %s has rank %d, above environment %s's maximum %d", [ref, f.rank, data.kitchen.lib.env.name, max_rank])
	v := lib.service_violation(s, f, "rank", sprintf("Flavor/%s", [ref]), msg, sprintf("rank <= %d", [max_rank]))
}

# A flavor of the InferenceService `r` already above the maximum: reported (and waived)
# on the flavor, not again on what it renders.
declared_above(r) if {
	some s in data.kitchen.lib.services
	s.namespace == r.manifest.metadata.namespace
	s.inference_service == r.manifest.metadata.name
	some ref in s.flavors
	input.catalog.flavors[ref].rank > data.kitchen.lib.env.serving.vllm.max_lora_rank
}

violation contains v if {
	max_rank := data.kitchen.lib.env.serving.vllm.max_lora_rank
	some x in data.kitchen.lib.serving_containers
	r := input.resources[x.i]
	rendered := x.flags["--max-lora-rank"]
	to_number(rendered) > max_rank
	not declared_above(r)
	msg := sprintf("%s renders --max-lora-rank=%v, above environment %s's maximum %d", [lib.resource_id(r), rendered, data.kitchen.lib.env.name, max_rank])
	v := object.union(lib.resource_violation(r, msg, sprintf("--max-lora-rank <= %d", [max_rank])), {"at": lib.at(data.kitchen.lib.env, "serving.vllm.max_lora_rank")})
}

# An LLMInferenceService carries the rank in its spec; KServe's controller writes the flag.
violation contains v if {
	max_rank := data.kitchen.lib.env.serving.vllm.max_lora_rank
	some r in lib.resources_of_kind("LLMInferenceService")
	rendered := object.get(r.manifest.spec, ["model", "lora", "maxRank"], 0)
	to_number(rendered) > max_rank
	not declared_above(r)
	msg := sprintf("%s sets spec.model.lora.maxRank=%v, above environment %s's maximum %d", [lib.resource_id(r), rendered, data.kitchen.lib.env.name, max_rank])
	v := object.union(lib.resource_violation(r, msg, sprintf("maxRank <= %d", [max_rank])), {"at": lib.at(data.kitchen.lib.env, "serving.vllm.max_lora_rank")})
}
