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
