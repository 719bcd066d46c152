# METADATA
# title: Serving runtimes run offline in air-gapped environments
# description: >-
#   In an environment with `gates.air_gapped`, every serving runtime container sets
#   the offline switches (`HF_HUB_OFFLINE=1`, `TRANSFORMERS_OFFLINE=1`; the list is
#   `offline_env` in policies/data.yaml), so vLLM and transformers never try to reach
#   a model hub. The last entry of a name wins (a second `HF_HUB_OFFLINE=0` undoes the
#   first), and the InferenceService predictor's model, whose env KServe merges over
#   the runtime's, sets none of them to anything else.
# custom:
#   id: policy.offline-runtime
#   severity: error
#   scope: tenant
package kitchen.rules.offline_runtime

import data.kitchen.lib

# The last entry of a name wins: a second HF_HUB_OFFLINE=0 after the first undoes it.
env_set(c, name, value) if lib.env_value(c, name) == value

violation contains v if {
	data.kitchen.lib.env.gates.air_gapped
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	r.manifest.kind in {"ServingRuntime", "InferenceService", "LLMInferenceService"}
	some name, value in data.kitchen.lib.params.offline_env
	not env_set(x.container, name, value)
	msg := sprintf("container %s of %s does not set %s=%s in air-gapped environment %s", [x.container.name, lib.resource_id(r), name, value, data.kitchen.lib.env.name])
	v := lib.resource_violation(r, msg, sprintf("env %s=%s", [name, value]))
}

# The predictor's model may set env of its own, which KServe merges over the runtime's.
violation contains v if {
	data.kitchen.lib.env.gates.air_gapped
	some x in data.kitchen.lib.model_overrides
	r := input.resources[x.i]
	some name, value in data.kitchen.lib.params.offline_env
	got := lib.env_value(x.container, name)
	got != value
	msg := sprintf("the predictor model of %s sets %s=%v over the runtime's, in air-gapped environment %s", [lib.resource_id(r), name, got, data.kitchen.lib.env.name])
	v := lib.resource_violation(r, msg, sprintf("env %s=%s, or none in the predictor model", [name, value]))
}
