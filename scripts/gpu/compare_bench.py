#!/usr/bin/env python3
"""kitchen conform's load vs `vllm bench serve` on one live server, same load, taking turns.

    python3 compare_bench.py URL MODEL TOKENIZER_DIR OUTDIR [CONCURRENCY REQUESTS OUTPUT_TOKENS INPUT_LEN ROUNDS]

The method of the project's tests (tests/support/bench_compare.py, imported from the
kitchen checkout on PYTHONPATH): the `random` dataset for both tools with a new seed every
run, INPUT_LEN prompt tokens, --ignore-eos, same requests, concurrency, request rate inf;
a warm-up of each tool, then ROUNDS runs of each, taking turns; per-request figures
pooled; server-side means and the prefix-cache hit rate from /metrics per run.
Writes OUTDIR/bench_compare.md and OUTDIR/bench_compare.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the kitchen checkout first: a carried wheel's stray top-level `tests` must not shadow it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tests.support.bench_compare import Comparison, Load

URL, MODEL, TOKENIZER, OUTDIR = sys.argv[1:5]
CONC, REQS, OUT_TOKENS, INPUT_LEN, ROUNDS = (int(x) for x in (sys.argv[5:10] or [16, 128, 128, 512, 3]))
OUT = Path(OUTDIR)
OUT.mkdir(parents=True, exist_ok=True)
VOCAB = int(json.loads((Path(TOKENIZER) / "config.json").read_text())["vocab_size"])

cmp = Comparison(URL, MODEL, Path(TOKENIZER), VOCAB, Load(CONC, REQS, OUT_TOKENS, INPUT_LEN), OUT)
try:
    print(f"warm-up (kitchen, then vllm bench serve) at {URL} model {MODEL}", flush=True)
    cmp.kitchen_run(None)
    cmp.bench_run(None)
    cmp.rounds(ROUNDS)
finally:
    cmp.close()
text = cmp.table()
print(text, flush=True)
(OUT / "bench_compare.md").write_text(text + "\n")
(OUT / "bench_compare.json").write_text(json.dumps(
    {"load": vars(cmp.load), "rows": {k: {"kitchen": a, "vllm_bench": b} for k, (a, b) in cmp.rows().items()},
     "kitchen_runs": cmp.kitchen.runs, "bench_runs": cmp.bench.runs}, indent=1))
