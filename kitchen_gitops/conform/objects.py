"""Render the conformance objects of an environment with the rest of its manifests.

In the environment's kustomization (synced by its Argo CD Application):

- ``kitchen-conformance/``: the Namespace, the ServiceAccount, the expectations ConfigMap
  and the PostSync hook Job (``serving`` and ``gpu`` containers, the kitchen image by
  digest, ``backoffLimit: 0``, ``activeDeadlineSeconds``);
- ``<tenant namespace>/``: a Role allowing only get/list/watch of InferenceServices, and
  its RoleBinding to the conformance ServiceAccount.

Outside it, under ``argocd/`` (argocd-cm lives in Argo CD's own namespace, owned by
whoever installs Argo CD, so the environment's Application must not own it): the health
check that turns a failing InferenceService into Degraded, as an ``argocd-cm`` patch (on
OpenShift GitOps the same Lua goes into the ``ArgoCD`` resource's ``resourceHealthChecks``,
from which the operator writes argocd-cm: docs/conformance.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import orjson

from ..json_types import pretty_json
from ..model import Environment
from ..plan import TenantPlan
from ..render import (
    CONFORMANCE_NAMESPACE,
    DOMAIN,
    POD_SECURITY,
    WAVE_NAMESPACE,
    WAVE_RBAC,
    Contribution,
    EnvironmentRenderer,
    Meta,
    object_meta,
)
from .expectations import (
    CONFIGMAP_KEY,
    FlavorExpectation,
    PolicyData,
    build_expectations,
    environment_expectations,
    reads_policy_data,
    service_expectations,
)

NAME = "kitchen-conformance"
EXPECTATIONS_DIR = "/etc/kitchen"
REPORTS_DIR = "/reports"
S3_CA_DIR = "/etc/kitchen-s3-ca"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
EVIDENCE_KEY_DIR = "/etc/kitchen-evidence-key"
EVIDENCE_KEY_FILE = "signing-key.pem"
EVIDENCE_CA_DIR = "/etc/kitchen-evidence-ca"
# the key KServe reads from the CA bundle ConfigMap (serving.kserve.io/s3-cabundle-configmap)
CA_BUNDLE_KEY = "cabundle.crt"
HEALTH_KEY = "resource.customizations.health.serving.kserve.io_InferenceService"
HEALTH_KEYS = {"InferenceService": HEALTH_KEY,
               "LLMInferenceService": "resource.customizations.health.serving.kserve.io_LLMInferenceService"}
# what the conformance Job reads in a tenant's namespace, by the environment's serving API
READ_RESOURCES = {"InferenceService": "inferenceservices", "LLMInferenceService": "llminferenceservices"}
# time for Argo CD to wait beyond the Job's own deadline (image pull, scheduling)
SYNC_TIMEOUT_MARGIN_S = 600


def health_lua() -> str:
    return files("kitchen_gitops.conform").joinpath("health.lua").read_text(encoding="utf-8")


def sync_timeout_s(readiness_timeout_s: int, active_deadline_s: int) -> int:
    """The Argo CD sync timeout that lets InferenceServices become Ready and the Job finish."""
    return readiness_timeout_s + active_deadline_s + SYNC_TIMEOUT_MARGIN_S


def render_conformance(r: EnvironmentRenderer) -> None:
    """The conformance objects that belong to the environment's kustomization."""

    env, cat = r.env, r.catalog
    ns = CONFORMANCE_NAMESPACE
    srcs, s3_secret = _conformance_sources(r)
    label = ((f"{DOMAIN}/component", "conformance"),)
    conf_loc = cat.location("Environment", env.name, ("conformance",))
    trace = ((f"{DOMAIN}/sources", r.env_source),)

    r.emit(f"{ns}/namespace.yaml", "namespace.yaml.j2", conf_loc, (r.env_source,), "Namespace", "v1",
           object_meta(ns, "", env, wave=WAVE_NAMESPACE, labels=(*label, *POD_SECURITY),
                 annotations=[*trace, ("openshift.io/display-name", "kitchen conformance")]))
    r.emit(f"{ns}/serviceaccount-{NAME}.yaml", "conformance-serviceaccount.yaml.j2", conf_loc,
           (r.env_source,), "ServiceAccount", "v1",
           object_meta(NAME, ns, env, wave=WAVE_RBAC, labels=label, annotations=trace))
    all_trace = ((f"{DOMAIN}/sources", ",".join(sorted(set(srcs)))),)
    r.emit(f"{ns}/configmap-{NAME}-expectations.yaml", "conformance-configmap.yaml.j2", conf_loc,
           srcs, "ConfigMap", "v1",
           object_meta(f"{NAME}-expectations", ns, env, wave=WAVE_RBAC, labels=label,
                 annotations=all_trace),
           key=CONFIGMAP_KEY, content=expectations_text(r))
    _render_job(r, srcs, label, all_trace, s3_secret)


# where the environment's own expectations, written with no service, hold the services list
# (the top object's key, two spaces in: no string holds an unescaped quote)
_SERVICES_AT = '\n  "services": []'
_ITEM = ",\n    "  # between two items of that list, as json.dumps(indent=2) writes them


def expectations_text(r: EnvironmentRenderer) -> str:
    """The environment's expectations as the ConfigMap holds them; with the gate's cache,
    each tenant's services' part is found by the tenant's files key (and the policy data,
    where one of its flavors has an evaluation set), and only the tenants whose files
    changed are described again.

    A part is kept as the text ``json.dumps(indent=2, sort_keys=True)`` writes for its
    services inside the environment's list (each line after the first four spaces further
    in: JSON writes no newline inside a string); the parts go into the environment's own
    text, written with an empty list, where the list is.  Tests hold the text, cold and
    warm, to what ``kitchen render`` (which keeps nothing) committed, and the acceptance
    folders' staleness checks to runs without the cache."""
    cat, plan, units = r.catalog, r.plan, r.units
    params = PolicyData(cat)
    reading = [reads_policy_data(t.services) for t in plan.tenants]
    data = _policy_data_json(params) if any(reading) else b""
    if units is None or data is None or any(units.files.get(t.tenant.name) is None for t in plan.tenants):
        return build_expectations(cat, plan).to_json()
    known: dict[str, FlavorExpectation] = {}
    pieces: list[str] = []
    for t, reads in zip(plan.tenants, reading, strict=True):
        files = units.files[t.tenant.name]
        assert files is not None
        parts = units.parts("expectations", data if reads else b"")
        key = parts.key(files)
        found = parts.get(key, t.tenant.name, _text, "not a tenant's expectations")
        if found is None:
            found = _ITEM.join(pretty_json(e.model_dump(mode="json", exclude_none=True)).replace("\n", "\n    ")
                               for e in service_expectations(cat, r.env, t.services, known, params))
            with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: written, not kept
                parts.put(key, t.tenant.name, found.encode("utf-8"))
        if found:
            pieces.append(found)
    whole = pretty_json(environment_expectations(cat, plan).model_dump(mode="json", exclude_none=True))
    if pieces:
        at = whole.index(_SERVICES_AT)
        whole = (whole[:at] + '\n  "services": [\n    ' + _ITEM.join(pieces) + "\n  ]"
                 + whole[at + len(_SERVICES_AT):])
    return whole + "\n"


def _policy_data_json(params: PolicyData) -> bytes | None:
    """The policy data as a part's key reads it; None where JSON cannot tell it exactly."""
    try:
        return orjson.dumps(params(), option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                            | orjson.OPT_PASSTHROUGH_SUBCLASS)
    except TypeError:
        return None


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _conformance_sources(r: EnvironmentRenderer) -> tuple[tuple[str, ...], str | None]:
    """The files the conformance objects come from (the environment, its tenants, their
    flavors and evaluation sets), and the S3 secret the job needs for sets in S3."""
    cat, services = r.catalog, r.plan.services
    flavor_files = {cat.source_file("Flavor", f.ref) for s in services for f in s.flavors}
    datasets = [f.evaluation.dataset for s in services for f in s.flavors
                if f.evaluation is not None and f.evaluation.dataset is not None]
    # the sets of the repository travel in the expectations: they are sources of it too
    flavor_files |= {d.path for d in datasets if d.path is not None}
    # a set in S3 is fetched by the job with the environment's S3 credentials
    s3_secret = r.env.storage.s3.secret if any(d.uri is not None for d in datasets) else None
    tenant_files = {cat.source_file("Tenant", s.tenant.name) for s in services}
    return (r.env_source, *tenant_files, *flavor_files), s3_secret


def render_tenant_rbac(r: EnvironmentRenderer, t: TenantPlan) -> None:
    """In a tenant namespace that serves: the Role and RoleBinding that let the job read
    its InferenceServices."""
    if not t.services:
        return
    env, cat = r.env, r.catalog
    label = ((f"{DOMAIN}/component", "conformance"),)
    tfile = cat.source_file("Tenant", t.tenant.name)
    tloc = cat.location("Tenant", t.tenant.name, ("environments", env.name))
    tmeta = ((f"{DOMAIN}/tenant", t.tenant.name), *label)
    ttrace = ((f"{DOMAIN}/sources", ",".join(sorted({tfile, r.env_source}))),)
    r.emit(f"{t.namespace}/role-{NAME}.yaml", "conformance-role.yaml.j2", tloc,
           (tfile, r.env_source), "Role", "rbac.authorization.k8s.io/v1",
           object_meta(NAME, t.namespace, env, wave=WAVE_RBAC, labels=tmeta, annotations=ttrace),
           resource=READ_RESOURCES[env.serving.api])
    r.emit(f"{t.namespace}/rolebinding-{NAME}.yaml", "conformance-rolebinding.yaml.j2", tloc,
           (tfile, r.env_source), "RoleBinding", "rbac.authorization.k8s.io/v1",
           object_meta(NAME, t.namespace, env, wave=WAVE_RBAC, labels=tmeta, annotations=ttrace),
           role=NAME, sa_name=NAME, sa_namespace=CONFORMANCE_NAMESPACE)


def _render_job(r: EnvironmentRenderer, srcs: tuple[str, ...], label: tuple[tuple[str, str], ...],
                all_trace: tuple[tuple[str, str], ...], s3_secret: str | None) -> None:
    """The PostSync Job that runs ``kitchen conform gpu`` and ``kitchen conform serving``."""
    env, ns = r.env, CONFORMANCE_NAMESPACE
    # and trusts the CA KServe's storage initializer trusts (its key: cabundle.crt)
    s3_ca = env.storage.s3.ca_bundle_configmap if s3_secret else None
    serving_args, evidence = _serving_args(env)
    gpu_args = ["conform", "gpu", "--expectations", f"{EXPECTATIONS_DIR}/{CONFIGMAP_KEY}",
                "--json", f"{REPORTS_DIR}/gpu.json", "--junit", f"{REPORTS_DIR}/gpu.xml"]
    r.emit(f"{ns}/job-{NAME}.yaml", "conformance-job.yaml.j2",
           r.catalog.location("Environment", env.name, ("conformance",)), srcs, "Job", "batch/v1",
           object_meta(NAME, ns, env, wave=None, labels=label,
                 annotations=[*all_trace, ("argocd.argoproj.io/hook", "PostSync"),
                              ("argocd.argoproj.io/hook-delete-policy", "BeforeHookCreation")]),
           image=env.images.kitchen, service_account=NAME,
           active_deadline_s=env.conformance.active_deadline_s, configmap=f"{NAME}-expectations",
           expectations_dir=EXPECTATIONS_DIR, reports_dir=REPORTS_DIR,
           serving_args=serving_args, gpu_args=gpu_args, s3_secret=s3_secret, s3_ca=s3_ca,
           s3_ca_dir=S3_CA_DIR, evidence=evidence,
           node_selector=sorted(env.cluster.node_selector.items()),
           tolerations=[t.model_dump(exclude_none=True) for t in env.cluster.tolerations],
           pod_labels=sorted([*label, (f"{DOMAIN}/environment", env.name)]))


def _serving_args(env: Environment) -> tuple[list[str], dict[str, str | None] | None]:
    """``kitchen conform serving``'s arguments in the job, and where the job finds and
    stores the signed evidence record (None: the environment keeps none)."""
    serving_args = ["conform", "serving", "--expectations", f"{EXPECTATIONS_DIR}/{CONFIGMAP_KEY}",
                    "--json", f"{REPORTS_DIR}/serving.json", "--junit", f"{REPORTS_DIR}/serving.xml"]
    if env.serving.auth:
        serving_args += ["--token-file", TOKEN_PATH]
    if env.evidence is None:
        return serving_args, None
    s3 = env.storage.s3
    endpoint = s3.endpoint if "://" in s3.endpoint else \
        f"{'https' if s3.use_https else 'http'}://{s3.endpoint}"
    serving_args += ["--evidence-out", f"{REPORTS_DIR}/evidence",
                     "--evidence-key", f"{EVIDENCE_KEY_DIR}/{EVIDENCE_KEY_FILE}",
                     "--evidence-s3", env.evidence.uri, "--s3-endpoint", endpoint, "--s3-region", s3.region]
    if s3.ca_bundle_configmap:
        serving_args += ["--ca-bundle", f"{EVIDENCE_CA_DIR}/{CA_BUNDLE_KEY}"]
    evidence = {"uri": env.evidence.uri, "key_secret": env.evidence.key_secret, "key_file": EVIDENCE_KEY_FILE,
                "key_dir": EVIDENCE_KEY_DIR, "s3_secret": s3.secret, "ca_configmap": s3.ca_bundle_configmap,
                "ca_dir": EVIDENCE_CA_DIR}
    return serving_args, evidence


def render_argocd_health(r: EnvironmentRenderer) -> None:
    """The InferenceService health check for the environment's Argo CD (not in the kustomization)."""

    env = r.env
    loc = r.catalog.location("Environment", env.name, ("argocd",))
    timeout = sync_timeout_s(env.conformance.readiness_timeout_s, env.conformance.active_deadline_s)
    ns = env.argocd.namespace
    # Argo CD reads argocd-cm only with part-of: argocd; a kitchen label would hide it
    labels = (("app.kubernetes.io/managed-by", "kitchen"), ("app.kubernetes.io/name", "argocd-cm"),
              ("app.kubernetes.io/part-of", "argocd"), (f"{DOMAIN}/environment", env.name))
    trace = ((f"{DOMAIN}/sources", r.env_source),)
    common = {"lua": health_lua(), "sync_timeout_s": timeout, "health_key": HEALTH_KEYS[env.serving.api]}
    r.emit("argocd/argocd-cm-health.yaml", "argocd-cm-health.yaml.j2", loc, (r.env_source,),
           "ConfigMap", "v1", Meta("argocd-cm", ns, labels, trace),
           openshift=env.cluster.platform == "openshift", **common)


@dataclass(frozen=True)
class _Contribution:
    render: Any
    in_kustomization: bool
    per_tenant: Any = None

    def tenant(self, renderer: EnvironmentRenderer, t: TenantPlan) -> None:
        if self.per_tenant is not None:
            self.per_tenant(renderer, t)

    def __call__(self, renderer: EnvironmentRenderer) -> None:
        self.render(renderer)


# What the conformance stage adds to every environment's rendered output.
CONTRIBUTIONS: tuple[Contribution, ...] = (
    _Contribution(render_conformance, in_kustomization=True, per_tenant=render_tenant_rbac),
    _Contribution(render_argocd_health, in_kustomization=False),  # like the Application
)
