package kitchen.rules.default_deny_test

import data.kitchen.fixtures
import data.kitchen.rules.default_deny

test_pass_default_deny_present if {
	count(default_deny.violation) == 0 with input as fixtures.clean
}

test_fail_policy_allows_ingress if {
	open := object.union(fixtures.default_deny, {"manifest": {"spec": {"ingress": [{"from": []}]}}})
	vs := default_deny.violation with input as fixtures.with_resource("NetworkPolicy", open)
	count(vs) == 1
	some v in vs
	v.resource.kind == "Namespace"
}

test_pass_not_a_tenant_namespace if {
	system := {"manifest": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kitchen-conformance"}}, "_source": fixtures.loc("environments/prod.yaml", 1)}
	patched := object.union(fixtures.clean, {"resources": array.concat(fixtures.clean.resources, [system])})
	count(default_deny.violation) == 0 with input as patched
}
