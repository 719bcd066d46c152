# METADATA
# title: Egress goes to named destinations
# description: >-
#   Every egress rule of a rendered NetworkPolicy names where it may go (`to:` a
#   namespace, pods or an address block), except DNS (port 53); no peer reaches every
#   namespace (`namespaceSelector: {}`), and no address block is wider than a /8 (IPv4)
#   or a /32 (IPv6) — `0.0.0.0/0` split in halves is still every address. An S3 endpoint outside the cluster
#   needs `storage.s3.egress_cidrs`, else its pods could reach any host on the port.
# custom:
#   id: policy.egress-destination
#   severity: error
#   scope: tenant
package kitchen.rules.egress_destination

import data.kitchen.lib

dns_only(rule) if {
	ports := lib.list_at(rule, "ports")
	count(ports) > 0
	every p in ports {
		is_object(p)
		object.get(p, "port", 0) in {53, "53", "dns", "domain"}
	}
}

# What a rule lets pods reach beyond named destinations: a rule without peers reaches
# everything on its ports.
openings(rule) := {"any destination" | count(lib.list_at(rule, "to")) == 0} | {w |
	some peer in lib.list_at(rule, "to")
	is_object(peer)
	too_wide(peer.ipBlock.cidr)
	w := sprintf("addresses far beyond one network (%v)", [peer.ipBlock.cidr])
} | {"pods in every namespace (namespaceSelector: {})" |
	some peer in lib.list_at(rule, "to")
	is_object(peer)
	peer.namespaceSelector == {}
	object.get(peer, "podSelector", {}) == {}
}

# The prefix length of an address block, when it is one.
prefix(cidr) := to_number(parts[1]) if {
	is_string(cidr)
	parts := split(cidr, "/")
	count(parts) == 2
	regex.match(`^[0-9]{1,3}$`, parts[1])
}

too_wide(cidr) if {
	contains(cidr, ":")
	prefix(cidr) < 32
}

too_wide(cidr) if {
	not contains(cidr, ":")
	prefix(cidr) < 8
}

# A block written without a prefix length is an error of the template (Kubernetes refuses it).
too_wide(cidr) if {
	is_string(cidr)
	not prefix(cidr)
}

ports_of(rule) := "every port" if {
	count(lib.list_at(rule, "ports")) == 0
} else := concat(", ", [sprintf("%v", [object.get(p, "port", "any")]) | some p in lib.list_at(rule, "ports"); is_object(p)])

violation contains v if {
	some r in lib.resources_of_kind("NetworkPolicy")
	some rule in lib.list_at(r.manifest.spec, "egress")
	is_object(rule)
	not dns_only(rule)
	some what in openings(rule)
	msg := sprintf("%s lets pods reach %s on %s", [lib.resource_id(r), what, ports_of(rule)])
	v := lib.resource_violation(r, msg, "egress to a namespace, pods or address blocks (storage.s3.egress_cidrs for an S3 endpoint outside the cluster)")
}
