"""Performance: streaming load at the environment's concurrency, measured as
``vllm bench serve`` measures it, judged against the environment's SLOs, and
cross-checked against the server's own ``/metrics`` histograms.

Per request (see ``client.stream_completion``): TTFT at the first streamed chunk that
carries ``choices``; inter-token latencies between such chunks; end-to-end latency at the
last one; TPOT = (latency − TTFT) / (output tokens − 1) with the token counts from the
server's ``usage``.  Percentiles interpolate linearly between ranks (numpy's default).
A request is *good* when its TTFT, TPOT (and end-to-end latency, if the SLO sets one) are
within the SLO's p95 targets; goodput is good requests per second, and their ratio.

The prompts are made per run, as ``vllm bench serve``'s ``random`` dataset makes them:
``load.prompt_tokens`` consecutive token ids from a random offset, ``(offset + index + k)
% vocab_size``, from a seed drawn for the run (recorded in the details, and settable to
repeat a run).  They are sent as token ids, so every request prefills exactly that many
tokens and nothing of one run is in the server's prefix cache for the next: with fixed
prompts a second run on a server with ``--enable-prefix-caching`` measured the cache, not
the prefill (H200, issue 13: TTFT 48–52 ms instead of 84.5 ms).  The prefix cache's hit
rate over the run is read from ``/metrics`` and reported next to the figures.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import secrets
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ..findings import Location, ResourceRef, Severity
from ..observability import CONFORMANCE_RULES  # the rules that watch the same histograms after the run
from .client import ApiError, OpenAIClient, Prompt, StreamRecord, Unreachable, stream_completion
from .expectations import LoadSpec, ServiceExpectation, SloSpec
from .results import CheckRecord, finding, isvc_ref, timed

PERCENTILES = (50.0, 95.0, 99.0)
# words of the prompts where the base's vocabulary size is unknown (an expectations document
# without ``vocab_size``): random words from the run's seed, each prompt led by its number
_WORDS = ("the", "kitchen", "serves", "many", "flavors", "from", "one", "base", "model", "each",
          "flavor", "is", "a", "small", "adapter", "trained", "for", "one", "task", "answering",
          "questions", "summarising", "documents", "classifying", "tickets", "or", "translating",
          "short", "notes")

# server histograms compared with the client's figures: (metric, client field)
SERVER_HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
}
# The engine measures from the request's arrival in vLLM; the client adds HTTP, SSE framing
# and its own scheduling.  So the client's mean may exceed the server's by the overhead, but
# may not be lower (that would be a measurement error): below by more than 10 % (+5 ms) or
# above by more than half its own value (and 100 ms) is a disagreement.
CROSS_CHECK_BELOW = (0.10, 5.0)
CROSS_CHECK_OVERHEAD = (0.50, 100.0)


def agrees(client_ms: float, server_ms: float) -> bool:
    rel, absolute = CROSS_CHECK_BELOW
    if client_ms < server_ms * (1 - rel) - absolute:
        return False
    rel, absolute = CROSS_CHECK_OVERHEAD
    return client_ms - server_ms <= max(rel * client_ms, absolute)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks, as ``numpy.percentile`` (and ``vllm
    bench serve``): :func:`statistics.quantiles` with the inclusive method."""
    if not values:
        return 0.0
    if len(values) == 1 or p <= 0:
        return float(min(values))
    if p >= 100:
        return float(max(values))
    # 10,000 cut points: every percentile to two decimals (p99.9 included)
    cuts = statistics.quantiles(values, n=10_000, method="inclusive")
    index = p * 100 - 1
    lo = int(index)
    frac = index - lo
    return cuts[lo] + (cuts[min(lo + 1, len(cuts) - 1)] - cuts[lo]) * frac if frac else cuts[lo]


# vLLM's prefix-cache counters (tokens looked up, tokens found), v1 engine
PREFIX_CACHE_COUNTERS = ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits")


def new_seed() -> int:
    return secrets.randbelow(2**31)


def random_prompts(count: int, length: int, vocab_size: int | None, seed: int) -> list[Prompt]:
    """``count`` prompts of ``length`` tokens, as ``vllm bench serve --dataset-name random``
    builds them: request ``i`` takes the ids ``(offset_i + i + k) % vocab_size`` for ``k`` in
    ``range(length)``, ``offset_i`` drawn from the seed.  Token ids need no tokenizer; the
    benchmark also drops the tokenizer's special ids, which kitchen cannot know (one more
    id in the embedding lookup does the same work).  Without a vocabulary size: random
    words from the seed, each prompt led by its number."""
    rng = random.Random(seed)
    if vocab_size:
        out: list[Prompt] = []
        for i in range(count):
            offset = rng.randrange(vocab_size)
            out.append([(offset + i + k) % vocab_size for k in range(length)])
        return out
    return [" ".join([f"{i}.", *(rng.choice(_WORDS) for _ in range(max(length - 1, 0)))])
            for i in range(count)]


@dataclass(frozen=True)
class Distribution:
    mean: float
    median: float
    p: dict[float, float]

    @classmethod
    def of(cls, values: Sequence[float], scale: float = 1000.0) -> Distribution:
        vals = [v * scale for v in values]
        mean = sum(vals) / len(vals) if vals else 0.0
        return cls(mean, percentile(vals, 50.0), {q: percentile(vals, q) for q in PERCENTILES})

    def as_dict(self) -> dict[str, float]:
        out = {"mean": round(self.mean, 3), "median": round(self.median, 3)}
        out.update({f"p{q:g}": round(v, 3) for q, v in self.p.items()})
        return out


@dataclass(frozen=True)
class PerfMetrics:
    completed: int
    failed: int
    duration_s: float
    input_tokens: int
    output_tokens: int
    ttft_ms: Distribution
    tpot_ms: Distribution
    itl_ms: Distribution
    e2e_ms: Distribution
    good: int

    @property
    def request_throughput(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0

    @property
    def output_throughput(self) -> float:
        return self.output_tokens / self.duration_s if self.duration_s else 0.0

    @property
    def total_token_throughput(self) -> float:
        return (self.input_tokens + self.output_tokens) / self.duration_s if self.duration_s else 0.0

    @property
    def goodput(self) -> float:
        return self.good / self.duration_s if self.duration_s else 0.0

    @property
    def goodput_ratio(self) -> float:
        total = self.completed + self.failed
        return self.good / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed, "failed": self.failed,
            "duration_s": round(self.duration_s, 3),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "request_throughput_per_s": round(self.request_throughput, 3),
            "output_token_throughput_per_s": round(self.output_throughput, 3),
            "total_token_throughput_per_s": round(self.total_token_throughput, 3),
            "goodput_requests_per_s": round(self.goodput, 3),
            "goodput_ratio": round(self.goodput_ratio, 4),
            "ttft_ms": self.ttft_ms.as_dict(), "tpot_ms": self.tpot_ms.as_dict(),
            "itl_ms": self.itl_ms.as_dict(), "e2e_ms": self.e2e_ms.as_dict(),
        }


def is_good(rec: StreamRecord, slo: SloSpec) -> bool:
    if not rec.ok:
        return False
    ok = rec.ttft * 1000 <= slo.ttft_p95_ms and rec.tpot * 1000 <= slo.tpot_p95_ms
    if slo.e2e_p95_ms is not None:
        ok = ok and rec.latency * 1000 <= slo.e2e_p95_ms
    return ok


def compute_metrics(records: Sequence[StreamRecord], duration_s: float, slo: SloSpec) -> PerfMetrics:
    ok = [r for r in records if r.ok]
    return PerfMetrics(
        completed=len(ok), failed=len(records) - len(ok), duration_s=duration_s,
        input_tokens=sum(r.prompt_tokens for r in ok),
        output_tokens=sum(r.output_tokens for r in ok),
        ttft_ms=Distribution.of([r.ttft for r in ok]),
        tpot_ms=Distribution.of([r.tpot for r in ok if r.output_tokens > 1]),
        itl_ms=Distribution.of([x for r in ok for x in r.itl]),
        e2e_ms=Distribution.of([r.latency for r in ok]),
        good=sum(1 for r in ok if is_good(r, slo)),
    )


async def run_load(url: str, models: Sequence[str], load: LoadSpec, *, token: str | None = None,
                   timeout: float = 300.0, vocab_size: int | None = None,
                   seed: int | None = None) -> tuple[list[StreamRecord], float]:
    """``load.requests`` streaming requests, at most ``load.concurrency`` in flight, the
    models taken in turn; every request generates exactly ``load.output_tokens``; prompts
    from ``random_prompts`` with ``seed`` (default: the load's, else a new one)."""
    if seed is None:
        seed = load.seed if load.seed is not None else new_seed()
    prompts = random_prompts(load.requests, load.prompt_tokens, vocab_size, seed)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sem = asyncio.Semaphore(load.concurrency)
    connector = aiohttp.TCPConnector(limit=load.concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async with aiohttp.ClientSession(headers=headers, connector=connector,
                                     timeout=client_timeout) as http:
        async def one(i: int) -> StreamRecord:
            async with sem:
                return await stream_completion(
                    http, url, models[i % len(models)], prompts[i], load.output_tokens,
                    ignore_eos=True)

        # like vllm bench serve: no collection of the process's long-lived objects
        # mid-run (a gen-2 pass over a large heap stalls every stream for 100s of ms)
        gc.collect()
        gc.freeze()
        try:
            t0 = time.perf_counter()
            records = await asyncio.gather(*(one(i) for i in range(load.requests)))
            return list(records), time.perf_counter() - t0
        finally:
            gc.unfreeze()


# ---------------------------------------------------------------- /metrics




@dataclass(frozen=True)
class Histogram:
    count: float
    sum: float
    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), ascending

    def minus(self, before: Histogram | None) -> Histogram:
        if before is None:
            return self
        prev = dict(before.buckets)
        return Histogram(self.count - before.count, self.sum - before.sum,
                         tuple((le, c - prev.get(le, 0.0)) for le, c in self.buckets))

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """Prometheus' ``histogram_quantile``: linear inside the bucket."""
        if not self.count or not self.buckets:
            return 0.0
        rank = q * self.count
        prev_le, prev_c = 0.0, 0.0
        for le, c in self.buckets:
            if c >= rank:
                if math.isinf(le):
                    return prev_le
                inside = c - prev_c
                return prev_le + (le - prev_le) * ((rank - prev_c) / inside if inside else 0.0)
            prev_le, prev_c = le, c
        return prev_le


def _samples(text: str, model: str | None) -> Iterable[Sample]:
    """Every sample of a Prometheus text exposition (of ``model``'s label sets if given),
    read by prometheus_client's parser."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:  # not the text format: nothing to read
        return []
    return [s for fam in families for s in fam.samples
            if model is None or s.labels.get("model_name", model) == model]


def parse_histograms(text: str, names: Iterable[str], model: str | None = None) -> dict[str, Histogram]:
    """Histograms from Prometheus text, summed over label sets (of ``model`` if given)."""
    wanted = set(names)
    acc: dict[str, dict[str, Any]] = {n: {"count": 0.0, "sum": 0.0, "buckets": {}} for n in wanted}
    for sample in _samples(text, model):
        base, _, suffix = sample.name.rpartition("_")
        if base not in wanted or not math.isfinite(sample.value):
            continue
        h = acc[base]
        if suffix == "count":
            h["count"] += sample.value
        elif suffix == "sum":
            h["sum"] += sample.value
        elif suffix == "bucket" and "le" in sample.labels:
            le = float(sample.labels["le"])
            h["buckets"][le] = h["buckets"].get(le, 0.0) + sample.value
    return {n: Histogram(h["count"], h["sum"], tuple(sorted(h["buckets"].items())))
            for n, h in acc.items() if h["count"] or h["buckets"]}


def parse_counters(text: str, names: Iterable[str], model: str | None = None) -> dict[str, float]:
    """Counters (``<name>_total``) from Prometheus text, summed over label sets."""
    wanted = set(names)
    out: dict[str, float] = {}
    for sample in _samples(text, model):
        name = sample.name.removesuffix("_total")
        if not sample.name.endswith("_total") or name not in wanted or not math.isfinite(sample.value):
            continue
        out[name] = out.get(name, 0.0) + sample.value
    return out


def prefix_cache_use(before: str, after: str, base: str) -> dict[str, float]:
    """Prompt tokens looked up in and found in the prefix cache over a run, and the rate."""
    queries, hits = PREFIX_CACHE_COUNTERS
    b = parse_counters(before, PREFIX_CACHE_COUNTERS, base)
    a = parse_counters(after, PREFIX_CACHE_COUNTERS, base)
    if queries not in a:
        return {}
    q = a[queries] - b.get(queries, 0.0)
    h = a.get(hits, 0.0) - b.get(hits, 0.0)
    return {"queried_tokens": q, "hit_tokens": h, "hit_rate": round(h / q, 4) if q else 0.0}


def cross_check(before: str, after: str, metrics: PerfMetrics, base: str) -> dict[str, Any]:
    """Compare the client's means with the server's histogram deltas over the run."""
    names = list(SERVER_HISTOGRAMS.values())
    b = parse_histograms(before, names, base)
    a = parse_histograms(after, names, base)
    client = {"ttft": metrics.ttft_ms.mean, "itl": metrics.itl_ms.mean, "e2e": metrics.e2e_ms.mean}
    out: dict[str, Any] = {}
    for key, metric in SERVER_HISTOGRAMS.items():
        if metric not in a:
            continue
        d = a[metric].minus(b.get(metric))
        server_mean = d.mean * 1000
        out[key] = {"metric": metric, "recording_rules": list(CONFORMANCE_RULES[key]), "observations": d.count,
                    "server_mean_ms": round(server_mean, 3),
                    "server_p50_ms": round(d.quantile(0.5) * 1000, 3),
                    "server_p95_ms": round(d.quantile(0.95) * 1000, 3),
                    "client_mean_ms": round(client[key], 3),
                    "overhead_ms": round(client[key] - server_mean, 3),
                    "agrees": agrees(client[key], server_mean)}
    return out


# ---------------------------------------------------------------- the check


def run_performance(client: OpenAIClient, svc: ServiceExpectation, slo: SloSpec, load: LoadSpec,
                    models: Sequence[str], environment: str, *, token: str | None = None,
                    timeout: float = 300.0) -> CheckRecord:
    """The load, its figures against the SLO, and the server's view of the same run."""
    res = CheckRecord("performance", svc.key)
    ref = isvc_ref(svc, environment)
    loc = slo.source.location()
    with timed(res):
        before = _server_metrics(client)
        seed = load.seed if load.seed is not None else new_seed()
        records, duration = asyncio.run(run_load(client.base_url, models, load, token=token,
                                                 timeout=timeout, vocab_size=svc.vocab_size,
                                                 seed=seed))
        m = compute_metrics(records, duration, slo)
        res.details.update({"load": _load_details(load, models, svc, seed), "metrics": m.as_dict()})
        _judge_load(res, records, m, slo, f"{load.requests} requests at concurrency {load.concurrency}", loc, ref)
        if before is not None:
            _server_view(res, client, before, m, svc, len(records), loc, ref)
        else:
            res.details["server_metrics"] = {}
            res.note = "the server exposes no /metrics: no cross-check"
    return res


def _server_metrics(client: OpenAIClient) -> str | None:
    """The server's /metrics before the load (None: it exposes none)."""
    try:
        return client.metrics()
    except (Unreachable, ApiError):
        return None


def _load_details(load: LoadSpec, models: Sequence[str], svc: ServiceExpectation, seed: int) -> dict[str, Any]:
    return {"concurrency": load.concurrency, "requests": load.requests,
            "output_tokens": load.output_tokens, "models": list(models),
            "prompt_tokens": load.prompt_tokens,
            "prompts": "random token ids" if svc.vocab_size
            else "random words", "seed": seed}


def _judge_load(res: CheckRecord, records: Sequence[StreamRecord], m: PerfMetrics, slo: SloSpec, shape: str,
                loc: Location, ref: ResourceRef) -> None:
    """Failed requests, then the completed ones' latencies, throughput and goodput against the SLO."""
    failed = [r for r in records if not r.ok]
    if failed:
        res.add(finding("performance", f"{len(failed)} of {len(records)} streaming requests "
                        f"failed: {failed[0].error}", location=loc, resource=ref,
                        flavor=failed[0].model, expected="every request answered",
                        actual=failed[0].error))
    if not m.completed:
        return
    _slo(res, "TTFT p95", m.ttft_ms, slo.ttft_p95_ms, shape, loc, ref)
    _slo(res, "TPOT p95", m.tpot_ms, slo.tpot_p95_ms, shape, loc, ref)
    if slo.e2e_p95_ms is not None:
        _slo(res, "end-to-end latency p95", m.e2e_ms, slo.e2e_p95_ms, shape, loc, ref)
    if m.output_throughput < slo.min_output_tokens_per_s:
        res.add(finding(
            "performance", f"output token throughput {m.output_throughput:.1f} tok/s is "
            f"below the SLO's {slo.min_output_tokens_per_s:g} tok/s ({shape})",
            location=loc, resource=ref,
            expected=f">= {slo.min_output_tokens_per_s:g} output tokens/s",
            actual=f"{m.output_throughput:.1f} output tokens/s"))
    if m.goodput_ratio < slo.goodput_min_ratio:
        res.add(finding(
            "performance", f"goodput: {m.good} of {len(records)} requests "
            f"({m.goodput_ratio:.0%}) met the SLO (TTFT <= {slo.ttft_p95_ms:g} ms, TPOT <= "
            f"{slo.tpot_p95_ms:g} ms{_e2e(slo)}); {m.goodput:.2f} good requests/s",
            location=loc, resource=ref, expected=f">= {slo.goodput_min_ratio:.0%} of requests",
            actual=f"{m.goodput_ratio:.0%}"))


def _server_view(res: CheckRecord, client: OpenAIClient, before: str, m: PerfMetrics, svc: ServiceExpectation,
                 requests: int, loc: Location, ref: ResourceRef) -> None:
    """The server's histograms and prefix cache over the run, cross-checked with the client's figures."""
    try:
        after = client.metrics()
    except (Unreachable, ApiError):
        after = ""
    checks = cross_check(before, after, m, svc.base) if after else {}
    res.details["server_metrics"] = checks
    res.details["prefix_cache"] = prefix_cache_use(before, after, svc.base) if after else {}
    _cross_findings(res, checks, requests, loc, ref)


def _e2e(slo: SloSpec) -> str:
    return f", end-to-end <= {slo.e2e_p95_ms:g} ms" if slo.e2e_p95_ms is not None else ""


def _slo(res: CheckRecord, what: str, dist: Distribution, limit: float, shape: str,
         loc: Any, ref: Any) -> None:
    p95 = dist.p[95.0]
    if p95 > limit:
        res.add(finding(
            "performance", f"{what} {p95:.1f} ms exceeds the SLO's {limit:g} ms (p50 "
            f"{dist.median:.1f} ms, p99 {dist.p[99.0]:.1f} ms; {shape})",
            location=loc, resource=ref, expected=f"{what} <= {limit:g} ms", actual=f"{p95:.1f} ms"))


def _cross_findings(res: CheckRecord, checks: dict[str, Any], requests: int, loc: Any,
                    ref: Any) -> None:
    if not checks:
        res.note = "the server's /metrics has no vLLM latency histograms: no cross-check"
        return
    ttft = checks.get("ttft")
    if ttft and ttft["observations"] != requests:
        # several replicas behind one Service, or other traffic: the scrape saw a part
        res.note = (f"/metrics saw {ttft['observations']:g} of {requests} requests: "
                    "cross-check not conclusive")
        return
    for key, c in checks.items():
        if not c["agrees"]:
            res.add(finding(
                "performance", f"client and server disagree on mean {key.upper()}: client "
                f"{c['client_mean_ms']:.1f} ms, server {c['server_mean_ms']:.1f} ms "
                f"({c['metric']})", location=loc, resource=ref, severity=Severity.WARNING,
                expected=f"client >= server - {CROSS_CHECK_BELOW[0]:.0%} and client - server <= "
                f"max({CROSS_CHECK_OVERHEAD[0]:.0%} of client, {CROSS_CHECK_OVERHEAD[1]:g} ms)",
                actual=f"client {c['client_mean_ms']:.1f} ms vs server {c['server_mean_ms']:.1f} ms"))
