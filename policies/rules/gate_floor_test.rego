package kitchen.rules.gate_floor_test

import data.kitchen.fixtures
import data.kitchen.rules.gate_floor

# The fixtures' prod environment against these floors.  Each floor sets every field the
# library's own floor of that name sets: OPA merges a `with data.…` object into the data
# underneath where regorus replaces it, so a field left out would differ by engine.
floors := {
	"environments": {
		"prod": {
			"strictness": "strict", "fail_on_warn": true, "air_gapped": true,
			"require_evaluation": true, "registries": ["registry.prod.internal:5000"],
			"licenses": ["Apache-2.0"], "trust_remote_code": [], "promotes_from": "staging",
		},
		"dev": {
			"strictness": "relaxed", "air_gapped": false, "registries": ["registry.prod.internal:5000"],
			"licenses": ["apache-2.0"], "trust_remote_code": [], "promotes_from": null,
		},
	},
	"unnamed": "prod",
	"clusters": {"osaka": "prod"},
}

at_floor := fixtures.with_patch({
	"environment": {
		"promotes_from": "staging",
		"gates": {"strictness": "strict", "fail_on_warn": true, "air_gapped": true, "require_evaluation": true},
	},
})

violations(patch) := vs if {
	vs := gate_floor.violation with input as object.union(at_floor, patch) with data.kitchen.params.gate_floors as floors
}

test_pass_at_floor if {
	count(violations({})) == 0
}

test_pass_tighter_than_floor if {
	count(violations({"environment": {"gates": {"allowed_licenses": []}}})) == 0
}

test_fail_strictness_loosened if {
	vs := violations({"environment": {"gates": {"strictness": "standard"}}})
	count(vs) == 1
	some v in vs
	v.at.path == "gates.strictness"
}

# a defaulted field (absent from a hand-made input) is held to the floor as well
test_fail_fail_on_warn_defaulted if {
	patched := json.remove(at_floor, ["environment/gates/fail_on_warn"])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	count(vs) == 1
}

test_fail_public_registry if {
	vs := violations({"environment": {"registry": {"allowed": ["registry.prod.internal:5000", "docker.io"]}}})
	count(vs) == 1
	some v in vs
	v.at.path == "registry.allowed.1"
}

test_fail_license_outside_floor if {
	vs := violations({"environment": {"gates": {"allowed_licenses": ["apache-2.0", "gpl-3.0"]}}})
	count(vs) == 1
	some v in vs
	v.at.path == "gates.allowed_licenses.1"
}

test_fail_trust_remote_code if {
	count(violations({"environment": {"gates": {"trust_remote_code_allowlist": ["qwen"]}}})) == 1
}

test_fail_promotion_removed if {
	vs := violations({"environment": {"promotes_from": null}})
	count(vs) == 1
	some v in vs
	v.at.path == "promotes_from"
}

# an environment the floors do not name gets the strictest floor (`unnamed`)
test_fail_unnamed_environment if {
	vs := violations({"environment": {"name": "prod2", "gates": {"strictness": "relaxed"}}})
	count(vs) == 1
}

# a dev environment on the prod cluster is held to the prod floor too
test_fail_cluster_floor if {
	vs := violations({"environment": {"name": "dev", "promotes_from": null, "cluster": {"name": "osaka"}, "gates": {"strictness": "relaxed"}}})
	count(vs) == 2 # strictness, and promotes_from (prod's floor: staging)
}

test_pass_dev_floor if {
	count(violations({"environment": {"name": "dev", "promotes_from": null, "gates": {"strictness": "relaxed"}}})) == 0
}
