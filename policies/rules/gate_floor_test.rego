package kitchen.rules.gate_floor_test

import data.kitchen.fixtures
import data.kitchen.rules.gate_floor

# The fixtures' prod environment against these floors.  Each floor sets every field the
# library's own floor of that name sets: OPA merges a `with data.…` object into the data
# underneath where regorus replaces it, so a field left out would differ by engine.
floors := {
	"environments": {
		"prod": {
			"strictness": "strict", "fail_on_warn": true, "air_gapped": true,
			"require_evaluation": true, "registries": ["registry.prod.internal:5000"],
			"licenses": ["Apache-2.0"], "trust_remote_code": [], "promotes_from": "staging",
			"slo": {"ttft_p95_ms": 500, "tpot_p95_ms": 40, "e2e_p95_ms": 6000, "min_output_tokens_per_s": 800, "goodput_min_ratio": 0.95},
			"conformance": {"requests": 128, "concurrency": 16, "output_tokens": 128, "prompt_tokens": 48, "isolation_max_flip_rate": 0.25},
			"conformance_max": {"requests": 1024, "concurrency": 64, "output_tokens": 512, "prompt_tokens": 4096, "readiness_timeout_s": 3600, "active_deadline_s": 7200},
			"observability": {"enabled": true, "scrape_interval_s": 30, "slo_for_minutes": 10,
				"monitoring_namespaces": ["openshift-user-workload-monitoring"], "dashboard_namespaces": ["kitchen-conformance"],
				"runbook_urls": ["docs/operations.md"]},
			"saturation": {"kv_cache_usage_max": 0.9, "requests_waiting_max": 16, "for_minutes": 15},
			"gpu": {"products": ["NVIDIA-H100-80GB-HBM3"], "resources": ["nvidia.com/gpu"], "memory_gib": 80, "per_node": 8, "nodes": 1},
			"autoscaling": {"prometheus_urls": ["https://thanos-querier.openshift-monitoring.svc:9092"]},
			"scheduling": {"node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "kitchen.example.com/pool": "inference"},
				"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
					{"key": "kitchen.example.com/dedicated", "operator": "Equal", "value": "inference", "effect": "NoSchedule"}]},
			"serving": {"min_replicas": 1, "deployment_modes": ["RawDeployment"], "apis": ["InferenceService"]},
			"approved_bases": {"qwen@2.5": "pvc://models/base/qwen/2.5/"},
			"images": {"vllm": ["registry.prod.internal:5000/vllm/vllm-openai"], "kitchen": ["registry.prod.internal:5000/platform/kitchen"]},
			"argocd": {"repo_urls": ["https://git.internal/catalog.git"], "target_revisions": ["main"], "projects": ["kitchen"], "manual_sync": true,
				"destination_servers": ["https://kubernetes.default.svc"], "namespaces": ["openshift-gitops"]},
			"storage": {"endpoints": ["minio.minio.svc:9000"], "use_https": true, "verify_ssl": true,
				"buckets": ["lora", "kitchen-evidence"], "claims": ["models"], "egress_cidrs": [],
				"secrets": ["kitchen-s3-credentials"], "ca_bundle_configmaps": ["kitchen-internal-ca"]},
		},
		"dev": {
			"strictness": "relaxed", "air_gapped": false, "registries": ["registry.prod.internal:5000"],
			"licenses": ["apache-2.0"], "trust_remote_code": [], "promotes_from": null,
		},
	},
	"unnamed": "prod",
	"clusters": {"osaka": "prod"},
}

at_floor := fixtures.with_patch({
	"environment": {
		"promotes_from": "staging",
		"gates": {"strictness": "strict", "fail_on_warn": true, "air_gapped": true, "require_evaluation": true},
		"slo": {"ttft_p95_ms": 500, "tpot_p95_ms": 40, "e2e_p95_ms": 6000, "min_output_tokens_per_s": 800, "goodput_min_ratio": 0.95},
		"conformance": {"requests": 128, "concurrency": 16, "output_tokens": 128, "prompt_tokens": 48, "isolation_max_flip_rate": 0.25,
			"readiness_timeout_s": 900, "active_deadline_s": 1800},
		"observability": {"enabled": true, "scrape_interval_s": 30, "slo_for_minutes": 10, "dashboard_namespace": "kitchen-conformance",
			"runbook_url": "docs/operations.md",
			"saturation": {"kv_cache_usage_max": 0.9, "requests_waiting_max": 16, "for_minutes": 15}},
		"argocd": {"namespace": "openshift-gitops"},
		"storage": {"s3": {"secret": "kitchen-s3-credentials", "ca_bundle_configmap": "kitchen-internal-ca"}},
		"serving": {"deployment_mode": "RawDeployment"},
		"cluster": {
			"gpu": {"product": "NVIDIA-H100-80GB-HBM3", "memory_gib": 80},
			"node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "kitchen.example.com/pool": "inference"},
		},
	},
})

violations(patch) := vs if {
	vs := gate_floor.violation with input as object.union(at_floor, patch) with data.kitchen.params.gate_floors as floors
}

test_pass_at_floor if {
	count(violations({})) == 0
}

test_pass_tighter_than_floor if {
	count(violations({"environment": {"gates": {"allowed_licenses": []}}})) == 0
}

test_fail_strictness_loosened if {
	vs := violations({"environment": {"gates": {"strictness": "standard"}}})
	count(vs) == 1
	some v in vs
	v.at.path == "gates.strictness"
}

# a defaulted field (absent from a hand-made input) is held to the floor as well
test_fail_fail_on_warn_defaulted if {
	patched := json.remove(at_floor, ["environment/gates/fail_on_warn"])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	count(vs) == 1
}

test_fail_public_registry if {
	vs := violations({"environment": {"registry": {"allowed": ["registry.prod.internal:5000", "docker.io"]}}})
	count(vs) == 1
	some v in vs
	v.at.path == "registry.allowed.1"
}

test_fail_license_outside_floor if {
	vs := violations({"environment": {"gates": {"allowed_licenses": ["apache-2.0", "gpl-3.0"]}}})
	count(vs) == 1
	some v in vs
	v.at.path == "gates.allowed_licenses.1"
}

test_fail_trust_remote_code if {
	count(violations({"environment": {"gates": {"trust_remote_code_allowlist": ["qwen"]}}})) == 1
}

test_fail_promotion_removed if {
	vs := violations({"environment": {"promotes_from": null}})
	count(vs) == 1
	some v in vs
	v.at.path == "promotes_from"
}

# an environment the floors do not name gets the strictest floor (`unnamed`)
test_fail_unnamed_environment if {
	vs := violations({"environment": {"name": "prod2", "gates": {"strictness": "relaxed"}}})
	count(vs) == 1
}

# a dev environment on the prod cluster is held to the prod floor too
test_fail_cluster_floor if {
	vs := violations({"environment": {"name": "dev", "promotes_from": null, "cluster": {"name": "osaka"}, "gates": {"strictness": "relaxed"}}})
	count(vs) == 2 # strictness, and promotes_from (prod's floor: staging)
}

test_pass_dev_floor if {
	count(violations({"environment": {"name": "dev", "promotes_from": null, "gates": {"strictness": "relaxed"}}})) == 0
}

# What the environment asks of its own serving: SLOs, conformance load, observability.

only_at(vs, path) if {
	count(vs) == 1
	some v in vs
	v.at.path == path
}

test_pass_slo_and_load_tighter_than_floor if {
	count(violations({"environment": {
		"slo": {"ttft_p95_ms": 200, "goodput_min_ratio": 0.99},
		"conformance": {"requests": 512, "isolation_max_flip_rate": 0},
		"observability": {"scrape_interval_s": 15},
	}})) == 0
}

test_fail_latency_objective_loosened if {
	only_at(violations({"environment": {"slo": {"tpot_p95_ms": 1000000000}}}), "slo.tpot_p95_ms")
}

# an objective the floor sets and the environment leaves out (null) is looser than any
test_fail_latency_objective_dropped if {
	only_at(violations({"environment": {"slo": {"e2e_p95_ms": null}}}), "slo.e2e_p95_ms")
}

test_fail_goodput_lowered if {
	only_at(violations({"environment": {"slo": {"goodput_min_ratio": 0}}}), "slo.goodput_min_ratio")
}

test_fail_throughput_lowered if {
	only_at(violations({"environment": {"slo": {"min_output_tokens_per_s": 1}}}), "slo.min_output_tokens_per_s")
}

test_fail_conformance_load_lowered if {
	only_at(violations({"environment": {"conformance": {"requests": 1}}}), "conformance.requests")
	only_at(violations({"environment": {"conformance": {"prompt_tokens": 1}}}), "conformance.prompt_tokens")
}

test_fail_flip_rate_raised if {
	only_at(violations({"environment": {"conformance": {"isolation_max_flip_rate": 1}}}), "conformance.isolation_max_flip_rate")
}

test_fail_observability_off if {
	only_at(violations({"environment": {"observability": {"enabled": false}}}), "observability.enabled")
}

test_fail_alerts_slower if {
	only_at(violations({"environment": {"observability": {"slo_for_minutes": 1440}}}), "observability.slo_for_minutes")
	only_at(violations({"environment": {"observability": {"scrape_interval_s": 300}}}), "observability.scrape_interval_s")
}

# an environment without the sections at all (a hand-made input) is held to them too
test_fail_sections_missing if {
	patched := json.remove(at_floor, ["environment/slo", "environment/conformance"])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	count(vs) == 16 # five objectives, five fields of the least load, six of the most
}

# a floor without them floors nothing there (dev)
test_pass_floor_without_limits if {
	vs := violations({"environment": {"name": "dev", "cluster": {"name": "tokyo"}, "promotes_from": null,
		"gates": {"strictness": "relaxed"}, "slo": {"ttft_p95_ms": 1000000000}, "observability": {"enabled": false}}})
	count(vs) == 0
}

# Replicas as rendered: a tenant's replicas: 0, or a template that leaves the field out
# where the floor asks more than KServe's default of one.

with_isvc(patch) := vs if {
	vs := gate_floor.violation with input as object.union(at_floor, {"resources": [
		r | some r in fixtures.with_resource("InferenceService", fixtures.isvc_with(patch)).resources
	]}) with data.kitchen.params.gate_floors as floors
}

test_fail_zero_replicas if {
	vs := with_isvc({"spec": {"predictor": {"minReplicas": 0}}})
	count(vs) == 1
	some v in vs
	contains(v.msg, "runs 0 replica(s)")
	v.resource.kind == "InferenceService"
}

test_pass_replicas_at_floor if {
	count(with_isvc({"spec": {"predictor": {"minReplicas": 1}}})) == 0
}

test_fail_replicas_left_out_below_floor if {
	patched := object.union(floors, {"environments": {"prod": {"serving": {"min_replicas": 2}}}})
	vs := gate_floor.violation with input as at_floor with data.kitchen.params.gate_floors as patched
	count(vs) == 1
}

test_fail_replicas_not_a_number if {
	count(with_isvc({"spec": {"predictor": {"minReplicas": "0"}}})) == 1
}

# What Argo CD syncs: repository, revision, path and project of the rendered Application.

application(spec_patch) := {
	"manifest": {
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": {"name": "kitchen-prod", "namespace": "openshift-gitops"},
		"spec": object.union({
			"project": "kitchen",
			"source": {"repoURL": "https://git.internal/catalog.git", "targetRevision": "main", "path": "rendered/prod"},
			"destination": {"server": "https://kubernetes.default.svc"},
		}, spec_patch),
	},
	"_source": fixtures.loc("environments/prod.yaml", 40),
}

with_app(spec_patch) := vs if {
	vs := gate_floor.violation with input as object.union(at_floor, {"resources": array.concat(at_floor.resources, [application(spec_patch)])})
		with data.kitchen.params.gate_floors as floors
}

test_pass_application_at_floor if {
	count(with_app({})) == 0
}

test_fail_application_from_a_fork if {
	vs := with_app({"source": {"repoURL": "https://github.com/attacker/fork.git"}})
	count(vs) == 1
	some v in vs
	contains(v.msg, "repoURL https://github.com/attacker/fork.git")
}

test_fail_application_from_a_branch if {
	count(with_app({"source": {"targetRevision": "feature/x"}})) == 1
}

test_fail_application_from_another_environments_output if {
	vs := with_app({"source": {"path": "rendered/dev"}})
	count(vs) == 1
	some v in vs
	v.expected == "path rendered/prod"
}

test_fail_application_in_another_project if {
	count(with_app({"project": "default"})) == 1
}

# several sources: each one is held to the floor; a source without a revision too
test_fail_application_second_source if {
	vs := with_app({"sources": [{"repoURL": "https://github.com/attacker/fork.git", "path": "x"}]})
	count(vs) == 3
}

# prod is synced by a person: an automated sync policy is below the floor
test_fail_application_syncs_by_itself if {
	vs := with_app({"syncPolicy": {"automated": {"prune": true, "selfHeal": true}}})
	count(vs) == 1
	some v in vs
	contains(v.msg, "by itself")
}

test_fail_application_automated_empty if {
	count(with_app({"syncPolicy": {"automated": {}}})) == 1
}

test_pass_application_automated_disabled if {
	count(with_app({"syncPolicy": {"automated": {"enabled": false}}})) == 0
}

test_pass_application_automated_null if {
	count(with_app({"syncPolicy": {"automated": null}})) == 0
}

# Where Argo CD deploys the environment: the Application's destination server (rendered
# from cluster.api_server), found at the setting.

test_fail_application_to_another_cluster if {
	vs := with_app({"destination": {"server": "https://api.ocp-dev-tokyo.example:6443"}})
	only_at(vs, "cluster.api_server")
	some v in vs
	contains(v.msg, "to cluster https://api.ocp-dev-tokyo.example:6443")
}

# a destination named by cluster name (no server) is not a server of the floor's list
test_fail_application_destination_by_name if {
	app := json.patch(application({}), [{"op": "replace", "path": "/manifest/spec/destination", "value": {"name": "in-cluster"}}])
	vs := gate_floor.violation with input as object.union(at_floor, {"resources": array.concat(at_floor.resources, [app])})
		with data.kitchen.params.gate_floors as floors
	only_at(vs, "cluster.api_server")
}

test_fail_application_without_destination if {
	app := json.remove(application({}), ["manifest/spec/destination"])
	vs := gate_floor.violation with input as object.union(at_floor, {"resources": array.concat(at_floor.resources, [app])})
		with data.kitchen.params.gate_floors as floors
	count(vs) == 1
}

# The environment's S3: endpoint, TLS, the buckets of what it serves and of its evidence,
# the address blocks of its storage egress.

test_fail_public_s3_endpoint if {
	vs := violations({"environment": {"storage": {"s3": {"endpoint": "s3.amazonaws.com"}}}})
	only_at(vs, "storage.s3.endpoint")
	some v in vs
	contains(v.msg, "reaches S3 at s3.amazonaws.com")
}

test_fail_s3_plain_http if {
	only_at(violations({"environment": {"storage": {"s3": {"use_https": false}}}}), "storage.s3.use_https")
}

test_fail_s3_tls_unverified if {
	only_at(violations({"environment": {"storage": {"s3": {"verify_ssl": false}}}}), "storage.s3.verify_ssl")
}

# absent from a hand-made input: off, below the floor
test_fail_s3_tls_flag_absent if {
	patched := json.remove(at_floor, ["environment/storage/s3/verify_ssl"])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	only_at(vs, "storage.s3.verify_ssl")
}

test_fail_storage_egress_wider_than_floor if {
	vs := violations({"environment": {"storage": {"s3": {"egress_cidrs": ["0.0.0.0/0"]}}}})
	only_at(vs, "storage.s3.egress_cidrs.0")
	some v in vs
	v.expected == "no storage.s3.egress_cidrs (the S3 endpoint is a service of the cluster)"
}

test_egress_within_the_floors_list if {
	patched := object.union(floors, {"environments": {"prod": {"storage": {"egress_cidrs": ["10.20.0.0/16"]}}}})
	env := object.union(at_floor, {"environment": {"storage": {"s3": {"egress_cidrs": ["10.20.0.0/16", "10.0.0.0/8"]}}}})
	vs := gate_floor.violation with input as env with data.kitchen.params.gate_floors as patched
	only_at(vs, "storage.s3.egress_cidrs.1")
}

test_fail_flavor_from_another_bucket if {
	vs := violations({"catalog": {"flavors": {"faq@v1": {"source": "s3://public-models/faq/v1/"}}}})
	only_at(vs, "source")
	some v in vs
	v.object == "Flavor/faq@v1"
	v.at.file == "catalog/flavors/faq@v1.yaml"
	contains(v.msg, "from s3 bucket public-models")
}

# the violations of the storage floor alone (a base from another source is no approved base either)
storage(vs) := {v | some v in vs; not contains(v.msg, "does not approve")}

test_fail_base_from_another_bucket if {
	vs := violations({"catalog": {"bases": {"qwen@2.5": {"source": "s3://public-models/qwen/2.5/"}}}})
	only_at(storage(vs), "source")
	some a in vs
	contains(a.msg, "does not approve") # the floor's approved base is another source too
	some v in storage(vs)
	v.object == "Base/qwen@2.5"
}

# the images' repositories, compared without tag and digest
test_fail_conformance_image_from_another_repository if {
	vs := violations({"environment": {"images": {"kitchen": sprintf("registry.prod.internal:5000/team-x/kitchen@%s", [fixtures.digest])}}})
	only_at(vs, "images.kitchen")
	some v in vs
	contains(v.msg, "repository registry.prod.internal:5000/team-x/kitchen")
	v.expected == "images.kitchen one of registry.prod.internal:5000/platform/kitchen"
}

test_fail_vllm_image_from_another_repository if {
	vs := violations({"environment": {"images": {"vllm": sprintf("registry.prod.internal:5000/vllm/vllm-openai-patched@%s", [fixtures.digest])}}})
	only_at(vs, "images.vllm")
}

test_pass_image_with_a_tag_and_a_digest if {
	tagged := sprintf("registry.prod.internal:5000/vllm/vllm-openai:v0.11.0@%s", [fixtures.digest])
	count(violations({"environment": {"images": {"vllm": tagged}}})) == 0
}

# a base's weights from a claim the floor does not list (one a tenant could write to)
test_fail_base_from_another_claim if {
	vs := violations({"catalog": {"bases": {"qwen@2.5": {"source": "pvc://cs-llm-scratch/base/qwen/2.5/"}}}})
	only_at(storage(vs), "source")
	some a in vs
	contains(a.msg, "does not approve") # the floor's approved base is another source too
	some v in storage(vs)
	v.object == "Base/qwen@2.5"
	contains(v.msg, "pvc claim cs-llm-scratch")
	v.expected == "a claim of models"
}

# the claim is compared whole: a claim whose name begins with an allowed one is another
test_fail_base_from_a_claim_named_like_the_floors if {
	vs := violations({"catalog": {"bases": {"qwen@2.5": {"source": "pvc://models-copy/base/qwen/2.5/"}}}})
	only_at(storage(vs), "source")
	some a in vs
	contains(a.msg, "does not approve") # the floor's approved base is another source too
}

# a floor without claims (dev's) leaves the claim to the environment
test_pass_claim_without_a_floor_list if {
	dev := {"environment": {"name": "dev", "promotes_from": null, "gates": {"strictness": "relaxed"}},
		"catalog": {"bases": {"qwen@2.5": {"source": "pvc://other/base/qwen/2.5/"}}}}
	count(violations(dev)) == 0
}

# a flavor of the catalog that the environment does not serve is not its storage
test_pass_flavor_not_served if {
	other := object.union(fixtures.flavor, {"name": "other", "ref": "other@v1", "source": "s3://public-models/other/v1/"})
	count(violations({"catalog": {"flavors": {"other@v1": other}}})) == 0
}

test_fail_evidence_in_another_bucket if {
	vs := violations({"environment": {"evidence": {"uri": "s3://attacker-bucket/prod/"}}})
	only_at(vs, "evidence.uri")
}

test_pass_evidence_in_an_allowed_bucket if {
	count(violations({"environment": {"evidence": {"uri": "s3://kitchen-evidence/prod/"}}})) == 0
}

# dev's floor sets no storage floor; a dev environment on the prod cluster gets prod's
test_storage_floor_by_name_and_cluster if {
	dev := {"environment": {"name": "dev", "promotes_from": null, "gates": {"strictness": "relaxed"},
		"storage": {"s3": {"endpoint": "s3.amazonaws.com", "verify_ssl": false}}}}
	count(violations(dev)) == 0
	on_prod := object.union(dev, {"environment": {"cluster": {"name": "osaka"}}})
	count(violations(on_prod)) == 4 # strictness, promotes_from, endpoint, verify_ssl
}

# The saturation alerts' thresholds: at most the floor's (an alert at 100 % KV cache or a
# queue of a billion never fires).
test_fail_saturation_alerts_loosened if {
	only_at(violations({"environment": {"observability": {"saturation": {"kv_cache_usage_max": 0.99}}}}), "observability.saturation.kv_cache_usage_max")
	only_at(violations({"environment": {"observability": {"saturation": {"requests_waiting_max": 1000000000}}}}), "observability.saturation.requests_waiting_max")
	only_at(violations({"environment": {"observability": {"saturation": {"for_minutes": 1440}}}}), "observability.saturation.for_minutes")
}

test_pass_saturation_alerts_tighter if {
	count(violations({"environment": {"observability": {"saturation": {"kv_cache_usage_max": 0.8, "requests_waiting_max": 0, "for_minutes": 5}}}})) == 0
}

# What the environment names that kitchen writes into or trusts: one of the floor's lists.
test_fail_monitoring_namespace_outside_floor if {
	vs := violations({"environment": {"observability": {"monitoring_namespace": "support"}}})
	only_at(vs, "observability.monitoring_namespace")
	some v in vs
	contains(v.msg, "admits namespace support to every tenant's vLLM port")
}

# named nowhere: the platform's own, found at the platform that chose it
test_fail_platform_monitoring_namespace_outside_floor if {
	vs := violations({"environment": {"cluster": {"platform": "kubernetes"}}})
	only_at(vs, "cluster.platform")
	some v in vs
	contains(v.msg, "admits namespace monitoring")
}

test_pass_monitoring_namespace_named_as_the_floor if {
	count(violations({"environment": {"observability": {"monitoring_namespace": "openshift-user-workload-monitoring"}}})) == 0
}

test_fail_names_outside_floor if {
	only_at(violations({"environment": {"serving": {"deployment_mode": "Serverless"}}}), "serving.deployment_mode")
	only_at(violations({"environment": {"observability": {"dashboard_namespace": "openshift-gitops"}}}), "observability.dashboard_namespace")
	only_at(violations({"environment": {"argocd": {"namespace": "kube-system"}}}), "argocd.namespace")
	only_at(violations({"environment": {"storage": {"s3": {"secret": "admin-credentials"}}}}), "storage.s3.secret")
	only_at(violations({"environment": {"storage": {"s3": {"ca_bundle_configmap": "attacker-ca"}}}}), "storage.s3.ca_bundle_configmap")
}

# no CA ConfigMap: S3's certificate checked against whatever the image trusts
test_fail_ca_bundle_left_out if {
	vs := violations({"environment": {"storage": {"s3": {"ca_bundle_configmap": null}}}})
	only_at(vs, "storage.s3.ca_bundle_configmap")
	some v in vs
	contains(v.msg, "names no storage.s3.ca_bundle_configmap")
}

# a floor that lists none pins none (dev)
test_pass_names_where_the_floor_lists_none if {
	count(violations({"environment": {"name": "dev", "cluster": {"name": "tokyo"}, "promotes_from": null,
		"gates": {"strictness": "relaxed"}, "argocd": {"namespace": "argocd"},
		"observability": {"monitoring_namespace": "prometheus", "dashboard_namespace": "grafana"},
		"storage": {"s3": {"secret": "other", "ca_bundle_configmap": null}}}})) == 0
}

# The cluster's GPUs as the floor knows them: a plan for more memory, GPUs or nodes than
# there are never starts (and hides an over-committed quota).
test_fail_cluster_gpus_overstated if {
	only_at(violations({"environment": {"cluster": {"gpu": {"memory_gib": 141}}}}), "cluster.gpu.memory_gib")
	only_at(violations({"environment": {"cluster": {"gpu": {"per_node": 16}}}}), "cluster.gpu.per_node")
	only_at(violations({"environment": {"cluster": {"gpu": {"nodes": 200}}}}), "cluster.gpu.nodes")
	only_at(violations({"environment": {"cluster": {"gpu": {"product": "NVIDIA-H200"}}}}), "cluster.gpu.product")
}

test_pass_cluster_gpus_understated if {
	count(violations({"environment": {"cluster": {"gpu": {"memory_gib": 40, "per_node": 4}}}})) == 0
}

# The extended resource the servers request and the quotas count: another name is one no
# device plugin hands out and no GPU quota counts.
test_fail_gpus_as_another_resource if {
	vs := violations({"environment": {"cluster": {"gpu": {"resource": "example.com/free-gpu"}}}})
	only_at(vs, "cluster.gpu.resource")
	some v in vs
	contains(v.msg, "as the extended resource example.com/free-gpu")
}

# a hand-made input that names none means kitchen's default, nvidia.com/gpu
test_pass_gpus_as_the_default_resource if {
	patched := json.remove(at_floor, [["environment", "cluster", "gpu", "resource"]])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	count(vs) == 0
}

# The dedicated nodes: every label of the floor's node selector, with its value.
test_fail_node_label_dropped if {
	patched := json.remove(at_floor, [["environment", "cluster", "node_selector", "kitchen.example.com/pool"]])
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as floors
	only_at(vs, "cluster.node_selector")
	some v in vs
	contains(v.msg, "without node label kitchen.example.com/pool")
}

test_fail_node_label_changed if {
	vs := violations({"environment": {"cluster": {"node_selector": {"kitchen.example.com/pool": "shared"}}}})
	only_at(vs, "cluster.node_selector")
}

test_pass_node_selector_narrower if {
	count(violations({"environment": {"cluster": {"node_selector": {"zone": "a"}}}})) == 0
}

# The bases served: each one the floor approves, from the source it names with it.
test_fail_base_from_another_source if {
	vs := violations({"catalog": {"bases": {"qwen@2.5": {"source": "pvc://models/base/qwen/2.5-tuned/"}}}})
	count(vs) > 0
	every v in vs {
		v.at.path == "source"
		contains(v.msg, "serves base qwen@2.5 from pvc://models/base/qwen/2.5-tuned/, which the floor prod")
		contains(v.expected, "qwen@2.5 from pvc://models/base/qwen/2.5/")
	}
}

test_fail_base_not_approved if {
	patched := fixtures.with_patch({"environment": at_floor.environment, "catalog": {"bases": {"qwen@2.5": {"license": {"approval": {"approved": true, "approver": "me@example.com"}}}}}})
	vs := gate_floor.violation with input as patched with data.kitchen.params.gate_floors as json.patch(floors, [{"op": "replace", "path": "/environments/prod/approved_bases", "value": {"llama@3.1": "pvc://models/base/llama/3.1/"}}])
	count(vs) > 0
	every v in vs {
		# OPA merges the floors given here into the library's: the list may hold its bases too
		contains(v.expected, "a base of gate_floors.environments.prod.approved_bases in policies/data.yaml (security's): ")
		contains(v.expected, "llama@3.1")
		not contains(v.expected, "qwen@2.5")
	}
}

# The conformance Job's load on the live servers: at most the floor's.
test_fail_conformance_load_above_the_floor if {
	vs := violations({"environment": {"conformance": {"concurrency": 10000, "requests": 128}}})
	only_at(vs, "conformance.concurrency")
	some v in vs
	v.expected == "conformance.concurrency at most 64"
	only_at(violations({"environment": {"conformance": {"active_deadline_s": 604800}}}), "conformance.active_deadline_s")
}

# The runbook every alert links to: one of the floor's (on-call follows it in an incident).
test_fail_runbook_elsewhere if {
	vs := violations({"environment": {"observability": {"runbook_url": "https://runbooks.example.com/kitchen"}}})
	only_at(vs, "observability.runbook_url")
	some v in vs
	contains(v.msg, "links every alert to the runbook at https://runbooks.example.com/kitchen")
}

# The KServe API every tenant is served through: one of the floor's.
test_fail_serving_api_not_in_floor if {
	vs := violations({"environment": {"serving": {"api": "LLMInferenceService"}}})
	only_at(vs, "serving.api")
	some v in vs
	contains(v.msg, "serves every tenant through KServe's LLMInferenceService")
}

test_pass_serving_api_defaulted if {
	count(violations({"environment": {"serving": {"api": "InferenceService"}}})) == 0
}

# The taints the servers tolerate: each toleration one of the floor's, field for field.
tolerating(tolerations) := violations({"environment": {"cluster": {"tolerations": tolerations}}})

test_pass_tolerations_of_the_floor if {
	count(tolerating([
		{"key": "nvidia.com/gpu", "effect": "NoSchedule"}, # Exists where no operator is given
		{"key": "kitchen.example.com/dedicated", "operator": "Equal", "value": "inference", "effect": "NoSchedule"},
	])) == 0
	count(tolerating([])) == 0
}

test_fail_toleration_of_the_control_plane if {
	vs := tolerating([
		{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
		{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
	])
	only_at(vs, "cluster.tolerations.1")
	some v in vs
	contains(v.msg, "tolerate node-role.kubernetes.io/control-plane Exists")
}

test_fail_toleration_wider_than_the_floor if {
	# any effect, where the floor allows NoSchedule only; any value of the key
	only_at(tolerating([{"key": "nvidia.com/gpu", "operator": "Exists"}]), "cluster.tolerations.0")
	only_at(tolerating([{"key": "kitchen.example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}]), "cluster.tolerations.0")
}

# The Prometheus KEDA queries with the querier's token: the floor's, where the environment
# autoscales; none queried, none pinned.
test_fail_keda_queries_another_prometheus if {
	vs := violations({"environment": {"serving": {"autoscaling": {"prometheus_url": "https://prometheus.example.com", "authentication": "keda"}}}})
	only_at(vs, "serving.autoscaling.prometheus_url")
	some v in vs
	contains(v.msg, "https://prometheus.example.com")
}

test_pass_keda_queries_the_floors_prometheus if {
	count(violations({"environment": {"serving": {"autoscaling": {"prometheus_url": "https://thanos-querier.openshift-monitoring.svc:9092"}}}})) == 0
}

test_pass_no_autoscaling if {
	count(violations({"environment": {"serving": {"autoscaling": null}}})) == 0
}
