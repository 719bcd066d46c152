# METADATA
# title: Alert thresholds equal the environment's SLOs
# description: >-
#   Each alert of a rendered PrometheusRule labelled `slo: <field>` compares against
#   exactly the environment's `slo.<field>`: latency objectives in seconds (the catalog's
#   milliseconds / 1000), the output-token floor as is, and the goodput burn-rate alerts
#   at the SRE workbook's burn rate for their `long_window` (params `burn_rates`) times
#   the error budget `1 - goodput_min_ratio`. Every `>` and `<` comparison of the
#   expression must carry that value, so a hand-edited threshold is caught.
# custom:
#   id: policy.observability-alert-threshold
#   severity: error
#   scope: tenant
package kitchen.rules.observability_thresholds

import data.kitchen.lib

slo := object.get(data.kitchen.lib.env, "slo", {})

expected(a) := slo.ttft_p95_ms / 1000 if a.labels.slo == "ttft_p95_ms"

expected(a) := slo.tpot_p95_ms / 1000 if a.labels.slo == "tpot_p95_ms"

expected(a) := slo.e2e_p95_ms / 1000 if {
	a.labels.slo == "e2e_p95_ms"
	slo.e2e_p95_ms != null
}

expected(a) := slo.min_output_tokens_per_s if a.labels.slo == "min_output_tokens_per_s"

expected(a) := data.kitchen.lib.params.burn_rates[a.labels.long_window] * (1 - slo.goodput_min_ratio) if {
	a.labels.slo == "goodput_min_ratio"
}

thresholds(expr) := [to_number(m[1]) | some m in regex.find_all_string_submatch_n(`[<>] ([-+0-9.eE]+)`, expr, -1)]

close(x, y) if abs(x - y) <= 1e-9 * max([abs(y), 1])

mismatch(got, _) if count(got) == 0

mismatch(got, want) if {
	some t in got
	not close(t, want)
}

slo_alerts contains {"r": r, "alert": rule} if {
	some r in lib.resources_of_kind("PrometheusRule")
	some g in r.manifest.spec.groups
	some rule in g.rules
	rule.alert
	rule.labels.slo
}

violation contains v if {
	some x in slo_alerts
	want := expected(x.alert)
	got := thresholds(x.alert.expr)
	mismatch(got, want)
	msg := sprintf("alert %s in %s compares against %v, but environment %s's slo.%s gives %v", [x.alert.alert, x.r.manifest.metadata.namespace, got, data.kitchen.lib.env.name, x.alert.labels.slo, want])
	v := threshold_violation(x, msg, sprintf("every threshold of the expression equal to %v", [want]))
}

violation contains v if {
	some x in slo_alerts
	not expected(x.alert)
	msg := sprintf("alert %s in %s is labelled slo: %s, which names no objective of environment %s", [x.alert.alert, x.r.manifest.metadata.namespace, x.alert.labels.slo, data.kitchen.lib.env.name])
	v := threshold_violation(x, msg, "slo: one of ttft_p95_ms, tpot_p95_ms, e2e_p95_ms, min_output_tokens_per_s, goodput_min_ratio (with long_window)")
}

threshold_violation(x, msg, expected) := {
	"msg": msg,
	"at": lib.at(data.kitchen.lib.env, sprintf("slo.%s", [x.alert.labels.slo])),
	"resource": lib.resource_ref(x.r),
	"object": lib.resource_id(x.r),
	"expected": expected,
}
