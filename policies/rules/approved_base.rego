# METADATA
# title: Gated environments serve only approved bases
# description: >-
#   Where the environment sets `gates.require_approved_base` (production, staging),
#   every base it serves has `license.approval.approved: true` and names its approver.
# custom:
#   id: policy.approved-base
#   severity: error
#   scope: tenant
package kitchen.rules.approved_base

import data.kitchen.lib

approved(base) if {
	base.license.approval.approved == true
	is_string(base.license.approval.approver)
	base.license.approval.approver != ""
}

violation contains v if {
	data.kitchen.lib.env.gates.require_approved_base
	some s in data.kitchen.lib.services
	base := input.catalog.bases[s.base]
	not approved(base)
	msg := sprintf("base %s is not approved (with an approver recorded), which environment %s requires", [s.base, data.kitchen.lib.env.name])
	v := lib.service_violation(s, base, "license.approval", sprintf("Base/%s", [s.base]), msg, "license.approval.approved: true and an approver")
}
