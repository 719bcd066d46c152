# METADATA
# title: Gated environments serve only flavors that passed their evaluation
# description: >-
#   Where the environment sets `gates.require_evaluation` (production, staging),
#   every flavor it serves records an evaluation whose score meets its threshold
#   (`score >= threshold`, or `<=` when `higher_is_better: false`).
# custom:
#   id: policy.evaluation-passed
#   severity: error
package kitchen.rules.evaluation_passed

import data.kitchen.lib

passed(e) if {
	e.higher_is_better
	e.score >= e.threshold
}

passed(e) if {
	e.higher_is_better == false
	e.score <= e.threshold
}

has_evaluation(f) if is_object(f.evaluation)

violation contains v if {
	lib.env.gates.require_evaluation
	some s in lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	not has_evaluation(f)
	msg := sprintf("flavor %s records no evaluation, which environment %s requires", [ref, lib.env.name])
	v := lib.service_violation(s, f, "name", sprintf("Flavor/%s", [ref]), msg, "an evaluation that passed its threshold")
}

violation contains v if {
	lib.env.gates.require_evaluation
	some s in lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	e := f.evaluation
	is_object(e)
	not passed(e)
	word := {true: "at least", false: "at most"}[e.higher_is_better]
	msg := sprintf("flavor %s scored %v on %s, below its threshold %v; environment %s requires a passed evaluation", [ref, e.score, object.get(e, "suite", "its evaluation"), e.threshold, lib.env.name])
	v := lib.service_violation(s, f, "evaluation.score", sprintf("Flavor/%s", [ref]), msg, sprintf("a score %s %v", [word, e.threshold]))
}
