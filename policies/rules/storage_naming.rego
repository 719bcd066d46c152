# METADATA
# title: Storage paths follow the naming convention
# description: >-
#   A base model lives under `…/base/<name>/<version>/` and a flavor's adapter under
#   `…/lora/<name>/<version>/` (for S3 the bucket counts: `s3://lora/<name>/<version>/`),
#   so every object in storage names the catalog entry it belongs to, and two versions
#   never share a path.
# custom:
#   id: policy.storage-naming
#   severity: warning
#   scope: tenant
package kitchen.rules.storage_naming

import data.kitchen.lib

follows(uri, prefix, item) if {
	path := trim_suffix(uri, "/")
	endswith(path, sprintf("/%s/%s/%s", [prefix, item.name, item.version]))
}

violation contains v if {
	some ref, base in input.catalog.bases
	not follows(base.source, "base", base)
	v := {
		"msg": sprintf("base %s is stored at %s, outside the convention", [ref, base.source]),
		"at": lib.at(base, "source"),
		"object": sprintf("Base/%s", [ref]),
		"expected": sprintf("a path ending in base/%s/%s/", [base.name, base.version]),
	}
}

violation contains v if {
	some ref, flavor in input.catalog.flavors
	not follows(flavor.source, "lora", flavor)
	v := {
		"msg": sprintf("flavor %s is stored at %s, outside the convention", [ref, flavor.source]),
		"at": lib.at(flavor, "source"),
		"object": sprintf("Flavor/%s", [ref]),
		"expected": sprintf("a path ending in lora/%s/%s/", [flavor.name, flavor.version]),
	}
}
