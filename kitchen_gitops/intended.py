"""The intended world: every object kitchen means to write, built in Python.

The templates in ``templates/`` format what the plan decided; they come from the same pull
requests as the catalog, so what they render is compared with what kitchen meant
(:mod:`kitchen_gitops.closed_world`).  For each template that :class:`~kitchen_gitops.render.
EnvironmentRenderer` renders, :data:`BUILDERS` holds a function that builds the object the
template is meant to render — from the same values the template receives — as the plain
data a YAML reader returns: every field, every value, every type.  A field a template adds,
drops or changes is a difference from this object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from . import settings
from .json_types import JsonArray, JsonObject, JsonValue

# Argo CD deletes an Application's resources before the Application itself (foreground
# cascading deletion); the domain-qualified name is the one the API server accepts without
# a warning (finalizer names are qualified since Kubernetes 1.29 warns on bare ones).
APPLICATION_FINALIZER = "resources-finalizer.argocd.argoproj.io/foreground"


class MetaLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def annotations(self) -> tuple[tuple[str, str], ...]: ...


Builder = Callable[[str, str, MetaLike | None, Mapping[str, Any]], JsonObject]


def _mapping(pairs: Iterable[tuple[str, JsonValue]]) -> JsonObject | None:
    """A mapping a template writes key by key: an empty one reads as null."""
    out = dict(pairs)
    return out or None


def metadata(meta: MetaLike) -> JsonObject:
    out: JsonObject = {"name": meta.name}
    if meta.namespace:
        out["namespace"] = meta.namespace
    out["labels"] = _mapping(meta.labels)
    if meta.annotations:
        out["annotations"] = dict(meta.annotations)
    return out


def _head(api_version: str, kind: str, meta: MetaLike | None) -> JsonObject:
    out: JsonObject = {"apiVersion": api_version, "kind": kind}
    if meta is not None:
        out["metadata"] = metadata(meta)
    return out


def _block(content: str) -> str:
    """A block scalar (``|``, clipped) holding ``content`` indented: its last line break kept."""
    return content.rstrip("\n") + "\n" if content.strip("\n") else ""


def _scheduling(ctx: Mapping[str, Any], out: JsonObject) -> None:
    if ctx["node_selector"]:
        out["nodeSelector"] = dict(ctx["node_selector"])
    if ctx["tolerations"]:
        out["tolerations"] = [dict(t) for t in ctx["tolerations"]]


def _resources(ctx: Mapping[str, Any]) -> JsonObject:
    one = {"cpu": ctx["cpu"], "memory": ctx["memory"], ctx["gpu_resource"]: str(ctx["gpus"])}
    return {"requests": dict(one), "limits": dict(one)}


def _env(pairs: Sequence[tuple[str, str]]) -> JsonArray:
    return [{"name": k, "value": v} for k, v in pairs]


def _restricted() -> JsonObject:
    """The restricted Pod Security profile of a serving container."""
    return {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


# ---------------------------------------------------------------- tenant objects


def namespace(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return _head(api_version, kind, meta)


def resource_quota(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta),
            "spec": {"hard": {f"requests.{ctx['gpu_resource']}": str(ctx["gpu_quota"])}}}


def role_binding(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ctx["role"]},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                         for g in ctx["groups"]] or None}


def service_account(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta), "secrets": [{"name": ctx["secret"]}]}


def network_policy(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    pods = ctx["pod_labels"]
    spec: JsonObject = {"podSelector": {"matchLabels": dict(pods)} if pods else {},
                            "policyTypes": list(ctx["policy_types"])}

    def selector(ns: str) -> JsonObject:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}

    rules: JsonArray
    if ctx["ingress"] is not None:
        rules = []
        for rule in ctx["ingress"]:
            one: JsonObject = {"from": [selector(p) for p in rule["peers"]] or None}
            if rule["ports"]:
                one["ports"] = [{"protocol": "TCP", "port": p} for p in rule["ports"]]
            rules.append(one)
        spec["ingress"] = rules
    if ctx["egress"] is not None:
        rules = []
        for rule in ctx["egress"]:
            one = {"ports": [{"protocol": proto, "port": port} for proto, port in rule["ports"]] or None}
            if rule["peers"]:
                one["to"] = [{"ipBlock": {"cidr": p["cidr"]}} if "cidr" in p else selector(p["namespace"])
                             for p in rule["peers"]]
            rules.append(one)
        spec["egress"] = rules
    return {**_head(api_version, kind, meta), "spec": spec}


def _probe(path: str, port: int, period: int, failures: int) -> JsonObject:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures}


def serving_runtime(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    port = ctx["port"]
    container = {
        "name": "kserve-container",
        "image": ctx["image"],
        "command": list(ctx["command"]),
        "args": list(ctx["args"]) or None,
        "env": [*_env(ctx["env_vars"]), {"name": "HOME", "value": "/tmp"}],
        "ports": [{"containerPort": port, "name": "http1", "protocol": "TCP"}],
        "startupProbe": _probe("/v1/models", port, 10, ctx["startup_failure_threshold"]),
        "readinessProbe": _probe("/v1/models", port, 10, 3),
        "livenessProbe": _probe("/health", port, 30, 5),
        "securityContext": _restricted(),
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }
    return {**_head(api_version, kind, meta), "spec": {
        "multiModel": False,
        "supportedModelFormats": [{"name": "vLLM", "autoSelect": True}],
        "annotations": {"prometheus.kserve.io/port": str(port), "prometheus.kserve.io/path": "/metrics"},
        "containers": [container],
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": ctx["shm_size"]}}],
    }}


def inference_service(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    predictor: JsonObject = {
        "minReplicas": ctx["replicas"],
        "maxReplicas": ctx["max_replicas"],
    }
    if ctx["scale_metric"]:
        predictor["scaleMetric"] = ctx["scale_metric"]
        predictor["scaleTarget"] = ctx["scale_target"]
    if ctx["external"]:
        predictor["autoScaling"] = _isvc_autoscaling(ctx["external"])
    predictor["serviceAccountName"] = ctx["service_account"]
    _scheduling(ctx, predictor)
    predictor["storageUris"] = [{"uri": s["uri"], "mountPath": s["mountPath"]} for s in ctx["storage_uris"]] or None
    predictor["model"] = {
        "modelFormat": {"name": "vLLM"},
        "runtime": ctx["runtime"],
        "args": list(ctx["args"]) or None,
        "resources": _resources(ctx),
    }
    return {**_head(api_version, kind, meta), "spec": {"predictor": predictor}}


def _isvc_autoscaling(ext: Mapping[str, Any]) -> JsonObject:
    external: JsonObject = {
        "metric": {"backend": "prometheus", "serverAddress": ext["server"], "query": ext["query"],
                   "namespace": ext["namespace"]},
        "target": {"type": "AverageValue", "averageValue": ext["target"]},
    }
    if ext["authentication"]:
        external["authenticationRef"] = {"authModes": "bearer", "authenticationRef": {"name": ext["authentication"]}}
    return {"metrics": [{"type": "External", "external": external}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": ext["scale_down_window_s"]}}}


def _llmisvc_scaling(sc: Mapping[str, Any]) -> JsonObject:
    trigger_meta: JsonObject = {"serverAddress": sc["server"], "query": sc["query"], "threshold": sc["target"],
                                "namespace": sc["namespace"]}
    trigger: JsonObject = {"type": "prometheus", "metricType": "AverageValue", "metadata": trigger_meta}
    if sc["authentication"]:
        trigger_meta["authModes"] = "bearer"
        trigger["authenticationRef"] = {"name": sc["authentication"]}
    return {"minReplicas": sc["min"], "maxReplicas": sc["max"], "keda": {
        "pollingInterval": sc["polling_s"], "triggers": [trigger],
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
            "stabilizationWindowSeconds": sc["scale_down_window_s"]}}}}}}


def llm_inference_service(api_version: str, kind: str, meta: MetaLike | None,
                          ctx: Mapping[str, Any]) -> JsonObject:
    model: JsonObject = {"uri": ctx["model_uri"], "name": ctx["model_name"]}
    if ctx["adapters"]:
        model["lora"] = {"maxRank": ctx["max_rank"], "maxAdapters": ctx["max_adapters"],
                         "maxCpuAdapters": ctx["max_cpu_adapters"],
                         "adapters": [{"name": a["name"], "uri": a["uri"]} for a in ctx["adapters"]]}
    template: JsonObject = {"serviceAccountName": ctx["service_account"]}
    _scheduling(ctx, template)
    template["containers"] = [{
        "name": "main",
        "image": ctx["image"],
        "args": list(ctx["args"]) or None,
        "env": _env(ctx["env_vars"]) or None,
        "resources": _resources(ctx),
        "securityContext": _restricted(),
    }]
    return {**_head(api_version, kind, meta), "spec": {
        "model": model,
        **({"scaling": _llmisvc_scaling(ctx["scaling"])} if ctx["scaling"] else {"replicas": ctx["replicas"]}),
        "parallelism": {"tensor": ctx["tensor"]},
        "template": template,
        "router": {"gateway": {}, "route": {}, "scheduler": {"config": {"inline": ctx["scheduler_config"]}}},
    }}


# ---------------------------------------------------------------- environment objects


def kustomization(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {"apiVersion": api_version, "kind": kind, "resources": list(ctx["resources"]) or None}


def application(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    head = _head(api_version, kind, meta)
    head_meta = head["metadata"]
    if isinstance(head_meta, dict):
        head_meta["finalizers"] = [APPLICATION_FINALIZER]
    sync: JsonObject = {}
    if ctx["auto_sync"]:
        sync["automated"] = {"prune": True, "selfHeal": True}
    sync["syncOptions"] = ["CreateNamespace=false", "ServerSideApply=true"]
    sync["retry"] = {"limit": 3, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "5m"}}
    return {**head, "spec": {
        "project": ctx["project"],
        "source": {"repoURL": ctx["repo_url"], "targetRevision": ctx["target_revision"], "path": ctx["app_path"]},
        "destination": {"server": ctx["server"]},
        "syncPolicy": sync,
    }}


# ---------------------------------------------------------------- conformance


def config_map(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta), "data": {ctx["key"]: _block(ctx["content"])}}


def health_config_map(api_version: str, kind: str, meta: MetaLike | None,
                      ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta), "data": {ctx["health_key"]: _block(ctx["lua"])}}


def conformance_service_account(api_version: str, kind: str, meta: MetaLike | None,
                                ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta), "automountServiceAccountToken": True}


def conformance_role(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta), "rules": [
        {"apiGroups": ["serving.kserve.io"], "resources": [ctx["resource"]], "verbs": ["get", "list", "watch"]}]}


def conformance_role_binding(api_version: str, kind: str, meta: MetaLike | None,
                             ctx: Mapping[str, Any]) -> JsonObject:
    return {**_head(api_version, kind, meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ctx["role"]},
            "subjects": [{"kind": "ServiceAccount", "name": ctx["sa_name"], "namespace": ctx["sa_namespace"]}]}


def _job_container(ctx: Mapping[str, Any], name: str, args: Sequence[str], gpu: bool) -> JsonObject:
    evidence = ctx["evidence"]
    # the variables kitchen conform reads in the Job (kitchen_gitops.settings)
    env: JsonArray = [{"name": settings.NODE_NAME.name,
                                  "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    if ctx["s3_secret"] and not gpu:
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": ctx["s3_secret"], "key": key}}}
                for key in (settings.ACCESS_KEY.name, settings.SECRET_KEY.name)]
        if ctx["s3_ca"]:
            env.append({"name": settings.CA_BUNDLE.name, "value": f"{ctx['s3_ca_dir']}/cabundle.crt"})
    if gpu:
        env += [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"}]
    out: JsonObject = {"name": name, "image": ctx["image"], "imagePullPolicy": "IfNotPresent",
                           "args": list(args) or None, "env": env}
    if evidence and not gpu:
        out["envFrom"] = [{"secretRef": {"name": evidence["s3_secret"]}}]
    mounts: JsonArray = [
        {"name": "expectations", "mountPath": ctx["expectations_dir"], "readOnly": True},
        {"name": "reports", "mountPath": ctx["reports_dir"]},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if ctx["s3_ca"] and not gpu:
        mounts.append({"name": "s3-ca", "mountPath": ctx["s3_ca_dir"], "readOnly": True})
    if evidence and not gpu:
        mounts.append({"name": "evidence-key", "mountPath": evidence["key_dir"], "readOnly": True})
        if evidence["ca_configmap"]:
            mounts.append({"name": "evidence-ca", "mountPath": evidence["ca_dir"], "readOnly": True})
    out.update({
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    })
    return out


def conformance_job(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    evidence = ctx["evidence"]
    pod: JsonObject = {
        "serviceAccountName": ctx["service_account"],
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    _scheduling(ctx, pod)
    pod["containers"] = [_job_container(ctx, "serving", ctx["serving_args"], False),
                         _job_container(ctx, "gpu", ctx["gpu_args"], True)]
    volumes: JsonArray = [
        {"name": "expectations", "configMap": {"name": ctx["configmap"]}},
        {"name": "reports", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if ctx["s3_ca"]:
        volumes.append({"name": "s3-ca", "configMap": {"name": ctx["s3_ca"]}})
    if evidence:
        volumes.append({"name": "evidence-key", "secret": {
            "secretName": evidence["key_secret"],
            "items": [{"key": evidence["key_file"], "path": evidence["key_file"]}]}})
        if evidence["ca_configmap"]:
            volumes.append({"name": "evidence-ca", "configMap": {"name": evidence["ca_configmap"]}})
    pod["volumes"] = volumes
    return {**_head(api_version, kind, meta), "spec": {
        "backoffLimit": 0,
        "activeDeadlineSeconds": ctx["active_deadline_s"],
        "template": {"metadata": {"labels": _mapping(ctx["pod_labels"])}, "spec": pod},
    }}


# ---------------------------------------------------------------- observability


def pod_monitor(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    port = ctx["port"]
    endpoint: JsonObject = ({"portNumber": port} if isinstance(port, int | float) and not isinstance(port, bool)
                                else {"port": port})
    endpoint.update({"path": "/metrics", "scheme": ctx["scheme"]})
    if ctx["scheme"] == "https":
        endpoint["tlsConfig"] = {"insecureSkipVerify": True}
    label = str(ctx["isvc_label"]).replace(".", "_").replace("/", "_").replace("-", "_")
    endpoint["interval"] = ctx["interval"]
    endpoint["relabelings"] = [{"action": "replace", "sourceLabels": [f"__meta_kubernetes_pod_label_{label}"],
                                "targetLabel": "inferenceservice"}]
    return {**_head(api_version, kind, meta), "spec": {
        "selector": {"matchLabels": _mapping(ctx["selector"])},
        "podMetricsEndpoints": [endpoint],
    }}


def _rule(rule: Mapping[str, Any]) -> JsonObject:
    out: JsonObject
    if "record" in rule:
        out = {"record": rule["record"], "expr": rule["expr"]}
    else:
        out = {"alert": rule["alert"], "expr": rule["expr"], "for": rule["for"]}
    for part in ("labels", "annotations"):
        if part in rule:
            out[part] = _mapping(rule[part].items())
    return out


def prometheus_rule(api_version: str, kind: str, meta: MetaLike | None, ctx: Mapping[str, Any]) -> JsonObject:
    groups: JsonArray = [{"name": g["name"], "interval": g["interval"], "rules": [_rule(r) for r in g["rules"]] or None}
                         for g in ctx["groups"]]
    return {**_head(api_version, kind, meta), "spec": {"groups": groups or None}}


BUILDERS: dict[str, Builder] = {
    "namespace.yaml.j2": namespace,
    "resourcequota.yaml.j2": resource_quota,
    "rolebinding.yaml.j2": role_binding,
    "serviceaccount.yaml.j2": service_account,
    "networkpolicy.yaml.j2": network_policy,
    "servingruntime.yaml.j2": serving_runtime,
    "inferenceservice.yaml.j2": inference_service,
    "llminferenceservice.yaml.j2": llm_inference_service,
    "kustomization.yaml.j2": kustomization,
    "application.yaml.j2": application,
    "conformance-configmap.yaml.j2": config_map,
    "dashboard-configmap.yaml.j2": config_map,
    "argocd-cm-health.yaml.j2": health_config_map,
    "conformance-serviceaccount.yaml.j2": conformance_service_account,
    "conformance-role.yaml.j2": conformance_role,
    "conformance-rolebinding.yaml.j2": conformance_role_binding,
    "conformance-job.yaml.j2": conformance_job,
    "podmonitor.yaml.j2": pod_monitor,
    "prometheusrule.yaml.j2": prometheus_rule,
}


def intended_object(template: str, api_version: str, kind: str, meta: MetaLike | None,
                    ctx: Mapping[str, Any]) -> JsonObject:
    """The object ``template`` is meant to render from ``ctx``."""
    return BUILDERS[template](api_version, kind, meta, ctx)
