# METADATA
# title: Containers run as non-root with all capabilities dropped
# description: >-
#   Every container of a rendered workload sets `securityContext.runAsNonRoot: true`
#   (on the container or its pod), `allowPrivilegeEscalation: false`, and drops
#   `ALL` capabilities.
#   The InferenceService predictor's model, whose securityContext KServe merges over
#   the runtime's container, sets no `runAsNonRoot: false`, `runAsUser: 0`,
#   `allowPrivilegeEscalation: true` or `privileged: true`.
# custom:
#   id: policy.non-root
#   severity: error
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
	some x in lib.containers
	r := input.resources[x.i]
	not non_root(r, x.container)
	msg := sprintf("container %s of %s may run as root", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "securityContext.runAsNonRoot: true")
}

violation contains v if {
	some x in lib.containers
	r := input.resources[x.i]
	not drops_all(x.container)
	msg := sprintf("container %s of %s does not drop all capabilities", [x.container.name, lib.resource_id(r)])
	v := lib.resource_violation(r, msg, "securityContext.capabilities.drop: [ALL]")
}

violation contains v if {
	some x in lib.containers
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

violation contains v if {
	some x in lib.model_overrides
	r := input.resources[x.i]
	what := loosened(x.container.securityContext)
	msg := sprintf("the predictor model of %s sets securityContext %s over the runtime's container", [lib.resource_id(r), what])
	v := lib.resource_violation(r, msg, "no securityContext in the predictor model, or a non-root one")
}
