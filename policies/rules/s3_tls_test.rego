package kitchen.rules.s3_tls_test

import data.kitchen.fixtures
import data.kitchen.rules.s3_tls

test_pass_https_verified if {
	count(s3_tls.violation) == 0 with input as fixtures.clean
}

test_fail_plain_http if {
	bad := object.union(fixtures.storage_account, {"manifest": {"metadata": {"annotations": {"serving.kserve.io/s3-usehttps": "0"}}}})
	vs := s3_tls.violation with input as fixtures.with_resource("ServiceAccount", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "plain HTTP")
}

test_pass_dev_without_tls if {
	bad := object.union(fixtures.storage_account, {"manifest": {"metadata": {"annotations": {"serving.kserve.io/s3-usehttps": "0"}}}})
	patched := object.union(fixtures.with_resource("ServiceAccount", bad), {"environment": {"gates": {"strictness": "relaxed"}}})
	count(s3_tls.violation) == 0 with input as patched
}

# the rendered endpoint's own scheme, in any case, overrides use_https
test_fail_http_endpoint_any_case if {
	bad := object.union(fixtures.storage_account, {"manifest": {"metadata": {"annotations": {"serving.kserve.io/s3-endpoint": "HTTP://minio.minio.svc:9000"}}}})
	vs := s3_tls.violation with input as fixtures.with_resource("ServiceAccount", bad)
	count(vs) == 1
	some v in vs
	v.at.path == "storage.s3.endpoint"
}

test_pass_https_endpoint if {
	ok := object.union(fixtures.storage_account, {"manifest": {"metadata": {"annotations": {"serving.kserve.io/s3-endpoint": "https://minio.minio.svc:9000"}}}})
	count(s3_tls.violation) == 0 with input as fixtures.with_resource("ServiceAccount", ok)
}
