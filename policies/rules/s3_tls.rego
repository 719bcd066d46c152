# METADATA
# title: S3 endpoints use verified TLS in production
# description: >-
#   At the gate strictness levels listed in `tls_required_strictness`
#   (policies/data.yaml: strict, i.e. production), the environment's S3 endpoint is
#   reached over HTTPS with certificate verification, so adapters cannot be swapped
#   in transit. The rendered endpoint is read too: an `http://` scheme (any case)
#   means plain HTTP whatever `use_https` says.
# custom:
#   id: policy.s3-tls
#   severity: error
#   scope: tenant
package kitchen.rules.s3_tls

import data.kitchen.lib

required if data.kitchen.lib.strictness in data.kitchen.lib.params.tls_required_strictness

checks := [
	{"annotation": "serving.kserve.io/s3-usehttps", "field": "storage.s3.use_https", "what": "plain HTTP"},
	{"annotation": "serving.kserve.io/s3-verifyssl", "field": "storage.s3.verify_ssl", "what": "TLS without certificate verification"},
]

violation contains v if {
	required
	some r in lib.resources_of_kind("ServiceAccount")
	some check in checks
	value := lib.annotation(r, check.annotation)
	value != "1"
	msg := sprintf("%s reaches S3 at %s over %s in environment %s", [lib.resource_id(r), data.kitchen.lib.env.storage.s3.endpoint, check.what, data.kitchen.lib.env.name])
	v := object.union(lib.resource_violation(r, msg, sprintf("%s: true", [check.field])), {"at": lib.at(data.kitchen.lib.env, check.field)})
}

# The endpoint as rendered: a scheme of its own overrides use_https, in any case
# ("HTTP://" is plain HTTP too).
violation contains v if {
	required
	some r in lib.resources_of_kind("ServiceAccount")
	endpoint := lib.annotation(r, "serving.kserve.io/s3-endpoint")
	is_string(endpoint)
	startswith(lower(endpoint), "http://")
	msg := sprintf("%s reaches S3 at %s over plain HTTP in environment %s", [lib.resource_id(r), endpoint, data.kitchen.lib.env.name])
	v := object.union(lib.resource_violation(r, msg, "an endpoint without http:// (use_https: true), or https://"), {"at": lib.at(data.kitchen.lib.env, "storage.s3.endpoint")})
}
