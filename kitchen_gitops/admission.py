"""Admission: the gate's rules that one object decides, enforced by the cluster itself.

``kitchen check`` holds what CI syncs; whoever writes to the cluster some other way meets
no check.  For each environment this stage generates Kubernetes ``ValidatingAdmissionPolicy``
objects (CEL, ``admissionregistration.k8s.io/v1``, Kubernetes 1.30+) and one
``ValidatingAdmissionPolicyBinding`` each, from the same sources as the gate: the floors
and allow-lists of ``policies/data.yaml``, the environment's registries and the vLLM
options kitchen writes.  The values are written into the expressions (one policy per
environment and rule, no parameter objects): what a policy admits is read in one file,
and an environment's policy changes only with a reviewed change to its output.

The output is security's, apart from the environments: ``<prefix>/admission/<env>/`` with
its own kustomization and Argo CD Application (synced in an earlier wave than the
environment's), bound to the namespaces labelled ``kitchen-gitops.io/environment: <env>``.
It is built in Python, not from templates: what is written is what kitchen means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from . import admission_cel as cel
from .errors import ConfigError
from .findings import Finding, Severity
from .json_types import JsonArray, JsonObject
from .model import Catalog, Environment
from .plan import KITCHEN_FLAGS, OFFLINE_ENV, RUNTIME_COMMAND, environment_release
from .policy.floors import floors_of
from .render import DOMAIN, MANAGED_BY, RenderedFile, RenderedObject
from .rules import PLAN_VLLM_ARG_NOT_ALLOWED, RENDER_ADMISSION_FOLDER, RENDER_UNINTENDED_FIELD, RENDER_VLLM_ARGS
from .vllm_allow import allow_list

FOLDER = "admission"
API_VERSION = "admissionregistration.k8s.io/v1"
ENV_LABEL = f"{DOMAIN}/environment"
ACTIONS_KEY = "admission_actions"
DEFAULT_ACTIONS = ("Deny",)
RESERVED_RULE = RENDER_ADMISSION_FOLDER
# The Application of the admission output syncs before the environment's (wave 0); in it,
# the policies before their bindings.
WAVE_APPLICATION = -1
WAVE_POLICY = 0
WAVE_BINDING = 1
# The serving container's environment beside the offline switches: kitchen's own.
SERVING_ENV = ("HOME",)

_KINDS: dict[str, tuple[str, str]] = {  # kind: (API group, resource)
    "InferenceService": ("serving.kserve.io", "inferenceservices"),
    "ServingRuntime": ("serving.kserve.io", "servingruntimes"),
    "LLMInferenceService": ("serving.kserve.io", "llminferenceservices"),
    "Job": ("batch", "jobs"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
}
SERVING = ("InferenceService", "ServingRuntime", "LLMInferenceService")
WORKLOADS = (*SERVING, "Job")


@dataclass(frozen=True)
class Validation:
    rule: str  # the id the gate reports the same refusal under
    expression: str
    reason: str  # what is refused, in words


@dataclass(frozen=True)
class Policy:
    name: str  # the policy's part of the object name: kitchen-<env>-<name>
    kinds: tuple[str, ...]
    validations: tuple[Validation, ...]


@dataclass(frozen=True)
class Settings:
    """What one environment's policies admit, from the policy data and the environment."""

    env: str
    registries: tuple[str, ...]
    remote_code_bases: tuple[str, ...]
    min_replicas: int | None
    forbidden_env: tuple[str, ...]
    serving_env: tuple[str, ...]
    vllm_flags: tuple[str, ...]
    actions: tuple[str, ...]


def settings(env: Environment, data: Mapping[str, Any]) -> Settings:
    floors = floors_of(data, env.name, env.cluster.name)
    registries = [r for r in env.registry.allowed if "/" not in r]
    for floor in floors:
        if isinstance(floor.get("registries"), list):
            registries = [r for r in registries if r in floor["registries"]]
    bases = list(env.gates.trust_remote_code_allowlist)
    for floor in floors:
        if isinstance(floor.get("trust_remote_code"), list):
            bases = [b for b in bases if b in floor["trust_remote_code"]]
    replicas = [f["serving"]["min_replicas"] for f in floors
                if isinstance(f.get("serving"), dict) and isinstance(f["serving"].get("min_replicas"), int)]
    offline = data.get("offline_env") or {}
    return Settings(
        env=env.name, registries=tuple(sorted(set(registries))), remote_code_bases=tuple(sorted(set(bases))),
        min_replicas=max(replicas) if replicas else None,
        forbidden_env=tuple(sorted(data.get("forbidden_runtime_env") or {})),
        serving_env=tuple(sorted({*offline, *(name for name, _ in OFFLINE_ENV), *SERVING_ENV})),
        vllm_flags=vllm_flags(env, data), actions=actions(data))


def actions(data: Mapping[str, object]) -> tuple[str, ...]:
    """The bindings' validationActions (policies/data.yaml ``admission_actions``)."""
    value = data.get(ACTIONS_KEY)
    chosen = tuple(sorted(set(value))) if isinstance(value, list) and value else DEFAULT_ACTIONS
    if "Deny" in chosen and "Warn" in chosen:
        raise ConfigError(f"policies/data.yaml: {ACTIONS_KEY} may not hold both Deny and Warn "
                          "(Kubernetes refuses the binding); expected [Deny], [Warn, Audit] or [Deny, Audit]")
    return chosen


def vllm_flags(env: Environment, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The options a serving container's arguments may name: those kitchen writes and those
    the allow-list lets extra_args set, in every spelling the environment's release reads
    them (a renamed option under its old name too, ``--no-`` of a switch, ``_`` for ``-``)."""
    release = environment_release(env)
    flags: set[str] = set()
    for flag in (*KITCHEN_FLAGS, *allow_list(data)):
        flags.add(flag)
        option = None if release is None else (
            release.option(flag) or release.options.get(flag.lstrip("-").replace("-", "_")))
        if option is not None:
            flags.update(f for f in option.flags if f.startswith("--"))
    spelled = {f"--{f[2:].replace('-', '_')}" for f in flags}
    return tuple(sorted(flags | spelled))


def policies(s: Settings) -> list[Policy]:
    """The admission policies of one environment, in a stable order."""
    out = [
        Policy("image-pinned", WORKLOADS, (
            Validation("policy.image-pinned", cel.image_pinned(), "runs an image not pinned by @sha256: digest"),
            Validation("policy.image-pinned", cel.image_registry(s.registries),
                       f"pulls an image from a registry other than {', '.join(s.registries) or '(none allowed)'}"),
        )),
        Policy("non-root", WORKLOADS, (
            Validation("policy.non-root", cel.run_as_non_root(), "has a container that may run as root"),
            Validation("policy.non-root", cel.drops_all(), "has a container that does not drop ALL capabilities"),
            Validation("policy.non-root", cel.no_escalation(), "has a container that allows privilege escalation"),
            Validation("policy.non-root", cel.not_privileged(), "has a privileged container"),
            Validation("policy.non-root", cel.capabilities_added(), "adds a capability other than NET_BIND_SERVICE"),
            Validation("policy.non-root", cel.not_user_zero(), "runs a container as user 0"),
            Validation("policy.non-root", cel.seccomp_confined(),
                       "runs a container without a RuntimeDefault or Localhost seccomp profile"),
            Validation("policy.non-root", cel.no_host_ports(), "opens a host port"),
            Validation("policy.non-root", cel.no_host_namespaces(), "shares the node's network, PID or IPC namespace"),
            Validation("policy.non-root", cel.no_host_path(), "mounts a hostPath volume"),
            Validation("policy.non-root", cel.model_not_loosened(),
                       "loosens the runtime's securityContext in the predictor model"),
        )),
        Policy("serving-environment", SERVING, (
            Validation("policy.runtime-env", cel.env_off(s.forbidden_env),
                       f"turns on a vLLM switch past the checks ({', '.join(s.forbidden_env)})"),
            Validation(RENDER_UNINTENDED_FIELD, cel.env_allowed(s.serving_env),
                       f"sets environment variables other than kitchen's ({', '.join(s.serving_env)}) or envFrom"),
        )),
        Policy("vllm-command-line", SERVING, (
            Validation(RENDER_VLLM_ARGS, cel.command_is(RUNTIME_COMMAND),
                       f"runs another command than {' '.join(RUNTIME_COMMAND)}"),
            Validation(PLAN_VLLM_ARG_NOT_ALLOWED, cel.args_allowed(s.vllm_flags),
                       "passes vLLM an option that neither kitchen writes nor vllm_extra_args allows"),
            Validation("policy.trust-remote-code", cel.no_remote_code(s.remote_code_bases),
                       "passes --trust-remote-code for a base not on the allowlist"),
        )),
        Policy("egress-destination", ("NetworkPolicy",), (
            Validation("policy.egress-destination", cel.egress_named(),
                       "lets pods reach every destination, every namespace or addresses beyond one network"),
        )),
    ]
    if s.min_replicas is not None:
        out.append(Policy("min-replicas", ("InferenceService", "LLMInferenceService"), (
            Validation("policy.gate-floor", cel.min_replicas(s.min_replicas),
                       f"runs fewer than {s.min_replicas} replica(s), its floor in policies/ (serving.min_replicas)"),
        )))
    return sorted(out, key=lambda p: p.name)


# ---------------------------------------------------------------- objects


def _meta(name: str, env: str, wave: int, namespace: str = "") -> JsonObject:
    meta: JsonObject = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**dict(MANAGED_BY), f"{DOMAIN}/component": "admission", ENV_LABEL: env}
    meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave),
                           f"{DOMAIN}/sources": f"policies/data.yaml,environments/{env}.yaml"}
    return meta


def _message(env: str, v: Validation) -> str:
    return f"[{env}] {v.rule}: the object {v.reason}"


def _message_expression(env: str, v: Validation) -> str:
    head = cel.literal(f"[{env}] {v.rule}: ")
    tail = cel.literal(f" {v.reason}")
    return f"{head} + request.kind.kind + ' ' + request.namespace + '/' + request.name + {tail}"


def policy_object(s: Settings, p: Policy) -> JsonObject:
    rules: JsonArray = [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
              "resources": [resource]}
             for group, resource in sorted({_KINDS[k] for k in p.kinds})]
    spec: JsonObject = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}}
    if p.kinds != ("NetworkPolicy",):
        spec["variables"] = [{"name": n, "expression": e} for n, e in cel.VARIABLES]
    spec["validations"] = [{"expression": v.expression, "message": _message(s.env, v),
                            "messageExpression": _message_expression(s.env, v), "reason": "Forbidden"}
                           for v in p.validations]
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
            "metadata": _meta(f"kitchen-{s.env}-{p.name}", s.env, WAVE_POLICY), "spec": spec}


def binding_object(s: Settings, p: Policy) -> JsonObject:
    name = f"kitchen-{s.env}-{p.name}"
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": _meta(name, s.env, WAVE_BINDING),
            "spec": {"policyName": name, "validationActions": list(s.actions),
                     "matchResources": {"namespaceSelector": {"matchLabels": {ENV_LABEL: s.env}}}}}


def application_object(env: Environment) -> JsonObject:
    argo = env.argocd
    sync: JsonObject = {}
    if argo.auto_sync:
        sync["automated"] = {"prune": True, "selfHeal": True}
    sync["syncOptions"] = ["ServerSideApply=true"]
    sync["retry"] = {"limit": 3, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "5m"}}
    meta = _meta(f"kitchen-admission-{env.name}", env.name, WAVE_APPLICATION, argo.namespace)
    meta["finalizers"] = ["resources-finalizer.argocd.argoproj.io/foreground"]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta,
            "spec": {"project": argo.project,
                     "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision,
                                "path": f"{argo.path_prefix}/{FOLDER}/{env.name}"},
                     "destination": {"server": env.cluster.api_server}, "syncPolicy": sync}}


# ---------------------------------------------------------------- files


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _header(env: str) -> str:
    return (f"# Generated by kitchen from policies/data.yaml, environments/{env}.yaml. Do not edit: "
            "change the policies or the catalog and run `kitchen render`.\n")


def dump(obj: Mapping[str, object]) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False,
                     default_flow_style=False)


def _file(env: str, path: str, obj: JsonObject, catalog: Catalog) -> RenderedFile:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    ref = RenderedObject(str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("name", "")),
                         str(meta.get("namespace", "")),
                         catalog.location("Environment", env), (f"environments/{env}.yaml",), obj)
    return RenderedFile(f"{env}/{path}", _header(env) + dump(obj), [ref])


def environment_files(catalog: Catalog, env: Environment, data: Mapping[str, Any]) -> list[RenderedFile]:
    """``<env>/``: a policy and a binding per rule, the kustomization and the Application."""
    s = settings(env, data)
    files: list[RenderedFile] = []
    for p in policies(s):
        files.append(_file(env.name, f"validatingadmissionpolicy-{p.name}.yaml", policy_object(s, p), catalog))
        files.append(_file(env.name, f"validatingadmissionpolicybinding-{p.name}.yaml", binding_object(s, p),
                           catalog))
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": sorted(f.path.split("/", 1)[1] for f in files)}
    files.append(RenderedFile(f"{env.name}/kustomization.yaml", _header(env.name) + dump(kustomization)))
    files.append(_file(env.name, "application.yaml", application_object(env), catalog))
    return sorted(files, key=lambda f: f.path)


def render_admission(catalog: Catalog, data: Mapping[str, Any]) -> list[RenderedFile]:
    """Every environment's admission output, paths relative to ``<prefix>/admission/``."""
    return [f for name in sorted(catalog.environments)
            for f in environment_files(catalog, catalog.environments[name], data)]


def reserved_findings(catalog: Catalog) -> list[Finding]:
    """An environment named like the admission folder would render into it."""
    if FOLDER not in catalog.environments:
        return []
    return [Finding(RESERVED_RULE, Severity.ERROR,
                    f"environment '{FOLDER}' would render into {FOLDER}/, the folder of the admission policies",
                    catalog.location("Environment", FOLDER, ("name",), value=True),
                    expected=f"another environment name than '{FOLDER}'", environment=FOLDER,
                    subject=f"Environment/{FOLDER}")]


def denial_rules() -> Sequence[str]:
    """The gate's rule ids that admission enforces too (docs/policies.md#admission)."""
    s = Settings("env", ("r",), (), 1, ("X",), ("Y",), ("--z",), DEFAULT_ACTIONS)
    return sorted({v.rule for p in policies(s) for v in p.validations})
