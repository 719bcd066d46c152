# METADATA
# title: Serving runtimes run offline in air-gapped environments
# description: >-
#   In an environment with `gates.air_gapped`, every serving runtime container sets
#   the offline switches (`HF_HUB_OFFLINE=1`, `TRANSFORMERS_OFFLINE=1`; the list is
#   `offline_env` in policies/data.yaml), so vLLM and transformers never try to reach
#   a model hub.
# custom:
#   id: policy.offline-runtime
#   severity: error
package kitchen.rules.offline_runtime

import data.kitchen.lib

env_set(c, name, value) if {
	some e in lib.env_vars(c)
	e.name == name
	e.value == value
}

violation contains v if {
	lib.env.gates.air_gapped
	some x in lib.containers
	r := input.resources[x.i]
	r.manifest.kind in {"ServingRuntime", "InferenceService"}
	some name, value in lib.params.offline_env
	not env_set(x.container, name, value)
	msg := sprintf("container %s of %s does not set %s=%s in air-gapped environment %s", [x.container.name, lib.resource_id(r), name, value, lib.env.name])
	v := lib.resource_violation(r, msg, sprintf("env %s=%s", [name, value]))
}
