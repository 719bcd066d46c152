# A small, clean policy input shared by the rules' unit tests: one strict, air-gapped
# environment, one base, one flavor, one tenant with one InferenceService.
package kitchen.fixtures

loc(file, line) := {"file": file, "line": line, "col": 1}

digest := "sha256:3b1f9a4c2e7d8f6a5b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"

image := sprintf("registry.prod.internal:5000/vllm/vllm-openai@%s", [digest])

environment := {
	"name": "prod",
	"promotes_from": "staging",
	"cluster": {"gpu": {"resource": "nvidia.com/gpu", "per_node": 8, "nodes": 1}},
	"registry": {"internal": "registry.prod.internal:5000", "allowed": ["registry.prod.internal:5000"]},
	"images": {"vllm": image, "vllm_version": "0.11.0", "kitchen": sprintf("registry.prod.internal:5000/platform/kitchen@%s", [digest])},
	"storage": {"s3": {"endpoint": "minio.minio.svc:9000", "use_https": true, "verify_ssl": true}},
	"serving": {"auth": true, "vllm": {"max_loras": 4, "max_lora_rank": 64}},
	"gates": {
		"strictness": "strict",
		"air_gapped": true,
		"allowed_licenses": ["apache-2.0"],
		"require_approved_base": true,
		"require_evaluation": true,
		"trust_remote_code_allowlist": [],
	},
	"_source": loc("environments/prod.yaml", 1),
}

base := {
	"name": "qwen",
	"version": "2.5",
	"ref": "qwen@2.5",
	"source": "pvc://models/base/qwen/2.5/",
	"trust_remote_code": false,
	"license": {"id": "apache-2.0", "approval": {"approved": true, "approver": "security@example.com"}},
	"_source": loc("catalog/bases/qwen.yaml", 1),
}

flavor := {
	"name": "faq",
	"version": "v1",
	"ref": "faq@v1",
	"base": {"name": "qwen", "version": "2.5"},
	"source": "s3://lora/faq/v1/",
	"rank": 16,
	"evaluation": {"score": 0.8, "threshold": 0.7, "higher_is_better": true},
	"_source": loc("catalog/flavors/faq@v1.yaml", 1),
}

tenant := {
	"name": "support",
	"namespace": "support",
	"environments": {"prod": {"gpu_quota": 2, "flavors": [{"name": "faq", "version": "v1"}]}},
	"_source": loc("catalog/tenants/support.yaml", 1),
}

service := {
	"tenant": "support",
	"inference_service": "qwen",
	"namespace": "support",
	"base": "qwen@2.5",
	"flavors": ["faq@v1"],
	"adapters": [{"name": "faq-v1", "flavor": "faq@v1", "alias": false}],
	"storage_uris": [{"uri": "pvc://models/base/qwen/2.5/"}, {"uri": "s3://lora/faq/v1/"}],
}

meta(kind, name, ns) := {"kind": kind, "metadata": {"name": name, "namespace": ns, "annotations": {}}}

security_context := {
	"runAsNonRoot": true,
	"allowPrivilegeEscalation": false,
	"capabilities": {"drop": ["ALL"]},
	"seccompProfile": {"type": "RuntimeDefault"},
}

runtime := {
	"manifest": {
		"apiVersion": "serving.kserve.io/v1alpha1",
		"kind": "ServingRuntime",
		"metadata": {"name": "kitchen-vllm", "namespace": "support"},
		"spec": {"containers": [{
			"name": "kserve-container",
			"image": image,
			"env": [
				{"name": "HF_HUB_OFFLINE", "value": "1"},
				{"name": "TRANSFORMERS_OFFLINE", "value": "1"},
			],
			"securityContext": security_context,
		}]},
	},
	"_source": loc("environments/prod.yaml", 25),
}

isvc := {
	"manifest": {
		"apiVersion": "serving.kserve.io/v1beta1",
		"kind": "InferenceService",
		"metadata": {
			"name": "qwen",
			"namespace": "support",
			"annotations": {"security.opendatahub.io/enable-auth": "true", "kitchen-gitops.io/base": "qwen@2.5"},
		},
		"spec": {"predictor": {
			"storageUris": [{"uri": "pvc://models/base/qwen/2.5/"}, {"uri": "s3://lora/faq/v1/"}],
			"model": {
				"args": ["--model=/mnt/models/base"],
				"resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
			},
		}},
	},
	"_source": loc("catalog/tenants/support.yaml", 10),
}

namespace := {
	"manifest": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "support", "labels": {"kitchen-gitops.io/tenant": "support"}}},
	"_source": loc("catalog/tenants/support.yaml", 2),
}

default_deny := {
	"manifest": {
		"apiVersion": "networking.k8s.io/v1",
		"kind": "NetworkPolicy",
		"metadata": {"name": "default-deny-all", "namespace": "support"},
		"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []},
	},
	"_source": loc("catalog/tenants/support.yaml", 10),
}

storage_account := {
	"manifest": {
		"apiVersion": "v1",
		"kind": "ServiceAccount",
		"metadata": {
			"name": "kitchen-storage",
			"namespace": "support",
			"annotations": {"serving.kserve.io/s3-usehttps": "1", "serving.kserve.io/s3-verifyssl": "1"},
		},
	},
	"_source": loc("environments/prod.yaml", 30),
}

clean := {
	"environment": environment,
	"promotion": {"from": "staging", "flavors": {"faq@v1": true}},
	"catalog": {
		"bases": {"qwen@2.5": base},
		"flavors": {"faq@v1": flavor},
		"tenants": {"support": tenant},
	},
	"plan": {"tenants": [{"tenant": "support", "namespace": "support", "gpu_quota": 2, "services": [service]}]},
	"resources": [namespace, default_deny, storage_account, runtime, isvc],
}

# The clean input with `patch` deep-merged into it (objects merge, other values replace).
with_patch(patch) := object.union(clean, patch)

# The clean input with its resource of kind `kind` replaced by `resource`.
with_resource(kind, resource) := object.union(clean, {"resources": array.concat(
	[r | some r in clean.resources; r.manifest.kind != kind],
	[resource],
)})

# The serving runtime with its container deep-merged with `patch`.
runtime_with(patch) := object.union(runtime, {"manifest": {"spec": {"containers": [
	object.union(runtime.manifest.spec.containers[0], patch),
]}}})

# The InferenceService with its manifest deep-merged with `patch`.
isvc_with(patch) := object.union(isvc, {"manifest": patch})
