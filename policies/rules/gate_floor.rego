# METADATA
# title: Environments do not loosen the gates policies/ sets for them
# description: >-
#   The policy data (`gate_floors`, owned by security with the rest of `policies/`)
#   sets the minimum gates of each environment by name and by cluster; an environment
#   file may tighten its gates but never loosen them: strictness at least the floor's,
#   `fail_on_warn`, `air_gapped`, `require_approved_base` and `require_evaluation` on
#   where the floor turns them on, registries, licenses (compared as SPDX ids) and the
#   trust-remote-code allowlist within the floor's, and `promotes_from` as the floor
#   says. What the environment asks of its own serving is floored too: its SLOs (latency
#   objectives at most the floor's, output-token rate and goodput at least), the load of
#   its conformance job (requests, concurrency, output and prompt tokens at least, the
#   isolation flip rate at most; and, as `conformance_max` says, the load, the readiness
#   wait and the deadline at most, for the Job runs against the live servers after every
#   sync), its observability (on where the floor says so,
#   scraped and alerting at least as often, the saturation alerts' thresholds and
#   waits at most the floor's) and the replicas every rendered
#   InferenceService or LLMInferenceService runs (`serving.min_replicas`: a tenant's
#   `replicas: 0` or a template's would serve nothing). What Argo CD syncs into the
#   environment comes from where the floor says (`argocd`): every rendered Application's
#   source a repository of `repo_urls` at a revision of `target_revisions`, its path the
#   environment's own rendered output, its project one of `projects` — so that a pull
#   request cannot point prod at a fork, a feature branch or dev's manifests; and where
#   the floor says `manual_sync: true`, no Application syncs by itself (no enabled
#   `syncPolicy.automated`: a person syncs prod), and every Application deploys to a cluster
#   of `argocd.destination_servers` (its `destination.server`, rendered from
#   `cluster.api_server`). Where the environment's S3 is comes from the floor too
#   (`storage`): its endpoint one of `endpoints`, exactly; `use_https` and `verify_ssl` on
#   where the floor turns them on; the bucket of every `s3://` source it serves (a base's
#   or a flavor's, found at its `source`) and of its `evidence.uri` one of `buckets`; the
#   claim of every `pvc://` source (a base's weights) one of `claims` (a claim the tenant
#   can write to would let it choose the weights prod serves); and
#   every `storage.s3.egress_cidrs` block one of the floor's `egress_cidrs` (none where
#   it lists none). What the environment names that kitchen writes into or trusts is
#   one of the floor's lists where it lists them: the monitoring namespace (whose pods
#   every tenant's NetworkPolicy admits to vLLM's port; the platform's own where the
#   environment names none), the runbook every alert links to (on-call follows it during
#   an incident), the dashboard's and Argo CD's namespaces, the Secret of the
#   S3 credentials, the ConfigMap of the CA that verifies S3's certificate and KServe's
#   deployment mode (Serverless admits the mesh's and Knative's namespaces) and API
#   (`serving.apis`: an LLMInferenceService runs the llm-d scheduler, from the platform's
#   KServe configuration, in every tenant's namespace); and so is
#   the Prometheus that KEDA queries (with the querier's token) where it autoscales
#   (`autoscaling.prometheus_urls`), and the repository of the vLLM image and of the
#   conformance Job's image, which holds the evidence signing key (`images`: `vllm`,
#   `kitchen`; the registry alone would admit any image pushed to it). Every base the
#   environment serves is one of the floor's `approved_bases` (name@version, read from the
#   source the floor names with it) where it lists them: a base's own `license.approval`
#   is written by the pull request that adds the base. The cluster's GPUs are those of the floor (`gpu`:
#   the product one of `products`; the extended resource the servers request and the
#   tenants' quotas count, one of `resources`: another name is a resource no device plugin
#   hands out and no quota of the GPUs counts; `memory_gib`, `per_node` and `nodes` at most), and
#   every node label of the floor's `scheduling.node_selector` is in the environment's,
#   with its value, and every toleration of the environment one of the floor's
#   `scheduling.tolerations` where it lists them. An environment the floors do not name is
#   held to the `unnamed` floor (the strictest), and every environment to the floor of
#   its cluster too.
# custom:
#   id: policy.gate-floor
#   severity: error
#   scope: tenant
#   remediation: Restore the environment's gate to at least its floor, or have security change the floor in policies/data.yaml.
package kitchen.rules.gate_floor

import data.kitchen.lib

floors := object.get(data.kitchen.lib.params, "gate_floors", {})

named := object.get(floors, "environments", {})

# The names of the floors that hold this environment: its own (else the `unnamed` one)
# and its cluster's.
applies contains name if {
	name := data.kitchen.lib.env.name
	named[name]
}

applies contains name if {
	not named[data.kitchen.lib.env.name]
	name := floors.unnamed
}

applies contains name if {
	cluster := data.kitchen.lib.env.cluster.name
	name := object.get(floors, "clusters", {})[cluster]
}

level := {"relaxed": 0, "standard": 1, "strict": 2}

flags := ["fail_on_warn", "air_gapped", "require_approved_base", "require_evaluation"]

gates := object.get(data.kitchen.lib.env, "gates", {})

floor_violation(field, msg, floor_name, expected) := {
	"msg": sprintf("environment %s %s, below the floor %s that policies/ sets for it", [data.kitchen.lib.env.name, msg, floor_name]),
	"at": lib.at(data.kitchen.lib.env, field),
	"object": sprintf("Environment/%s", [data.kitchen.lib.env.name]),
	"expected": expected,
}

license_in(id, ids) if {
	some a in ids
	lower(a) == lower(id)
}

violation contains v if {
	some name in applies
	want := named[name].strictness
	got := object.get(gates, "strictness", "standard")
	level[got] < level[want]
	v := floor_violation("gates.strictness", sprintf("sets strictness %s", [got]), name, sprintf("strictness %s or stricter", [want]))
}

violation contains v if {
	some name in applies
	some flag in flags
	named[name][flag] == true
	object.get(gates, flag, false) != true
	v := floor_violation(sprintf("gates.%s", [flag]), sprintf("turns %s off", [flag]), name, sprintf("%s: true", [flag]))
}

violation contains v if {
	some name in applies
	allowed := named[name].registries
	some i, r in lib.list_at(object.get(data.kitchen.lib.env, "registry", {}), "allowed")
	not r in allowed
	v := floor_violation(sprintf("registry.allowed.%d", [i]), sprintf("allows registry %s", [r]), name, sprintf("registries within %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].registries
	r := data.kitchen.lib.env.registry.internal
	not r in allowed
	v := floor_violation("registry.internal", sprintf("pulls from registry %s", [r]), name, sprintf("one of %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].licenses
	some i, id in lib.list_at(gates, "allowed_licenses")
	not license_in(id, allowed)
	v := floor_violation(sprintf("gates.allowed_licenses.%d", [i]), sprintf("allows license %s", [id]), name, sprintf("licenses within %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	allowed := named[name].trust_remote_code
	some i, base in lib.list_at(gates, "trust_remote_code_allowlist")
	not base in allowed
	v := floor_violation(sprintf("gates.trust_remote_code_allowlist.%d", [i]), sprintf("lets base %s run remote code", [base]), name, sprintf("trust_remote_code only for %s", [concat(", ", allowed)]))
}

violation contains v if {
	some name in applies
	floor := named[name]
	"promotes_from" in object.keys(floor)
	want := floor.promotes_from
	got := object.get(data.kitchen.lib.env, "promotes_from", null)
	got != want
	v := floor_violation("promotes_from", promotes_text(got), name, promotes_text(want))
}

promotes_text(from) := sprintf("promotes from %s", [from]) if is_string(from)

else := "promotes from no environment"

# Numeric floors of what an environment asks of its own serving: "max", the environment's
# value at most the floor's (a latency objective, how long an alert waits); "min", at
# least (a throughput, the conformance load).  A field the environment leaves unset where
# the floor sets one is looser than any value.
limits := {
	"slo": {
		"ttft_p95_ms": "max", "tpot_p95_ms": "max", "e2e_p95_ms": "max",
		"min_output_tokens_per_s": "min", "goodput_min_ratio": "min",
	},
	"conformance": {
		"requests": "min", "concurrency": "min", "output_tokens": "min", "prompt_tokens": "min",
		"isolation_max_flip_rate": "max",
	},
	"conformance_max": {
		"requests": "max", "concurrency": "max", "output_tokens": "max", "prompt_tokens": "max",
		"readiness_timeout_s": "max", "active_deadline_s": "max",
	},
	"observability": {"scrape_interval_s": "max", "slo_for_minutes": "max"},
	"saturation": {"kv_cache_usage_max": "max", "requests_waiting_max": "max", "for_minutes": "max"},
	"gpu": {"memory_gib": "max", "per_node": "max", "nodes": "max"},
}

# Where a section of limits is in the environment: its own name, but for the saturation
# alerts' thresholds (observability.saturation), the cluster's GPUs (cluster.gpu: more
# memory, GPUs or nodes than the cluster has would plan servers that never start and hide
# an over-committed quota) and the most the conformance Job may load the servers with
# (conformance: the Job runs against the environment's live servers after every sync).
section_path(section) := ["observability", "saturation"] if section == "saturation"

else := ["conformance"] if section == "conformance_max"

else := ["cluster", "gpu"] if section == "gpu"

else := [section]

# helper rules, not `not x > y` (an undefined operand would differ between engines)
looser(got, _, _) if got == null

looser(got, want, "max") if {
	is_number(got)
	got > want
}

looser(got, want, "min") if {
	is_number(got)
	got < want
}

bound_text(field, want, "max") := sprintf("%s at most %v", [field, want])

bound_text(field, want, "min") := sprintf("%s at least %v", [field, want])

set_text(field, null) := sprintf("sets no %s", [field])

set_text(field, got) := sprintf("sets %s %v", [field, got]) if got != null

violation contains v if {
	some name in applies
	some section, fields in limits
	some field, way in fields
	want := named[name][section][field]
	path := array.concat(section_path(section), [field])
	got := object.get(data.kitchen.lib.env, path, null)
	looser(got, want, way)
	at := concat(".", path)
	v := floor_violation(at, set_text(at, got), name, bound_text(at, want, way))
}

violation contains v if {
	some name in applies
	named[name].observability.enabled == true
	object.get(object.get(data.kitchen.lib.env, "observability", {}), "enabled", true) != true
	v := floor_violation("observability.enabled", "turns observability off (no scrape, no alerts, no dashboard)", name, "observability.enabled: true")
}

# Replicas as rendered (KServe's default where the field is left out: one).
replicas_of(m) := object.get(m.spec.predictor, "minReplicas", 1) if m.kind == "InferenceService"

# an autoscaling LLMInferenceService has spec.scaling instead of spec.replicas (KServe refuses both)
replicas_of(m) := object.get(m.spec, "replicas", object.get(object.get(m.spec, "scaling", {}), "minReplicas", 1)) if {
	m.kind == "LLMInferenceService"
}

too_few(got, want) if {
	is_number(got)
	got < want
}

too_few(got, _) if not is_number(got)

violation contains v if {
	some name in applies
	want := named[name].serving.min_replicas
	some r in input.resources
	got := replicas_of(r.manifest)
	too_few(got, want)
	msg := sprintf("%s runs %v replica(s) in environment %s, below the floor %s that policies/ sets for it", [lib.resource_id(r), got, data.kitchen.lib.env.name, name])
	v := lib.resource_violation(r, msg, sprintf("at least %v replica(s) (serving.replicas, or the tenant's replicas)", [want]))
}

# ---------------------------------------------------------------- what Argo CD syncs

app_sources contains {"r": r, "src": src} if {
	some r in lib.resources_of_kind("Application")
	src := r.manifest.spec.source
	is_object(src)
}

app_sources contains {"r": r, "src": src} if {
	some r in lib.resources_of_kind("Application")
	some src in lib.list_at(r.manifest.spec, "sources")
}

source_fields := {"repoURL": "repo_urls", "targetRevision": "target_revisions"}

violation contains v if {
	some name in applies
	floor := named[name].argocd
	some x in app_sources
	some field, key in source_fields
	allowed := floor[key]
	got := object.get(x.src, field, null)
	not got in allowed
	msg := sprintf("%s syncs environment %s from %s %v, outside the floor %s that policies/ sets for it", [lib.resource_id(x.r), data.kitchen.lib.env.name, field, got, name])
	v := lib.resource_violation(x.r, msg, sprintf("%s one of %s", [field, concat(", ", allowed)]))
}

own_path := sprintf("%s/%s", [object.get(object.get(data.kitchen.lib.env, "argocd", {}), "path_prefix", "rendered"), data.kitchen.lib.env.name])

violation contains v if {
	some name in applies
	named[name].argocd
	some x in app_sources
	got := object.get(x.src, "path", null)
	got != own_path
	msg := sprintf("%s syncs environment %s from path %v, not its own rendered output", [lib.resource_id(x.r), data.kitchen.lib.env.name, got])
	v := lib.resource_violation(x.r, msg, sprintf("path %s", [own_path]))
}

violation contains v if {
	some name in applies
	allowed := named[name].argocd.projects
	some r in lib.resources_of_kind("Application")
	got := object.get(r.manifest.spec, "project", null)
	not got in allowed
	msg := sprintf("%s puts environment %s in Argo CD project %v, outside the floor %s that policies/ sets for it", [lib.resource_id(r), data.kitchen.lib.env.name, got, name])
	v := lib.resource_violation(r, msg, sprintf("project one of %s", [concat(", ", allowed)]))
}

automated(app) if {
	auto := app.spec.syncPolicy.automated
	is_object(auto)
	object.get(auto, "enabled", true) != false
}

violation contains v if {
	some name in applies
	named[name].argocd.manual_sync == true
	some r in lib.resources_of_kind("Application")
	automated(r.manifest)
	msg := sprintf("%s syncs environment %s by itself (syncPolicy.automated), below the floor %s that policies/ sets for it", [lib.resource_id(r), data.kitchen.lib.env.name, name])
	v := lib.resource_violation(r, msg, "no syncPolicy.automated (argocd.auto_sync: false): a person syncs it")
}

# ---------------------------------------------------------------- where the environment's S3 is

s3 := object.get(object.get(data.kitchen.lib.env, "storage", {}), "s3", {})

# its endpoint: one of the floor's `endpoints` (`picked`, below)

# use_https and verify_ssl, true where the floor says so (the model's default is true: a
# field left out is compared as written out, absent from a hand-made input as off)
tls_flags := {"use_https": "plain HTTP", "verify_ssl": "TLS without certificate verification"}

violation contains v if {
	some name in applies
	some flag, what in tls_flags
	named[name].storage[flag] == true
	object.get(s3, flag, false) != true
	v := floor_violation(sprintf("storage.s3.%s", [flag]), sprintf("reaches S3 over %s (%s: false)", [what, flag]), name, sprintf("storage.s3.%s: true", [flag]))
}

# The address blocks the storage egress may reach: within the floor's list (none where the
# floor lists none, or sets a storage floor without egress_cidrs).
violation contains v if {
	some name in applies
	floor := named[name].storage
	allowed := object.get(floor, "egress_cidrs", [])
	some i, cidr in lib.list_at(s3, "egress_cidrs")
	not cidr in allowed
	v := floor_violation(sprintf("storage.s3.egress_cidrs.%d", [i]), sprintf("lets storage egress reach %v", [cidr]), name, egress_text(allowed))
}

egress_text(allowed) := sprintf("storage.s3.egress_cidrs within %s", [concat(", ", allowed)]) if count(allowed) > 0

else := "no storage.s3.egress_cidrs (the S3 endpoint is a service of the cluster)"

# The bucket of an s3:// URI.
bucket(uri) := split(trim_prefix(uri, "s3://"), "/")[0] if {
	is_string(uri)
	startswith(uri, "s3://")
}

# Every source the environment serves (a base or flavor of one of its
# InferenceServices) and where its evidence goes, with the field that sets it.
sources contains {"item": item, "object": sprintf("Base/%s", [s.base]), "what": sprintf("base %s loads from", [s.base])} if {
	some s in data.kitchen.lib.services
	item := input.catalog.bases[s.base]
}

sources contains {"item": item, "object": sprintf("Flavor/%s", [ref]), "what": sprintf("flavor %s loads from", [ref])} if {
	some s in data.kitchen.lib.services
	some ref in s.flavors
	item := input.catalog.flavors[ref]
}

bucket_violation(name, allowed, item, field, uri, what, object_id) := {
	"msg": sprintf("%s s3 bucket %s in environment %s, outside the floor %s that policies/ sets for it", [what, bucket(uri), data.kitchen.lib.env.name, name]),
	"at": lib.at(item, field),
	"object": object_id,
	"expected": sprintf("a bucket of %s", [concat(", ", allowed)]),
}

violation contains v if {
	some name in applies
	allowed := named[name].storage.buckets
	some x in sources
	b := bucket(x.item.source)
	not b in allowed
	v := bucket_violation(name, allowed, x.item, "source", x.item.source, x.what, x.object)
}

violation contains v if {
	some name in applies
	allowed := named[name].storage.buckets
	uri := data.kitchen.lib.env.evidence.uri
	b := bucket(uri)
	not b in allowed
	v := bucket_violation(name, allowed, data.kitchen.lib.env, "evidence.uri", uri, "the conformance evidence goes to", sprintf("Environment/%s", [data.kitchen.lib.env.name]))
}

# The claim of a pvc:// URI.
claim(uri) := split(trim_prefix(uri, "pvc://"), "/")[0] if {
	is_string(uri)
	startswith(uri, "pvc://")
}

# The weights of every base the environment serves come from a claim of the floor's list.
violation contains v if {
	some name in applies
	allowed := named[name].storage.claims
	some x in sources
	c := claim(x.item.source)
	not c in allowed
	v := {
		"msg": sprintf("%s pvc claim %s in environment %s, outside the floor %s that policies/ sets for it", [x.what, c, data.kitchen.lib.env.name, name]),
		"at": lib.at(x.item, "source"),
		"object": x.object,
		"expected": sprintf("a claim of %s", [concat(", ", allowed)]),
	}
}

# ---------------------------------------------------------------- where Argo CD syncs to

destination_server(app) := object.get(app.spec.destination, "server", null) if is_object(app.spec.destination)

else := null

# The cluster every rendered Application deploys to (rendered from cluster.api_server): a
# server of the floor's list; a destination by cluster name, or none, is not one.
violation contains v if {
	some name in applies
	allowed := named[name].argocd.destination_servers
	some r in lib.resources_of_kind("Application")
	got := destination_server(r.manifest)
	not got in allowed
	msg := sprintf("%s deploys environment %s to cluster %v, outside the floor %s that policies/ sets for it", [lib.resource_id(r), data.kitchen.lib.env.name, got, name])
	v := object.union(lib.resource_violation(r, msg, sprintf("destination.server (cluster.api_server) one of %s", [concat(", ", allowed)])), {"at": lib.at(data.kitchen.lib.env, "cluster.api_server")})
}

# ---------------------------------------------------------------- names the environment picks

# What the environment file names that kitchen writes into or trusts, by its field: the
# S3 endpoint, the namespace whose pods every tenant's NetworkPolicy admits to vLLM's port
# (the monitoring namespace), the namespace of the dashboard, KServe's deployment mode,
# Argo CD's namespace, the Secret of the S3 credentials, the GPU the plan is made for, the
# extended resource its GPUs are requested and quotaed as, and
# the ConfigMap of the CA that verifies S3's TLS, and the repositories of the images it
# serves with and runs its conformance Job with. Where the floor lists them (`floor`),
# the environment's value is one of the list (a field left out of a hand-made input is
# none). The value is the field's, but where an entry gives its own (`got`: the
# monitoring namespace is the platform's where the environment names none, found at
# `at`).
picked := {
	"storage.s3.endpoint": {"floor": ["storage", "endpoints"], "what": "reaches S3 at %v"},
	"observability.monitoring_namespace": {
		"floor": ["observability", "monitoring_namespaces"], "got": data.kitchen.lib.monitoring_namespace,
		"what": "admits namespace %v to every tenant's vLLM port (its monitoring namespace)",
		"at": monitoring_at,
	},
	"observability.runbook_url": {
		"floor": ["observability", "runbook_urls"],
		"what": "links every alert to the runbook at %v",
	},
	"observability.dashboard_namespace": {
		"floor": ["observability", "dashboard_namespaces"],
		"what": "renders its dashboard into namespace %v",
	},
	"serving.deployment_mode": {"floor": ["serving", "deployment_modes"], "what": "serves in KServe's %v mode"},
	"serving.api": {
		"floor": ["serving", "apis"], "got": object.get(data.kitchen.lib.env, ["serving", "api"], "InferenceService"),
		"what": "serves every tenant through KServe's %v",
	},
	"argocd.namespace": {"floor": ["argocd", "namespaces"], "what": "puts its Application in namespace %v"},
	"storage.s3.secret": {"floor": ["storage", "secrets"], "what": "reads its S3 credentials from Secret %v"},
	"cluster.gpu.product": {"floor": ["gpu", "products"], "what": "plans for GPU %v"},
	"cluster.gpu.resource": {
		"floor": ["gpu", "resources"], "got": object.get(data.kitchen.lib.env, ["cluster", "gpu", "resource"], "nvidia.com/gpu"),
		"what": "requests and limits its GPUs, and quotas them, as the extended resource %v",
	},
	"storage.s3.ca_bundle_configmap": {
		"floor": ["storage", "ca_bundle_configmaps"],
		"what": "verifies S3's certificate with the CA of ConfigMap %v",
	},
	"images.vllm": {
		"floor": ["images", "vllm"], "got": image_repository("vllm"),
		"what": "serves every model with the image of repository %v",
	},
	"images.kitchen": {
		"floor": ["images", "kitchen"], "got": image_repository("kitchen"),
		"what": "runs its conformance Job, which holds the evidence signing key, with the image of repository %v",
	},
}

# The repository of one of the environment's images (its reference without the digest
# and the tag: registry host and path), null where it names none.
image_repository(which) := repo if {
	image := data.kitchen.lib.env.images[which]
	is_string(image)
	parts := split(split(image, "@")[0], "/")
	last := count(parts) - 1
	repo := concat("/", array.concat(array.slice(parts, 0, last), [split(parts[last], ":")[0]]))
} else := null

# the platform's monitoring namespace is the cluster's where the environment names none
monitoring_at := "observability.monitoring_namespace" if {
	object.get(data.kitchen.lib.env, ["observability", "monitoring_namespace"], null) != null
} else := "cluster.platform"

picked_value(field, p) := p.got if "got" in object.keys(p)

else := object.get(data.kitchen.lib.env, split(field, "."), null)

picked_text(_, field, null) := sprintf("names no %s", [field])

picked_text(p, _, got) := sprintf(p.what, [got]) if got != null

violation contains v if {
	some name in applies
	some field, p in picked
	allowed := object.get(named[name], p.floor, null)
	is_array(allowed)
	got := picked_value(field, p)
	not got in allowed
	v := floor_violation(object.get(p, "at", field), picked_text(p, field, got), name, sprintf("%s one of %s", [field, concat(", ", allowed)]))
}

# The nodes the environment's servers run on: every label of the floor's node_selector in
# the environment's cluster.node_selector, with the floor's value (more labels narrow it
# further). Without them, prod's servers could be scheduled onto nodes of another pool.
violation contains v if {
	some name in applies
	some key, want in named[name].scheduling.node_selector
	got := object.get(data.kitchen.lib.env, ["cluster", "node_selector", key], null)
	got != want
	v := floor_violation("cluster.node_selector", selector_text(key, got), name, sprintf("cluster.node_selector with %s: %v", [key, want]))
}

selector_text(key, null) := sprintf("schedules its servers without node label %s", [key])

selector_text(key, got) := sprintf("schedules its servers on node label %s: %v", [key, got]) if got != null

# The bases the environment serves: each one a base version the floor approves, read from
# the source the floor names with it (approved_bases: name@version → source), where the
# floor lists them. A base's own license.approval is written by the pull request that adds
# the base; the floor's list is security's.
violation contains v if {
	some name in applies
	approved := named[name].approved_bases
	some ref in {s.base | some s in data.kitchen.lib.services}
	base := input.catalog.bases[ref]
	object.get(approved, ref, null) != base.source
	v := {
		"msg": sprintf("environment %s serves base %s from %v, which the floor %s that policies/ sets for it does not approve", [data.kitchen.lib.env.name, ref, base.source, name]),
		"at": lib.at(base, "source"),
		"object": sprintf("Base/%s", [ref]),
		"expected": approved_text(approved, ref, name),
	}
}

approved_text(approved, ref, floor) := sprintf("%s from %v, as gate_floors.environments.%s.approved_bases in policies/data.yaml approves it (security's)", [ref, approved[ref], floor]) if approved[ref]

else := sprintf("a base of gate_floors.environments.%s.approved_bases in policies/data.yaml (security's): %s", [floor, concat(", ", sort(object.keys(approved)))])

# The taints the environment's servers tolerate: each toleration of cluster.tolerations one
# of the floor's scheduling.tolerations (key, operator, value and effect alike), where the
# floor lists them. Any other would let prod's servers onto nodes the platform keeps them
# off: the control plane, a cordoned or failing node, another team's dedicated pool.
violation contains v if {
	some name in applies
	allowed := named[name].scheduling.tolerations
	tolerations := object.get(data.kitchen.lib.env, ["cluster", "tolerations"], [])
	is_array(tolerations)
	some i, t in tolerations
	is_object(t)
	not tolerated(t, allowed)
	listed := concat("; ", [toleration_text(a) | some a in allowed])
	v := floor_violation(sprintf("cluster.tolerations.%d", [i]), sprintf("has its servers tolerate %s", [toleration_text(t)]), name, sprintf("cluster.tolerations each one of: %s", [listed]))
}

tolerated(t, allowed) if {
	some a in allowed
	toleration(a) == toleration(t)
}

# a toleration as Kubernetes reads it: operator Exists where none is given
toleration(t) := {
	"key": object.get(t, "key", null),
	"operator": object.get(t, "operator", "Exists"),
	"value": object.get(t, "value", null),
	"effect": object.get(t, "effect", null),
}

toleration_text(t) := sprintf("%v %v %v, effect %v", [n.key, n.operator, value_text(n.value), effect_text(n.effect)]) if {
	n := toleration(t)
}

value_text(null) := "(any value)"

value_text(v) := sprintf("%v", [v]) if v != null

effect_text(null) := "any"

effect_text(e) := sprintf("%v", [e]) if e != null

# The Prometheus KEDA queries for the autoscaling signal, sending it the querier's token
# (serving.autoscaling.authentication): one of the floor's list, where the environment
# autoscales at all. Elsewhere, a query could read another Prometheus's numbers, or hand
# the token to another host.
violation contains v if {
	some name in applies
	allowed := named[name].autoscaling.prometheus_urls
	got := object.get(data.kitchen.lib.env, ["serving", "autoscaling", "prometheus_url"], null)
	got != null
	not got in allowed
	msg := sprintf("has KEDA query the Prometheus at %v (with the querier's token)", [got])
	v := floor_violation("serving.autoscaling.prometheus_url", msg, name, sprintf("serving.autoscaling.prometheus_url one of %s", [concat(", ", allowed)]))
}
