# METADATA
# title: Endpoints require authentication where the environment requires it
# description: >-
#   At the gate strictness levels listed in `auth_required_strictness`
#   (policies/data.yaml: standard and strict), the environment enables
#   `serving.auth` and every InferenceService carries the
#   `security.opendatahub.io/enable-auth: "true"` annotation.
# custom:
#   id: policy.auth-required
#   severity: error
#   scope: tenant
package kitchen.rules.auth_required

import data.kitchen.lib

auth_annotation := "security.opendatahub.io/enable-auth"

protected(r) if lib.annotation(r, auth_annotation) == "true"

required if data.kitchen.lib.strictness in data.kitchen.lib.params.auth_required_strictness

violation contains v if {
	required
	some kind in {"InferenceService", "LLMInferenceService"}
	some r in lib.resources_of_kind(kind)
	not protected(r)
	msg := sprintf("%s accepts unauthenticated requests, but environment %s (%s gates) requires authentication", [lib.resource_id(r), data.kitchen.lib.env.name, data.kitchen.lib.strictness])
	at := {true: lib.at(data.kitchen.lib.env, "serving.auth"), false: r._source}[data.kitchen.lib.env.serving.auth == false]
	v := object.union(lib.resource_violation(r, msg, "serving.auth: true"), {"at": at})
}
