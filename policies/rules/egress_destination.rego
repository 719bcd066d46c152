# METADATA
# title: Egress goes to named destinations
# description: >-
#   Every egress rule of a rendered NetworkPolicy names where it may go (`to:` a
#   namespace, pods or an address block), except DNS (port 53); an address block never
#   covers every address (`0.0.0.0/0`, `::/0`). An S3 endpoint outside the cluster
#   needs `storage.s3.egress_cidrs`, else its pods could reach any host on the port.
# custom:
#   id: policy.egress-destination
#   severity: error
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

# A rule without peers reaches everything on its ports.
open_to(rule) := "any destination" if {
	count(lib.list_at(rule, "to")) == 0
}

open_to(rule) := sprintf("every address (%s)", [cidr]) if {
	some peer in lib.list_at(rule, "to")
	is_object(peer)
	cidr := peer.ipBlock.cidr
	is_string(cidr)
	cidr in {"0.0.0.0/0", "::/0"}
}

ports_of(rule) := "every port" if {
	count(lib.list_at(rule, "ports")) == 0
} else := concat(", ", [sprintf("%v", [object.get(p, "port", "any")]) | some p in lib.list_at(rule, "ports"); is_object(p)])

violation contains v if {
	some r in lib.resources_of_kind("NetworkPolicy")
	some rule in lib.list_at(r.manifest.spec, "egress")
	is_object(rule)
	not dns_only(rule)
	what := open_to(rule)
	msg := sprintf("%s lets pods reach %s on %s", [lib.resource_id(r), what, ports_of(rule)])
	v := lib.resource_violation(r, msg, "egress to a namespace, pods or address blocks (storage.s3.egress_cidrs for an S3 endpoint outside the cluster)")
}
