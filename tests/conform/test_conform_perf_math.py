"""Performance arithmetic: percentiles, TPOT, goodput, and Prometheus histograms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kitchen_gitops.conform.client import StreamRecord
from kitchen_gitops.conform.expectations import SloSpec
from kitchen_gitops.conform.perf import (
    agrees,
    compute_metrics,
    cross_check,
    parse_counters,
    parse_histograms,
    percentile,
    prefix_cache_use,
    random_prompts,
)


@pytest.mark.parametrize("values", [[1.0], [3.0, 1.0, 2.0], list(np.random.default_rng(0).random(101))])
@pytest.mark.parametrize("p", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy(values: list[float], p: float) -> None:
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def rec(ttft: float, latency: float, tokens: int, ok: bool = True) -> StreamRecord:
    r = StreamRecord("m", ttft=ttft, latency=latency, output_tokens=tokens, prompt_tokens=10,
                     itl=[(latency - ttft) / max(tokens - 1, 1)] * max(tokens - 1, 0))
    if not ok:
        r.error = "HTTP 500"
    return r


def test_tpot_and_goodput_as_vllm_bench_serve() -> None:
    slo = SloSpec(ttft_p95_ms=100, tpot_p95_ms=10)
    records = [rec(0.05, 0.05 + 0.009 * 9, 10),   # good
               rec(0.20, 0.20 + 0.009 * 9, 10),   # TTFT too slow
               rec(0.05, 0.05 + 0.020 * 9, 10),   # TPOT too slow
               rec(0.05, 0.05, 1),                 # one token: TPOT 0, good
               rec(0.01, 0.02, 5, ok=False)]
    m = compute_metrics(records, duration_s=2.0, slo=slo)
    assert m.completed == 4 and m.failed == 1
    assert records[0].tpot == pytest.approx(0.009)
    assert m.tpot_ms.median == pytest.approx(9.0)  # single-token requests have no TPOT
    assert m.good == 2 and m.goodput == pytest.approx(1.0) and m.goodput_ratio == pytest.approx(0.4)
    assert m.output_tokens == 31 and m.output_throughput == pytest.approx(15.5)
    assert m.input_tokens == 40


def test_random_prompts_like_vllm_bench_serve_random_dataset() -> None:
    prompts = random_prompts(8, 32, 512, seed=7)
    assert prompts == random_prompts(8, 32, 512, seed=7)  # a seed repeats a run
    assert all(isinstance(p, list) and len(p) == 32 for p in prompts)
    for p in prompts:
        assert isinstance(p, list)
        # consecutive ids from the request's offset, wrapping at the vocabulary
        assert all(0 <= t < 512 for t in p)
        assert all((b - a) % 512 == 1 for a, b in itertools.pairwise(p))
    # no two requests, and no two runs, share a first block: nothing for the prefix cache
    runs = [random_prompts(64, 32, 128256, seed=s) for s in (1, 2)]
    firsts = {tuple(p[:16]) for run in runs for p in run if isinstance(p, list)}
    assert len(firsts) == 128


def test_random_word_prompts_without_a_vocabulary() -> None:
    a, b = random_prompts(2, 32, None, seed=1), random_prompts(2, 32, None, seed=2)
    assert isinstance(a[0], str) and len(a[0].split()) == 32 and a[0].split()[0] == "0."
    assert a != b


PREFIX = """vllm:prefix_cache_queries_total{{engine="0",model_name="tiny-llama"}} {q}
vllm:prefix_cache_queries_created{{engine="0",model_name="tiny-llama"}} 1.79e+09
vllm:prefix_cache_hits_total{{engine="0",model_name="tiny-llama"}} {h}
vllm:external_prefix_cache_hits_total{{engine="0",model_name="tiny-llama"}} 5.0
"""


def test_prefix_cache_hit_rate_over_a_run() -> None:
    before, after = PREFIX.format(q=100.0, h=40.0), PREFIX.format(q=1100.0, h=290.0)
    assert parse_counters(after, ["vllm:prefix_cache_hits"]) == {"vllm:prefix_cache_hits": 290.0}
    assert prefix_cache_use(before, after, "tiny-llama") == {
        "queried_tokens": 1000.0, "hit_tokens": 250.0, "hit_rate": 0.25}
    assert prefix_cache_use(before, after, "other") == {}


METRICS = """\
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{{engine="0",model_name="tiny-llama"}} {s}
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.01",model_name="tiny-llama"}} {b1}
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.1",model_name="tiny-llama"}} {b2}
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="tiny-llama"}} {c}
vllm:time_to_first_token_seconds_count{{engine="0",model_name="tiny-llama"}} {c}
vllm:time_to_first_token_seconds_count{{engine="0",model_name="other"}} 99.0
"""


def test_histogram_delta_mean_and_quantile() -> None:
    before = METRICS.format(s=1.0, b1=0, b2=10, c=10)
    after = METRICS.format(s=1.5, b1=5, b2=20, c=20)
    name = "vllm:time_to_first_token_seconds"
    h = parse_histograms(after, [name], "tiny-llama")[name].minus(
        parse_histograms(before, [name], "tiny-llama")[name])
    assert h.count == 10 and h.mean == pytest.approx(0.05)
    assert h.quantile(0.5) == pytest.approx(0.01)  # rank 5 ends the first bucket
    assert h.quantile(0.75) == pytest.approx(0.01 + 0.09 * 0.5)
    assert parse_histograms(after, [name], "other")[name].count == 99


def test_cross_check_flags_impossible_and_agrees_with_overhead() -> None:
    assert agrees(12.0, 10.0)           # client adds overhead
    assert agrees(9.5, 10.0)            # within 10 %
    assert not agrees(50.0, 100.0)      # the client cannot be faster than the engine
    assert not agrees(400.0, 100.0)     # most of the latency outside the engine
    slo = SloSpec(ttft_p95_ms=100, tpot_p95_ms=10)
    m = compute_metrics([rec(0.06, 0.1, 5)] * 10, 1.0, slo)
    before = METRICS.format(s=1.0, b1=0, b2=10, c=10)
    after = METRICS.format(s=1.5, b1=5, b2=20, c=20)
    out = cross_check(before, after, m, "tiny-llama")
    assert out["ttft"]["observations"] == 10
    assert out["ttft"]["server_mean_ms"] == pytest.approx(50.0)
    assert out["ttft"]["client_mean_ms"] == pytest.approx(60.0)
    assert out["ttft"]["agrees"] is True
    # the report names the recording rules that keep measuring the same after the sync
    assert out["ttft"]["recording_rules"] == ["kitchen:vllm_time_to_first_token_seconds:p50_5m",
                                              "kitchen:vllm_time_to_first_token_seconds:p95_5m"]
