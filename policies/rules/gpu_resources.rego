# METADATA
# title: A GPU is requested, and GPU requests equal limits
# description: >-
#   Every InferenceService requests at least one GPU of the environment's GPU
#   resource (`cluster.gpu.resource`), and its GPU limit equals its request:
#   Kubernetes does not overcommit extended resources, and a mismatch is rejected
#   or leaves the model server without the GPUs vLLM was planned for.
# custom:
#   id: policy.gpu-request-limit
#   severity: error
#   scope: tenant
package kitchen.rules.gpu_resources

import data.kitchen.lib

gpu := data.kitchen.lib.env.cluster.gpu.resource

model_resources(r) := object.get(r.manifest, ["spec", "predictor", "model", "resources"], {}) if {
	r.manifest.kind == "InferenceService"
}

# an LLMInferenceService's vLLM container: `main` in its template
model_resources(r) := object.get(c, "resources", {}) if {
	r.manifest.kind == "LLMInferenceService"
	mains := [x | some x in lib.list_at(object.get(r.manifest.spec, "template", {}), "containers"); x.name == "main"]
	count(mains) > 0
	c := mains[0]
}

serving_kinds := {"InferenceService", "LLMInferenceService"}

requested(res) if to_number(res.requests[gpu]) > 0

limit_matches(res) if to_number(res.limits[gpu]) == to_number(res.requests[gpu])

violation contains v if {
	some r in input.resources
	r.manifest.kind in serving_kinds
	not requested(model_resources(r))
	msg := sprintf("%s requests no %s", [lib.resource_id(r), gpu])
	v := lib.resource_violation(r, msg, sprintf("resources.requests[%s] of at least 1", [gpu]))
}

violation contains v if {
	some r in input.resources
	r.manifest.kind in serving_kinds
	res := model_resources(r)
	requested(res)
	not limit_matches(res)
	msg := sprintf("%s requests %v %s but limits it to %v", [lib.resource_id(r), res.requests[gpu], gpu, object.get(res, ["limits", gpu], "nothing")])
	v := lib.resource_violation(r, msg, sprintf("limits[%s] equal to requests[%s]", [gpu, gpu]))
}
