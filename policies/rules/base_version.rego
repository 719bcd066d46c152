# METADATA
# title: A flavor attaches only to the base version it was trained on
# description: >-
#   Every adapter an InferenceService loads was trained on exactly the base name and
#   version that InferenceService serves. A LoRA trained on another base version
#   loads without error and answers wrongly. Also caught: a flavor whose `source`
#   points at the adapter files of a flavor trained on another base (a copy-pasted path).
# custom:
#   id: policy.base-version
#   severity: error
#   scope: tenant
package kitchen.rules.base_version

import data.kitchen.lib

trained_on(f) := sprintf("%s@%s", [f.base.name, f.base.version])

# Flavor refs by adapter source, over the whole catalog (computed once).
by_source[src] contains ref if {
	some ref, f in input.catalog.flavors
	src := f.source
}

sources := by_source

violation contains v if {
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	trained_on(f) != s.base
	msg := sprintf("flavor %s was trained on %s but is attached to %s", [ref, trained_on(f), s.base])
	v := lib.service_violation(s, f, "base", sprintf("Flavor/%s", [ref]), msg, sprintf("a flavor trained on %s", [s.base]))
}

violation contains v if {
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	some other in sources[f.source]
	other != ref
	g := input.catalog.flavors[other]
	trained_on(g) != s.base
	msg := sprintf("flavor %s loads %s, the adapter of %s, which was trained on %s, not %s", [ref, f.source, other, trained_on(g), s.base])
	v := lib.service_violation(s, f, "source", sprintf("Flavor/%s", [ref]), msg, sprintf("the adapter of %s, trained on %s", [ref, s.base]))
}
