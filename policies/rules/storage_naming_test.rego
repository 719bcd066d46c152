package kitchen.rules.storage_naming_test

import data.kitchen.fixtures
import data.kitchen.rules.storage_naming

test_pass_conventional_paths if {
	count(storage_naming.violation) == 0 with input as fixtures.clean
}

test_fail_flavor_path_of_other_version if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"source": "s3://lora/faq/v0/"}}}})
	vs := storage_naming.violation with input as patched
	count(vs) == 1
	some v in vs
	v.expected == "a path ending in lora/faq/v1/"
}
