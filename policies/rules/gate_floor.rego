# METADATA
# title: Environments do not loosen the gates policies/ sets for them
# description: >-
#   The policy data (`gate_floors`, owned by security with the rest of `policies/`)
#   sets the minimum gates of each environment by name and by cluster; an environment
#   file may tighten its gates but never loosen them: strictness at least the floor's,
#   `fail_on_warn`, `air_gapped`, `require_approved_base` and `require_evaluation` on
#   where the floor turns them on, registries, licenses (compared as SPDX ids) and the
#   trust-remote-code allowlist within the floor's, and `promotes_from` as the floor
#   says. An environment the floors do not name is held to the `unnamed` floor (the
#   strictest), and every environment to the floor of its cluster too.
# custom:
#   id: policy.gate-floor
#   severity: error
#   remediation: Restore the environment's gate to at least its floor, or have security change the floor in policies/data.yaml.
package kitchen.rules.gate_floor

import data.kitchen.lib

floors := object.get(lib.params, "gate_floors", {})

named := object.get(floors, "environments", {})

# The names of the floors that hold this environment: its own (else the `unnamed` one)
# and its cluster's.
applies contains name if {
	name := lib.env.name
	named[name]
}

applies contains name if {
	not named[lib.env.name]
	name := floors.unnamed
}

applies contains name if {
	cluster := lib.env.cluster.name
	name := object.get(floors, "clusters", {})[cluster]
}

level := {"relaxed": 0, "standard": 1, "strict": 2}

flags := ["fail_on_warn", "air_gapped", "require_approved_base", "require_evaluation"]

gates := object.get(lib.env, "gates", {})

floor_violation(field, msg, floor_name, expected) := {
	"msg": sprintf("environment %s %s, below the floor %s that policies/ sets for it", [lib.env.name, msg, floor_name]),
	"at": lib.at(lib.env, field),
	"object": sprintf("Environment/%s", [lib.env.name]),
	"expected": expected,
}

license_in(id, ids) if {
	some a in ids
	lower(a) == lower(id)
}

violation contains v if {
	some name in applies
	want := named[name].strictness
	got := object.get(gates, "strictness", "standard")
	level[got] < level[want]
	v := floor_violation("gates.strictness", sprintf("sets strictness %s", [got]), name, sprintf("strictness %s or stricter", [want]))
}

violation contains v if {
	some name in applies
	some flag in flags
	named[name][flag] == true
	object.get(gates, flag, false) != true
	v := floor_violation(sprintf("gates.%s", [flag]), sprintf("turns %s off", [flag]), name, sprintf("%s: true", [flag]))
}

violation contains v if {
	some name in applies
	allowed := named[name].registries
	some i, r in lib.list_at(object.get(lib.env, "registry", {}), "allowed")
	not r in allowed
	v := floor_violation(sprintf("registry.allowed.%d", [i]), sprintf("allows registry %s", [r]), name, sprintf("registries within %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].registries
	r := lib.env.registry.internal
	not r in allowed
	v := floor_violation("registry.internal", sprintf("pulls from registry %s", [r]), name, sprintf("one of %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].licenses
	some i, id in lib.list_at(gates, "allowed_licenses")
	not license_in(id, allowed)
	v := floor_violation(sprintf("gates.allowed_licenses.%d", [i]), sprintf("allows license %s", [id]), name, sprintf("licenses within %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].trust_remote_code
	some i, base in lib.list_at(gates, "trust_remote_code_allowlist")
	not base in allowed
	v := floor_violation(sprintf("gates.trust_remote_code_allowlist.%d", [i]), sprintf("lets base %s run remote code", [base]), name, sprintf("trust_remote_code only for %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	floor := named[name]
	"promotes_from" in object.keys(floor)
	want := floor.promotes_from
	got := object.get(lib.env, "promotes_from", null)
	got != want
	v := floor_violation("promotes_from", promotes_text(got), name, promotes_text(want))
}

promotes_text(from) := sprintf("promotes from %s", [from]) if is_string(from)

else := "promotes from no environment"
