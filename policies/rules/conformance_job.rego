# METADATA
# title: The post-sync conformance Job runs every check
# description: >-
#   At the strictness levels in `conformance_required_strictness` (policies/data.yaml),
#   the environment renders the Job `kitchen-conformance/kitchen-conformance` as an Argo
#   CD PostSync hook, and each of its containers runs the image's kitchen entrypoint (no
#   `command`, the environment's `images.kitchen`), not suspended, with `conform
#   serving` or `conform gpu` and none of
#   `conformance_forbidden_flags` — options that would skip checks, narrow them to some
#   services or point them at another endpoint. The argv is read as a parser reads it:
#   `--flag=value` and `--flag value` alike, `_` as `-`, wherever the option stands.
# custom:
#   id: policy.conformance-job
#   severity: error
#   scope: plan
package kitchen.rules.conformance_job

import data.kitchen.lib

job_name := "kitchen-conformance"

required if data.kitchen.lib.strictness in data.kitchen.lib.params.conformance_required_strictness

jobs contains r if {
	some r in lib.resources_of_kind("Job")
	r.manifest.metadata.name == job_name
	object.get(r.manifest.metadata, "namespace", "") == job_name
}

expected := "the PostSync Job kitchen-conformance running `kitchen conform serving|gpu` with no command and none of conformance_forbidden_flags"

violation contains v if {
	required
	count(jobs) == 0
	v := {
		"msg": sprintf("environment %s renders no conformance Job %s/%s: nothing proves after a sync that its flavors are served", [data.kitchen.lib.env.name, job_name, job_name]),
		"at": lib.at(data.kitchen.lib.env, "conformance"),
		"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
		"expected": expected,
	}
}

violation contains v if {
	required
	some r in jobs
	lib.annotation(r, "argocd.argoproj.io/hook") != "PostSync"
	msg := sprintf("%s is not an Argo CD PostSync hook (argocd.argoproj.io/hook: PostSync): it does not run after each sync", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, expected)
}

violation contains v if {
	required
	some r in jobs
	not r.manifest.metadata.annotations["argocd.argoproj.io/hook"]
	msg := sprintf("%s is not an Argo CD PostSync hook (argocd.argoproj.io/hook: PostSync): it does not run after each sync", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, expected)
}

job_containers contains {"r": r, "c": c} if {
	some r in jobs
	some c in lib.list_at(lib.pod_spec(r.manifest), "containers")
	is_object(c)
}

violation contains v if {
	required
	some x in job_containers
	r := x.r
	c := x.c
	count(lib.list_at(c, "command")) > 0
	msg := sprintf("container %v of %s sets a command (%v) in place of the kitchen entrypoint", [object.get(c, "name", "?"), lib.resource_id(r), concat(" ", [sprintf("%v", [t]) | some t in c.command])])
	v := lib.resource_violation(r, msg, expected)
}

runs_conform(c) if {
	args := lib.list_at(c, "args")
	args[0] == "conform"
	args[1] in {"serving", "gpu"}
}

violation contains v if {
	required
	some x in job_containers
	r := x.r
	c := x.c
	not runs_conform(c)
	msg := sprintf("container %v of %s does not run `conform serving` or `conform gpu`", [object.get(c, "name", "?"), lib.resource_id(r)])
	v := lib.resource_violation(r, msg, expected)
}

violation contains v if {
	required
	some x in job_containers
	r := x.r
	c := x.c
	some flag, _ in lib.vllm_flags(c)
	flag in data.kitchen.lib.params.conformance_forbidden_flags
	msg := sprintf("container %v of %s passes %s to kitchen conform, which narrows or redirects the post-sync proof", [object.get(c, "name", "?"), lib.resource_id(r), flag])
	v := lib.resource_violation(r, msg, expected)
}

serving_checked if {
	some x in job_containers
	runs_conform(x.c)
	x.c.args[1] == "serving"
}

violation contains v if {
	required
	some r in jobs
	not serving_checked
	msg := sprintf("%s has no container running `conform serving`", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, expected)
}

violation contains v if {
	required
	some x in job_containers
	image := object.get(x.c, "image", "")
	image != data.kitchen.lib.env.images.kitchen
	msg := sprintf("container %v of %s runs image %v, not the environment's kitchen image %s", [object.get(x.c, "name", "?"), lib.resource_id(x.r), image, data.kitchen.lib.env.images.kitchen])
	v := lib.resource_violation(x.r, msg, expected)
}

violation contains v if {
	required
	some r in jobs
	r.manifest.spec.suspend == true
	msg := sprintf("%s is suspended (spec.suspend: true): it never runs", [lib.resource_id(r)])
	v := lib.resource_violation(r, msg, expected)
}
