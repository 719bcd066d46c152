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
