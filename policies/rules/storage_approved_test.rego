package kitchen.rules.storage_approved_test

import data.kitchen.fixtures
import data.kitchen.rules.storage_approved

test_pass_pvc_and_s3 if {
	count(storage_approved.violation) == 0 with input as fixtures.clean
}

test_fail_flavor_from_hub if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"source": "hf://acme/faq-lora/v1"}}}})
	vs := storage_approved.violation with input as patched
	count(vs) == 1
	some v in vs
	v.object == "Flavor/faq@v1"
}

test_fail_base_over_https if {
	patched := fixtures.with_patch({"catalog": {"bases": {"qwen@2.5": {"source": "https://example.com/qwen/2.5/"}}}})
	count(storage_approved.violation) == 1 with input as patched
}
