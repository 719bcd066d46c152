package kitchen.rules.trust_remote_code_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
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

isvc_args(args) := fixtures.with_resource("InferenceService", fixtures.isvc_with({"spec": {"predictor": {"model": {"args": args}}}}))

# vLLM reads `_` as `-`
test_fail_underscore_spelling if {
	count(trust_remote_code.violation) == 1 with input as isvc_args(["--trust_remote_code"])
}

test_fail_value_form if {
	count(trust_remote_code.violation) == 1 with input as isvc_args(["--trust-remote-code", "true"])
}

# the last occurrence wins
test_pass_last_one_false if {
	count(trust_remote_code.violation) == 0 with input as isvc_args(["--trust-remote-code", "--trust_remote_code=false"])
}

test_fail_last_one_true if {
	count(trust_remote_code.violation) == 1 with input as isvc_args(["--trust-remote-code=false", "--trust_remote_code"])
}

test_fail_in_serving_runtime if {
	rt := fixtures.runtime_with({"args": ["--trust_remote_code"]})
	vs := trust_remote_code.violation with input as fixtures.with_resource("ServingRuntime", rt)
	count(vs) == 1
	some v in vs
	contains(v.msg, "every model it serves")
}

test_flags_as_vllm_reads_them if {
	flags := data.kitchen.lib.vllm_flags({"command": ["vllm", "serve"], "args": ["--max_lora_rank", "16", "--enable-lora", "--max-lora-rank=64", "--x=a=b"]})
	flags["--max-lora-rank"] == "64"
	flags["--enable-lora"] == true
	flags["--x"] == "a=b"
}

test_pass_llm_inference_service_without_remote_code if {
	count(trust_remote_code.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_trusts_remote_code if {
	vs := trust_remote_code.violation with input as llmisvc_fixtures.with_main({"args": ["--trust-remote-code"]})
	count(vs) == 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
