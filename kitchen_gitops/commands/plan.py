"""``kitchen plan``: which InferenceService serves which base with which flavors, per
environment, as a table or JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..findings import Result
from ..plan import EnvironmentPlan
from ..report import report


@dataclass(frozen=True)
class Options:
    root: Path
    environments: tuple[str, ...] = ()
    format: str = "table"  # table or json


@dataclass
class Planned:
    """The plans, and the findings of the catalog they come from."""

    result: Result
    plans: dict[str, EnvironmentPlan]
    ok: bool


def plan_table(p: EnvironmentPlan) -> str:
    env = p.environment
    rows = [("NAMESPACE/INFERENCESERVICE", "BASE", "FLAVORS", "MAX RANK", "GPUS", "REPLICAS", "KV FIT")]
    for s in p.services:
        rows.append((f"{s.namespace}/{s.name}", s.base.ref, ",".join(f.ref for f in s.flavors) or "-",
                     f"{max((f.rank for f in s.flavors), default=0)}→{s.max_lora_rank}",
                     f"{s.tensor_parallel_size}×{env.cluster.gpu.product}", str(s.replicas),
                     f"{s.memory.full_length_sequences:.1f}× {s.max_model_len}"
                     + ("" if s.memory.fits else " (does not fit)")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"environment {env.name}: {env.cluster.gpu.total}× {env.cluster.gpu.product} "
             f"({env.cluster.gpu.memory_gib:g} GiB), {sum(s.gpus for s in p.services)} GPUs planned, "
             f"{sum(t.gpu_quota for t in p.tenants)} GPUs of quota"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def plans_text(plans: dict[str, EnvironmentPlan], fmt: str) -> str:
    if fmt == "json":
        doc = {name: p.as_dict() for name, p in plans.items()}
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return "\n".join(plan_table(p) for p in plans.values())


def execute(opts: Options) -> Planned:
    outcome = pipeline.plan(opts.root, list(opts.environments) or None)
    return Planned(outcome.result("plan"), outcome.plans, outcome.ok)


def publish(planned: Planned, fmt: str) -> int:
    """The catalog's findings on stderr; the plans, if the catalog plans, on stdout."""
    if planned.result.findings:
        sys.stderr.write(report(planned.result, "text"))
    if planned.ok:
        sys.stdout.write(plans_text(planned.plans, fmt))
    return planned.result.exit_code
