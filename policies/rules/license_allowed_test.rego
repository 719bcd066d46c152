package kitchen.rules.license_allowed_test

import data.kitchen.fixtures
import data.kitchen.rules.license_allowed

test_pass_allowed_license if {
	count(license_allowed.violation) == 0 with input as fixtures.clean
}

test_fail_license_not_allowed if {
	patched := fixtures.with_patch({"catalog": {"bases": {"qwen@2.5": {"license": {"id": "cc-by-nc-4.0"}}}}})
	vs := license_allowed.violation with input as patched
	count(vs) == 1
	some v in vs
	v.at.file == "catalog/bases/qwen.yaml"
	v.at.path == "license.id"
}

# SPDX ids compare case-insensitively
test_pass_license_in_other_case if {
	patched := fixtures.with_patch({"catalog": {"bases": {"qwen@2.5": {"license": {"id": "Apache-2.0"}}}}})
	count(license_allowed.violation) == 0 with input as patched
}

test_fail_license_lookalike if {
	patched := fixtures.with_patch({"catalog": {"bases": {"qwen@2.5": {"license": {"id": "Apache-2.0-only"}}}}})
	count(license_allowed.violation) == 1 with input as patched
}
