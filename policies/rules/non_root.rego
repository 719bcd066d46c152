# METADATA
# title: Containers run as non-root with all capabilities dropped
# description: >-
#   Every container of a rendered workload sets `securityContext.runAsNonRoot: true`
#   (on the container or its pod), `allowPrivilegeEscalation: false`, and drops
#   `ALL` capabilities; as Kubernetes' restricted Pod Security Standard has it, none is
#   privileged, adds a capability other than `NET_BIND_SERVICE`, runs as user 0 or
#   without a `RuntimeDefault` or `Localhost` seccomp profile (its own, else its pod's),
#   or opens a host port, and no pod shares the node's network, PID or IPC namespace or
#   mounts a `hostPath` volume.
#   The InferenceService predictor's model, whose securityContext KServe merges over
#   the runtime's container, sets no `runAsNonRoot: false`, `runAsUser: 0`,
#   `allowPrivilegeEscalation: true` or `privileged: true`.
# custom:
#   id: policy.non-root
#   severity: error
#   scope: tenant
package kitchen.rules.non_root

import data.kitchen.lib

non_root(r, c) if c.securityContext.runAsNonRoot == true

non_root(r, c) if {
	not c.securityContext.runAsNonRoot == false
	lib.pod_spec(r.manifest).securityContext.runAsNonRoot == true
}

drops_all(c) if "ALL" in c.securityContext.capabilities.drop

no_escalation(c) if c.securityContext.allowPrivilegeEscalation == false

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	not non_root(r, x.container)
	msg := sprintf("container %s of %s may run as root", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "securityContext.runAsNonRoot: true")
}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	not drops_all(x.container)
	msg := sprintf("container %s of %s does not drop all capabilities", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "securityContext.capabilities.drop: [ALL]")
}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	not no_escalation(x.container)
	msg := sprintf("container %s of %s allows privilege escalation", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "securityContext.allowPrivilegeEscalation: false")
}

# What the predictor's model sets in its securityContext, KServe merges over the
# runtime's container: any of these makes the served container root or privileged.
loosened(sc) := "runAsNonRoot: false" if sc.runAsNonRoot == false

else := "runAsUser: 0" if sc.runAsUser == 0

else := "allowPrivilegeEscalation: true" if sc.allowPrivilegeEscalation == true

else := "privileged: true" if sc.privileged == true

else := sprintf("capabilities.add %v", [sc.capabilities.add]) if count(lib.list_at(object.get(sc, "capabilities", {}), "add")) > 0

else := "seccompProfile Unconfined" if sc.seccompProfile.type == "Unconfined"

violation contains v if {
	some x in data.kitchen.lib.model_overrides
	r := input.resources[x.i]
	what := loosened(x.container.securityContext)
	msg := sprintf("the predictor model of %s sets securityContext %s over the runtime's container", [lib.resource_id(r), what])
	v := lib.resource_violation(r, msg, "no securityContext in the predictor model, or a non-root one")
}

# ---------------------------------------------------------------- restricted pods

context(c) := sc if {
	sc := c.securityContext
	is_object(sc)
} else := {}

pod_context(r) := sc if {
	sc := lib.pod_spec(r.manifest).securityContext
	is_object(sc)
} else := {}

# a container's own setting, else its pod's (Kubernetes' precedence)
effective(r, c, key) := v if {
	v := context(c)[key]
	v != null
} else := v if {
	v := pod_context(r)[key]
	v != null
}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	context(x.container).privileged == true
	msg := sprintf("container %s of %s is privileged", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "no securityContext.privileged: true")
}

allowed_capabilities := {"NET_BIND_SERVICE"}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	some cap in lib.list_at(object.get(context(x.container), "capabilities", {}), "add")
	not cap in allowed_capabilities
	msg := sprintf("container %s of %s adds capability %v", [x.container.name, lib.resource_id(r), cap])
	v := lib.resource_violation(r, msg, "no capabilities.add but NET_BIND_SERVICE")
}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	effective(r, x.container, "runAsUser") == 0
	msg := sprintf("container %s of %s runs as user 0 (root)", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "runAsUser unset or not 0")
}

# through a helper rule: with no profile anywhere `effective` is undefined, and OPA would
# hoist it out of a `not confined(effective(…))`, making the whole check undefined
seccomp_confined(r, c) if effective(r, c, "seccompProfile").type in {"RuntimeDefault", "Localhost"}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	not seccomp_confined(r, x.container)
	msg := sprintf("container %s of %s runs without a RuntimeDefault or Localhost seccomp profile", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "seccompProfile.type: RuntimeDefault on the container or its pod")
}

violation contains v if {
	some x in data.kitchen.lib.containers
	r := input.resources[x.i]
	some port in lib.list_at(x.container, "ports")
	object.get(port, "hostPort", 0) != 0
	msg := sprintf("container %s of %s opens host port %v", [x.container.name, lib.resource_id(r), port.hostPort])
	v := lib.resource_violation(r, msg, "no hostPort")
}

host_namespaces := ["hostNetwork", "hostPID", "hostIPC"]

violation contains v if {
	some x in data.kitchen.lib.pod_specs
	some key in host_namespaces
	x.spec[key] == true
	r := input.resources[x.i]
	msg := sprintf("%s sets %s: true, sharing the node's namespace", [lib.resource_id(r), key])
	v := lib.resource_violation(r, msg, sprintf("no %s", [key]))
}

violation contains v if {
	some x in data.kitchen.lib.pod_specs
	some vol in lib.list_at(x.spec, "volumes")
	is_object(vol.hostPath)
	r := input.resources[x.i]
	msg := sprintf("%s mounts hostPath volume %s (%v)", [lib.resource_id(r), vol.name, object.get(vol.hostPath, "path", "")])
	v := lib.resource_violation(r, msg, "no hostPath volume (a PVC, a ConfigMap or an emptyDir)")
}
