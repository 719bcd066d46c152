package kitchen.rules.gpu_resources_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.gpu_resources

test_pass_request_equals_limit if {
	count(gpu_resources.violation) == 0 with input as fixtures.clean
}

test_fail_limit_above_request if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"resources": {"limits": {"nvidia.com/gpu": "2"}}}}}})
	vs := gpu_resources.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 1
}

test_fail_no_gpu_requested if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"resources": {"requests": {"nvidia.com/gpu": "0"}}}}}})
	vs := gpu_resources.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 1
}

test_pass_llm_inference_service_requests_its_gpu if {
	count(gpu_resources.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_without_gpu if {
	vs := gpu_resources.violation with input as llmisvc_fixtures.with_main({"resources": {"requests": {"nvidia.com/gpu": "0"}, "limits": {"nvidia.com/gpu": "0"}}})
	count(vs) == 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
