# Helpers shared by the rules of kitchen's policy library.
#
# The input is one document per environment (see docs/policies.md): the environment,
# the catalog items, the plan and the rendered resources.  Catalog items carry
# `_source` (where the object starts); rendered resources carry `_source`, the catalog
# line that caused them.
package kitchen.lib

params := data.kitchen.params

env := input.environment

# The location of `field` (a dotted path) in a catalog item: the item's `_source` with the
# path, which kitchen resolves to the field's file:line:col (or, for a field the file
# leaves to its default, to where it would be written).  A path the item's kind does not
# have is an error of the rule.
at(item, field) := object.union(item._source, {"path": field})

# Every InferenceService of the plan.
services contains s if {
	some t in input.plan.tenants
	some s in t.services
}

# The serving object of a planned service: an InferenceService, or an LLMInferenceService
# where the environment serves through KServe's LLM API (the plan says which).
service_resource(s) := {
	"kind": object.get(s, "kind", "InferenceService"),
	"apiVersion": object.get(s, "api_version", "serving.kserve.io/v1beta1"),
	"name": s.inference_service,
	"namespace": s.namespace,
}

resource_ref(r) := {
	"kind": r.manifest.kind,
	"apiVersion": r.manifest.apiVersion,
	"name": r.manifest.metadata.name,
	"namespace": object.get(r.manifest.metadata, "namespace", ""),
}

resource_id(r) := sprintf("%s/%s/%s", [r.manifest.kind, r.manifest.metadata.namespace, r.manifest.metadata.name]) if {
	r.manifest.metadata.namespace
} else := sprintf("%s/%s", [r.manifest.kind, r.manifest.metadata.name])

# A violation about a rendered resource, located at the catalog line that caused it.
resource_violation(r, msg, expected) := {
	"msg": msg,
	"at": r._source,
	"resource": resource_ref(r),
	"object": resource_id(r),
	"expected": expected,
}

# A violation about a catalog item field, concerning the InferenceService `s`.
service_violation(s, item, field, object_id, msg, expected) := {
	"msg": msg,
	"at": at(item, field),
	"resource": service_resource(s),
	"object": object_id,
	"expected": expected,
}

annotation(r, name) := r.manifest.metadata.annotations[name]

# The pod spec of a workload, by kind.
pod_spec(m) := m.spec if m.kind == "ServingRuntime"

pod_spec(m) := m.spec.predictor if m.kind == "InferenceService"

pod_spec(m) := m.spec.template if m.kind == "LLMInferenceService"

pod_spec(m) := m.spec if m.kind == "Pod"

pod_spec(m) := m.spec.template.spec if {
	m.kind in params.workload_kinds
	m.kind != "Pod"
}

pod_spec(m) := m.spec.jobTemplate.spec.template.spec if m.kind == "CronJob"

# The list under `key` of a rendered object; [] when it is absent, null or no list (a
# template may write `env:` with nothing after it).  Rules iterate through it, never over
# the raw field: `some x in null` is an error on regorus and merely undefined on OPA.
list_at(obj, key) := v if {
	is_object(obj)
	v := object.get(obj, key, [])
	is_array(v)
} else := []

# A container's env entries.
env_vars(c) := list_at(c, "env")

# The pod spec of every rendered workload: {"i": resource index, "spec": its pod spec}.
# Rules go through it rather than asking every resource for its pod spec again.
pod_specs contains {"i": i, "spec": spec} if {
	some i, r in input.resources
	spec := pod_spec(r.manifest)
}

# Every container of every rendered workload: {"i": resource index, "container": c}.
containers contains {"i": x.i, "container": c} if {
	some x in pod_specs
	some c in list_at(x.spec, "containers")
}

containers contains {"i": x.i, "container": c} if {
	some x in pod_specs
	some c in list_at(x.spec, "initContainers")
}

resources_of_kind(kind) := [r | some r in input.resources; r.manifest.kind == kind]

ref(item) := sprintf("%s@%s", [item.name, item.version])

strictness := object.get(env, ["gates", "strictness"], "standard")

# The namespace Prometheus runs in, whose pods the tenants' NetworkPolicies admit to vLLM's
# port: the environment's observability.monitoring_namespace, else the platform's own.
monitoring_namespace := ns if {
	ns := object.get(env, ["observability", "monitoring_namespace"], null)
	ns != null
} else := "openshift-user-workload-monitoring" if {
	object.get(env, ["cluster", "platform"], "openshift") == "openshift"
} else := "monitoring"

# ---------------------------------------------------------------- argv as vLLM reads it

# The option a token names, as vLLM's parser reads it (`_` as `-`, `--flag=value`);
# undefined for a value.
flag_name(token) := replace(split(token, "=")[0], "_", "-") if {
	is_string(token)
	startswith(token, "--")
}

has_inline_value(token) if contains(token, "=")

next_is_value(argv, i) if {
	count(argv) > i + 1
	is_value(argv[i + 1])
}

# A token is a value unless it starts with `-`, or when argparse takes it for a negative number.
is_value(token) if {
	is_string(token)
	not startswith(token, "-")
}

is_value(token) if {
	is_string(token)
	regex.match(`^-[0-9]+$|^-[0-9]*\.[0-9]+$`, token)
}

# The value of the option at argv[i]: `--flag=value`, `--flag value`, or true (a switch).
flag_value(argv, i) := substring(argv[i], indexof(argv[i], "=") + 1, -1) if {
	has_inline_value(argv[i])
} else := argv[i + 1] if {
	next_is_value(argv, i)
} else := true

# The option names of an argv, "" for a value token.
flag_names(argv) := [n | some t in argv; n := flag_name_or_value(t)]

flag_name_or_value(t) := flag_name(t) if {
	is_string(t)
	startswith(t, "--")
} else := ""

# A container's command and args as vLLM parses them: option → value, the last one wins.
vllm_flags(c) := {name: flag_value(argv, last) |
	argv := array.concat(list_at(c, "command"), list_at(c, "args"))
	names := flag_names(argv)
	some name in {n | some n in names; n != ""}
	last := max([j | some j, n in names; n == name])
}

# The containers that run vLLM, each with its flags: {"i", "container", "flags"} for each
# ServingRuntime container, the InferenceService predictor's model (KServe merges its
# fields over the runtime's container) and containers, and an LLMInferenceService's
# workload containers (KServe merges them over its LLMInferenceServiceConfig's `main`
# container, whose command is vLLM's).  kitchen hands each resource's flags over already
# read, by the container's path (`vllm_flags` of the resource, read by
# kitchen_gitops/argv.py, which a test holds equal to `vllm_flags` here); an input without
# them (a test fixture) is read here.
serving_containers contains {"i": x.i, "container": x.container, "flags": flags_of(x)} if {
	some x in vllm_containers
}

flags_of(x) := input.resources[x.i].vllm_flags[x.path] if {
	is_object(input.resources[x.i].vllm_flags[x.path])
} else := vllm_flags(x.container)

vllm_containers contains {"i": i, "path": sprintf("spec.containers.%d", [k]), "container": c} if {
	some i, r in input.resources
	r.manifest.kind == "ServingRuntime"
	some k, c in list_at(r.manifest.spec, "containers")
}

vllm_containers contains {"i": i, "path": "spec.predictor.model", "container": c} if {
	some i, r in input.resources
	r.manifest.kind == "InferenceService"
	c := r.manifest.spec.predictor.model
	is_object(c)
}

vllm_containers contains {"i": i, "path": sprintf("spec.predictor.containers.%d", [k]), "container": c} if {
	some i, r in input.resources
	r.manifest.kind == "InferenceService"
	some k, c in list_at(r.manifest.spec.predictor, "containers")
}

vllm_containers contains {"i": i, "path": sprintf("spec.template.containers.%d", [k]), "container": c} if {
	some i, r in input.resources
	r.manifest.kind == "LLMInferenceService"
	some k, c in list_at(object.get(r.manifest.spec, "template", {}), "containers")
}

# The InferenceService predictor's model, {"i": resource index, "container": model}:
# KServe merges its fields (image, env, args, securityContext) over the runtime's
# container, so what it sets is what runs.
model_overrides contains {"i": i, "container": c} if {
	some i, r in input.resources
	r.manifest.kind == "InferenceService"
	c := r.manifest.spec.predictor.model
	is_object(c)
}

# The value a container's env gives `name`: the last entry wins, as in Kubernetes;
# null for an entry without a literal value (valueFrom).
env_value(c, name) := vs[count(vs) - 1] if {
	vs := [object.get(e, "value", null) | some e in env_vars(c); e.name == name]
	count(vs) > 0
}
