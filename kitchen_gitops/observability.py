"""Observability from the catalog: scrape targets, SLO rules and alerts, dashboards.

For each environment whose ``observability.enabled`` is on (the default), render:

- per served InferenceService a ``PodMonitor`` for vLLM's ``/metrics`` (each replica's pod
  scraped directly: see docs/observability.md for why not a ServiceMonitor), and per
  tenant namespace a NetworkPolicy admitting only the monitoring namespace, only to
  vLLM's port;
- per tenant namespace a ``PrometheusRule``: recording rules for the latency percentiles,
  rates, ratios and saturation gauges of each InferenceService, an alert for each SLO of
  the environment, multi-window multi-burn-rate alerts on the goodput objective,
  saturation alerts and a scrape-target alert.  One object per namespace and not one per
  environment because OpenShift user-workload monitoring confines every rule of a
  PrometheusRule to the series of its own namespace;
- per environment a Grafana dashboard (built with Grafana's foundation SDK) in a
  ConfigMap carrying the Grafana sidecar's label: a row per tenant, panels per
  InferenceService.

Every threshold comes from the catalog (``slo:`` and ``observability:`` of the
environment); every alert links to its runbook section, generated from ``ALERTS`` by
:func:`runbook_markdown` into docs/operations.md.  The vLLM metric names are those
vLLM 0.32 exports (the tests check each against a live server's ``/metrics``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .json_types import pretty_json
from .manifest_reader import substitute
from .model import Environment
from .plan import LLMISVC_PORT, PREDICTOR_PORT, ServicePlan, TenantPlan
from .render import DOMAIN, LLMISVC_POD_LABELS, WAVE_RBAC, WAVE_RUNTIME, EnvironmentRenderer, object_meta
from .render_memo import derived
from .vllm_metrics import (
    E2E,
    GENERATION_TOKENS,
    HTTP_REQUESTS,
    ITL,
    KV_CACHE,
    LORA_INFO,
    QUEUE,
    RUNNING,
    SUCCESS,
    TPOT,
    TTFT,
    VLLM_METRICS,  # noqa: F401  the names the tests check against a live server
    WAITING,
    WAITING_BY_REASON,
)

# GPU metrics of NVIDIA's DCGM exporter: shown when present, not exported by vLLM
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
EXTERNAL_METRICS = (DCGM_GPU_UTIL, DCGM_FB_USED, "up")

# vLLM 0.32's histogram buckets (seconds), as its /metrics lists them: a latency objective
# is counted against a bucket boundary, so the goodput SLI is exact only on one of these
BUCKETS: dict[str, tuple[float, ...]] = {
    TTFT: (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
           20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
    TPOT: (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
           40.0, 80.0),
    E2E: (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
          480.0, 960.0, 1920.0, 7680.0),
}

# ---------------------------------------------------------------- names

BY = "namespace, inferenceservice"
INFERENCE_HANDLERS = "/v1/completions|/v1/chat/completions"
PORT_NAMES = {"RawDeployment": "http1", "Serverless": "user-port"}  # Knative renames the user port
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
LLMISVC_NAME_LABEL = "app.kubernetes.io/name"  # KServe's label naming an LLMInferenceService's pods
DASHBOARD_LABEL = ("grafana_dashboard", "1")  # the Grafana sidecar's default label
RECORDING_GROUP = "kitchen-vllm.recording"
ALERTING_GROUP = "kitchen-vllm.alerts"
SLO_WINDOWS = ("5m", "30m", "1h", "6h")
# The SRE workbook's multiwindow, multi-burn-rate alerts for a 30-day objective:
# (name, long window, short window, burn rate, for)
BURN_RATES = (("KitchenGoodputBudgetBurnFast", "1h", "5m", 14.4, "2m"),
              ("KitchenGoodputBudgetBurnSlow", "6h", "30m", 6.0, "15m"))


def rule_name(metric: str, suffix: str) -> str:
    """``vllm:time_to_first_token_seconds`` + ``p95_5m`` → ``kitchen:vllm_time_to_first_token_seconds:p95_5m``."""
    return f"kitchen:{metric.replace(':', '_')}:{suffix}"


# the recording rules `kitchen conform serving` compares its own measurements with
CONFORMANCE_RULES = {
    "ttft": (rule_name(TTFT, "p50_5m"), rule_name(TTFT, "p95_5m")),
    "itl": (rule_name(ITL, "p50_5m"), rule_name(ITL, "p95_5m")),
    "e2e": (rule_name(E2E, "p50_5m"), rule_name(E2E, "p95_5m")),
}
REQUESTS_RATE = "kitchen:vllm_requests:rate5m"
ERROR_RATIO = "kitchen:vllm_request_errors:ratio_rate5m"
OUTPUT_TOKENS_RATE = "kitchen:vllm_generation_tokens:rate5m"
KV_CACHE_MAX = "kitchen:vllm_kv_cache_usage:max"
RUNNING_SUM = "kitchen:vllm_requests_running:sum"
WAITING_SUM = "kitchen:vllm_requests_waiting:sum"
WAITING_LORA_SUM = "kitchen:vllm_requests_waiting_for_lora:sum"
LORA_LATEST = "kitchen:vllm_lora_requests_info:latest"
LORA_RUNNING = "kitchen:vllm_lora_adapters_running:max"
LORA_WAITING = "kitchen:vllm_lora_adapters_waiting:max"
SLO_BAD = "kitchen:vllm_slo_bad_requests:ratio_rate"  # + window, one series per criterion
GOODPUT_BAD = "kitchen:vllm_goodput_bad:ratio_rate"  # + window


def fmt(value: float) -> str:
    """A number for PromQL and for people: ``0.5``, ``800``, ``0.05`` (not 0.05000000000000004),
    ``1e+305``; twelve significant digits, far finer than any objective."""
    value = float(f"{value:.12g}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def bucket(metric: str, seconds: float) -> float:
    """The bucket boundary a latency objective is counted against: the largest at or below
    it (a request between the boundary and the objective counts as bad), else the smallest."""
    below = [b for b in BUCKETS[metric] if b <= seconds]
    return below[-1] if below else BUCKETS[metric][0]


def le_matcher(value: float) -> str:
    """``le`` as Prometheus 2 (``1.0``, as vLLM writes it) and 3 (``1``, normalised) store it."""
    if value == int(value):
        return f'le=~"{int(value)}|{int(value)}.0"'
    return f'le="{value!r}"'


# ---------------------------------------------------------------- alerts and their runbooks


@dataclass(frozen=True)
class AlertDoc:
    name: str
    severity: str
    slo: str | None  # the `slo:` field whose value is the alert's threshold
    summary: str
    meaning: str
    first_checks: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return self.name.lower()


ALERTS: tuple[AlertDoc, ...] = (
    AlertDoc("KitchenTTFTAboveSLO", "warning", "ttft_p95_ms",
             "Time to first token p95 above the environment's SLO",
             "Over the last 5 minutes, 95 % of requests got their first token later than "
             "`slo.ttft_p95_ms`. Prefill is slow or requests queue before it.",
             ("Queue panel: are requests waiting? Then the replica is saturated (see "
              "KitchenRequestsWaiting) — add replicas or lower `max_num_seqs` contention.",
              "Queue time p95 high but few requests waiting: long prompts; check prompt "
              "tokens per request and `--enable-chunked-prefill`.",
              "One tenant's request rate jumped? Compare the Throughput panels of the "
              "environment's InferenceServices: a flooding tenant, not a slow GPU.",
              "GPU panel: utilisation near 100 % with little traffic points at the GPU "
              "(throttling, a wrong product): run `kitchen conform gpu`.")),
    AlertDoc("KitchenTPOTAboveSLO", "warning", "tpot_p95_ms",
             "Time per output token p95 above the environment's SLO",
             "The p95 of the per-request time per output token (vLLM's "
             "`vllm:request_time_per_output_token_seconds`, the figure `kitchen conform` "
             "measures) exceeds `slo.tpot_p95_ms`: decoding is slow.",
             ("Running requests near `max_num_seqs`? Large decode batches slow every token: "
              "add replicas.",
              "KV cache near full (KitchenKVCacheNearFull) causes preemptions and recomputation.",
              "Many different adapters in one batch (LoRA panel): each extra adapter adds "
              "work to every decode step; spread flavors over InferenceServices.",
              "GPU utilisation low while TPOT is high: CPU-bound scheduling or a "
              "tensor-parallel interconnect problem.")),
    AlertDoc("KitchenE2ELatencyAboveSLO", "warning", "e2e_p95_ms",
             "End-to-end request latency p95 above the environment's SLO",
             "95 % of requests took longer than `slo.e2e_p95_ms` from arrival to last token.",
             ("Which part grew: TTFT (prefill, queue) or TPOT (decode)? Follow that alert's "
              "runbook.",
              "Output length grew (clients asking for more tokens) while latency per token "
              "is fine: the SLO may need the product owner, not the platform.")),
    AlertDoc("KitchenOutputThroughputBelowSLO", "warning", "min_output_tokens_per_s",
             "Output tokens per second below the SLO while requests wait",
             "The InferenceService generates fewer output tokens per second than "
             "`slo.min_output_tokens_per_s` although requests are waiting: it is saturated "
             "below its promised capacity. (Without waiting requests a low rate is only low "
             "demand and does not alert.)",
             ("KV cache usage and waiting-for-LoRA requests: which limit is reached first?",
              "Compare with the conformance report's throughput figure for this "
              "InferenceService: a drop since the last sync points at the GPUs "
              "(`kitchen conform gpu`).",
              "Add replicas, or move a busy tenant to its own InferenceService.")),
    AlertDoc("KitchenGoodputBudgetBurnFast", "critical", "goodput_min_ratio",
             "Goodput error budget burning fast (1 h and 5 min windows)",
             "The share of requests that miss an objective (TTFT, TPOT, end-to-end latency "
             "or a server error) is at least 14.4 times the budget `1 - slo.goodput_min_ratio` "
             "over both the last hour and the last 5 minutes: at this rate 2 % of a 30-day "
             "budget is gone in an hour.",
             ("Which criterion is bad: the `kitchen:vllm_slo_bad_requests:ratio_rate5m` series "
              "carry a `criterion` label (ttft, tpot, e2e, error).",
              "A recent sync? `kitchen history --env <env>` shows what entered the environment "
              "when; `kitchen rollback --env <env>` returns it to its last proven state.",
              "Errors: the vLLM container log, and `kitchen conform serving` for each flavor.")),
    AlertDoc("KitchenGoodputBudgetBurnSlow", "critical", "goodput_min_ratio",
             "Goodput error budget burning (6 h and 30 min windows)",
             "The bad-request share is at least 6 times the budget over the last 6 hours and "
             "the last 30 minutes: 5 % of a 30-day budget is gone in 6 hours.",
             ("Same checks as KitchenGoodputBudgetBurnFast; a slow burn is usually capacity: "
              "look at the saturation panels over the last day.",)),
    AlertDoc("KitchenKVCacheNearFull", "warning", None,
             "KV cache near full",
             "vLLM's KV-cache usage stayed above `observability.saturation.kv_cache_usage_max`: "
             "new requests wait for blocks and running ones are preempted.",
             ("Long contexts? Compare `--max-model-len` with the prompts; `kitchen plan` shows "
              "how many full-length sequences the KV cache holds.",
              "Raise `gpu_memory_utilization`, use more GPUs per replica (tensor parallel) or "
              "more replicas.")),
    AlertDoc("KitchenRequestsWaiting", "warning", None,
             "Requests waiting in the vLLM queue",
             "More requests than `observability.saturation.requests_waiting_max` waited in "
             "vLLM's queue throughout the alert's `for`: the replicas are saturated.",
             ("One tenant flooding? Requests per second by InferenceService on the dashboard.",
              "Waiting for a LoRA slot rather than capacity? See KitchenLoraAdaptersWaitingForSlot.",
              "Add replicas (`serving.replicas`) or GPUs.")),
    AlertDoc("KitchenLoraAdaptersWaitingForSlot", "warning", None,
             "Requests deferred for a LoRA slot: raise max_loras",
             "Requests wait because every LoRA slot of the batch is taken by other adapters "
             "(vLLM's `num_requests_waiting_by_reason{reason=\"deferred\"}`): the "
             "InferenceService serves more busy flavors at once than `--max-loras` allows.",
             ("The LoRA panel lists the running and waiting adapters.",
              "Raise `serving.vllm.max_loras` in the environment (memory: `kitchen plan` "
              "accounts for every slot), or split the tenant's flavors across bases or "
              "InferenceServices.")),
    AlertDoc("KitchenVllmTargetDown", "critical", None,
             "vLLM metrics endpoint down or not scraped",
             "Prometheus cannot scrape a predictor pod's `/metrics` (`up == 0`), or no target "
             "of a served InferenceService exists at all: nothing about it is observed, and "
             "its SLO alerts cannot fire.",
             ("`oc get pods -n <namespace> -l serving.kserve.io/inferenceservice=<name>`: are "
              "the predictor pods running and ready?",
              "Is the PodMonitor picked up? On OpenShift, user-workload monitoring must be "
              "enabled; elsewhere the Prometheus `podMonitorSelector` must match it.",
              "The NetworkPolicy `allow-monitoring-scrape` admits the monitoring namespace: "
              "does `observability.monitoring_namespace` name the namespace Prometheus runs in?")),
)
ALERT_DOCS = {a.name: a for a in ALERTS}


def runbook_url(env: Environment, alert: str) -> str:
    return f"{env.observability.runbook_url}#{ALERT_DOCS[alert].anchor}"


# ---------------------------------------------------------------- rules


def _ns(namespace: str, *more: str) -> str:
    return "{" + ", ".join((f'namespace="{namespace}"', *more)) + "}"


def _ratio_good_below(metric: str, seconds: float, ns: str, window: str) -> str:
    le = le_matcher(bucket(metric, seconds))
    return (f"1 - (sum by ({BY}) (rate({metric}_bucket{_ns(ns, le)}[{window}]))"
            f" / sum by ({BY}) (rate({metric}_count{_ns(ns)}[{window}])))")


def _eq(label: str, value: str, op: str = "=") -> str:
    return f'{label}{op}"{value}"'


def _error_ratio(ns: str, window: str) -> str:
    handlers = _eq("handler", INFERENCE_HANDLERS, "=~")
    all_ = f"sum by ({BY}) (rate({HTTP_REQUESTS}{_ns(ns, handlers)}[{window}]))"
    errors = f"sum by ({BY}) (rate({HTTP_REQUESTS}{_ns(ns, handlers, _eq('status', '5xx'))}[{window}]))"
    # without any 5xx yet there is no 5xx series: count zero errors rather than no ratio
    return f"({errors} or 0 * {all_}) / {all_}"


def _count_adapters(label: str, ns: str, most: int) -> str:
    """The number of adapters in a comma-separated label of the latest lora_requests_info
    series: exact up to ``most`` (an InferenceService loads no more adapters than its flavors)."""
    branches = [f"0 * {LORA_LATEST}{_ns(ns, _eq(label, ''))}"]
    for k in range(1, most + 1):
        regex = "[^,]+" if k == 1 else f"[^,]+(,[^,]+){{{k - 1}}}"
        branches.append(f"({k} + 0 * {LORA_LATEST}{_ns(ns, _eq(label, regex, '=~'))})")
    return f"max by ({BY}) ({' or '.join(branches)})"


def recording_rules(env: Environment, namespace: str, services: Sequence[ServicePlan]) -> list[dict[str, Any]]:
    ns = namespace
    rules: list[dict[str, Any]] = []

    def record(name: str, expr: str, **labels: str) -> None:
        rule: dict[str, Any] = {"record": name, "expr": expr}
        if labels:
            rule["labels"] = labels
        rules.append(rule)

    for metric in (TTFT, TPOT, ITL, E2E, QUEUE):
        for q in (50, 95):
            record(rule_name(metric, f"p{q}_5m"),
                   f"histogram_quantile({q / 100}, sum by ({BY}, le) (rate({metric}_bucket{_ns(ns)}[5m])))")
    record(REQUESTS_RATE, f"sum by ({BY}) (rate({SUCCESS}{_ns(ns)}[5m]))")
    record(ERROR_RATIO, _error_ratio(ns, "5m"))
    record(OUTPUT_TOKENS_RATE, f"sum by ({BY}) (rate({GENERATION_TOKENS}{_ns(ns)}[5m]))")
    record(KV_CACHE_MAX, f"max by ({BY}) ({KV_CACHE}{_ns(ns)})")
    record(RUNNING_SUM, f"sum by ({BY}) ({RUNNING}{_ns(ns)})")
    record(WAITING_SUM, f"sum by ({BY}) ({WAITING}{_ns(ns)})")
    record(WAITING_LORA_SUM, f"sum by ({BY}) ({WAITING_BY_REASON}{_ns(ns, _eq('reason', 'deferred'))})")
    # vLLM keeps every label set it ever set (value: when); the newest per pod is the state now
    record(LORA_LATEST, f"{LORA_INFO}{_ns(ns)} == on (namespace, pod) group_left () "
                        f"max by (namespace, pod) ({LORA_INFO}{_ns(ns)})")
    most = max((len(s.flavors) for s in services), default=1) or 1
    record(LORA_RUNNING, _count_adapters("running_lora_adapters", ns, most))
    record(LORA_WAITING, _count_adapters("waiting_lora_adapters", ns, most))
    slo = env.slo
    criteria = [("ttft", TTFT, slo.ttft_p95_ms), ("tpot", TPOT, slo.tpot_p95_ms)]
    if slo.e2e_p95_ms is not None:
        criteria.append(("e2e", E2E, slo.e2e_p95_ms))
    for window in SLO_WINDOWS:
        for criterion, metric, ms in criteria:
            record(SLO_BAD + window, _ratio_good_below(metric, ms / 1000, ns, window), criterion=criterion)
        record(SLO_BAD + window, _error_ratio(ns, window), criterion="error")
        record(GOODPUT_BAD + window, f"max without (criterion) ({SLO_BAD}{window}{_ns(ns)})")
    return rules


def _minutes(n: int) -> str:
    return f"{n // 60}h" if n % 60 == 0 else f"{n}m"


def alert_rules(env: Environment, namespace: str, services: Sequence[ServicePlan]) -> list[dict[str, Any]]:
    ns, slo, obs = namespace, env.slo, env.observability
    sat = obs.saturation
    slo_for, sat_for = _minutes(obs.slo_for_minutes), _minutes(sat.for_minutes)
    rules: list[dict[str, Any]] = []
    who = "{{ $labels.namespace }}/{{ $labels.inferenceservice }}"

    def alert(name: str, expr: str, for_: str, description: str, **labels: str) -> None:
        doc = ALERT_DOCS[name]
        lab = {"severity": doc.severity, "kitchen_environment": env.name, **labels}
        if doc.slo:
            lab["slo"] = doc.slo
        rules.append({"alert": name, "expr": expr, "for": for_, "labels": dict(sorted(lab.items())),
                      "annotations": {"summary": doc.summary, "description": description,
                                      "runbook_url": runbook_url(env, name)}})

    def latency(name: str, metric: str, ms: float, what: str) -> None:
        alert(name, f"{rule_name(metric, 'p95_5m')}{_ns(ns)} > {fmt(ms / 1000)}", slo_for,
              f"{what} p95 of {who} is {{{{ $value | humanizeDuration }}}}, above the {env.name} "
              f"SLO of {fmt(ms)} ms.")

    latency("KitchenTTFTAboveSLO", TTFT, slo.ttft_p95_ms, "Time to first token")
    latency("KitchenTPOTAboveSLO", TPOT, slo.tpot_p95_ms, "Time per output token")
    if slo.e2e_p95_ms is not None:
        latency("KitchenE2ELatencyAboveSLO", E2E, slo.e2e_p95_ms, "End-to-end latency")
    if slo.min_output_tokens_per_s > 0:
        alert("KitchenOutputThroughputBelowSLO",
              f"{OUTPUT_TOKENS_RATE}{_ns(ns)} < {fmt(slo.min_output_tokens_per_s)} unless on ({BY}) "
              f"{WAITING_SUM}{_ns(ns)} == 0", slo_for,
              f"{who} generates {{{{ $value | humanize }}}} output tokens/s while requests wait; "
              f"the {env.name} SLO promises {fmt(slo.min_output_tokens_per_s)}.")
    if slo.goodput_min_ratio > 0:  # a zero objective has no budget to burn
        budget = 1 - slo.goodput_min_ratio
        for name, long_w, short_w, rate, for_ in BURN_RATES:
            threshold = fmt(rate * budget)
            alert(name, f"{GOODPUT_BAD}{long_w}{_ns(ns)} > {threshold} and {GOODPUT_BAD}{short_w}{_ns(ns)} "
                  f"> {threshold}", for_,
                  f"{{{{ $value | humanizePercentage }}}} of the requests to {who} missed an objective "
                  f"over {long_w} (and over {short_w}): {fmt(rate)} times the error budget of "
                  f"{fmt(budget * 100)} % (goodput objective {fmt(slo.goodput_min_ratio * 100)} %).",
                  long_window=long_w)
    alert("KitchenKVCacheNearFull", f"{KV_CACHE_MAX}{_ns(ns)} > {fmt(sat.kv_cache_usage_max)}", sat_for,
          f"The KV cache of {who} is {{{{ $value | humanizePercentage }}}} full (threshold "
          f"{fmt(sat.kv_cache_usage_max * 100)} %).")
    alert("KitchenRequestsWaiting", f"{WAITING_SUM}{_ns(ns)} > {sat.requests_waiting_max}", sat_for,
          f"{{{{ $value }}}} requests wait in the queue of {who} (tolerated: {sat.requests_waiting_max}).")
    alert("KitchenLoraAdaptersWaitingForSlot", f"{WAITING_LORA_SUM}{_ns(ns)} > 0", sat_for,
          f"{{{{ $value }}}} requests to {who} wait for a LoRA slot: raise serving.vllm.max_loras "
          f"(now {env.serving.vllm.max_loras}) or spread its flavors.")
    missing = [f"absent(up{_ns(ns, _eq('inferenceservice', s.name))})" for s in services if s.replicas > 0]
    expr = f"up{_ns(ns, _eq('inferenceservice', '', '!='))} == 0"
    if missing:
        expr += " or " + " or ".join(missing)
    alert("KitchenVllmTargetDown", expr, "10m",
          f"Prometheus has no working scrape of {who} (pod {{{{ $labels.pod }}}}): its metrics and "
          "SLO alerts are blind.")
    return rules


def rule_groups(env: Environment, namespace: str, services: Sequence[ServicePlan]) -> list[dict[str, Any]]:
    interval = f"{env.observability.scrape_interval_s}s"
    return [{"name": RECORDING_GROUP, "interval": interval,
             "rules": recording_rules(env, namespace, services)},
            {"name": ALERTING_GROUP, "interval": interval, "rules": alert_rules(env, namespace, services)}]


def recorded_names(groups: Iterable[dict[str, Any]]) -> set[str]:
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a light scan of the PromQL this module
    writes; the tests also run every expression through Prometheus's own parser)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", e)  # matchers and range durations
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if m.group(0).lower() in _KEYWORDS or e[m.end():].lstrip().startswith("("):
            continue  # a keyword or a function call
        names.add(m.group(0))
    return names


# ---------------------------------------------------------------- dashboard

PANEL_W, PANEL_H = 8, 8
DASHBOARD_SELECTOR = '{namespace="$namespace", inferenceservice=~"$inferenceservice"}'


@dataclass(frozen=True)
class PanelSpec:
    """One time-series panel of a tenant row: its queries (PromQL, legend) and the
    objective drawn as a red line (None: none)."""

    title: str
    unit: str
    queries: Sequence[tuple[str, str]]
    description: str
    line: float | None = None


def _panels(env: Environment, next_id: list[int], y0: int) -> list[Any]:
    """The panels of one tenant row: one series per InferenceService of the tenant."""
    specs = [*_latency_panels(env), *_traffic_panels(env), *_saturation_panels(env), *_gpu_panels(env)]
    out = []
    for i, spec in enumerate(specs):
        next_id[0] += 1
        out.append(_timeseries(spec, next_id[0], i, y0))
    return out


def _timeseries(spec: PanelSpec, panel_id: int, i: int, y0: int) -> Any:
    """A panel of the row, the ``i``-th: three to a line from ``y0``."""
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus as pq
    from grafana_foundation_sdk.builders import timeseries
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm

    p = (timeseries.Panel().id(panel_id).title(spec.title).description(spec.description).unit(spec.unit)
         .datasource(dm.DataSourceRef(type_val="prometheus", uid="${datasource}"))
         .grid_pos(dm.GridPos(h=PANEL_H, w=PANEL_W, x=(i % 3) * PANEL_W, y=y0 + (i // 3) * PANEL_H))
         .min(0).legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
                        .placement(cm.LegendPlacement.BOTTOM).calcs([])))
    for k, (expr, legend) in enumerate(spec.queries):
        p = p.with_target(pq.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + k)))
    steps = [dm.Threshold(value=None, color="green")]
    if spec.line is not None:  # the objective, drawn as a red line
        steps.append(dm.Threshold(value=spec.line, color="red"))
        p = p.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.LINE))
    return p.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))


def _percentiles(metric: str, prefix: str = "") -> list[tuple[str, str]]:
    """The p50 and p95 recording rules of a latency histogram, one series per InferenceService."""
    return [(f"{rule_name(metric, f'p{q}_5m')}{DASHBOARD_SELECTOR}", f"{{{{inferenceservice}}}} {prefix}p{q}")
            for q in (50, 95)]


def _latency_panels(env: Environment) -> list[PanelSpec]:
    """Latencies and throughput, each with the SLO's objective."""
    slo, sel = env.slo, DASHBOARD_SELECTOR
    return [
        PanelSpec("Time to first token", "s", _percentiles(TTFT),
                  f"p50 and p95 over 5 min; red line: the SLO's p95 ({fmt(slo.ttft_p95_ms)} ms).",
                  slo.ttft_p95_ms / 1000),
        PanelSpec("Time per output token", "s", [*_percentiles(TPOT, "TPOT "), *_percentiles(ITL, "ITL ")],
                  "Per request (TPOT, what the SLO and `kitchen conform` measure) and between tokens (ITL); "
                  f"red line: the SLO's TPOT p95 ({fmt(slo.tpot_p95_ms)} ms).", slo.tpot_p95_ms / 1000),
        PanelSpec("End-to-end latency", "s", _percentiles(E2E),
                  "Arrival to last token" + (f"; red line: the SLO's p95 ({fmt(slo.e2e_p95_ms)} ms)."
                                             if slo.e2e_p95_ms is not None else "."),
                  slo.e2e_p95_ms / 1000 if slo.e2e_p95_ms is not None else None),
        PanelSpec("Output tokens/s", "short", [(f"{OUTPUT_TOKENS_RATE}{sel}", "{{inferenceservice}}")],
                  "Generated tokens per second, all replicas" +
                  (f"; red line: the SLO's minimum while requests wait ({fmt(slo.min_output_tokens_per_s)})."
                   if slo.min_output_tokens_per_s > 0 else "."),
                  slo.min_output_tokens_per_s if slo.min_output_tokens_per_s > 0 else None),
    ]


def _traffic_panels(env: Environment) -> list[PanelSpec]:
    """Requests, server errors, and the share of requests that spend the error budget."""
    sel = DASHBOARD_SELECTOR
    budget = 1 - env.slo.goodput_min_ratio
    return [
        PanelSpec("Requests and server errors", "reqps",
                  [(f"{REQUESTS_RATE}{sel}", "{{inferenceservice}} finished"),
                   (f"{ERROR_RATIO}{sel} * on ({BY}) {REQUESTS_RATE}{sel}", "{{inferenceservice}} 5xx")],
                  "Finished requests per second, and HTTP 5xx answers per second."),
        PanelSpec("Goodput: share of bad requests", "percentunit",
                  [(f"{GOODPUT_BAD}{w}{sel}", f"{{{{inferenceservice}}}} {w}") for w in ("5m", "1h", "6h")],
                  f"Requests that missed a latency objective or failed; red line: the error budget "
                  f"({fmt(budget * 100)} %). The burn-rate alerts fire at 14.4× it over 1 h and 6× over 6 h.",
                  budget),
    ]


def _saturation_panels(env: Environment) -> list[PanelSpec]:
    """The queue, the KV cache and the LoRA slots, with the environment's saturation thresholds."""
    sat, sel = env.observability.saturation, DASHBOARD_SELECTOR
    return [
        PanelSpec("Queue", "short",
                  [(f"{RUNNING_SUM}{sel}", "{{inferenceservice}} running"),
                   (f"{WAITING_SUM}{sel}", "{{inferenceservice}} waiting"),
                   (f"{WAITING_LORA_SUM}{sel}", "{{inferenceservice}} waiting for a LoRA slot")],
                  "Requests running and waiting in vLLM, all replicas; red line: waiting requests tolerated.",
                  float(sat.requests_waiting_max) if sat.requests_waiting_max else None),
        PanelSpec("Queue time", "s", _percentiles(QUEUE),
                  "Time requests spent waiting before their first scheduling."),
        PanelSpec("KV cache", "percentunit", [(f"{KV_CACHE_MAX}{sel}", "{{inferenceservice}} (fullest replica)")],
                  f"KV-cache usage; red line: the saturation threshold ({fmt(sat.kv_cache_usage_max * 100)} %).",
                  sat.kv_cache_usage_max),
        PanelSpec("LoRA adapters", "short",
                  [(f"{LORA_RUNNING}{sel}", "{{inferenceservice}} running"),
                   (f"{LORA_WAITING}{sel}", "{{inferenceservice}} waiting"),
                   (f"count by ({BY}, max_lora, running_lora_adapters, waiting_lora_adapters) ({LORA_LATEST}{sel})",
                    "{{inferenceservice}} max_loras {{max_lora}}: running [{{running_lora_adapters}}] "
                    "waiting [{{waiting_lora_adapters}}]")],
                  "Adapters in the running batch and adapters with waiting requests (fullest replica); the "
                  "legend names them and the --max-loras slots."),
    ]


def _gpu_panels(env: Environment) -> list[PanelSpec]:
    """GPU utilisation and memory from NVIDIA's DCGM exporter."""
    return [
        PanelSpec("GPU utilisation (DCGM)", "percent",
                  [(_dcgm(env, DCGM_GPU_UTIL, "avg"), "{{exported_pod}}{{pod}} GPU {{gpu}}")],
                  "From NVIDIA's DCGM exporter, when it runs in the cluster."),
        PanelSpec("GPU memory used (DCGM)", "decmbytes",
                  [(_dcgm(env, DCGM_FB_USED, "sum"), "{{exported_pod}}{{pod}} GPU {{gpu}}")],
                  "Frame-buffer memory in use per GPU, from the DCGM exporter."),
    ]


def _dcgm(env: Environment, metric: str, agg: str) -> str:
    """A DCGM metric of the selected InferenceService's pods, per pod and GPU."""
    # the exporter's own namespace/pod labels win unless it honours labels: match either
    # KServe names an LLMInferenceService's vLLM pods <name>-kserve-…, a predictor's <name>-predictor-…
    pods = ('"$inferenceservice-kserve-.*"' if env.serving.api == "LLMInferenceService"
            else '"$inferenceservice-predictor-.*"')
    return (f'{agg} by (exported_pod, gpu) ({metric}{{exported_namespace="$namespace", exported_pod=~{pods}}})'
            f' or {agg} by (pod, gpu) ({metric}{{namespace="$namespace", pod=~{pods}}})')


def build_dashboard(env: Environment, namespaces: Sequence[str]) -> dict[str, Any]:
    """The environment's dashboard as Grafana JSON.

    Its size does not grow with the catalog: one row, repeated by Grafana for each of the
    tenant ``namespaces`` (the ``namespace`` variable lists them), each panel with
    one series per InferenceService of that tenant.  A static panel per InferenceService
    would need about 12 KB each, and a ConfigMap holds 1 MiB.
    """
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as dm

    title = env.display_name or env.name
    prom = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
    d = (db.Dashboard(f"kitchen · {title}: LLM serving").uid(f"kitchen-{env.name}")
         .tags(["kitchen", "vllm", env.name]).refresh("1m").time("now-6h", "now").timezone("browser")
         .description(f"vLLM serving of the {env.name} environment: a row per tenant, a series per "
                      "InferenceService. Generated by kitchen from the catalog (docs/observability.md).")
         .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
         .with_variable(db.CustomVariable("namespace").label("Tenant namespace").values(",".join(namespaces))
                        .multi(True).include_all(True))
         .with_variable(db.QueryVariable("inferenceservice").label("InferenceService").datasource(prom)
                        .query(f'label_values({REQUESTS_RATE}{{namespace=~"$namespace"}}, inferenceservice)')
                        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
                        .all_value(".+").sort(dm.VariableSort.ALPHABETICAL_ASC)))
    next_id = [1]
    d = d.with_row(db.Row("Tenant namespace $namespace").id(1).repeat("namespace")
                   .grid_pos(dm.GridPos(h=1, w=24, x=0, y=0)))
    for p in _panels(env, next_id, 1):
        d = d.with_panel(p)
    data: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder, sort_keys=True))
    return data


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query of the dashboard: panel targets and query variables."""
    out = [t["expr"] for p in dashboard.get("panels", []) for t in p.get("targets") or [] if "expr" in t]
    for v in dashboard.get("templating", {}).get("list", []):
        query = v.get("query")
        if v.get("type") == "query" and isinstance(query, str):  # label_values(<selector>, <label>)
            m = re.fullmatch(r"label_values\((.*), *\w+\)", query)
            out.append(m.group(1) if m else query)
    return out


# ---------------------------------------------------------------- rendering


class _Settings:
    """What the observability objects of every tenant of an environment share."""

    def __init__(self, r: EnvironmentRenderer) -> None:
        env = r.env
        obs = env.observability
        self.loc = r.catalog.location("Environment", env.name, ("observability",))
        self.label = (f"{DOMAIN}/component", "observability")
        self.prom_ns = obs.prometheus_namespace(env.cluster.platform)
        self.port_name: str | int = PORT_NAMES[env.serving.deployment_mode]
        self.pods: tuple[tuple[str, str], ...] = (("component", "predictor"),)
        self.pod_port, self.isvc_label, self.scheme = PREDICTOR_PORT, ISVC_POD_LABEL, "http"
        if env.serving.api == "LLMInferenceService":
            # the workload's vLLM port (unnamed in KServe's LLMInferenceServiceConfig), served
            # over TLS with the certificate KServe issues itself for the workload
            self.port_name, self.pods, self.pod_port = LLMISVC_PORT, LLMISVC_POD_LABELS, LLMISVC_PORT
            self.isvc_label, self.scheme = LLMISVC_NAME_LABEL, "https"
        self.specs = _RuleSpecs(r)

    @classmethod
    def of(cls, r: EnvironmentRenderer) -> _Settings:
        made = r.shared.get(__name__)
        if not isinstance(made, cls):
            made = r.shared[__name__] = cls(r)
        return made


def render_tenant_observability(r: EnvironmentRenderer, t: TenantPlan) -> None:
    """A serving tenant's observability objects: the scrape's NetworkPolicy, a PodMonitor
    per InferenceService, the PrometheusRule (nothing when observability is off)."""
    env, cat = r.env, r.catalog
    obs = env.observability
    if not obs.enabled or not t.services:
        return
    s = _Settings.of(r)
    tfile = cat.source_file("Tenant", t.tenant.name)
    srcs = (tfile, r.env_source)
    tlabels = ((f"{DOMAIN}/tenant", t.tenant.name), s.label)
    trace = ((f"{DOMAIN}/sources", ",".join(sorted(set(srcs)))),)
    tloc = cat.location("Tenant", t.tenant.name, ("environments", env.name, "flavors"))
    r.emit(f"{t.namespace}/networkpolicy-allow-monitoring.yaml", "networkpolicy.yaml.j2", s.loc, srcs,
           "NetworkPolicy", "networking.k8s.io/v1",
           object_meta("allow-monitoring-scrape", t.namespace, env, wave=WAVE_RBAC, labels=tlabels,
                       annotations=trace),
           pod_labels=s.pods, policy_types=["Ingress"],
           ingress=[{"peers": [s.prom_ns], "ports": [s.pod_port]}], egress=None)
    for svc in t.services:
        r.emit(f"{t.namespace}/podmonitor-{svc.name}.yaml", "podmonitor.yaml.j2", tloc, srcs,
               "PodMonitor", "monitoring.coreos.com/v1",
               object_meta(svc.name, t.namespace, env, wave=WAVE_RUNTIME,
                           labels=(*tlabels, (f"{DOMAIN}/base", svc.base.name)),
                           annotations=(*trace, (f"{DOMAIN}/inferenceservice", svc.name))),
               selector=sorted({s.isvc_label: svc.name, **dict(s.pods)}.items()),
               port=s.port_name, interval=f"{obs.scrape_interval_s}s", isvc_label=s.isvc_label,
               scheme=s.scheme)
    env_loc = cat.location("Environment", env.name, ("slo",))
    r.emit(f"{t.namespace}/prometheusrule-kitchen-vllm.yaml", "prometheusrule.yaml.j2", env_loc, srcs,
           "PrometheusRule", "monitoring.coreos.com/v1",
           object_meta("kitchen-vllm", t.namespace, env, wave=WAVE_RUNTIME, labels=tlabels, annotations=trace),
           **s.specs.spec(t.namespace, t.services))


def render_observability(r: EnvironmentRenderer) -> None:
    """The observability objects of the environment itself: the dashboard (nothing when
    observability is off); each tenant's come with the tenant's
    (:func:`render_tenant_observability`)."""

    env, cat, plan = r.env, r.catalog, r.plan
    obs = env.observability
    if not obs.enabled:
        return
    if obs.dashboard and any(t.services for t in plan.tenants):
        loc = cat.location("Environment", env.name, ("observability",))
        label = (f"{DOMAIN}/component", "observability")
        tenant_files = {cat.source_file("Tenant", t.tenant.name) for t in plan.tenants if t.services}
        dash_srcs = (r.env_source, *sorted(tenant_files))
        doc = cat.documents.get(("Environment", env.name))  # what it reads: the environment's file, the namespaces
        shown = sorted({t.namespace for t in plan.tenants if t.services})
        reads = [doc.digest, *shown] if doc is not None and doc.digest else None
        text = derived(r.memo, "dashboard", reads, lambda: pretty_json(build_dashboard(env, shown)))
        r.emit(f"{obs.dashboard_namespace}/configmap-kitchen-dashboard.yaml", "dashboard-configmap.yaml.j2",
               loc, dash_srcs, "ConfigMap", "v1",
               object_meta(f"kitchen-dashboard-{env.name}", obs.dashboard_namespace, env, wave=WAVE_RUNTIME,
                     labels=(label, DASHBOARD_LABEL),
                     annotations=((f"{DOMAIN}/sources", ",".join(sorted(set(dash_srcs)))),
                                  # a large dashboard outgrows kubectl's last-applied annotation
                                  ("argocd.argoproj.io/sync-options", "ServerSideApply=true"))),
               key=f"kitchen-{env.name}.json", content=text)


# a namespace can never contain it (DNS-1123), and it passes through YAML/JSON quoting unchanged
_NAMESPACE_TOKEN = "__kitchen_namespace__"
_NAMESPACE_TOKEN_BYTES = _NAMESPACE_TOKEN.encode()


class _RuleSpecs:
    """The formatted rule groups of a PrometheusRule, formatted once per shape.

    The groups of two namespaces differ only in the namespace, the largest number of
    flavors of an InferenceService and the names of the served InferenceServices; most
    tenants of an organisation share a shape (InferenceServices are named after their
    base), so formatting once per shape and substituting the namespace keeps rendering
    a large organisation fast.
    """

    def __init__(self, r: EnvironmentRenderer) -> None:
        # what of the renderer it reads, not the renderer: the renderer holds this through its
        # ``shared``, and a cycle would keep the render's garbage alive until a collection
        self.env, self.jinja, self.templates = r.env, r.jinja, r.templates
        # shape -> the formatted text, the groups, and their JSON where it gives them back exactly
        self.cache: dict[tuple[int, tuple[str, ...]], tuple[str, list[dict[str, Any]], bytes | None]] = {}

    def spec(self, namespace: str, services: Sequence[ServicePlan]) -> dict[str, Any]:
        """The template's ``spec`` text and the rule ``groups`` it formats, for ``namespace``."""
        key = (max((len(s.flavors) for s in services), default=1),
               tuple(sorted(s.name for s in services if s.replicas > 0)))
        cached = self.cache.get(key)
        if cached is None:
            import jinja2

            from .errors import ConfigError
            from .sandbox import template_error

            groups = rule_groups(self.env, _NAMESPACE_TOKEN, services)
            try:
                text = self.jinja.get_template("prometheusrule-groups.yaml.j2").render(groups=groups)
            except jinja2.TemplateError as exc:
                raise ConfigError(template_error(exc, "prometheusrule-groups.yaml.j2", self.templates)) from None
            cached = self.cache[key] = (text, groups, _exact_json(groups))
        text, groups, as_json = cached
        if as_json is None:
            return {"spec": text.replace(_NAMESPACE_TOKEN, namespace),
                    "groups": substitute(groups, _NAMESPACE_TOKEN, namespace)}
        # the token's characters need no escape in JSON: it stands in the bytes exactly where
        # it stands in the strings, and the namespace goes in escaped as JSON writes it
        named = as_json.replace(_NAMESPACE_TOKEN_BYTES, orjson.dumps(namespace)[1:-1])
        return {"spec": text.replace(_NAMESPACE_TOKEN, namespace), "groups": orjson.loads(named)}


def _exact_json(value: Any) -> bytes | None:
    """``value`` as JSON where reading it back gives ``value`` (no tuple, NaN or other
    type), else None."""
    try:
        as_json = orjson.dumps(value)
    except TypeError:
        return None
    return as_json if orjson.loads(as_json) == value else None


# ---------------------------------------------------------------- runbook


RUNBOOK_BEGIN = "<!-- runbook: generated by kitchen_gitops.observability.runbook_markdown; do not edit -->"
RUNBOOK_END = "<!-- end of runbook -->"


def runbook_markdown() -> str:
    """The runbook section of docs/operations.md, one heading per alert (its anchor)."""
    out = [RUNBOOK_BEGIN, ""]
    for a in ALERTS:
        threshold = (f"`slo.{a.slo}`" if a.slo else
                     "`observability.saturation`" if a.name not in ("KitchenVllmTargetDown",) else "—")
        out += [f"### {a.name}", "", f"**{a.summary}.** Severity `{a.severity}`; threshold: {threshold}.", "",
                a.meaning, "", "What to check first:", ""]
        out += [f"{i}. {c}" for i, c in enumerate(a.first_checks, 1)]
        out.append("")
    out.append(RUNBOOK_END)
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class _Contribution:
    in_kustomization: bool = True

    def tenant(self, renderer: EnvironmentRenderer, t: TenantPlan) -> None:
        render_tenant_observability(renderer, t)

    def __call__(self, renderer: EnvironmentRenderer) -> None:
        render_observability(renderer)


# What observability adds to every environment's rendered output (when it is on).
CONTRIBUTION = _Contribution()
