"""``kitchen conform``'s performance load is the load ``vllm bench serve`` puts on a server,
and a second conformance run on the same server prefills its prompts again rather than
reading them from the prefix cache — both proven by vLLM's own counters on its
``/metrics`` (``vllm:request_success``, ``vllm:prompt_tokens``, ``vllm:generation_tokens``,
``vllm:prefix_cache_queries``, ``vllm:prefix_cache_hits``), never by a clock.

Both tools load the same server — prefix caching on, as every environment renders it —
with the same dataset (``random``: consecutive token ids from a random offset, a new seed
for every run of either tool), the same number of requests at the same concurrency and
exactly the same number of output tokens (``ignore_eos``); see
``tests/support/bench_compare.py``.  How far the two tools' TTFT and TPOT agree is a
figure, printed by ``python -m bench.conform_bench`` (docs/conformance.md), not asserted
here: on shared cores it wanders with the host's load.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conform.conform_support import BASE
from tests.support.bench_compare import Comparison, Load
from tests.support.tiny_model import build_tiny_base
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

LOAD = Load(concurrency=4, requests=32, output_tokens=32, input_len=480)
VOCAB = 512
# Consecutive ids from one of 512 offsets: a few of a run's 32 prompts (and of earlier
# runs') share a first 128-token block by chance (one vllm bench serve seed: 23 % of its
# tokens); with a real vocabulary (128,256: 0-1.5 % on the H200) next to none do.  The
# control, the same prompts again, finds 70-90 %.
CHANCE_HITS = 0.4


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
        yield cmp
    finally:
        cmp.close()


@pytest.fixture(scope="module")
def kitchen_first(comparison: Comparison) -> dict[str, Any]:
    """kitchen's first run on the fresh server (both tests read it: a run is most of a
    minute on two cores)."""
    return comparison.kitchen_run(None)


def counted(run: dict[str, Any]) -> dict[str, float]:
    """A run's counter deltas; a counter missing from /metrics fails, never reads as 0."""
    counters = run["counters"]
    missing = [name for name in Comparison.COUNTERS if name not in counters]
    assert not missing, f"not on the server's /metrics: {missing}"
    return {name.removeprefix("vllm:"): value for name, value in counters.items()}


def test_kitchen_loads_the_server_as_vllm_bench_serve_does(comparison: Comparison,
                                                           kitchen_first: dict[str, Any]) -> None:
    kitchen, bench = counted(kitchen_first), counted(comparison.bench_run(None))
    for tool in (kitchen, bench):
        assert tool["request_success"] == LOAD.requests, tool
        assert tool["generation_tokens"] == LOAD.requests * LOAD.output_tokens, tool
        # every prompt token looked up in the prefix cache, few found (a new seed per run)
        assert tool["prefix_cache_queries"] >= tool["prompt_tokens"], tool
        assert tool["prefix_cache_hits"] < CHANCE_HITS * tool["prefix_cache_queries"], tool
    assert kitchen["prompt_tokens"] == LOAD.requests * LOAD.input_len, kitchen
    # vLLM's random dataset drops the tokenizer's special ids, so its prompts may differ
    # from the asked length by a token or two
    assert abs(bench["prompt_tokens"] - kitchen["prompt_tokens"]) <= 2 * LOAD.requests, (kitchen, bench)


def test_a_second_run_prefills_again_not_from_the_cache(comparison: Comparison,
                                                       kitchen_first: dict[str, Any]) -> None:
    first = kitchen_first
    second = comparison.kitchen_run(None)
    for run in (counted(first), counted(second)):
        assert run["prompt_tokens"] == LOAD.requests * LOAD.input_len, run
        assert run["prefix_cache_hits"] < CHANCE_HITS * run["prefix_cache_queries"], run
    # the control: the second run's prompts once more (the same seed) are found in the
    # cache, so the counters above would have shown a cached run
    again = counted(comparison.kitchen_run(None, seed=second["seed"]))
    assert again["prefix_cache_hits"] > 0.5 * again["prefix_cache_queries"], again
