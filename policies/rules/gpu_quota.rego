# METADATA
# title: Tenant GPU quotas fit the environment's GPUs
# description: >-
#   The sum of the tenants' `gpu_quota` in an environment does not exceed the GPUs
#   the environment has (`cluster.gpu.per_node` × `cluster.gpu.nodes`): quotas are
#   promises, and promising more GPUs than exist leaves someone's rollout pending.
# custom:
#   id: policy.gpu-quota
#   severity: error
#   scope: plan
package kitchen.rules.gpu_quota

import data.kitchen.lib

total := data.kitchen.lib.env.cluster.gpu.per_node * data.kitchen.lib.env.cluster.gpu.nodes

violation contains v if {
	quota := sum([t.gpu_quota | some t in input.plan.tenants])
	quota > total
	msg := sprintf("tenants of environment %s hold %d GPUs of quota, but it has %d GPUs", [data.kitchen.lib.env.name, quota, total])
	v := {
		"msg": msg,
		"at": lib.at(data.kitchen.lib.env, "cluster.gpu"),
		"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
		"expected": sprintf("at most %d GPUs of quota in total", [total]),
	}
}
