# METADATA
# title: Adapter rank within the environment's maximum
# description: >-
#   A flavor's LoRA rank is at most the environment's `serving.vllm.max_lora_rank`.
#   vLLM preallocates every LoRA slot at `--max-lora-rank`, so one high-rank adapter
#   costs GPU memory for all of them — or fails to load.
# custom:
#   id: policy.lora-rank
#   severity: error
package kitchen.rules.lora_rank

import data.kitchen.lib

violation contains v if {
	max_rank := lib.env.serving.vllm.max_lora_rank
	some s in lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	f.rank > max_rank
	msg := sprintf("flavor %s has rank %d, above environment %s's maximum %d", [ref, f.rank, lib.env.name, max_rank])
	v := lib.service_violation(s, f, "rank", sprintf("Flavor/%s", [ref]), msg, sprintf("rank <= %d", [max_rank]))
}
