"""Autoscaling in the catalog: the fields, how a tenant's override meets its environment's
default, and the query the autoscaler reads.

An environment's ``serving.autoscaling`` is the default of every tenant that runs there
without a fixed ``replicas``; a tenant's ``environments.<env>.autoscaling`` overrides it
field by field.  What is decided here is rendered by :mod:`kitchen_gitops.render` the way
KServe reads it (KEDA in RawDeployment and for an LLMInferenceService, Knative's
concurrency in Serverless mode) and proven at full scale by the plan and the gate (every
GPU count at ``max`` replicas).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .findings import Finding, Location, Severity
from .rules import CATALOG_AUTOSCALING
from .vllm_metrics import KV_CACHE, RUNNING, WAITING

if TYPE_CHECKING:
    from .catalog_kinds import Tenant, TenantEnvironment
    from .environment import Environment

RULE = CATALOG_AUTOSCALING
MAX_REPLICAS = 1_000_000  # as model.MAX_COUNT: far above any cluster, far below overflow

SignalName = Literal["requests_waiting", "requests_running", "kv_cache_usage"]


@dataclass(frozen=True)
class Signal:
    metric: str  # the vLLM gauge, by the name the recording rules read (vllm_metrics)
    per_replica: str  # what the target means
    most: float  # the largest target that means anything


SIGNALS: dict[str, Signal] = {
    "requests_waiting": Signal(WAITING, "requests waiting in vLLM's queue per replica", 1e6),
    "requests_running": Signal(RUNNING, "requests running per replica", 1e6),
    "kv_cache_usage": Signal(KV_CACHE, "share of the KV cache in use per replica (0-1)", 1.0),
}
# Where no block names a signal: add a replica while more than two requests per replica
# wait (vLLM queues only when its batch or its KV cache is full).
DEFAULT_SIGNAL, DEFAULT_TARGET = "requests_waiting", 2.0
DEFAULT_WINDOW_S = 120
DEFAULT_SCALE_DOWN_WINDOW_S = 300


class _Strict(BaseModel):
    # the catalog's strictness (model.Strict): no bool read as a number, no unknown field
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Autoscaling(_Strict):
    """A tenant's autoscaling in one environment; each field given overrides the environment's."""

    min: int | None = Field(default=None, ge=1, le=MAX_REPLICAS,
                            description="replicas always running (default: serving.replicas)")
    max: int | None = Field(default=None, ge=1, le=MAX_REPLICAS,
                            description="replicas at full scale: what the GPU plan and quotas must hold")
    signal: SignalName | None = None
    target: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False,
                                 description="the signal's value per replica the autoscaler keeps")
    window_s: int | None = Field(default=None, ge=30, le=3600,
                                 description="the query averages the signal over this window")
    scale_down_window_s: int | None = Field(default=None, ge=0, le=3600,
                                            description="the autoscaler's scale-down stabilisation window")

    @model_validator(mode="after")
    def _coherent(self) -> Autoscaling:
        if (self.signal is None) != (self.target is None):
            raise ValueError("signal and target are given together (a target means something only for its signal)")
        if self.signal is not None and self.target is not None and self.target > SIGNALS[self.signal].most:
            raise ValueError(f"target {self.target:g} exceeds what {self.signal} can reach "
                             f"({SIGNALS[self.signal].most:g})")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def _prometheus_url(value: str) -> str:
    parts = urlsplit(value)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password
            or parts.query or parts.fragment or len(value) > 512
            or any(c.isspace() or ord(c) < 32 or c in "\"'\\" for c in value)):
        raise ValueError("an http(s) URL of the Prometheus API without credentials, query or fragment")
    return value


class EnvironmentAutoscaling(Autoscaling):
    """An environment's autoscaling: where the autoscaler queries, and every tenant's default."""

    prometheus_url: str | None = Field(
        default=None, description="the Prometheus (or Thanos querier) KEDA queries: serverAddress")
    authentication: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?$",
        description="a TriggerAuthentication in each tenant namespace (bearer token of the querier)")

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _prometheus_url(value)


@dataclass(frozen=True)
class Scaling:
    """One tenant's autoscaling in one environment, every field decided."""

    min: int
    max: int
    signal: str
    target: float
    window_s: int
    scale_down_window_s: int
    prometheus_url: str
    authentication: str | None
    max_from: str  # "Tenant" or "Environment": the file whose `max` line sets full scale
    max_field: str  # the dotted path of that line

    @property
    def metric(self) -> str:
        return SIGNALS[self.signal].metric

    def query(self, namespace: str, name: str) -> str:
        """The scaling query: the signal summed over the InferenceService's replicas, each
        averaged over the window (the autoscaler divides by the replicas: a target per replica).
        ``namespace`` and ``name`` are DNS labels (validated): nothing to escape."""
        selector = f'{{namespace="{namespace}", inferenceservice="{name}"}}'
        return f"sum(avg_over_time({self.metric}{selector}[{self.window_s}s]))"

    def as_dict(self) -> dict[str, object]:
        return {"min": self.min, "max": self.max, "signal": self.signal, "metric": self.metric,
                "target": self.target, "window_s": self.window_s,
                "scale_down_window_s": self.scale_down_window_s, "max_from": self.max_from,
                "max_field": self.max_field}


def _field(name: str, tenant: Autoscaling | None, default: Autoscaling | None) -> Any:
    for block in (tenant, default):
        value = getattr(block, name, None) if block is not None else None
        if value is not None:
            return value
    return None


def _first(value: Any, fallback: int) -> int:
    return fallback if value is None else int(value)


def resolve(env_name: str, default: EnvironmentAutoscaling | None, tenant: Autoscaling | None,
            tenant_replicas: int | None, serving_replicas: int) -> Scaling | None:
    """A tenant's autoscaling in ``env_name`` (None: fixed replicas).  A tenant with a fixed
    ``replicas`` and no block of its own keeps them; catalog findings refuse what cannot
    be resolved (:func:`catalog_findings`), so this never fails on a validated catalog."""
    if tenant is None and (tenant_replicas is not None or default is None or default.max is None):
        return None
    top = _field("max", tenant, default)
    if top is None:
        return None
    signal_block = tenant if tenant is not None and tenant.signal is not None else default
    signal = signal_block.signal if signal_block is not None and signal_block.signal else DEFAULT_SIGNAL
    target = signal_block.target if signal_block is not None and signal_block.target else DEFAULT_TARGET
    from_tenant = tenant is not None and tenant.max is not None
    return Scaling(
        min=_field("min", tenant, default) or max(1, serving_replicas),
        max=top, signal=signal, target=float(target),
        window_s=_field("window_s", tenant, default) or DEFAULT_WINDOW_S,
        scale_down_window_s=_first(_field("scale_down_window_s", tenant, default), DEFAULT_SCALE_DOWN_WINDOW_S),
        prometheus_url=(default.prometheus_url or "") if default is not None else "",
        authentication=default.authentication if default is not None else None,
        max_from="Tenant" if from_tenant else "Environment",
        max_field=f"environments.{env_name}.autoscaling.max" if from_tenant else "serving.autoscaling.max")


Locate = Callable[..., Location]


def catalog_findings(tenants: Mapping[str, Tenant], environments: Mapping[str, Environment],
                     locate: Locate) -> list[Finding]:
    """What a tenant's autoscaling and its environment's cannot mean together."""
    out: list[Finding] = []
    for tname in sorted(tenants):
        for env_name, tenv in sorted(tenants[tname].environments.items()):
            env = environments.get(env_name)
            if env is not None:
                out += _tenant_findings(tname, tenv, env, locate)
    return out


def _tenant_findings(tname: str, tenv: TenantEnvironment, env: Environment, locate: Locate) -> list[Finding]:
    own: Autoscaling | None = tenv.autoscaling
    default: EnvironmentAutoscaling | None = env.serving.autoscaling
    here = ("environments", env.name)

    def finding(message: str, at: Location, expected: str) -> Finding:
        return Finding(RULE, Severity.ERROR, message, at, expected=expected,
                       environment=env.name, subject=f"Tenant/{tname}")

    if own is not None and tenv.replicas is not None:
        return [finding(f"tenant {tname} sets both replicas and autoscaling in {env.name}",
                        locate("Tenant", tname, (*here, "replicas")),
                        "either a fixed replicas or an autoscaling block")]
    scaling = resolve(env.name, default, own, tenv.replicas, env.serving.replicas)
    if scaling is None:
        if own is not None:
            return [finding(f"tenant {tname} autoscales in {env.name} without a max (neither its block nor "
                            f"{env.name}'s serving.autoscaling sets one)",
                            locate("Tenant", tname, (*here, "autoscaling")),
                            "autoscaling.max: the replicas at full scale")]
        return []
    out: list[Finding] = []
    at_own = locate("Tenant", tname, (*here, "autoscaling")) if own is not None else \
        locate("Environment", env.name, ("serving", "autoscaling"))
    if scaling.min > scaling.max:
        kind, key = ("Tenant", tname) if scaling.max_from == "Tenant" else ("Environment", env.name)
        out.append(finding(f"tenant {tname} in {env.name} scales between min {scaling.min} and max "
                           f"{scaling.max}", locate(kind, key, tuple(scaling.max_field.split("."))),
                           f"max at least min ({scaling.min})"))
    if env.serving.api == "InferenceService" and env.serving.deployment_mode == "Serverless":
        if scaling.signal != "requests_running" or scaling.target != int(scaling.target):
            out.append(finding(
                f"tenant {tname} scales on {scaling.signal} (target {scaling.target:g}) in {env.name}, whose "
                "Serverless InferenceServices Knative scales on concurrency only", at_own,
                "signal: requests_running with a whole-number target (Knative's concurrency per replica)"))
        return out
    if not scaling.prometheus_url:
        out.append(finding(f"tenant {tname} autoscales in {env.name}, which names no Prometheus for KEDA",
                           locate("Environment", env.name, ("serving",)),
                           "serving.autoscaling.prometheus_url: the Prometheus API KEDA queries"))
    if not env.observability.enabled:
        out.append(finding(f"tenant {tname} autoscales on {scaling.metric} in {env.name}, where observability "
                           "is off: no PodMonitor scrapes it",
                           locate("Environment", env.name, ("observability", "enabled")),
                           "observability on where a tenant autoscales"))
    elif scaling.window_s < 2 * env.observability.scrape_interval_s:
        out.append(finding(f"tenant {tname} averages {scaling.metric} over {scaling.window_s}s in {env.name}, "
                           f"less than two scrapes ({env.observability.scrape_interval_s}s apart)", at_own,
                           f"window_s at least {2 * env.observability.scrape_interval_s}"))
    return out
