# METADATA
# title: Planned GPUs fit each tenant's quota, the cluster and one node
# description: >-
#   The GPUs an environment's plan asks for (replicas × GPUs per replica, summed) stay
#   within each tenant's `gpu_quota` and within the cluster's GPUs (`cluster.gpu.per_node`
#   × `cluster.gpu.nodes`), and one replica's GPUs (its tensor-parallel size) fit on one
#   node: otherwise the rollout stays pending however green the gate was.
# custom:
#   id: policy.gpu-capacity
#   severity: error
#   remediation: Lower the tenant's replicas, raise its quota within the cluster, or serve the base on GPUs with more memory.
package kitchen.rules.gpu_capacity

import data.kitchen.lib

total := data.kitchen.lib.env.cluster.gpu.per_node * data.kitchen.lib.env.cluster.gpu.nodes

planned(t) := sum([s.gpus | some s in t.services])

violation contains v if {
	some t in input.plan.tenants
	gpus := planned(t)
	gpus > t.gpu_quota
	tenant := input.catalog.tenants[t.tenant]
	msg := sprintf("tenant %s plans %d GPUs in %s, above its quota of %d", [t.tenant, gpus, data.kitchen.lib.env.name, t.gpu_quota])
	v := {
		"msg": msg,
		"at": lib.at(tenant, sprintf("environments.%s.replicas", [data.kitchen.lib.env.name])),
		"object": sprintf("Tenant/%s", [t.tenant]),
		"expected": sprintf("at most %d GPUs (gpu_quota)", [t.gpu_quota]),
	}
}

violation contains v if {
	gpus := sum([planned(t) | some t in input.plan.tenants])
	gpus > total
	msg := sprintf("environment %s plans %d GPUs, but its cluster has %d", [data.kitchen.lib.env.name, gpus, total])
	v := {
		"msg": msg,
		"at": lib.at(data.kitchen.lib.env, "cluster.gpu"),
		"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
		"expected": sprintf("at most %d GPUs planned", [total]),
	}
}

violation contains v if {
	some s in data.kitchen.lib.services
	s.tensor_parallel_size > data.kitchen.lib.env.cluster.gpu.per_node
	tenant := input.catalog.tenants[s.tenant]
	msg := sprintf("%s/%s needs %d GPUs per replica, but a node of %s has %d", [s.namespace, s.inference_service, s.tensor_parallel_size, data.kitchen.lib.env.name, data.kitchen.lib.env.cluster.gpu.per_node])
	v := {
		"msg": msg,
		"at": lib.at(data.kitchen.lib.env, "cluster.gpu.per_node"),
		"resource": lib.service_resource(s),
		"object": sprintf("Tenant/%s", [tenant.name]),
		"expected": sprintf("at most %d GPUs per replica", [data.kitchen.lib.env.cluster.gpu.per_node]),
	}
}
