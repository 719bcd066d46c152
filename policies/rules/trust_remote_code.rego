# METADATA
# title: --trust-remote-code only for allowlisted bases
# description: >-
#   `--trust-remote-code` runs Python shipped with the model. An InferenceService
#   may pass it only when its base is on the environment's
#   `gates.trust_remote_code_allowlist`; a ServingRuntime, shared by every base, never.
#   The rendered containers are read as vLLM's parser reads them: `--trust_remote_code`
#   is the same flag, `--flag=value` and `--flag value` alike, the last one wins.
# custom:
#   id: policy.trust-remote-code
#   severity: error
#   scope: tenant
package kitchen.rules.trust_remote_code

import data.kitchen.lib

# A container that runs remote code: --trust-remote-code in any spelling vLLM accepts
# (`--trust_remote_code`, `=true`), the last occurrence deciding.
trusts(x) if {
	value := x.flags["--trust-remote-code"]
	not value in {"false", "False", "0"}
}

allowlisted(base) if base.name in data.kitchen.lib.env.gates.trust_remote_code_allowlist

# Where the flag comes from: the environment's extra_args when it is there, else the base.
source_of(base) := lib.at(data.kitchen.lib.env, sprintf("serving.vllm.extra_args.%d", [i])) if {
	some i, arg in lib.list_at(data.kitchen.lib.env.serving.vllm, "extra_args")
	lib.flag_name(arg) == "--trust-remote-code"
} else := lib.at(base, "trust_remote_code")

violation contains v if {
	some x in data.kitchen.lib.serving_containers
	r := input.resources[x.i]
	r.manifest.kind in {"InferenceService", "LLMInferenceService"}
	trusts(x)
	ref := lib.annotation(r, "kitchen-gitops.io/base")
	base := input.catalog.bases[ref]
	not allowlisted(base)
	msg := sprintf("%s runs base %s with --trust-remote-code, but %s is not on environment %s's allowlist", [lib.resource_id(r), ref, base.name, data.kitchen.lib.env.name])
	v := object.union(lib.resource_violation(r, msg, "trust_remote_code: false, or the base on gates.trust_remote_code_allowlist"), {"at": source_of(base), "object": sprintf("Base/%s", [ref])})
}

violation contains v if {
	some x in data.kitchen.lib.serving_containers
	r := input.resources[x.i]
	r.manifest.kind in {"InferenceService", "LLMInferenceService"}
	trusts(x)
	not input.catalog.bases[object.get(r.manifest.metadata, ["annotations", "kitchen-gitops.io/base"], "")]
	msg := sprintf("%s passes --trust-remote-code for a base that is not in the catalog", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "no --trust-remote-code")
}

# A serving runtime is shared by every base of its namespace: remote code there is never allowlisted.
violation contains v if {
	some x in data.kitchen.lib.serving_containers
	r := input.resources[x.i]
	r.manifest.kind == "ServingRuntime"
	trusts(x)
	msg := sprintf("container %s of %s passes --trust-remote-code to every model it serves", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "no --trust-remote-code in a ServingRuntime")
}
