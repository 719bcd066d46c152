package kitchen.rules.promotion_order_test

import data.kitchen.fixtures
import data.kitchen.rules.promotion_order

test_pass_promoted_from_staging if {
	count(promotion_order.violation) == 0 with input as fixtures.clean
}

test_fail_not_in_staging if {
	patched := object.union(fixtures.clean, {"promotion": {"from": "staging", "flavors": {"faq@v1": false}}})
	vs := promotion_order.violation with input as patched
	count(vs) == 1
	some v in vs
	v.at.file == "catalog/tenants/support.yaml"
	v.at.path == "environments.prod.flavors.0"
}

test_pass_first_environment if {
	patched := object.union(fixtures.clean, {"promotion": null})
	count(promotion_order.violation) == 0 with input as patched
}

unpromoted := {"promotion": {"from": "staging", "flavors": {"faq@v1": false}}}

# the tenant leaves its namespace to the default: the input holds "namespace": null
test_fail_not_in_staging_namespace_defaulted if {
	patched := object.union(fixtures.clean, object.union(unpromoted, {"catalog": {"tenants": {"support": {"namespace": null}}}}))
	vs := promotion_order.violation with input as patched
	count(vs) == 1
}

# the tenant's namespace differs from its name
test_fail_not_in_staging_namespace_explicit if {
	patch := {
		"catalog": {"tenants": {"support": {"namespace": "support-ns"}}},
		"plan": {"tenants": [{"tenant": "support", "namespace": "support-ns", "gpu_quota": 2, "services": [object.union(fixtures.service, {"namespace": "support-ns"})]}]},
	}
	patched := object.union(fixtures.clean, object.union(unpromoted, patch))
	vs := promotion_order.violation with input as patched
	count(vs) == 1
}

# a tenant whose environment lists no flavors (null in a hand-made input) is no error
test_pass_flavors_null if {
	patched := object.union(fixtures.clean, object.union(unpromoted, {"catalog": {"tenants": {"support": {"environments": {"prod": {"flavors": null}}}}}}))
	count(promotion_order.violation) == 0 with input as patched
}
