# METADATA
# title: Air-gapped environments load models only from approved storage
# description: >-
#   In an environment with `gates.air_gapped`, the base model and every adapter an
#   InferenceService loads come from approved storage: a `pvc://` claim or the
#   environment's own S3 (`s3://`) — never `hf://`, `http(s)://` or another public
#   store (the schemes are `air_gapped_schemes` in policies/data.yaml).
# custom:
#   id: policy.storage-approved
#   severity: error
#   scope: tenant
package kitchen.rules.storage_approved

import data.kitchen.lib

scheme(uri) := lower(split(uri, "://")[0]) if contains(uri, "://")

scheme(uri) := "" if not contains(uri, "://")

approved(uri) if scheme(uri) in data.kitchen.lib.params.air_gapped_schemes

violation contains v if {
	data.kitchen.lib.env.gates.air_gapped
	some s in data.kitchen.lib.services
	item := input.catalog.bases[s.base]
	not approved(item.source)
	msg := sprintf("base %s loads from %s, which is not approved storage in air-gapped environment %s", [s.base, item.source, data.kitchen.lib.env.name])
	v := lib.service_violation(s, item, "source", sprintf("Base/%s", [s.base]), msg, sprintf("a %s URI", [concat(" or ", [sprintf("%s://", [x]) | some x in data.kitchen.lib.params.air_gapped_schemes])]))
}

violation contains v if {
	data.kitchen.lib.env.gates.air_gapped
	some s in data.kitchen.lib.services
	some ref in s.flavors
	item := input.catalog.flavors[ref]
	not approved(item.source)
	msg := sprintf("flavor %s loads from %s, which is not approved storage in air-gapped environment %s", [ref, item.source, data.kitchen.lib.env.name])
	v := lib.service_violation(s, item, "source", sprintf("Flavor/%s", [ref]), msg, sprintf("a %s URI", [concat(" or ", [sprintf("%s://", [x]) | some x in data.kitchen.lib.params.air_gapped_schemes])]))
}
