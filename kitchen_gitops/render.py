"""Render an environment's plan into Kubernetes manifests with the Jinja2 templates.

Python decides every value; the templates in ``templates/`` only format them.  Each
rendered object carries labels and annotations that trace it back to its catalog
sources, and records the catalog location that caused it for the policy stage.

Templates come from the same pull requests as the catalog, so they run in Jinja's
immutable sandbox (:mod:`kitchen_gitops.sandbox`: no attribute of Python's internals, no
code execution), are read only from regular UTF-8 files inside ``templates/``, and a
template that fails to load or to render is a configuration error naming
``templates/<file>:<line>``.  Values reach the manifests as JSON scalars with every
invisible character escaped, and the header comment cannot be ended by a file name.

A tenant's objects (its own and what other stages add in its namespace) are rendered
together (:meth:`EnvironmentRenderer.render_tenant`): the gate's cache keeps them as one
unit, found by the files they are made of.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jinja2
import jinja2.sandbox

from . import settings
from .argv import container_argv, serving_containers
from .closed_world import Comparison, Difference, RenderedRef, points, read_documents, same
from .closed_world import findings as closed_world_findings
from .errors import ConfigError
from .escape import visible, yaml_comment
from .findings import Finding, Location, ResourceRef, Severity
from .input_items import KeptItem
from .intended import intended_object
from .manifest_reader import ManifestReader
from .model import CONFORMANCE_NAMESPACE as CONFORMANCE_NAMESPACE
from .model import Catalog, Environment, service_namespace
from .plan import (
    LLMISVC_PORT,
    PREDICTOR_PORT,
    RUNTIME_COMMAND,
    EnvironmentPlan,
    ServicePlan,
    TenantPlan,
    runtime_args,
)
from .render_memo import ObjectMemo, RenderedEntry, StoredFile, StoredObject, TenantMemo
from .rules import RENDER_VLLM_ARGS
from .sandbox import (
    MAX_RENDERED_BYTES,
    RENDER_MEMORY_BYTES,
    compile_templates,
    json_scalar,
    sandbox_for,
    template_error,
)

DOMAIN = "kitchen-gitops.io"
MANAGED_BY = (("app.kubernetes.io/managed-by", "kitchen"), ("app.kubernetes.io/part-of", "kitchen-gitops"))
STORAGE_SERVICE_ACCOUNT = "kitchen-storage"
RUNTIME_NAME = "kitchen-vllm"
AUTH_ANNOTATION = "security.opendatahub.io/enable-auth"

# The llm-d scheduler's plugins for an LLMInferenceService, as KServe's controller configures
# them by default (pkg/controller/v1alpha2/llmisvc/scheduler.go), with the LoRA-affinity
# scorer always on: requests for an adapter go to a replica that has it loaded.  Written
# into the spec so that it holds whatever the controller's default and is reviewed in Git.
SCHEDULER_CONFIG: dict[str, Any] = {
    "apiVersion": "llm-d.ai/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [{"type": t} for t in (
        "single-profile-handler", "lora-affinity-scorer", "queue-scorer", "kv-cache-utilization-scorer",
        "prefix-cache-scorer", "no-hit-lru-scorer", "max-score-picker")],
    "schedulingProfiles": [{"name": "default", "plugins": [
        {"pluginRef": "lora-affinity-scorer", "weight": 4},
        {"pluginRef": "queue-scorer", "weight": 2},
        {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
        {"pluginRef": "prefix-cache-scorer", "weight": 3},
        {"pluginRef": "no-hit-lru-scorer", "weight": 2},
        {"pluginRef": "max-score-picker"},
    ]}],
}
# The labels KServe puts on an LLMInferenceService's vLLM pods (its InferencePool's selector).
LLMISVC_POD_LABELS = (("app.kubernetes.io/part-of", "llminferenceservice"), ("kserve.io/component", "workload"))

# Argo CD sync waves: namespaces first, then RBAC/quotas/policies, runtimes, then models.
WAVE_NAMESPACE = -10
# Pod Security admission on every namespace kitchen renders: the restricted profile,
# enforced, and reported to users (warn) and in the audit log (audit).
POD_SECURITY = tuple((f"pod-security.kubernetes.io/{mode}", "restricted") for mode in ("audit", "enforce", "warn"))
WAVE_RBAC = -5
WAVE_RUNTIME = 0
WAVE_SERVICE = 10


@dataclass(frozen=True)
class RenderedObject:
    """One manifest as the template rendered it: the object (what Argo CD will apply, read
    once from the template's output), where in the catalog it comes from, and its files."""

    api_version: str
    kind: str
    name: str
    namespace: str
    source: Location
    sources: tuple[str, ...]
    manifest: Any = None
    # how what the template rendered differs from what kitchen intends (closed_world)
    differences: tuple[Difference, ...] = ()
    # where the gate's cache keeps the object's tenant: its item of the policy input as
    # JSON, and the namespace that item is in; ``manifest`` is then None (the unit was
    # rendered as planned, which no check needs to read again)
    input_json: KeptItem | None = None
    input_namespace: str | None = None


@dataclass
class RenderedFile:
    path: str  # relative to the output root, posix
    content: str  # the serialised form, written as is by the write stage
    objects: list[RenderedObject] = field(default_factory=list)

    def same_text(self, data: bytes) -> bool:
        """Whether ``data`` (a committed file's bytes) is this file's text."""
        return data == self.content.encode("utf-8")


class FoundFile(RenderedFile):
    """A file of a tenant the gate's cache kept whole (rendered as planned, no closed-world
    difference): the SHA-256 of its text, what the staleness check compares, and its
    objects as kept, each with its item of the policy input as JSON. The text itself is
    not kept (:attr:`content` is refused): nothing else of the gate reads a found file's
    text. :attr:`objects` are built only where something reads them (the policy input
    takes the items as they are, and no check of the render reads a kept unit again)."""

    def __init__(self, path: str, digest: str, stored: Sequence[StoredObject]) -> None:
        self.path, self.digest, self.stored = path, digest, stored
        self._objects: list[RenderedObject] | None = None

    def _no_text(self) -> AttributeError:
        return AttributeError(f"{self.path}: a file found in the gate's cache keeps its text's digest only")

    @property
    def content(self) -> str:
        raise self._no_text()

    @content.setter
    def content(self, value: str) -> None:
        raise self._no_text()

    def same_text(self, data: bytes) -> bool:
        return hashlib.sha256(data).hexdigest() == self.digest

    @property
    def objects(self) -> list[RenderedObject]:
        if self._objects is None:
            self._objects = [RenderedObject(api, kind, name, ns, Location(*where), sources, None,
                                            input_namespace=input_ns)
                             for api, kind, name, ns, where, sources, _, input_ns in self.stored]
        return self._objects

    @objects.setter
    def objects(self, value: list[RenderedObject]) -> None:
        self._objects = value


class Contribution(Protocol):
    """Another stage's objects for an environment (the conformance Job, the Argo CD health
    check): called with the renderer after the tenants' objects; ``in_kustomization`` says
    whether the objects are part of the environment's kustomization.

    ``tenant`` adds the stage's objects of one tenant (in its namespace, part of the
    kustomization), right after the tenant's own: they are kept with the tenant's in the
    gate's cache, so they may read nothing but the tenant's plan, the environment and
    the renderer's templates."""

    @property
    def in_kustomization(self) -> bool: ...

    def tenant(self, renderer: EnvironmentRenderer, t: TenantPlan) -> None: ...

    def __call__(self, renderer: EnvironmentRenderer) -> None: ...


@dataclass(frozen=True)
class Meta:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


def object_meta(name: str, namespace: str, env: Environment, *, wave: int | None,
          labels: Iterable[tuple[str, str]] = (), annotations: Iterable[tuple[str, str]] = ()) -> Meta:
    lab = dict(MANAGED_BY)
    lab[f"{DOMAIN}/environment"] = env.name
    lab.update(labels)
    ann = dict(annotations)
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    return Meta(name, namespace, tuple(sorted(lab.items())), tuple(sorted(ann.items())))


class EnvironmentRenderer:
    """Renders one environment's objects; other stages add theirs through :meth:`emit`."""

    def __init__(self, catalog: Catalog, plan: EnvironmentPlan, templates: Path,
                 contributions: Sequence[Contribution] = (), memo: ObjectMemo | None = None,
                 units: TenantMemo | None = None) -> None:
        self.contributions = tuple(contributions)
        self.memo = memo  # objects rendered before, by their context (the gate's cache)
        self.units = units  # tenants rendered before, by their files (the gate's cache)
        self.shared: dict[str, Any] = {}  # what a contribution keeps for the whole environment
        self.reader = ManifestReader()
        self.catalog = catalog
        self.plan = plan
        self.env = plan.environment
        self.templates = templates
        self.jinja = sandbox_for(templates)
        self.files: list[RenderedFile] = []
        self.env_source = catalog.source_file("Environment", self.env.name)

    def emit(self, path: str, template: str, source: Location, sources: Iterable[str],
             kind: str, api_version: str, meta: Meta | None, **ctx: Any) -> None:
        srcs = tuple(sorted(set(sources)))
        key = self.memo.key(template, [path, srcs, kind, api_version, meta, ctx]) if self.memo is not None else None
        found = self.memo.get(key, path) if key is not None and self.memo is not None else None
        differences: tuple[Difference, ...] = ()
        if found is not None:  # rendered before from the same context, as kitchen intends
            text, manifest = found
        else:
            text, manifest, differences = self._render_object(path, template, srcs, kind, api_version, meta, ctx)
            if key is not None and self.memo is not None and not differences:
                self.memo.put(key, path, text, manifest)
        obj = RenderedObject(api_version, kind, meta.name if meta else path, meta.namespace if meta else "",
                             source, srcs, manifest, differences)
        self.files.append(RenderedFile(path, text, [obj]))

    def _render_object(self, path: str, template: str, srcs: tuple[str, ...], kind: str, api_version: str,
                       meta: Meta | None, ctx: dict[str, Any]) -> tuple[str, Any, tuple[Difference, ...]]:
        """What ``template`` renders from its context: the text, the manifest read from it,
        and how it differs from what kitchen intends."""
        try:
            # the header is a YAML comment: a file name cannot end it and start an object
            text = self.jinja.get_template(template).render(
                meta=meta, sources=yaml_comment(", ".join(srcs)), **ctx)
        except ConfigError:
            raise
        except jinja2.TemplateError as exc:
            raise ConfigError(template_error(exc, template, self.templates)) from None
        except (Exception, RecursionError) as exc:  # a template that raises while rendering
            raise ConfigError(template_error(exc, template, self.templates)) from None
        if len(text) > MAX_RENDERED_BYTES:
            raise ConfigError(f"{self.templates / template}: renders more than {MAX_RENDERED_BYTES} "
                              "bytes for one object")
        namespace = meta.namespace if meta else ""
        try:
            if kind == "Kustomization":  # kustomize's own file is not applied: nothing for the policies
                documents, manifest = read_documents(text), None
            else:
                manifest = self.reader.read(text, namespace, template)
                documents = [] if manifest is None else [manifest]
        except (Exception, RecursionError) as exc:
            documents = self._documents(text, path, template, exc)
            manifest = documents[0] if documents and kind != "Kustomization" else None
        intended = intended_object(template, api_version, kind, meta, ctx)
        differences: tuple[Difference, ...] = ()
        if len(documents) != 1 or not same(documents[0], intended):
            jinja_template = self.jinja.get_template(template)
            template_text = self.jinja.loader.get_source(self.jinja, template)[0] if self.jinja.loader else ""
            comparison = Comparison(jinja_template, template_text, f"{self.templates.name}/{template}",
                                    {"meta": meta, "sources": yaml_comment(", ".join(srcs)), **ctx}, text)
            differences = comparison.differences(documents, intended)
        return text, manifest, differences

    def _documents(self, text: str, path: str, template: str, exc: BaseException) -> list[Any]:
        """The documents of a text that is not one YAML document; a text that is not YAML
        at all is its template author's error."""
        try:
            documents = read_documents(text)
        except (Exception, RecursionError):
            documents = []
        if len(documents) > 1:
            return documents
        raise ConfigError(f"{self.templates / template}: renders no valid YAML for {visible(path)}: "
                          f"{visible(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}") from None

    # ---------------------------------------------------------------- tenant objects

    def render_tenant(self, t: TenantPlan) -> None:
        """Every object of tenant ``t``: its own and what the contributions add in its
        namespace; found whole in the gate's cache where its files are as they were."""
        files = self.units.files_key(self._unit_reads(t)) if self.units is not None else None
        key = self.units.key(files) if self.units is not None else None
        if self.units is not None:
            self.units.files[t.tenant.name] = files
        stored = self.units.get(key, t.tenant.name) if key is not None and self.units is not None else None
        if stored is not None:
            self.files.extend(_files_of(stored))
            return
        start = len(self.files)
        memo = self.memo
        if key is not None:
            self.memo = None  # the unit is kept whole: its objects are not kept one by one
        try:
            self.tenant(t)
            for contribute in self.contributions:
                contribute.tenant(self, t)
        finally:
            self.memo = memo
        if key is not None and self.units is not None:
            made = self.files[start:]
            if not any(o.differences for f in made for o in f.objects) \
                    and not _drift(self.env.name, t.services, made):
                items = self.units.put(key, t.tenant.name, _stored(made))
                if items is not None:
                    # the input takes each item as the cache keeps it, and no check reads the
                    # manifests of a unit rendered as planned again
                    self.files[start:] = [
                        RenderedFile(f.path, f.content, [dataclasses.replace(o, manifest=None, input_json=j,
                                                                             input_namespace=n)
                                                         for o, (j, n) in zip(f.objects, kept, strict=True)])
                        for f, kept in zip(made, items, strict=True)]

    def _unit_reads(self, t: TenantPlan) -> list[tuple[str, str, str]]:
        """The catalog objects a tenant's render reads, with their documents' digests: the
        environment, the tenant, and the bases and flavors of its plan."""
        reads = [("Environment", self.env.name), ("Tenant", t.tenant.name)]
        for svc in t.services:
            reads.append(("Base", svc.base.ref))
            reads.extend(("Flavor", f.ref) for f in svc.flavors)
        docs = self.catalog.documents
        return [(kind, key, doc.digest if (doc := docs.get((kind, key))) is not None else "")
                for kind, key in reads]

    def tenant(self, t: TenantPlan) -> None:
        tenant, env, ns = t.tenant, self.env, t.namespace
        tfile = self.catalog.source_file("Tenant", tenant.name)
        srcs = (tfile, self.env_source)
        tloc = self.catalog.location("Tenant", tenant.name, ("environments", env.name))
        tlabel = ((f"{DOMAIN}/tenant", tenant.name),)
        trace = ((f"{DOMAIN}/sources", ",".join(sorted(set(srcs)))),)
        d = f"{ns}"

        ns_ann = [*trace, ("openshift.io/display-name", tenant.display_name or tenant.name),
                  ("openshift.io/requester", tenant.owner.contact)]
        if tenant.description:
            ns_ann.append(("openshift.io/description", tenant.description))
        self.emit(f"{d}/namespace.yaml", "namespace.yaml.j2", self.catalog.location("Tenant", tenant.name, ("name",)),
                  srcs, "Namespace", "v1",
                  object_meta(ns, "", env, wave=WAVE_NAMESPACE, labels=(*tlabel, *POD_SECURITY), annotations=ns_ann))
        self.emit(f"{d}/resourcequota-gpu.yaml", "resourcequota.yaml.j2",
                  self.catalog.location("Tenant", tenant.name, ("environments", env.name, "gpu_quota")),
                  srcs, "ResourceQuota", "v1",
                  object_meta("gpu-quota", ns, env, wave=WAVE_RBAC, labels=tlabel, annotations=trace),
                  gpu_resource=env.cluster.gpu.resource, gpu_quota=t.gpu_quota)
        for role in sorted(tenant.access_groups):
            groups = sorted(set(tenant.access_groups[role]))
            if not groups:
                continue
            self.emit(f"{d}/rolebinding-{role}.yaml", "rolebinding.yaml.j2",
                      self.catalog.location("Tenant", tenant.name, ("access_groups", role)),
                      srcs, "RoleBinding", "rbac.authorization.k8s.io/v1",
                      object_meta(f"kitchen-{role}", ns, env, wave=WAVE_RBAC, labels=tlabel, annotations=trace),
                      role=role, groups=groups)
        self.network_policies(t, srcs, tloc, tlabel, trace)
        self.emit(f"{d}/serviceaccount-{STORAGE_SERVICE_ACCOUNT}.yaml", "serviceaccount.yaml.j2",
                  self.catalog.location("Environment", env.name, ("storage", "s3")),
                  srcs, "ServiceAccount", "v1",
                  object_meta(STORAGE_SERVICE_ACCOUNT, ns, env, wave=WAVE_RBAC, labels=tlabel,
                        annotations=[*trace, *self.s3_annotations()]),
                  secret=env.storage.s3.secret)
        if t.services and env.serving.api == "InferenceService":
            self.emit(f"{d}/servingruntime-{RUNTIME_NAME}.yaml", "servingruntime.yaml.j2",
                      self.catalog.location("Environment", env.name, ("images", "vllm")),
                      srcs, "ServingRuntime", "serving.kserve.io/v1alpha1",
                      object_meta(RUNTIME_NAME, ns, env, wave=WAVE_RUNTIME, labels=tlabel,
                            annotations=[*trace, ("opendatahub.io/recommended-accelerators",
                                                  json_scalar([env.cluster.gpu.resource])),
                                         (f"{DOMAIN}/vllm-version", env.images.vllm_version)]),
                      image=env.images.vllm, env_vars=t.services[0].env_vars,
                      command=list(RUNTIME_COMMAND), args=list(runtime_args()),
                      startup_failure_threshold=max(30, env.conformance.readiness_timeout_s // 10),
                      port=PREDICTOR_PORT,
                      shm_size="8Gi")
        for svc in t.services:
            self.service(svc, tfile, tlabel)

    def s3_annotations(self) -> list[tuple[str, str]]:
        s3 = self.env.storage.s3
        out = [("serving.kserve.io/s3-endpoint", s3.endpoint),
               ("serving.kserve.io/s3-usehttps", "1" if s3.use_https else "0"),
               ("serving.kserve.io/s3-region", s3.region),
               ("serving.kserve.io/s3-verifyssl", "1" if s3.verify_ssl else "0")]
        if s3.ca_bundle_configmap:
            out.append(("serving.kserve.io/s3-cabundle-configmap", s3.ca_bundle_configmap))
        return out

    def network_policies(self, t: TenantPlan, srcs: tuple[str, ...], tloc: Location,
                         tlabel: tuple[tuple[str, str], ...], trace: tuple[tuple[str, str], ...]) -> None:
        env, tenant, ns = self.env, t.tenant, t.namespace
        self.emit(f"{ns}/networkpolicy-default-deny.yaml", "networkpolicy.yaml.j2", tloc, srcs,
                  "NetworkPolicy", "networking.k8s.io/v1",
                  object_meta("default-deny-all", ns, env, wave=WAVE_RBAC, labels=tlabel, annotations=trace),
                  pod_labels=(), policy_types=["Ingress", "Egress"], ingress=[], egress=[])
        # Prometheus is no client: observability admits it to the metrics port on its own
        clients = sorted({*tenant.allowed_clients, CONFORMANCE_NAMESPACE})
        pods: tuple[tuple[str, str], ...] = (("component", "predictor"),)
        port = PREDICTOR_PORT
        if env.serving.api == "LLMInferenceService":
            # the llm-d scheduler in the tenant's namespace reads the workload's metrics; the
            # gateway's namespace is a client like any other (allowed_clients)
            pods, port = LLMISVC_POD_LABELS, LLMISVC_PORT
            clients = sorted({*clients, ns})
        elif env.serving.deployment_mode == "Serverless":
            clients = sorted({*clients, "knative-serving", "istio-system"})
        self.emit(f"{ns}/networkpolicy-allow-serving.yaml", "networkpolicy.yaml.j2",
                  self.catalog.location("Tenant", tenant.name, ("allowed_clients",)), srcs,
                  "NetworkPolicy", "networking.k8s.io/v1",
                  object_meta("allow-serving-ingress", ns, env, wave=WAVE_RBAC, labels=tlabel, annotations=trace),
                  pod_labels=pods, policy_types=["Ingress"],
                  ingress=[{"peers": clients, "ports": [port]}], egress=None)
        s3 = env.storage.s3
        s3_ns, s3_port = _service_namespace(s3.endpoint, s3.use_https)
        egress: list[dict[str, Any]] = [{"peers": [], "ports": [("UDP", 53), ("TCP", 53)]}]
        # storage: its namespace in the cluster, else the address blocks the environment
        # names (none named renders no destination, which policy.egress-destination refuses)
        peers = [{"namespace": s3_ns}] if s3_ns else [{"cidr": c} for c in s3.egress_cidrs]
        egress.append({"peers": peers, "ports": [("TCP", s3_port)]})
        self.emit(f"{ns}/networkpolicy-allow-egress.yaml", "networkpolicy.yaml.j2",
                  self.catalog.location("Environment", env.name, ("storage", "s3", "endpoint")), srcs,
                  "NetworkPolicy", "networking.k8s.io/v1",
                  object_meta("allow-dns-and-storage-egress", ns, env, wave=WAVE_RBAC, labels=tlabel,
                        annotations=trace),
                  pod_labels=(), policy_types=["Egress"], ingress=None, egress=egress)

    # ---------------------------------------------------------------- InferenceService

    def service(self, svc: ServicePlan, tenant_file: str, tlabel: tuple[tuple[str, str], ...]) -> None:
        env, cat = self.env, self.catalog
        base_file = cat.source_file("Base", svc.base.ref)
        flavor_files = [cat.source_file("Flavor", f.ref) for f in svc.flavors]
        srcs = (tenant_file, self.env_source, base_file, *flavor_files)
        labels = (*tlabel, (f"{DOMAIN}/base", svc.base.name), (f"{DOMAIN}/base-version", svc.base.version))
        annotations = [
            (f"{DOMAIN}/sources", ",".join(sorted(set(srcs)))),
            (f"{DOMAIN}/base", svc.base.ref),
            (f"{DOMAIN}/flavors", ",".join(f.ref for f in svc.flavors)),
            (f"{DOMAIN}/served-names", ",".join(f"{m.name}={m.flavor.ref}" for m in svc.adapters)),
            (f"{DOMAIN}/max-adapter-rank", str(max((f.rank for f in svc.flavors), default=0))),
            ("serving.kserve.io/deploymentMode", env.serving.deployment_mode),
            ("openshift.io/display-name", f"{svc.base.display_name or svc.base.name} ({svc.tenant.name})"),
        ]
        if env.serving.auth:
            annotations.append((AUTH_ANNOTATION, "true"))
        loc_path: tuple[str | int, ...] = ("environments", env.name, "flavors")
        if svc.kind == "LLMInferenceService":
            self.llm_service(svc, srcs, labels, [a for a in annotations if a[0] != "serving.kserve.io/deploymentMode"],
                             cat.location("Tenant", svc.tenant.name, loc_path))
            return
        if env.serving.deployment_mode == "RawDeployment":
            annotations.append(("serving.kserve.io/autoscalerClass", "keda" if svc.scaling else "none"))
        self.emit(f"{svc.namespace}/inferenceservice-{svc.name}.yaml", "inferenceservice.yaml.j2",
                  cat.location("Tenant", svc.tenant.name, loc_path), srcs,
                  "InferenceService", svc.api_version,
                  object_meta(svc.name, svc.namespace, env, wave=WAVE_SERVICE, labels=labels,
                        annotations=annotations),
                  replicas=svc.replicas, service_account=STORAGE_SERVICE_ACCOUNT,
                  **isvc_scaling(svc),
                  node_selector=sorted(env.cluster.node_selector.items()),
                  tolerations=[t.model_dump(exclude_none=True) for t in env.cluster.tolerations],
                  storage_uris=svc.storage_uris, runtime=RUNTIME_NAME, args=list(svc.args),
                  cpu=env.serving.resources.cpu, memory=env.serving.resources.memory,
                  gpu_resource=env.cluster.gpu.resource, gpus=svc.tensor_parallel_size)

    def llm_service(self, svc: ServicePlan, srcs: tuple[str, ...], labels: tuple[tuple[str, str], ...],
                    annotations: list[tuple[str, str]], source: Location) -> None:
        """An LLMInferenceService (serving.kserve.io/v1alpha2): the base and its adapters in
        the spec (KServe downloads them and writes --lora-modules), the LoRA limits the plan
        computed (without them vLLM's defaults apply: rank 16, one adapter), vLLM's other
        arguments on the workload container, the llm-d scheduler with LoRA affinity."""
        env = self.env
        self.emit(f"{svc.namespace}/llminferenceservice-{svc.name}.yaml", "llminferenceservice.yaml.j2",
                  source, srcs, "LLMInferenceService", svc.api_version,
                  object_meta(svc.name, svc.namespace, env, wave=WAVE_SERVICE, labels=labels,
                              annotations=[*annotations, (f"{DOMAIN}/vllm-version", env.images.vllm_version)]),
                  model_uri=svc.base.source, model_name=svc.served_model_name,
                  adapters=[{"name": m.name, "uri": m.uri} for m in svc.adapters],
                  max_rank=svc.max_lora_rank, max_adapters=svc.max_loras, max_cpu_adapters=svc.max_cpu_loras,
                  replicas=svc.replicas, tensor=svc.tensor_parallel_size, scaling=llmisvc_scaling(svc),
                  service_account=STORAGE_SERVICE_ACCOUNT, image=env.images.vllm,
                  node_selector=sorted(env.cluster.node_selector.items()),
                  tolerations=[t.model_dump(exclude_none=True) for t in env.cluster.tolerations],
                  args=list(svc.workload_args), env_vars=svc.env_vars,
                  cpu=env.serving.resources.cpu, memory=env.serving.resources.memory,
                  gpu_resource=env.cluster.gpu.resource, gpus=svc.tensor_parallel_size,
                  scheduler_config=SCHEDULER_CONFIG)

    # ---------------------------------------------------------------- environment objects

    def environment(self) -> None:
        for contribute in self.contributions:
            if contribute.in_kustomization:
                contribute(self)
        env = self.env
        resources = sorted(f.path for f in self.files)
        env_loc = self.catalog.location("Environment", env.name, ("name",))
        self.emit("kustomization.yaml", "kustomization.yaml.j2", env_loc, (self.env_source,),
                  "Kustomization", "kustomize.config.k8s.io/v1beta1", None, resources=resources)
        argo = env.argocd
        self.emit("application.yaml", "application.yaml.j2",
                  self.catalog.location("Environment", env.name, ("argocd",)), (self.env_source,),
                  "Application", "argoproj.io/v1alpha1",
                  object_meta(f"kitchen-{env.name}", argo.namespace, env, wave=None,
                        annotations=[(f"{DOMAIN}/sources", self.env_source)]),
                  project=argo.project, repo_url=argo.repo_url, target_revision=argo.target_revision,
                  app_path=f"{argo.path_prefix}/{env.name}", server=env.cluster.api_server,
                  auto_sync=argo.auto_sync)
        for contribute in self.contributions:
            if not contribute.in_kustomization:
                contribute(self)  # outside the kustomization, like the Application


def _keda_trigger(svc: ServicePlan) -> dict[str, Any]:
    """What KEDA's Prometheus scaler reads for one InferenceService: the query from the
    environment's Prometheus, in the tenant's namespace (the Thanos querier of OpenShift's
    user-workload monitoring answers only with it), the target per replica."""
    assert svc.scaling is not None
    sc = svc.scaling
    return {"server": sc.prometheus_url, "query": sc.query(svc.namespace, svc.name), "namespace": svc.namespace,
            "target": fmt_number(sc.target), "authentication": sc.authentication,
            "scale_down_window_s": sc.scale_down_window_s}


def isvc_scaling(svc: ServicePlan) -> dict[str, Any]:
    """An InferenceService's replica range and how KServe scales it: KEDA on the query in
    RawDeployment, Knative's concurrency in Serverless mode; fixed replicas without autoscaling."""
    out: dict[str, Any] = {"max_replicas": svc.max_replicas, "scale_metric": None, "scale_target": None,
                           "external": None}
    if svc.scaling is None:
        return out
    if svc.environment.serving.deployment_mode == "Serverless":
        return {**out, "scale_metric": "concurrency", "scale_target": int(svc.scaling.target)}
    return {**out, "external": _keda_trigger(svc)}


def llmisvc_scaling(svc: ServicePlan) -> dict[str, Any] | None:
    """An LLMInferenceService's ``spec.scaling`` (KEDA), which replaces ``spec.replicas``."""
    if svc.scaling is None:
        return None
    return {"min": svc.scaling.min, "max": svc.scaling.max,
            "polling_s": svc.environment.observability.scrape_interval_s, **_keda_trigger(svc)}


def fmt_number(value: float) -> str:
    """A Kubernetes quantity of a target: ``2``, ``0.75``."""
    return str(int(value)) if value == int(value) else f"{value:.6g}"


_service_namespace = service_namespace


# Bounds on rendering one environment (templates come from pull requests too): time
# (settings.RENDER_TIMEOUT), and memory beyond what the process already holds
# (sandbox.RENDER_MEMORY_BYTES).


def _render_timeout() -> float:
    return settings.RENDER_TIMEOUT.seconds(settings.RENDER_TIMEOUT_S)


def _stored(files: Sequence[RenderedFile]) -> list[tuple[str, str, list[RenderedEntry]]]:
    return [(f.path, f.content, [(o.api_version, o.kind, o.name, o.namespace,
                                  (o.source.file, o.source.line, o.source.col), o.sources, o.manifest)
                                 for o in f.objects])
            for f in files]


def _files_of(stored: Sequence[StoredFile]) -> list[RenderedFile]:
    """The files of a found unit, without manifests: a unit is kept only where its tenant
    was rendered as planned (no closed-world difference, no drift of a command line), which
    its key makes true again; its objects go into the policy input as their items' JSON."""
    return [FoundFile(path, digest, objects) for path, digest, objects in stored]


def contributions_id(contributions: Sequence[Contribution]) -> str:
    """What names the contributions' code in a tenant unit's key (the code itself is in
    every key): each one's type and what it renders."""
    def name(value: Any) -> str:
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"

    return ",".join(f"{name(type(c))}:{name(getattr(c, 'render', None))}:{name(getattr(c, 'per_tenant', None))}:"
                    f"{c.in_kustomization}" for c in contributions)


def _render_inline(catalog: Catalog, plan: EnvironmentPlan, templates: Path,
                   contributions: Sequence[Contribution], memo: ObjectMemo | None = None,
                   units: TenantMemo | None = None, compiled: bool = False) -> list[RenderedFile]:
    if not compiled:
        compile_templates(templates)
    renderer = EnvironmentRenderer(catalog, plan, templates, contributions, memo, units)
    for t in plan.tenants:
        renderer.render_tenant(t)
    renderer.environment()
    return sorted(renderer.files, key=lambda f: f.path)


def render_environment(catalog: Catalog, plan: EnvironmentPlan, templates: Path,
                       contributions: Sequence[Contribution] = (),
                       memo: ObjectMemo | None = None, units: TenantMemo | None = None,
                       compiled: bool = False) -> list[RenderedFile]:
    """Every file of one environment, paths relative to ``rendered/<env>/``, sorted.

    Rendering (compiling the templates included) is bounded in time and memory, so a
    template that loops for ever or builds a huge string is a configuration error, not
    a hung CI job.  Every template is compiled first, so that a syntax error is found in
    a template no object uses too; ``compiled``: the folder's templates, exactly as they
    are, are known to compile (the gate's cache), and each one compiles when an object
    first uses it (a warm run that renders one tenant compiles its templates only).
    """
    from .limits import ChildFailed, TimeLimitExceeded, run_inline_bounded

    seconds = _render_timeout()
    try:
        return run_inline_bounded(
            lambda: _render_inline(catalog, plan, templates, contributions, memo, units, compiled),
            seconds=seconds, memory_bytes=RENDER_MEMORY_BYTES)
    except TimeLimitExceeded:
        raise ConfigError(f"{templates}: rendering environment {plan.environment.name} did not "
                          f"finish within {seconds:g}s (${settings.RENDER_TIMEOUT.name})") from None
    except ChildFailed as exc:
        raise ConfigError(f"{templates}: rendering environment {plan.environment.name} "
                          f"failed: {visible(str(exc))}") from None


# ---------------------------------------------------------------- rendered as planned

DRIFT_RULE = RENDER_VLLM_ARGS


def _argv_drift(got: Sequence[Any], want: Sequence[str]) -> tuple[str, str]:
    """The first place two command lines differ: (what the template rendered, what the plan has)."""
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g != w:
            return (visible(str(g)) if g is not None else "nothing", visible(w) if w is not None else "nothing")
    return "", ""


def drift_findings(plan: EnvironmentPlan, files: Sequence[RenderedFile]) -> list[Finding]:
    """:func:`_drift` of every service of ``plan``: an object found whole in the gate's cache
    has no manifest here (its unit was kept only without drift) and is not read again."""
    return _drift(plan.environment.name, plan.services, files)


def _drift(env: str, services: Sequence[ServicePlan], files: Sequence[RenderedFile]) -> list[Finding]:
    """The vLLM command lines the templates rendered are the ones the plan computed.

    Every check reads the plan (adapters, LoRA slots and rank, served names, memory) and
    vLLM reads its argv, the last occurrence of a flag winning: a template that adds a
    ``--lora-modules``, a second ``--max-loras`` or a ``command`` of its own would serve
    what no check read.  So the serving runtime's container runs exactly vLLM's server
    with the runtime's arguments, an InferenceService's model exactly the plan's
    arguments (no other container beside it), an LLMInferenceService's ``main``
    container exactly the arguments the plan leaves to it."""
    objects = {(o.kind, o.namespace, o.name): o for f in files if not isinstance(f, FoundFile) for o in f.objects}
    out: list[Finding] = []

    def drift(obj: RenderedObject, what: str, got: Sequence[Any], want: Sequence[str]) -> None:
        if list(got) == list(want):
            return
        g, w = _argv_drift(got, want)
        out.append(Finding(
            DRIFT_RULE, Severity.ERROR,
            f"{obj.kind} {obj.namespace}/{obj.name}: the template renders {what} other than the plan "
            f"computed: {g} where the plan has {w}",
            obj.source, resource=ResourceRef(obj.kind, obj.name, obj.namespace, obj.api_version),
            expected=(f"{what}: {' '.join(visible(a) for a in want)}" if len(want) <= 8 else
                      f"{what} as `kitchen plan --env {env}` shows it"),
            actual=g, environment=env))

    def extra(obj: RenderedObject, path: str, expected: str) -> None:
        out.append(Finding(
            DRIFT_RULE, Severity.ERROR,
            f"{obj.kind} {obj.namespace}/{obj.name}: the template adds a container at {path}, "
            "which the plan does not run and no argument check reads",
            obj.source, resource=ResourceRef(obj.kind, obj.name, obj.namespace, obj.api_version),
            expected=expected, actual=path, environment=env))

    for svc in services:
        obj = objects.get((svc.kind, svc.namespace, svc.name))
        if obj is None or not isinstance(obj.manifest, dict):
            continue
        containers = dict(serving_containers(obj.manifest))
        if svc.kind == "InferenceService":
            drift(obj, "the model's command line", container_argv(containers.pop("spec.predictor.model", None)),
                  list(svc.args))
        else:
            main = [p for p, c in containers.items() if isinstance(c, dict) and c.get("name") == "main"]
            for path in main[:1]:
                drift(obj, "the main container's command line", container_argv(containers.pop(path)),
                      list(svc.workload_args))
        for path in containers:
            extra(obj, path, "the model alone" if svc.kind == "InferenceService" else "the main container alone")
    for (kind, _ns, name), obj in sorted(objects.items()):
        if kind != "ServingRuntime" or name != RUNTIME_NAME or not isinstance(obj.manifest, dict):
            continue
        for path, container in serving_containers(obj.manifest):
            if isinstance(container, dict) and container.get("name") == "kserve-container":
                drift(obj, "the runtime's command line", container_argv(container),
                      [*RUNTIME_COMMAND, *runtime_args()])
            else:
                extra(obj, path, "kserve-container alone")
    return out


def unintended_findings(environment: str, files: Sequence[RenderedFile], data: Mapping[str, Any]) -> list[Finding]:
    """What the templates rendered beyond what kitchen intends, less what the customisation
    points of the policy data allow (:mod:`kitchen_gitops.closed_world`)."""
    objects = [(RenderedRef(o.kind, o.name, o.namespace, o.api_version, f.path), o.differences)
               for f in files if not isinstance(f, FoundFile) for o in f.objects if o.differences]
    return closed_world_findings(environment, objects, points(data)) if objects else []
