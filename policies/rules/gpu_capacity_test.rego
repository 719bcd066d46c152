package kitchen.rules.gpu_capacity_test

import data.kitchen.fixtures
import data.kitchen.rules.gpu_capacity

# the fixtures: one tenant "support" with a quota of 2 on a cluster of 1 node × 8 GPUs
plan_with(service_patch, quota) := {"plan": {"tenants": [{
	"tenant": "support", "namespace": "support", "gpu_quota": quota,
	"services": [object.union(fixtures.service, service_patch)],
}]}}

test_pass_within_quota_and_cluster if {
	count(gpu_capacity.violation) == 0 with input as fixtures.with_patch(plan_with({"gpus": 2, "tensor_parallel_size": 1}, 2))
}

test_fail_above_tenant_quota if {
	vs := gpu_capacity.violation with input as fixtures.with_patch(plan_with({"gpus": 4, "tensor_parallel_size": 1}, 2))
	count(vs) == 1
	some v in vs
	v.at.path == "environments.prod.replicas"
}

test_fail_above_cluster if {
	vs := gpu_capacity.violation with input as fixtures.with_patch(plan_with({"gpus": 12, "tensor_parallel_size": 1}, 12))
	count(vs) == 1
	some v in vs
	v.at.path == "cluster.gpu"
}

test_fail_replica_larger_than_a_node if {
	vs := gpu_capacity.violation with input as fixtures.with_patch(plan_with({"gpus": 16, "tensor_parallel_size": 16}, 16))
	count(vs) == 2 # the node, and the cluster (8 GPUs)
	some v in vs
	v.resource.kind == "InferenceService"
}

scaled(max_replicas, from, field) := {"gpus": 1, "gpus_max": max_replicas, "tensor_parallel_size": 1, "autoscaling": {
	"min": 1, "max": max_replicas, "max_from": from, "max_field": field,
}}

test_pass_autoscaling_within_quota if {
	count(gpu_capacity.violation) == 0 with input as fixtures.with_patch(plan_with(scaled(2, "Tenant", "environments.prod.autoscaling.max"), 2))
}

test_fail_autoscaling_max_above_quota if {
	vs := gpu_capacity.violation with input as fixtures.with_patch(plan_with(scaled(3, "Tenant", "environments.prod.autoscaling.max"), 2))
	count(vs) == 1
	some v in vs
	v.at.path == "environments.prod.autoscaling.max"
}

test_fail_environment_default_max_above_cluster if {
	vs := gpu_capacity.violation with input as fixtures.with_patch(plan_with(scaled(12, "Environment", "serving.autoscaling.max"), 12))
	count(vs) == 1
	some v in vs
	v.at.path == "serving.autoscaling.max"
	v.object == "Tenant/support"
}
