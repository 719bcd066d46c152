package kitchen.rules.auth_required_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.auth_required

test_pass_auth_enabled if {
	count(auth_required.violation) == 0 with input as fixtures.clean
}

test_fail_auth_disabled if {
	bad := fixtures.isvc_with({"metadata": {"annotations": {"security.opendatahub.io/enable-auth": "false"}}})
	patched := object.union(fixtures.with_resource("InferenceService", bad), {"environment": {"serving": {"auth": false}}})
	vs := auth_required.violation with input as patched
	count(vs) == 1
	some v in vs
	v.at.file == "environments/prod.yaml"
	v.at.path == "serving.auth"
}

test_pass_relaxed_environment if {
	bad := fixtures.isvc_with({"metadata": {"annotations": {"security.opendatahub.io/enable-auth": "false"}}})
	patched := object.union(fixtures.with_resource("InferenceService", bad), {"environment": {"gates": {"strictness": "relaxed"}}})
	count(auth_required.violation) == 0 with input as patched
}

test_pass_llm_inference_service_with_auth if {
	count(auth_required.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_without_auth if {
	open := object.union(llmisvc_fixtures.clean, {"resources": [r |
		some r0 in llmisvc_fixtures.clean.resources
		r := object.union(r0, {"manifest": {"metadata": {"annotations": {"security.opendatahub.io/enable-auth": "false"}}}})
	]})
	vs := auth_required.violation with input as open
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
