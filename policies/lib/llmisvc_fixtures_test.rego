# The clean policy input served through KServe's LLM API: its one service is an
# LLMInferenceService (serving.kserve.io/v1alpha2) whose workload container `main` is
# KServe's vLLM container, and no ServingRuntime.
package kitchen.llmisvc_fixtures

import data.kitchen.fixtures

main_container := {
	"name": "main",
	"image": fixtures.image,
	"args": ["--dtype=bfloat16", "--max-model-len=4096"],
	"env": [
		{"name": "HF_HUB_OFFLINE", "value": "1"},
		{"name": "TRANSFORMERS_OFFLINE", "value": "1"},
	],
	"resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
	"securityContext": fixtures.security_context,
}

llmisvc := {
	"manifest": {
		"apiVersion": "serving.kserve.io/v1alpha2",
		"kind": "LLMInferenceService",
		"metadata": {
			"name": "qwen",
			"namespace": "support",
			"annotations": {"security.opendatahub.io/enable-auth": "true", "kitchen-gitops.io/base": "qwen@2.5"},
		},
		"spec": {
			"model": {
				"uri": "pvc://models/base/qwen/2.5/",
				"name": "qwen",
				"lora": {"maxRank": 16, "maxAdapters": 1, "maxCpuAdapters": 1, "adapters": [{"name": "faq-v1", "uri": "s3://lora/faq/v1/"}]},
			},
			"template": {"containers": [main_container]},
		},
	},
	"_source": fixtures.loc("catalog/tenants/support.yaml", 10),
}

service := object.union(fixtures.service, {"kind": "LLMInferenceService", "api_version": "serving.kserve.io/v1alpha2"})

clean := object.union(fixtures.clean, {
	"plan": {"tenants": [{"tenant": "support", "namespace": "support", "gpu_quota": 2, "services": [service]}]},
	"resources": array.concat([r | some r in fixtures.clean.resources; not r.manifest.kind in {"ServingRuntime", "InferenceService"}], [llmisvc]),
})

# The clean input with the LLMInferenceService's workload container patched (deep merge).
with_main(patch) := object.union(clean, {"resources": array.concat(
	[r | some r in clean.resources; r.manifest.kind != "LLMInferenceService"],
	[object.union(llmisvc, {"manifest": {"spec": {"template": {"containers": [object.union(main_container, patch)]}}}})],
)})

# The clean input with the LLMInferenceService's spec patched (deep merge).
with_spec(patch) := object.union(clean, {"resources": array.concat(
	[r | some r in clean.resources; r.manifest.kind != "LLMInferenceService"],
	[object.union(llmisvc, {"manifest": {"spec": patch}})],
)})
