"""Readiness: is each InferenceService (or LLMInferenceService) Ready, as KServe reports
it, before a deadline?

``isvc_health`` reads an InferenceService's ``status`` the way the Argo CD health check in
``health.lua`` does (the two are tested on the same real samples): Ready is Healthy; a
failed model load (``modelStatus``) or a condition that failed for good is Degraded; a
stopped service is Suspended; anything else is Progressing.  ``wait_ready`` polls the
cluster through the official ``kubernetes`` client (custom objects API, in-cluster
configuration) until every service is Healthy or the deadline passes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError
from ..findings import Severity
from .expectations import ServiceExpectation
from .results import CheckRecord, Status, finding, isvc_ref

HEALTHY, PROGRESSING, DEGRADED, SUSPENDED = "Healthy", "Progressing", "Degraded", "Suspended"

# modelStatus values KServe sets when the predictor cannot load or serve the model
# (a crash-looping container ends up as BlockedByFailedLoad / FailedToLoad).
FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})
FAILED_MODEL_STATES = frozenset({"FailedToLoad"})
# condition reasons that do not clear by waiting; the last three are an LLMInferenceService
# whose spec and KServe's LLMInferenceServiceConfig presets do not combine (config_merge.go)
FAILED_REASONS = frozenset({"RevisionFailed", "ProgressDeadlineExceeded", "ContainerMissing",
                            "ReplicaFailure", "FailedCreate", "InvalidSpec",
                            "CombineBaseError", "ConfigNotFound", "InvalidRenderedConfig"})
# the resource each serving API is read through: group, version, plural
RESOURCES = {"InferenceService": ("serving.kserve.io", "v1beta1", "inferenceservices"),
             "LLMInferenceService": ("serving.kserve.io", "v1alpha2", "llminferenceservices")}


@dataclass(frozen=True)
class Health:
    status: str
    message: str

    @property
    def ready(self) -> bool:
        return self.status == HEALTHY


def _condition_text(c: Mapping[str, Any]) -> str:
    text = f"{c.get('type', '?')} is {c.get('status', '?')}"
    if c.get("reason"):
        text += f" ({c['reason']})"
    if c.get("message"):
        text += f": {c['message']}"
    return text


def isvc_health(obj: Mapping[str, Any]) -> Health:
    """The health of one InferenceService object (a dict as the API returns it)."""
    status = obj.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    if not conditions:
        return Health(PROGRESSING, "waiting for KServe to report status")
    by_type = {str(c.get("type")): c for c in conditions}
    stopped = by_type.get("Stopped")
    if stopped is not None and stopped.get("status") == "True":
        return Health(SUSPENDED, "the InferenceService is stopped")
    main = by_type.get("MainWorkloadReady")  # an LLMInferenceService's stopped workload
    if main is not None and main.get("status") == "False" and main.get("reason") == "Stopped":
        return Health(SUSPENDED, "the LLMInferenceService is stopped")

    model = status.get("modelStatus") or {}
    failure = model.get("lastFailureInfo") or {}
    target = (model.get("states") or {}).get("targetModelState", "")
    transition = model.get("transitionStatus", "")
    if transition in FAILED_TRANSITIONS or target in FAILED_MODEL_STATES or failure:
        what = [f"model {transition or target or 'failed'}"]
        if failure:
            text = f"{failure.get('reason', 'failure')}: {failure.get('message', '')}"
            what.append(re.sub(r":\s*$", "", text))
        failed = [c for c in conditions if c.get("status") == "False" and c.get("type") != "Stopped"]
        what += [_condition_text(c) for c in failed]
        return Health(DEGRADED, "; ".join(what))

    ready = by_type.get("Ready")
    if ready is not None and ready.get("status") == "True":
        return Health(HEALTHY, "Ready")
    failed = [c for c in conditions
              if c.get("status") == "False" and c.get("reason") in FAILED_REASONS]
    if failed:
        return Health(DEGRADED, "; ".join(_condition_text(c) for c in failed))
    pending = [c for c in conditions if c.get("status") != "True" and c.get("type") != "Stopped"]
    return Health(PROGRESSING, "; ".join(_condition_text(c) for c in pending) or "not Ready yet")


def isvc_url(obj: Mapping[str, Any]) -> str:
    """The URL KServe reports: ``status.address.url`` (an InferenceService's cluster-internal
    address), else ``status.url`` or the first of ``status.addresses`` (an LLMInferenceService's
    gateway route, through the llm-d scheduler); "" when there is none yet."""
    status = obj.get("status") or {}
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, Mapping)]
    for url in ((status.get("address") or {}).get("url"), status.get("url"),
                addresses[0].get("url") if addresses else None):
        if url:
            return str(url)
    return ""


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


class IsvcSource(Protocol):
    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The InferenceService object; raises NotFound or Forbidden."""
        ...


class LlmIsvcSource(Protocol):
    def get_kind(self, kind: str, namespace: str, name: str) -> Mapping[str, Any]:
        """The object of a serving API (``RESOURCES``); raises NotFound or Forbidden."""
        ...


def _get(source: IsvcSource, svc: ServiceExpectation) -> Mapping[str, Any]:
    if svc.kind in (None, "InferenceService"):
        return source.get(svc.namespace, svc.name)
    if not hasattr(source, "get_kind"):
        raise Forbidden(f"this source reads no {svc.kind}")
    kinded: LlmIsvcSource = source  # type: ignore[assignment]
    return kinded.get_kind(svc.kind, svc.namespace, svc.name)


class KubeIsvcSource:
    """InferenceServices from the cluster, through the official client."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        try:
            from kubernetes import client, config
        except ImportError as exc:  # pragma: no cover - a broken installation
            raise ConfigError(f"the kubernetes client is not installed: {exc}") from None
        try:
            if kubeconfig:
                config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            else:
                try:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    config.load_kube_config()  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ConfigError(
                f"no Kubernetes configuration (in-cluster service account or kubeconfig): {exc}"
            ) from None
        self._api = client.CustomObjectsApi()
        self._exc = client.exceptions.ApiException

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        return self.get_kind("InferenceService", namespace, name)

    def get_kind(self, kind: str, namespace: str, name: str) -> Mapping[str, Any]:
        group, version, plural = RESOURCES[kind]
        try:
            obj: Any = self._api.get_namespaced_custom_object(group, version, namespace, plural, name)
            return obj if isinstance(obj, Mapping) else {}
        except self._exc as exc:
            if exc.status == 404:
                raise NotFound(f"{namespace}/{name}") from None
            if exc.status in (401, 403):
                raise Forbidden(f"{exc.status} {exc.reason}") from None
            raise


@dataclass
class Readiness:
    record: CheckRecord
    health: Health
    url: str


def wait_ready(source: IsvcSource, services: Sequence[ServiceExpectation], environment: str, *,
               timeout_s: float, poll_s: float = 5.0, degraded_grace_s: float = 60.0,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Readiness]:
    """Poll until every service is Healthy; a service Degraded for ``degraded_grace_s`` or
    still not Healthy at the deadline fails.  Keyed by ``namespace/name``."""
    start = clock()
    deadline = start + timeout_s
    wait = _Wait(environment, timeout_s, degraded_grace_s, clock, start, {s.key: s for s in services})
    while wait.pending:
        now = clock()
        for svc in list(wait.pending.values()):
            wait.poll(source, svc, now)
        if not wait.pending:
            break
        if clock() >= deadline:
            wait.expire()
            break
        sleep(min(poll_s, max(deadline - clock(), 0.0)))
    return wait.done


@dataclass
class _Wait:
    """One wait for readiness: the services still pending, what each last showed, and the
    readiness of those settled."""

    environment: str
    timeout_s: float
    degraded_grace_s: float
    clock: Callable[[], float]
    start: float
    pending: dict[str, ServiceExpectation]
    last: dict[str, Health] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    degraded_since: dict[str, float] = field(default_factory=dict)
    done: dict[str, Readiness] = field(default_factory=dict)

    def poll(self, source: IsvcSource, svc: ServiceExpectation, now: float) -> None:
        """Read one service once: settled when Healthy, refused, or Degraded past the grace."""
        key = svc.key
        try:
            obj = _get(source, svc)
        except NotFound:
            self.last[key] = Health("NotFound", "no such InferenceService")
            return
        except Forbidden as exc:
            self.settle(svc, Health("Forbidden", f"the API refused to read it: {exc}"),
                        Status.ERROR, could_not_run=True)
            return
        except Exception as exc:  # the API server itself: keep trying until the deadline
            self.last[key] = Health("Unreachable", f"{type(exc).__name__}: {exc}")
            return
        health = isvc_health(obj)
        self.last[key] = health
        self.urls[key] = isvc_url(obj)
        if health.ready:
            self.settle(svc, health, Status.PASS)
        elif health.status == DEGRADED:
            since = self.degraded_since.setdefault(key, now)
            if now - since >= self.degraded_grace_s:
                self.settle(svc, health, Status.FAIL)
        else:
            self.degraded_since.pop(key, None)

    def expire(self) -> None:
        """The deadline: every service still pending fails with what it last showed."""
        for svc in list(self.pending.values()):
            health = self.last.get(svc.key, Health(PROGRESSING, "no answer"))
            self.settle(svc, health, Status.FAIL)

    def settle(self, svc: ServiceExpectation, health: Health, status: Status, *,
               could_not_run: bool = False, severity: Severity = Severity.ERROR) -> None:
        """Record the service's readiness and stop polling it."""
        waited = round(self.clock() - self.start, 1)
        res = CheckRecord("readiness", svc.key, details={"health": health.status,
                                                         "message": health.message,
                                                         "waited_s": waited})
        res.duration_s = waited
        if status is not Status.PASS:
            f = finding("readiness", f"InferenceService {svc.key} is {health.status}: "
                        f"{health.message}", location=svc.source.location(),
                        resource=isvc_ref(svc, self.environment),
                        expected=f"Ready within {self.timeout_s:g}s", actual=health.status,
                        severity=severity)
            if could_not_run:
                res.could_not_run(f)
            else:
                res.add(f)
        self.done[svc.key] = Readiness(res, health, self.urls.get(svc.key, ""))
        self.pending.pop(svc.key, None)
