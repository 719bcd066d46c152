package kitchen.rules.offline_runtime_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.offline_runtime

test_pass_offline_flags_set if {
	count(offline_runtime.violation) == 0 with input as fixtures.clean
}

test_fail_transformers_online if {
	bad := fixtures.runtime_with({"env": [{"name": "HF_HUB_OFFLINE", "value": "1"}]})
	vs := offline_runtime.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "TRANSFORMERS_OFFLINE=1")
}

test_pass_not_air_gapped if {
	bad := fixtures.runtime_with({"env": []})
	patched := object.union(fixtures.with_resource("ServingRuntime", bad), {"environment": {"gates": {"air_gapped": false}}})
	count(offline_runtime.violation) == 0 with input as patched
}

# the last entry of a name wins
test_fail_second_entry_undoes_the_first if {
	env := [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "TRANSFORMERS_OFFLINE", "value": "1"}, {"name": "HF_HUB_OFFLINE", "value": "0"}]
	rt := fixtures.runtime_with({"env": env})
	count(offline_runtime.violation) == 1 with input as fixtures.with_resource("ServingRuntime", rt)
}

test_fail_predictor_model_env if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"env": [{"name": "HF_HUB_OFFLINE", "value": "0"}]}}}})
	count(offline_runtime.violation) == 1 with input as fixtures.with_resource("InferenceService", bad)
}

test_pass_llm_inference_service_offline if {
	count(offline_runtime.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_online if {
	vs := offline_runtime.violation with input as llmisvc_fixtures.with_main({"env": [{"name": "HF_HUB_OFFLINE", "value": "1"}]})
	count(vs) == 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
