# METADATA
# title: Evaluation thresholds are not below the policy's floor for their metric
# description: >-
#   Where the environment sets `gates.require_evaluation`, every flavor it serves is
#   evaluated on a metric the policy data names (`evaluation_metrics`), in that metric's
#   direction, against a threshold no looser than the metric's floor. A flavor cannot
#   pass its own gate with `threshold: 0`, or by flipping `higher_is_better` on a score
#   where higher is better.
# custom:
#   id: policy.evaluation-floor
#   severity: error
#   scope: tenant
#   remediation: Raise the threshold to the metric's floor, or ask security to name the metric in policies/data.yaml.
package kitchen.rules.evaluation_floor

import data.kitchen.lib

metrics := object.get(data.kitchen.lib.params, "evaluation_metrics", {})

# Each evaluation of a flavor served here: {"s": service, "ref": ref, "f": flavor, "e": evaluation}.
evaluated contains {"s": s, "ref": ref, "f": f, "e": e} if {
	data.kitchen.lib.env.gates.require_evaluation
	some s in data.kitchen.lib.services
	some ref in s.flavors
	f := input.catalog.flavors[ref]
	e := f.evaluation
	is_object(e)
}

known(metric) if metrics[metric]

# The threshold is looser than the floor, in the metric's direction.
below_floor(e, m) if {
	m.higher_is_better == true
	e.threshold < m.floor
}

below_floor(e, m) if {
	m.higher_is_better == false
	e.threshold > m.floor
}

violation contains v if {
	some x in evaluated
	not known(x.e.metric)
	msg := sprintf("flavor %s is evaluated on metric %v, which the policy data names no floor for; environment %s requires an evaluation", [x.ref, x.e.metric, data.kitchen.lib.env.name])
	v := lib.service_violation(x.s, x.f, "evaluation.metric", sprintf("Flavor/%s", [x.ref]), msg, sprintf("one of %s", [concat(", ", sort(object.keys(metrics)))]))
}

violation contains v if {
	some x in evaluated
	m := metrics[x.e.metric]
	x.e.higher_is_better != m.higher_is_better
	msg := sprintf("flavor %s says higher_is_better: %v for %s, but for that metric higher is %s", [x.ref, x.e.higher_is_better, x.e.metric, {true: "better", false: "worse"}[m.higher_is_better]])
	v := lib.service_violation(x.s, x.f, "evaluation.higher_is_better", sprintf("Flavor/%s", [x.ref]), msg, sprintf("higher_is_better: %v", [m.higher_is_better]))
}

violation contains v if {
	some x in evaluated
	m := metrics[x.e.metric]
	below_floor(x.e, m)
	word := {true: "at least", false: "at most"}[m.higher_is_better]
	msg := sprintf("flavor %s sets threshold %v on %s, looser than the policy's floor %v", [x.ref, x.e.threshold, x.e.metric, m.floor])
	v := lib.service_violation(x.s, x.f, "evaluation.threshold", sprintf("Flavor/%s", [x.ref]), msg, sprintf("a threshold %s %v", [word, m.floor]))
}
