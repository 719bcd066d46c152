package kitchen.rules.observability_scrape_test

import data.kitchen.observability_fixtures as fx
import data.kitchen.rules.observability_scrape

test_pass_scraped_and_admitted if {
	count(observability_scrape.violation) == 0 with input as fx.clean
}

test_fail_without_podmonitor if {
	vs := observability_scrape.violation with input as fx.without("qwen")
	count(vs) == 1
	some v in vs
	v.resource.name == "qwen"
	contains(v.msg, "no PodMonitor")
}

test_fail_without_network_policy if {
	vs := observability_scrape.violation with input as fx.without("allow-monitoring-scrape")
	count(vs) == 1
	some v in vs
	contains(v.msg, "monitoring namespace monitoring")
}

test_fail_admitting_another_namespace if {
	patched := object.union(fx.clean, {"environment": {"observability": {"monitoring_namespace": "prometheus"}}})
	count(observability_scrape.violation) == 1 with input as patched
}

test_pass_observability_off if {
	patched := object.union(fx.without("qwen"), {"environment": {"observability": {"enabled": false}}})
	count(observability_scrape.violation) == 0 with input as patched
}
