package kitchen.rules.base_version_test

import data.kitchen.fixtures
import data.kitchen.rules.base_version

test_pass_trained_on_served_base if {
	count(base_version.violation) == 0 with input as fixtures.clean
}

test_fail_other_base_version if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"base": {"version": "2.0"}}}}})
	vs := base_version.violation with input as patched
	count(vs) == 1
	some v in vs
	contains(v.msg, "trained on qwen@2.0")
}

test_fail_adapter_path_of_other_base if {
	old := object.union(fixtures.flavor, {"version": "v0", "ref": "faq@v0", "base": {"version": "2.0"}})
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v0": old}}})
	vs := base_version.violation with input as patched
	count(vs) == 1
	some v in vs
	contains(v.msg, "the adapter of faq@v0")
}
