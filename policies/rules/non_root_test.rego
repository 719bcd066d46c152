package kitchen.rules.non_root_test

import data.kitchen.fixtures
import data.kitchen.llmisvc_fixtures
import data.kitchen.rules.non_root

test_pass_restricted_container if {
	count(non_root.violation) == 0 with input as fixtures.clean
}

test_fail_root_with_capabilities if {
	bad := fixtures.runtime_with({"securityContext": {"runAsNonRoot": false, "capabilities": {"drop": []}}})
	vs := non_root.violation with input as fixtures.with_resource("ServingRuntime", bad)
	count(vs) == 2
}

test_fail_predictor_model_runs_as_root if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"securityContext": {"runAsUser": 0}}}}})
	vs := non_root.violation with input as fixtures.with_resource("InferenceService", bad)
	count(vs) == 1
	some v in vs
	contains(v.msg, "runAsUser: 0")
}

test_pass_llm_inference_service_workload_restricted if {
	count(non_root.violation) == 0 with input as llmisvc_fixtures.clean
}

test_fail_llm_inference_service_workload_runs_as_root if {
	vs := non_root.violation with input as llmisvc_fixtures.with_main({"securityContext": {"runAsNonRoot": false}})
	count(vs) >= 1
	some v in vs
	v.resource.kind == "LLMInferenceService"
}

# The restricted Pod Security Standard, one shape of each.

runtime_violations(container_patch, spec_patch) := vs if {
	bad := fixtures.runtime_with(container_patch)
	patched := object.union(bad, {"manifest": {"spec": spec_patch}})
	vs := non_root.violation with input as fixtures.with_resource("ServingRuntime", patched)
}

only(vs, text) if {
	count(vs) == 1
	some v in vs
	contains(v.msg, text)
}

test_fail_privileged_container if {
	only(runtime_violations({"securityContext": {"privileged": true}}, {}), "is privileged")
}

test_fail_added_capability if {
	only(runtime_violations({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}, {}), "adds capability SYS_ADMIN")
}

test_pass_net_bind_service if {
	count(runtime_violations({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}, {})) == 0
}

test_fail_user_zero_on_container if {
	only(runtime_violations({"securityContext": {"runAsUser": 0}}, {}), "runs as user 0")
}

# the pod's user applies where the container sets none, the container's wins where it does
test_fail_user_zero_on_pod if {
	only(runtime_violations({}, {"securityContext": {"runAsUser": 0}}), "runs as user 0")
}

test_pass_container_user_over_pod_root if {
	count(runtime_violations({"securityContext": {"runAsUser": 1001}}, {"securityContext": {"runAsUser": 0}})) == 0
}

test_fail_seccomp_unconfined if {
	only(runtime_violations({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, {}), "seccomp")
}

# no profile on the container nor its pod: the same on both engines (a helper rule, not
# a negated call OPA would hoist)
test_fail_seccomp_absent if {
	sc := json.remove(fixtures.security_context, ["seccompProfile"])
	bad := object.union(fixtures.runtime, {"manifest": {"spec": {"containers": [
		object.union(json.remove(fixtures.runtime.manifest.spec.containers[0], ["securityContext"]), {"securityContext": sc}),
	]}}})
	vs := non_root.violation with input as fixtures.with_resource("ServingRuntime", bad)
	only(vs, "seccomp")
}

test_pass_seccomp_on_pod if {
	sc := json.remove(fixtures.security_context, ["seccompProfile"])
	bad := object.union(fixtures.runtime, {"manifest": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [object.union(json.remove(fixtures.runtime.manifest.spec.containers[0], ["securityContext"]), {"securityContext": sc})],
	}}})
	count(non_root.violation) == 0 with input as fixtures.with_resource("ServingRuntime", bad)
}

test_fail_host_port if {
	only(runtime_violations({"ports": [{"containerPort": 8080, "hostPort": 8080}]}, {}), "host port 8080")
}

test_fail_host_namespaces if {
	vs := runtime_violations({}, {"hostNetwork": true, "hostPID": true, "hostIPC": false})
	count(vs) == 2
}

test_fail_host_path_volume if {
	only(runtime_violations({}, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}), "hostPath volume root (/)")
}

test_pass_null_host_path if {
	count(runtime_violations({}, {"volumes": [{"name": "cache", "emptyDir": {}, "hostPath": null}]})) == 0
}

test_fail_predictor_model_adds_capability if {
	bad := fixtures.isvc_with({"spec": {"predictor": {"model": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}}}})
	vs := non_root.violation with input as fixtures.with_resource("InferenceService", bad)
	only(vs, "capabilities.add")
}
