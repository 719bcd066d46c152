package kitchen.rules.non_root_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.non_root

test_pass_restricted_container if {
	count(non_root.violation) == 0 with input as fixtures.clean
}

test_fail_root_with_capabilities if {
	bad := fixtures.runtime_with({"securityContext": {"runAsNonRoot": false, "capabilities": {"drop": []}}})
	vs := non_root.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 2
}

test_fail_predictor_model_runs_as_root if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"securityContext": {"runAsUser": 0}}}}})
	vs := non_root.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "runAsUser: 0")
}

test_pass_llm_inference_service_workload_restricted if {
	count(non_root.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_workload_runs_as_root if {
	vs := non_root.violation with input as llmisvc_fixtures.with_main({"securityContext": {"runAsNonRoot": false}})
	count(vs) >= 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
