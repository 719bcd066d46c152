package kitchen.rules.observability_thresholds_test

import data.kitchen.observability_fixtures as fx
import data.kitchen.rules.observability_thresholds

test_pass_thresholds_equal_slos if {
	count(observability_thresholds.violation) == 0 with input as fx.clean
}

test_fail_edited_ttft_threshold if {
	kept := fx.alerts_with_expr("KitchenTTFTAboveSLO", `kitchen:ttft:p95_5m{namespace="support"} > 0.75`)
	vs := observability_thresholds.violation with input as fx.with_rules(kept)
	count(vs) == 1
	some v in vs
	contains(v.msg, "KitchenTTFTAboveSLO")
	v.resource.kind == "PrometheusRule"
}

test_fail_one_window_of_a_burn_rate_edited if {
	expr := `kitchen:bad:ratio_rate1h{namespace="support"} > 0.72 and kitchen:bad:ratio_rate5m{namespace="support"} > 0.9`
	kept := fx.alerts_with_expr("KitchenGoodputBudgetBurnFast", expr)
	count(observability_thresholds.violation) == 1 with input as fx.with_rules(kept)
}

test_fail_slo_changed_rules_not_rerendered if {
	patched := object.union(fx.clean, {"environment": {"slo": {"tpot_p95_ms": 30}}})
	vs := observability_thresholds.violation with input as patched
	count(vs) == 1
	some v in vs
	contains(v.msg, "KitchenTPOTAboveSLO")
}

test_fail_threshold_missing if {
	kept := fx.alerts_with_expr("KitchenTTFTAboveSLO", `kitchen:ttft:p95_5m{namespace="support"}`)
	count(observability_thresholds.violation) == 1 with input as fx.with_rules(kept)
}

test_fail_unknown_slo_label if {
	kept := array.concat(fx.alerts, [fx.alert("Mine", `x > 1`, {"slo": "ttft_p99_ms"})])
	count(observability_thresholds.violation) == 1 with input as fx.with_rules(kept)
}
