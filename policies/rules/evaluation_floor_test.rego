package kitchen.rules.evaluation_floor_test

import data.kitchen.fixtures
import data.kitchen.rules.evaluation_floor

evaluated(e) := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"evaluation": e}}}})

test_pass_threshold_at_floor if {
	count(evaluation_floor.violation) == 0 with input as evaluated({"metric": "rougeL", "score": 0.5, "threshold": 0.4, "higher_is_better": true})
}

test_pass_not_required if {
	patched := object.union(evaluated({"metric": "rougeL", "score": 0.5, "threshold": 0, "higher_is_better": true}), {"environment": {"gates": {"require_evaluation": false}}})
	count(evaluation_floor.violation) == 0 with input as patched
}

test_fail_threshold_zero if {
	vs := evaluation_floor.violation with input as evaluated({"metric": "rougeL", "score": 0.1, "threshold": 0, "higher_is_better": true})
	count(vs) == 1
	some v in vs
	v.at.path == "evaluation.threshold"
}

test_fail_direction_flipped if {
	vs := evaluation_floor.violation with input as evaluated({"metric": "rougeL", "score": 0.1, "threshold": 0.5, "higher_is_better": false})
	count(vs) == 1
	some v in vs
	v.at.path == "evaluation.higher_is_better"
}

test_fail_unknown_metric if {
	vs := evaluation_floor.violation with input as evaluated({"metric": "vibes", "score": 1, "threshold": 1, "higher_is_better": true})
	count(vs) == 1
	some v in vs
	v.at.path == "evaluation.metric"
}

# a lower-is-better metric from the data: the floor is a ceiling
test_fail_lower_is_better_above_floor if {
	e := {"metric": "wer", "score": 0.1, "threshold": 0.5, "higher_is_better": false}
	vs := evaluation_floor.violation with input as evaluated(e) with data.kitchen.params.evaluation_metrics as {"wer": {"higher_is_better": false, "floor": 0.2}}
	count(vs) == 1
}
