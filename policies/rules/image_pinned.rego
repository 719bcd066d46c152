# METADATA
# title: Images are pinned by digest and come from an allowed registry
# description: >-
#   Every container image of a rendered workload (serving runtimes, jobs, pods) is
#   referenced by `@sha256:` digest, never by a tag (and never `latest`), and its
#   registry is one of the environment's `registry.allowed` — an InferenceService
#   predictor's model that names its own image (KServe runs it instead) included.
# custom:
#   id: policy.image-pinned
#   severity: error
#   scope: tenant
#   remediation: Pin the image as <registry>/<repository>@sha256:<digest> in the environment's images.
package kitchen.rules.image_pinned

import data.kitchen.lib

pinned(image) if regex.match(`^[^@\s]+@sha256:[0-9a-f]{64}$`, image)

# The registry host of an image reference (Docker Hub when the first part is no host).
registry(image) := host if {
	parts := split(image, "/")
	count(parts) > 1
	host := parts[0]
	regex.match(`[.:]|^localhost$`, host)
} else := "docker.io"

tag_of(image) := tag if {
	name := split(image, "@")[0]
	last := split(name, "/")[count(split(name, "/")) - 1]
	contains(last, ":")
	tag := split(last, ":")[1]
}

# A helper, not `not tag_of(image) == "latest"`: OPA hoists the call out of the negation,
# so for an untagged image (tag_of undefined) that body is undefined on OPA, true on regorus.
latest(image) if tag_of(image) == "latest"

allowed(image) if registry(image) in data.kitchen.lib.env.registry.allowed

# Every container that names an image: those of the workloads, and an InferenceService
# predictor's model that overrides the runtime's image.
with_image := data.kitchen.lib.containers | {x | some x in data.kitchen.lib.model_overrides; x.container.image}

violation contains v if {
	some x in with_image
	image := x.container.image
	not pinned(image)
	latest(image)
	r := input.resources[x.i]
	msg := sprintf("container %s of %s uses the mutable tag 'latest' (%s)", [object.get(x.container, "name", "(predictor model)"), lib.resource_id(r), image])
	v := lib.resource_violation(r, msg, "an image pinned by @sha256: digest")
}

violation contains v if {
	some x in with_image
	image := x.container.image
	not pinned(image)
	not latest(image)
	r := input.resources[x.i]
	msg := sprintf("container %s of %s uses image %s, which is not pinned by digest", [object.get(x.container, "name", "(predictor model)"), lib.resource_id(r), image])
	v := lib.resource_violation(r, msg, "an image pinned by @sha256: digest")
}

violation contains v if {
	some x in with_image
	image := x.container.image
	not allowed(image)
	r := input.resources[x.i]
	msg := sprintf("container %s of %s pulls from registry %s, which environment %s does not allow", [object.get(x.container, "name", "(predictor model)"), lib.resource_id(r), registry(image), data.kitchen.lib.env.name])
	v := lib.resource_violation(r, msg, sprintf("one of %s", [concat(", ", data.kitchen.lib.env.registry.allowed)]))
}
