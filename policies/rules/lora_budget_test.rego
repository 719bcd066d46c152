package kitchen.rules.lora_budget_test

import data.kitchen.fixtures
import data.kitchen.rules.lora_budget

test_pass_within_budget if {
	count(lora_budget.violation) == 0 with input as fixtures.clean
}

test_fail_over_budget if {
	patched := fixtures.with_patch({"environment": {"serving": {"vllm": {"max_loras": 0}}}})
	vs := lora_budget.violation with input as patched
	count(vs) == 1
	some v in vs
	v.object == "Tenant/support"
}

test_alias_counts_as_an_adapter if {
	aliased := object.union(fixtures.service, {"adapters": array.concat(fixtures.service.adapters, [{"name": "faq", "flavor": "faq@v1", "alias": true}])})
	patched := fixtures.with_patch({
		"environment": {"serving": {"vllm": {"max_loras": 1}}},
		"plan": {"tenants": [{"tenant": "support", "namespace": "support", "gpu_quota": 2, "services": [aliased]}]},
	})
	vs := lora_budget.violation with input as patched
	count(vs) == 1
	count(lora_budget.violation) == 0 with input as fixtures.with_patch({"environment": {"serving": {"vllm": {"max_loras": 1}}}})
}
