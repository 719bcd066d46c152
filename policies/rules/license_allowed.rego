# METADATA
# title: Base licenses allowed per environment
# description: >-
#   Every base model an environment serves has a license the environment allows
#   (`gates.allowed_licenses`), compared as SPDX compares ids: case-insensitively.
# custom:
#   id: policy.license-allowed
#   severity: error
#   scope: tenant
package kitchen.rules.license_allowed

import data.kitchen.lib

# SPDX license ids match case-insensitively ("Apache-2.0" is "apache-2.0").
allowed(id) if {
	some a in data.kitchen.lib.env.gates.allowed_licenses
	lower(a) == lower(id)
}

violation contains v if {
	some s in data.kitchen.lib.services
	base := input.catalog.bases[s.base]
	not allowed(base.license.id)
	msg := sprintf("base %s has license %s, which environment %s does not allow", [s.base, base.license.id, data.kitchen.lib.env.name])
	v := lib.service_violation(s, base, "license.id", sprintf("Base/%s", [s.base]), msg, sprintf("one of %s", [concat(", ", data.kitchen.lib.env.gates.allowed_licenses)]))
}
