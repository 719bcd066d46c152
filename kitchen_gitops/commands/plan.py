"""``kitchen plan``: which InferenceService serves which base with which flavors, per
environment, as a table or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import pipeline
from ..findings import Result
from ..plan import EnvironmentPlan
from ..report import Options as Display

# the plans are the report (a table, or their JSON); the catalog's findings go to stderr
DISPLAY = Display(document=True)
FORMATS = {"table": "text", "json": "json"}  # plan's --format → the reporter that shows it


@dataclass(frozen=True)
class Options:
    root: Path
    environments: tuple[str, ...] = ()
    format: str = "table"  # table or json


def _span(low: int, high: int) -> str:
    """``2`` for a fixed count, ``2→4`` from the replicas always running to full scale."""
    return str(low) if low == high else f"{low}→{high}"


def plan_table(p: EnvironmentPlan) -> str:
    env = p.environment
    rows = [("NAMESPACE/INFERENCESERVICE", "BASE", "FLAVORS", "MAX RANK", "GPUS", "REPLICAS", "KV FIT")]
    for s in p.services:
        rows.append((f"{s.namespace}/{s.name}", s.base.ref, ",".join(f.ref for f in s.flavors) or "-",
                     f"{max((f.rank for f in s.flavors), default=0)}→{s.max_lora_rank}",
                     f"{s.tensor_parallel_size}×{env.cluster.gpu.product}", _span(s.replicas, s.max_replicas)
                     + (f" ({_span(s.gpus, s.gpus_max)} GPUs)" if s.scaling is not None else ""),
                     f"{s.memory.full_length_sequences:.1f}× {s.max_model_len}"
                     + ("" if s.memory.fits else " (does not fit)")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"environment {env.name}: {env.cluster.gpu.total}× {env.cluster.gpu.product} "
             f"({env.cluster.gpu.memory_gib:g} GiB), "
             f"{_span(sum(s.gpus for s in p.services), sum(s.gpus_max for s in p.services))} GPUs planned, "
             f"{sum(t.gpu_quota for t in p.tenants)} GPUs of quota"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Plans:
    """The environments' plans as the reporters show them (findings.Detail)."""

    plans: dict[str, EnvironmentPlan]

    def text(self) -> str:
        return "\n".join(plan_table(p) for p in self.plans.values())

    def markdown(self) -> str:
        return self.text()

    def as_dict(self) -> dict[str, Any]:
        return {name: p.as_dict() for name, p in self.plans.items()}


def execute(opts: Options) -> Result:
    outcome = pipeline.plan(opts.root, list(opts.environments) or None)
    result = outcome.result("plan")
    if outcome.ok:
        result.detail = Plans(outcome.plans)
    return result
