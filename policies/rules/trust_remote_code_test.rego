package kitchen.rules.trust_remote_code_test

import data.kitchen.fixtures
import data.kitchen.rules.trust_remote_code

trusting := fixtures.isvc_with({"spec": {"predictor": {"model": {"args": ["--model=/mnt/models/base", "--trust-remote-code"]}}}})

test_pass_no_remote_code if {
	count(trust_remote_code.violation) == 0 with input as fixtures.clean
}

test_fail_not_allowlisted if {
	vs := trust_remote_code.violation with input as fixtures.with_resource("InferenceService", trusting)
	count(vs) == 1
	some v in vs
	v.object == "Base/qwen@2.5"
}

test_pass_allowlisted if {
	patched := object.union(fixtures.with_resource("InferenceService", trusting), {"environment": {"gates": {"trust_remote_code_allowlist": ["qwen"]}}})
	count(trust_remote_code.violation) == 0 with input as patched
}
