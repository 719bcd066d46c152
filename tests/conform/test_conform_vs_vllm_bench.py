"""The performance figures of ``kitchen conform`` agree with ``vllm bench serve``, and a
second conformance run on the same server measures the prefill again, not the cache.

Both tools load the same server — prefix caching on, as every environment renders it —
with the same dataset (``random``: consecutive token ids from a random offset, a new seed
for every run of either tool), the same number of requests at the same concurrency and
exactly the same number of output tokens (``ignore_eos``); see ``tests/support/bench_compare.py``.
The server's model is larger than the other tests' (hidden 512, 4 layers) so that the time
to first token is real prefill work rather than milliseconds of scheduling jitter.  The two
tools take turns; their per-request TTFT and TPOT are pooled, and kitchen's medians must
lie within 5 % of vLLM's.  Two shared CPU cores make single runs wander, so the comparison
adds rounds (up to ``MAX_ROUNDS``) before it fails, and on a host whose own run-to-run
noise exceeds 5 % it allows that noise (two standard errors), no more.  The clients share
those cores with the server, so the heavier client slows the server it measures (vLLM's
benchmark client: in one run here the server's own time per output token was 6.6 % shorter
during kitchen's runs, and the clients' TPOT medians 8.6 % apart);
a difference that the server's own histograms show for the same runs is the load's, not
the measurement's, and is taken out (``Comparison.measurement_difference``).
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conform.conform_support import BASE
from tests.support.bench_compare import Comparison, Load
from tests.support.tiny_model import build_tiny_base
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

TOLERANCE = 0.05
LOAD = Load(concurrency=4, requests=32, output_tokens=32, input_len=480)
ROUNDS, MAX_ROUNDS = 3, 8
VOCAB = 512
# Consecutive ids from one of 512 offsets: a few of a run's 32 prompts (and of earlier
# runs') share a first 128-token block by chance (one vllm bench serve seed: 23 % of its
# tokens); with a real vocabulary (128,256: 0-1.5 % on the H200) next to none do.  The
# control, the same prompts again, finds 70-90 %.
CHANCE_HITS = 0.15


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base larger than the kit's, so that prefill compute, not scheduling jitter of a
    few milliseconds, makes up the time to first token."""
    return build_tiny_base(tmp_path_factory.mktemp("bench-model") / "base", hidden_size=512, layers=4,
                           heads=8, kv_heads=2, max_position_embeddings=1024, name=BASE, vocab=VOCAB)


@pytest.fixture(scope="module")
def bench_server(bench_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """A fresh server used by nothing but the two tools, with prefix caching on."""
    log = tmp_path_factory.mktemp("vllm-bench") / "server.log"
    with VllmServer(bench_model, None, max_loras=None, max_lora_rank=None, served_model_name=BASE,
                    log_stats=True, log_path=log, max_model_len=1024, python=sys.executable,
                    extra_args=("--enable-prefix-caching",)) as srv:
        yield srv


@pytest.fixture(scope="module")
def comparison(bench_server: VllmServer, bench_model: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Comparison]:
    cmp = Comparison(bench_server.base_url, BASE, bench_model, VOCAB, LOAD,
                     tmp_path_factory.mktemp("bench-results"))
    try:
        cmp.kitchen_run(None)  # warm-up of each tool, not pooled
        cmp.bench_run(None)
        yield cmp
    finally:
        cmp.close()


def allowed(comparison: Comparison, row: str) -> float:
    """5 %, or the host's run-to-run noise where that is larger: two shared CPU cores
    (other jobs, client and server on the same cores) moved single runs' TTFT medians by
    ±20 %; a bias that the noise cannot explain still fails (fixed prompts served from the
    prefix cache: −40 %)."""
    return max(TOLERANCE, comparison.noise(row))


def test_ttft_and_tpot_medians_agree_with_vllm_bench_serve(comparison: Comparison) -> None:
    comparison.rounds(ROUNDS)
    rows = ("TTFT median (ms)", "TPOT median (ms)")
    while (any(abs(comparison.measurement_difference(r)) > TOLERANCE for r in rows)
           and len(comparison.kitchen.runs) < MAX_ROUNDS):
        comparison.rounds(1)
    text = comparison.table()
    print("\n" + text)
    if target := os.environ.get("KITCHEN_BENCH_TABLE"):
        Path(target).write_text(text + "\n")
    # a new seed every run: neither tool found its prompts in the prefix cache (beyond the
    # chance that two of a 512-token vocabulary's 512 starting ids coincide)
    for pool in (comparison.kitchen, comparison.bench):
        rates = [float(r["prefix_cache_hit_rate"]) for r in pool.runs]
        assert sum(rates) / len(rates) < CHANCE_HITS and max(rates) < 0.4, pool.runs
    for name in rows:
        assert abs(comparison.measurement_difference(name)) <= allowed(comparison, name), text


def test_a_second_run_measures_the_same_ttft_not_the_cache(comparison: Comparison) -> None:
    if len(comparison.kitchen.runs) < 3:  # run alone: runs to measure the host's noise by
        for _ in range(3):
            comparison.kitchen_run(comparison.kitchen)
    medians = [float(r["client_ttft_median_ms"]) for r in comparison.kitchen.runs]
    noise = 3 * statistics.stdev(medians)
    # fresh random prompts: nothing cached (beyond chance), the same prefill work, the same
    # TTFT within the host's run-to-run noise.  A noisy host gets up to three pairs of
    # runs; cached prompts would lower the second run of every pair (the control below).
    for _attempt in range(3):
        first, second = comparison.kitchen_run(None), comparison.kitchen_run(None)
        assert first["prefix_cache_hit_rate"] < 0.4 and second["prefix_cache_hit_rate"] < 0.4
        a, b = first["client_ttft_median_ms"], second["client_ttft_median_ms"]
        if abs(b - a) <= max(0.15 * a, noise):
            break
    assert abs(b - a) <= max(0.15 * a, noise), (first, second, medians)
    # the control: the second run's prompts once more (fixed prompts, as before issue 13)
    # come from the prefix cache (80-90 % of the prompt tokens), and the time to first
    # token shows it: 0.3-0.65 × the fresh runs' on two shared cores
    # (a busy host can slow one control run: up to three, the cache stays warm)
    for _attempt in range(3):
        again = comparison.kitchen_run(None, seed=second["seed"])
        assert again["prefix_cache_hit_rate"] > 0.5, again
        if again["client_ttft_median_ms"] < 0.8 * min(a, b):
            break
    assert again["client_ttft_median_ms"] < 0.8 * min(a, b), (first, second, again)
