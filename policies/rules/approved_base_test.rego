package kitchen.rules.approved_base_test

import data.kitchen.fixtures
import data.kitchen.rules.approved_base

test_pass_approved if {
	count(approved_base.violation) == 0 with input as fixtures.clean
}

test_fail_no_approver if {
	patched := fixtures.with_patch({"catalog": {"bases": {"qwen@2.5": {"license": {"approval": {"approved": false, "approver": null}}}}}})
	count(approved_base.violation) == 1 with input as patched
}

test_pass_not_required if {
	patched := fixtures.with_patch({
		"environment": {"gates": {"require_approved_base": false}},
		"catalog": {"bases": {"qwen@2.5": {"license": {"approval": {"approved": false}}}}},
	})
	count(approved_base.violation) == 0 with input as patched
}
