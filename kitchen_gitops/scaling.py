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

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .vllm_metrics import KV_CACHE, RUNNING, WAITING

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


def prometheus_url(value: str) -> str:
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
        return None if value is None else prometheus_url(value)


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
    be resolved (:func:`kitchen_gitops.crossref.autoscaling_findings`), so this never fails on a validated catalog."""
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
