# METADATA
# title: Planned GPUs fit each tenant's quota, the cluster and one node
# description: >-
#   The GPUs an environment's plan asks for at full scale (replicas × GPUs per replica,
#   summed; an autoscaling tenant at its `max` replicas) stay within each tenant's
#   `gpu_quota` and within the cluster's GPUs (`cluster.gpu.per_node` ×
#   `cluster.gpu.nodes`), and one replica's GPUs (its tensor-parallel size) fit on one
#   node: otherwise the rollout, or the scale-up when traffic comes, stays pending however
#   green the gate was. A finding is at the line of the `max` that breaks it (the tenant's
#   or its environment's default), else at the tenant's replicas.
# custom:
#   id: policy.gpu-capacity
#   severity: error
#   scope: plan
#   remediation: Lower the tenant's replicas or autoscaling max, raise its quota within the cluster, or serve the base on GPUs with more memory.
package kitchen.rules.gpu_capacity

import data.kitchen.lib

total := data.kitchen.lib.env.cluster.gpu.per_node * data.kitchen.lib.env.cluster.gpu.nodes

# GPUs at full scale: at max replicas where the tenant autoscales (a plan without them: its replicas)
planned(t) := sum([object.get(s, "gpus_max", s.gpus) | some s in t.services])

# the autoscaling of a tenant's services (one per tenant and environment)
scaling(t) := a if {
	some s in t.services
	a := s.autoscaling
	is_object(a)
}

# where a tenant's full scale is written: the line of its autoscaling max (its own, or its
# environment's default), else its replicas
scale_at(t, tenant) := lib.at(tenant, scaling(t).max_field) if {
	scaling(t).max_from == "Tenant"
} else := lib.at(data.kitchen.lib.env, scaling(t).max_field) if {
	scaling(t).max_from == "Environment"
} else := lib.at(tenant, sprintf("environments.%s.replicas", [data.kitchen.lib.env.name]))

scale_words(t) := sprintf(" at %d replica(s) (autoscaling max)", [scaling(t).max]) if {
	is_object(scaling(t))
} else := ""

violation contains v if {
	some t in input.plan.tenants
	gpus := planned(t)
	gpus > t.gpu_quota
	tenant := input.catalog.tenants[t.tenant]
	msg := sprintf("tenant %s plans %d GPUs in %s%s, above its quota of %d", [t.tenant, gpus, data.kitchen.lib.env.name, scale_words(t), t.gpu_quota])
	v := {
		"msg": msg,
		"at": scale_at(t, tenant),
		"object": sprintf("Tenant/%s", [t.tenant]),
		"expected": sprintf("at most %d GPUs (gpu_quota)", [t.gpu_quota]),
	}
}

autoscaling_tenants := [t | some t in input.plan.tenants; is_object(scaling(t))]

# the cluster at full scale, where some tenant autoscales: at the max line of each that does
violation contains v if {
	gpus := sum([planned(t) | some t in input.plan.tenants])
	gpus > total
	some t in autoscaling_tenants
	tenant := input.catalog.tenants[t.tenant]
	msg := sprintf("environment %s plans %d GPUs at full scale, but its cluster has %d; tenant %s scales to %d GPUs (%d replica(s) at most)", [data.kitchen.lib.env.name, gpus, total, t.tenant, planned(t), scaling(t).max])
	v := {
		"msg": msg,
		"at": scale_at(t, tenant),
		"object": sprintf("Tenant/%s", [t.tenant]),
		"expected": sprintf("at most %d GPUs planned at full scale", [total]),
	}
}

violation contains v if {
	count(autoscaling_tenants) == 0
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
