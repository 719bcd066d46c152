package kitchen.rules.gpu_quota_test

import data.kitchen.fixtures
import data.kitchen.rules.gpu_quota

test_pass_quota_fits if {
	count(gpu_quota.violation) == 0 with input as fixtures.clean
}

test_fail_quota_above_gpus if {
	patched := fixtures.with_patch({"environment": {"cluster": {"gpu": {"per_node": 1}}}})
	count(gpu_quota.violation) == 1 with input as patched
}
