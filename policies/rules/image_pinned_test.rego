package kitchen.rules.image_pinned_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.image_pinned

runtime_with_image(image) := fixtures.runtime_with({"image": image})

test_pass_digest_from_allowed_registry if {
	count(image_pinned.violation) == 0 with input as fixtures.clean
}

test_fail_latest_tag if {
	bad := runtime_with_image("registry.prod.internal:5000/vllm/vllm-openai:latest")
	vs := image_pinned.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "'latest'")
	v.at.line == 25
}

test_fail_tag_from_public_registry if {
	bad := runtime_with_image("docker.io/vllm/vllm-openai:v0.11.0")
	vs := image_pinned.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 2
}

test_registry_of_short_name if {
	image_pinned.registry("vllm/vllm-openai:latest") == "docker.io"
	image_pinned.registry("localhost/x@sha256:00") == "localhost"
}

# untagged and undigested: tag_of is undefined, the image is still not pinned (on both engines)
test_fail_untagged_undigested_image if {
	bad := runtime_with_image("registry.prod.internal:5000/vllm/vllm-openai")
	vs := image_pinned.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "not pinned by digest")
}

# the InferenceService predictor's model may name an image, which KServe runs instead of the runtime's
test_fail_predictor_model_image if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"image": "docker.io/vllm/vllm-openai:latest"}}}})
	vs := image_pinned.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 2 # latest, and a registry the environment does not allow
}

test_pass_llm_inference_service_image_by_digest if {
	count(image_pinned.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_image_by_tag if {
	vs := image_pinned.violation with input as llmisvc_fixtures.with_main({"image": "ghcr.io/llm-d/llm-d-cuda:v0.9.0"})
	count(vs) >= 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
