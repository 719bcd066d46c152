package kitchen.rules.runtime_env_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.runtime_env

offline := [
	{"name": "HF_HUB_OFFLINE", "value": "1"},
	{"name": "TRANSFORMERS_OFFLINE", "value": "1"},
]

forbidden := {
	"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "loads adapters through the API",
	"VLLM_LORA_RESOLVER_CACHE_DIR": "resolves adapters from a folder",
}

with_env(entries) := vs if {
	bad := fixtures.runtime_with({"env": array.concat(offline, entries)})
	vs := runtime_env.violation with input as fixtures.with_resource("ServingRuntime", bad)
		with data.kitchen.params.forbidden_runtime_env as forbidden
}

test_pass_clean if {
	count(runtime_env.violation) == 0 with input as fixtures.clean with data.kitchen.params.forbidden_runtime_env as forbidden
}

test_fail_runtime_lora_updating_on if {
	vs := with_env([{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"}])
	count(vs) == 1
	some v in vs
	contains(v.msg, "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True")
}

# off is unset, empty, 0 or false, in any case and with spaces
test_pass_switched_off if {
	count(with_env([
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": " FALSE "},
		{"name": "VLLM_LORA_RESOLVER_CACHE_DIR", "value": ""},
	])) == 0
}

# the last entry of a name wins, as in Kubernetes
test_fail_off_then_on if {
	count(with_env([
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "0"},
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "1"},
	])) == 1
}

test_pass_on_then_off if {
	count(with_env([
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "1"},
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "0"},
	])) == 0
}

# a folder name turns the resolver on; a value from a Secret cannot be read: on
test_fail_resolver_folder_and_secret if {
	count(with_env([
		{"name": "VLLM_LORA_RESOLVER_CACHE_DIR", "value": "/tmp/adapters"},
		{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}},
	])) == 2
}

test_fail_predictor_model_turns_it_on if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"env": [{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "true"}]}}}})
	vs := runtime_env.violation with input as fixtures.with_resource("InferenceService", bad)
		with data.kitchen.params.forbidden_runtime_env as forbidden
	count(vs) == 1
}

test_fail_llm_inference_service_container if {
	vs := runtime_env.violation with input as llmisvc_fixtures.with_main({"env": [{"name": "VLLM_LORA_RESOLVER_CACHE_DIR", "value": "/cache"}]})
		with data.kitchen.params.forbidden_runtime_env as forbidden
	count(vs) == 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}
