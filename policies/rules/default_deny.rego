# METADATA
# title: Every tenant namespace has a default-deny NetworkPolicy
# description: >-
#   Each rendered tenant Namespace (labelled `kitchen-gitops.io/tenant`) has a NetworkPolicy that selects every pod
#   (`podSelector: {}`), covers both Ingress and Egress, and allows nothing; the
#   narrower allow policies then open exactly what serving needs.
# custom:
#   id: policy.default-deny
#   severity: error
#   scope: tenant
package kitchen.rules.default_deny

import data.kitchen.lib

denies_all(m) if {
	m.spec.podSelector == {}
	"Ingress" in m.spec.policyTypes
	"Egress" in m.spec.policyTypes
	count(object.get(m.spec, "ingress", [])) == 0
	count(object.get(m.spec, "egress", [])) == 0
}

# Namespaces with a default-deny policy (computed once).
protected contains ns if {
	some r in lib.resources_of_kind("NetworkPolicy")
	denies_all(r.manifest)
	ns := r.manifest.metadata.namespace
}

tenant_namespace(r) if r.manifest.metadata.labels["kitchen-gitops.io/tenant"]

violation contains v if {
	some r in lib.resources_of_kind("Namespace")
	tenant_namespace(r)
	not r.manifest.metadata.name in protected
	msg := sprintf("namespace %s has no default-deny NetworkPolicy", [r.manifest.metadata.name])
	v := lib.resource_violation(r, msg, "a NetworkPolicy with podSelector: {}, policyTypes [Ingress, Egress] and no rules")
}
