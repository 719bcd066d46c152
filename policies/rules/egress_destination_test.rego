package kitchen.rules.egress_destination_test

import data.kitchen.fixtures
import data.kitchen.rules.egress_destination

egress_policy(rules) := {
	"manifest": {
		"apiVersion": "networking.k8s.io/v1",
		"kind": "NetworkPolicy",
		"metadata": {"name": "allow-dns-and-storage-egress", "namespace": "support"},
		"spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules},
	},
	"_source": fixtures.loc("environments/prod.yaml", 34),
}

dns := {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}

with_egress(rules) := object.union(fixtures.clean, {"resources": array.concat(fixtures.clean.resources, [egress_policy(rules)])})

test_pass_storage_in_its_namespace if {
	storage := {"ports": [{"protocol": "TCP", "port": 9000}], "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "minio"}}}]}
	count(egress_destination.violation) == 0 with input as with_egress([dns, storage])
}

test_pass_storage_in_an_address_block if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}
	count(egress_destination.violation) == 0 with input as with_egress([dns, storage])
}

test_fail_port_without_destination if {
	vs := egress_destination.violation with input as with_egress([dns, {"ports": [{"protocol": "TCP", "port": 443}]}])
	count(vs) == 1
	some v in vs
	contains(v.msg, "any destination on 443")
	v.at.line == 34
}

test_fail_every_address if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
	vs := egress_destination.violation with input as with_egress([dns, storage])
	count(vs) == 1
}

test_fail_no_ports_no_peers_allows_everything if {
	vs := egress_destination.violation with input as with_egress([{}])
	count(vs) == 1
	some v in vs
	contains(v.msg, "every port")
}

test_fail_dns_with_another_port if {
	rule := {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 8080}]}
	count(egress_destination.violation) == 1 with input as with_egress([rule])
}

test_pass_egress_absent_null_or_empty if {
	count(egress_destination.violation) == 0 with input as with_egress([])
	count(egress_destination.violation) == 0 with input as with_egress(null)
}

test_fail_every_address_in_halves if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]}
	count(egress_destination.violation) == 2 with input as with_egress([dns, storage])
}

test_pass_a_corporate_network if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "fd00::/32"}}]}
	count(egress_destination.violation) == 0 with input as with_egress([dns, storage])
}

test_fail_ipv6_too_wide if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "2000::/3"}}]}
	count(egress_destination.violation) == 1 with input as with_egress([dns, storage])
}

test_fail_every_namespace if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"namespaceSelector": {}}]}
	count(egress_destination.violation) == 1 with input as with_egress([dns, storage])
}

test_fail_every_pod_of_every_namespace if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"namespaceSelector": {}, "podSelector": {}}]}
	count(egress_destination.violation) == 1 with input as with_egress([dns, storage])
}

test_pass_pods_of_every_namespace_selected_by_label if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "s3-proxy"}}}]}
	count(egress_destination.violation) == 0 with input as with_egress([dns, storage])
}

test_fail_block_without_prefix if {
	storage := {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"ipBlock": {"cidr": "10.1.2.3"}}]}
	count(egress_destination.violation) == 1 with input as with_egress([dns, storage])
}
