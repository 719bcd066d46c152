# METADATA
# title: vLLM's switches past the checks stay off
# description: >-
#   No serving container (a ServingRuntime's, an InferenceService predictor's model or
#   containers, an LLMInferenceService's) turns on a vLLM environment switch that lets
#   the server load or run what no check read: adapters loaded through the API or
#   resolved from a folder at request time, development endpoints, unpickling, another
#   model hub, lengths beyond the model's (the list and why each is `forbidden_runtime_env`
#   in policies/data.yaml). Off is unset, empty, `0` or `false`; the last entry of a name
#   wins, and a value from a Secret or ConfigMap counts as on (no check can read it).
# custom:
#   id: policy.runtime-env
#   severity: error
#   scope: tenant
#   remediation: Remove the variable from the template (or set it to 0); adapters are served from the catalog, through a sync.
package kitchen.rules.runtime_env

import data.kitchen.lib

forbidden := object.get(data.kitchen.lib.params, "forbidden_runtime_env", {})

off_values := {"", "0", "false"}

switched_on(c, name) if {
	value := lib.env_value(c, name)
	value == null
}

switched_on(c, name) if {
	value := lib.env_value(c, name)
	is_string(value)
	not lower(trim_space(value)) in off_values
}

switched_on(c, name) if {
	value := lib.env_value(c, name)
	not is_string(value)
	value != null
}

serving_kinds := {"ServingRuntime", "InferenceService", "LLMInferenceService"}

serving_containers contains x if {
	some x in data.kitchen.lib.containers
	input.resources[x.i].manifest.kind in serving_kinds
}

serving_containers contains x if {
	some x in data.kitchen.lib.model_overrides
}

violation contains v if {
	some x in serving_containers
	r := input.resources[x.i]
	some entry in lib.env_vars(x.container)
	name := entry.name
	why := forbidden[name]
	switched_on(x.container, name)
	msg := sprintf("container %s of %s turns on %s=%v, which %s", [object.get(x.container, "name", "model"), lib.resource_id(r), name, lib.env_value(x.container, name), why])
	v := lib.resource_violation(r, msg, sprintf("%s unset, or 0", [name]))
}
