# METADATA
# title: --trust-remote-code only for allowlisted bases
# description: >-
#   `--trust-remote-code` runs Python shipped with the model. An InferenceService
#   may pass it only when its base is on the environment's
#   `gates.trust_remote_code_allowlist`.
# custom:
#   id: policy.trust-remote-code
#   severity: error
package kitchen.rules.trust_remote_code

import data.kitchen.lib

trusts(r) if {
	some arg in r.manifest.spec.predictor.model.args
	startswith(arg, "--trust-remote-code")
	arg != "--trust-remote-code=false"
}

allowlisted(base) if base.name in lib.env.gates.trust_remote_code_allowlist

violation contains v if {
	some r in lib.resources_of_kind("InferenceService")
	trusts(r)
	ref := lib.annotation(r, "kitchen-gitops.io/base")
	base := input.catalog.bases[ref]
	not allowlisted(base)
	msg := sprintf("%s runs base %s with --trust-remote-code, but %s is not on environment %s's allowlist", [lib.resource_id(r), ref, base.name, lib.env.name])
	v := object.union(lib.resource_violation(r, msg, "trust_remote_code: false, or the base on gates.trust_remote_code_allowlist"), {"at": lib.at(base, "trust_remote_code"), "object": sprintf("Base/%s", [ref])})
}

violation contains v if {
	some r in lib.resources_of_kind("InferenceService")
	trusts(r)
	not input.catalog.bases[object.get(r.manifest.metadata, ["annotations", "kitchen-gitops.io/base"], "")]
	msg := sprintf("%s passes --trust-remote-code for a base that is not in the catalog", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "no --trust-remote-code")
}
