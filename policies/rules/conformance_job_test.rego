package kitchen.rules.conformance_job_test

import data.kitchen.fixtures
import data.kitchen.rules.conformance_job

container(name, args) := {"name": name, "image": fixtures.environment.images.kitchen, "args": args}

serving_args := ["conform", "serving", "--expectations", "/etc/kitchen/expectations.json", "--json", "/reports/serving.json"]

gpu_args := ["conform", "gpu", "--expectations", "/etc/kitchen/expectations.json"]

job(containers, annotations) := {
	"manifest": {
		"apiVersion": "batch/v1",
		"kind": "Job",
		"metadata": {"name": "kitchen-conformance", "namespace": "kitchen-conformance", "annotations": annotations},
		"spec": {"template": {"spec": {"containers": containers}}},
	},
	"_source": fixtures.loc("environments/prod.yaml", 60),
}

hook := {"argocd.argoproj.io/hook": "PostSync"}

with_job(j) := object.union(fixtures.clean, {"resources": array.concat(fixtures.clean.resources, [j])})

whole := job([container("serving", serving_args), container("gpu", gpu_args)], hook)

test_pass_the_job_as_rendered if {
	count(conformance_job.violation) == 0 with input as with_job(whole)
}

test_fail_no_job if {
	vs := conformance_job.violation with input as fixtures.clean
	count(vs) == 1
	some v in vs
	v.at.path == "conformance"
}

test_pass_no_job_where_not_required if {
	relaxed := object.union(fixtures.clean, {"environment": {"gates": {"strictness": "relaxed"}}})
	count(conformance_job.violation) == 0 with input as relaxed
}

test_fail_skip_flag_in_any_spelling if {
	every args in [
		array.concat(serving_args, ["--skip", "performance"]),
		array.concat(serving_args, ["--skip=isolation"]),
		["conform", "serving", "--endpoint", "http://elsewhere:8080"],
		["conform", "serving", "--no_readiness"],
	] {
		vs := conformance_job.violation with input as with_job(job([container("serving", args), container("gpu", gpu_args)], hook))
		count(vs) == 1
	}
}

test_fail_command_replaces_the_entrypoint if {
	c := object.union(container("serving", serving_args), {"command": ["true"]})
	vs := conformance_job.violation with input as with_job(job([c, container("gpu", gpu_args)], hook))
	count(vs) == 1
}

test_fail_not_conform if {
	vs := conformance_job.violation with input as with_job(job([container("serving", ["version"]), container("gpu", gpu_args)], hook))
	# the container runs no conform, and no container checks serving
	count(vs) == 2
}

test_fail_not_a_hook if {
	vs := conformance_job.violation with input as with_job(job([container("serving", serving_args)], {}))
	count(vs) == 1
	vs2 := conformance_job.violation with input as with_job(job([container("serving", serving_args)], {"argocd.argoproj.io/hook": "PreSync"}))
	count(vs2) == 1
}

test_fail_another_image if {
	c := object.union(container("serving", serving_args), {"image": "docker.io/library/busybox:1.36"})
	vs := conformance_job.violation with input as with_job(job([c, container("gpu", gpu_args)], hook))
	count(vs) == 1
}

test_fail_suspended if {
	suspended := object.union(whole, {"manifest": {"spec": {"suspend": true}}})
	vs := conformance_job.violation with input as with_job(suspended)
	count(vs) == 1
}
