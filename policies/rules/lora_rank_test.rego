package kitchen.rules.lora_rank_test

import data.kitchen.fixtures
import data.kitchen.rules.lora_rank

test_pass_rank_within_max if {
	count(lora_rank.violation) == 0 with input as fixtures.clean
}

test_fail_rank_above_max if {
	patched := fixtures.with_patch({"catalog": {"flavors": {"faq@v1": {"rank": 128}}}})
	vs := lora_rank.violation with input as patched
	count(vs) == 1
	some v in vs
	v.at == {"file": "catalog/flavors/faq@v1.yaml", "line": 1, "col": 1, "path": "rank"}
	v.resource.kind == "InferenceService"
}
