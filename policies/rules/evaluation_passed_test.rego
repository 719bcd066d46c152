package kitchen.rules.evaluation_passed_test

import data.kitchen.fixtures
import data.kitchen.rules.evaluation_passed

test_pass_evaluation_passed if {
	count(evaluation_passed.violation) == 0 with input as fixtures.clean
}

test_fail_below_threshold if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"evaluation": {"score": 0.5}}}}})
	count(evaluation_passed.violation) == 1 with input as patched
}

test_fail_no_evaluation if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"evaluation": null}}}})
	count(evaluation_passed.violation) == 1 with input as patched
}

test_pass_lower_is_better if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"evaluation": {"score": 0.1, "threshold": 0.2, "higher_is_better": false}}}}})
	count(evaluation_passed.violation) == 0 with input as patched
}

# the metric's direction comes from the policy data: a flavor cannot pass by flipping it
test_fail_direction_flipped_by_flavor if {
	e := {"metric": "rougeL", "score": 0.1, "threshold": 0.5, "higher_is_better": false}
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"evaluation": e}}}})
	count(evaluation_passed.violation) == 1 with input as patched
}
