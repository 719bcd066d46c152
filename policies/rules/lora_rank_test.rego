package kitchen.rules.lora_rank_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.lora_rank

test_pass_rank_within_max if {
	count(lora_rank.violation) == 0 with input as fixtures.clean
}

test_fail_rank_above_max if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"rank": 128}}}})
	vs := lora_rank.violation with input as patched
	count(vs) == 1
	some v in vs
	v.at == {"file": "catalog/flavors/faq@v1.yaml", "line": 1, "col": 1, "path": "rank"}
	v.resource.kind == "InferenceService"
}

# what is rendered counts: --max-lora-rank above the environment's maximum, any spelling
test_fail_rendered_rank_above_maximum if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"args": ["--max_lora_rank", "128"]}}}})
	vs := lora_rank.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 1
	some v in vs
	v.at.path == "serving.vllm.max_lora_rank"
}

test_rendered_rank_within_maximum if {
	ok := fixtures.isvc_with({"spec": {"predictor": {"model": {"args": ["--max-lora-rank=128", "--max-lora-rank=64"]}}}})
	count(lora_rank.violation) == 0 with input as fixtures.with_resource("InferenceService", ok)
}

test_llm_inference_service_rank_within_maximum if {
	count(lora_rank.violation) == 0 with input as llmisvc_fixtures.clean
}

# an LLMInferenceService carries the rank in spec.model.lora.maxRank
test_fail_llm_inference_service_max_rank_above_maximum if {
	vs := lora_rank.violation with input as llmisvc_fixtures.with_spec({"model": {"lora": {"maxRank": 128}}})
	count(vs) == 1
	some v in vs
	v.at.path == "serving.vllm.max_lora_rank"
	v.resource.kind == "LLMInferenceService"
}
