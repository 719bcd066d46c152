# METADATA
# title: Flavor versions are promoted in order
# description: >-
#   A flavor version deployed in an environment is also deployed in the environment
#   it promotes from (`promotes_from`): what runs in prod ran in staging, and what
#   runs in staging ran in dev, as the environments' promotion chain says.
# custom:
#   id: policy.promotion-order
#   severity: error
#   scope: tenant
package kitchen.rules.promotion_order

import data.kitchen.lib

# The InferenceService of tenant `name` that serves `ref`.  Looked up by the plan's
# tenant, not by the catalog's `namespace`: a tenant that leaves its namespace to the
# default has `"namespace": null` in the input, and `object.get(tenant, "namespace", name)`
# gave null — the rule never fired for such a tenant.
service_of(name, ref) := s if {
	some s in data.kitchen.lib.services
	s.tenant == name
	ref in s.flavors
}

violation contains v if {
	source := input.promotion.from
	some name, tenant in input.catalog.tenants
	some i, f in lib.list_at(tenant.environments[data.kitchen.lib.env.name], "flavors")
	ref := sprintf("%s@%s", [f.name, f.version])
	not input.promotion.flavors[ref]
	s := service_of(name, ref)
	msg := sprintf("flavor %s is deployed in %s but not in %s, which %s promotes from", [ref, data.kitchen.lib.env.name, source, data.kitchen.lib.env.name])
	v := lib.service_violation(s, tenant, sprintf("environments.%s.flavors.%d", [data.kitchen.lib.env.name, i]), sprintf("Flavor/%s", [ref]), msg, sprintf("a flavor version already deployed in %s", [source]))
}
