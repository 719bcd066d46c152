# METADATA
# title: Gated environments serve only flavors that passed their evaluation
# description: >-
#   Where the environment sets `gates.require_evaluation` (production, staging),
#   every flavor it serves records an evaluation whose score meets its threshold
#   (`score >= threshold`, or `<=` when lower is better). The metric's direction comes
#   from the policy data (`evaluation_metrics`), not from the flavor; the flavor's
#   `higher_is_better` counts only for a metric the data does not name.
# custom:
#   id: policy.evaluation-passed
#   severity: error
#   scope: tenant
package kitchen.rules.evaluation_passed

import data.kitchen.lib

# The metric's direction: the policy data's, else (a metric it does not name) the flavor's.
higher_is_better(e) := d if {
	d := object.get(data.kitchen.lib.params, "evaluation_metrics", {})[e.metric].higher_is_better
} else := e.higher_is_better

passed(e) if {
	higher_is_better(e) == true
	e.score >= e.threshold
}

passed(e) if {
	higher_is_better(e) == false
	e.score <= e.threshold
}

has_evaluation(f) if is_object(f.evaluation)

violation contains v if {
	data.kitchen.lib.env.gates.require_evaluation
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	not has_evaluation(f)
	msg := sprintf("flavor %s records no evaluation, which environment %s requires", [ref, data.kitchen.lib.env.name])
	v := lib.service_violation(s, f, "name", sprintf("Flavor/%s", [ref]), msg, "an evaluation that passed its threshold")
}

violation contains v if {
	data.kitchen.lib.env.gates.require_evaluation
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	e := f.evaluation
	is_object(e)
	not passed(e)
	word := {true: "at least", false: "at most"}[higher_is_better(e)]
	msg := sprintf("flavor %s scored %v on %s, below its threshold %v; environment %s requires a passed evaluation", [ref, e.score, object.get(e, "suite", "its evaluation"), e.threshold, data.kitchen.lib.env.name])
	v := lib.service_violation(s, f, "evaluation.score", sprintf("Flavor/%s", [ref]), msg, sprintf("a score %s %v", [word, e.threshold]))
}
