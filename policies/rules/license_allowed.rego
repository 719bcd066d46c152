# METADATA
# title: Base licenses allowed per environment
# description: >-
#   Every base model an environment serves has a license the environment allows
#   (`gates.allowed_licenses`).
# custom:
#   id: policy.license-allowed
#   severity: error
package kitchen.rules.license_allowed

import data.kitchen.lib

violation contains v if {
	some s in lib.services
	base := input.catalog.bases[s.base]
	not base.license.id in lib.env.gates.allowed_licenses
	msg := sprintf("base %s has license %s, which environment %s does not allow", [s.base, base.license.id, lib.env.name])
	v := lib.service_violation(s, base, "license.id", sprintf("Base/%s", [s.base]), msg, sprintf("one of %s", [concat(", ", lib.env.gates.allowed_licenses)]))
}
