package kitchen.rules.observability_alerts_test

import data.kitchen.observability_fixtures as fx
import data.kitchen.rules.observability_alerts

test_pass_every_alert if {
	count(observability_alerts.violation) == 0 with input as fx.clean
}

test_fail_missing_ttft_alert if {
	kept := [a | some a in fx.alerts; a.alert != "KitchenTTFTAboveSLO"]
	vs := observability_alerts.violation with input as fx.with_rules(kept)
	count(vs) == 1
	some v in vs
	contains(v.msg, "KitchenTTFTAboveSLO")
}

test_fail_e2e_objective_without_alert if {
	patched := object.union(fx.clean, {"environment": {"slo": {"e2e_p95_ms": 6000}}})
	vs := observability_alerts.violation with input as patched
	count(vs) == 1
	some v in vs
	contains(v.msg, "KitchenE2ELatencyAboveSLO")
}

test_pass_observability_off if {
	patched := object.union(fx.with_rules([]), {"environment": {"observability": {"enabled": false}}})
	count(observability_alerts.violation) == 0 with input as patched
}
