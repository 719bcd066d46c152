"""The ``kitchen`` command line: option parsing only.

Each command parses its options into a value and hands it to :mod:`kitchen_gitops.commands`;
the result is written in the chosen format and judged by the one exit rule.  Exit codes:
0 clean, 1 findings (or a stale ``rendered/``), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from . import commands, pipeline
from .cli_options import EnvOpt, Format, FormatOpt, OutputOpt, RootOpt
from .errors import KitchenError
from .escape import terminal, visible
from .plan import EnvironmentPlan
from .report import report

app = typer.Typer(
    name="kitchen",
    help="GitOps generator and gate for multi-LoRA LLM serving on KServe + vLLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def validate(root: RootOpt = Path("."), fmt: FormatOpt = Format["text"], output: OutputOpt = None) -> None:
    """Check the catalog: YAML, schema, names and cross references."""
    raise typer.Exit(commands.publish(commands.execute_validate(root), fmt.value, output=output))


def _span(low: int, high: int) -> str:
    """``2`` for a fixed count, ``2→4`` from the replicas always running to full scale."""
    return str(low) if low == high else f"{low}→{high}"


def _plan_table(p: EnvironmentPlan) -> str:
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


@app.command()
def plan(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.table,
) -> None:
    """Show which InferenceService serves which base with which flavors, per environment."""
    outcome = pipeline.plan(root, env)
    result = outcome.result("plan")
    if outcome.findings:
        sys.stderr.write(report(result, "text"))
    if not outcome.ok:
        raise typer.Exit(result.exit_code)
    if fmt is PlanFormat.json:
        doc = {name: p.as_dict() for name, p in outcome.plans.items()}
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        typer.echo("\n".join(_plan_table(p) for p in outcome.plans.values()), nl=False)
    raise typer.Exit(result.exit_code)


@app.command()
def render(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder; default <root>/rendered.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the output is stale.")] = False,
    fmt: FormatOpt = Format["text"],
    output: Annotated[Path | None, typer.Option("--output", help="Write the report here instead of stdout.")] = None,
) -> None:
    """Render manifests per environment under rendered/<env>/ (or check they are up to date)."""
    opts = commands.RenderOptions(root, tuple(env or ()), out, check)
    raise typer.Exit(commands.publish(commands.execute_render(opts), fmt.value, output=output))


@app.command()
def diff(
    root: RootOpt = Path("."),
    base: Annotated[str, typer.Option("--base", "-b", help="Git revision to compare with, e.g. origin/main.")] = "HEAD",
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """What the catalog in the working tree changes, per environment, against a Git revision."""
    result = commands.execute_diff(commands.DiffOptions(root, base), fmt.value)
    raise typer.Exit(commands.publish(result, fmt.value, output=output))


# Command groups that live in their own modules; each module defines register(app).
EXTENSIONS: tuple[str, ...] = ("cli_artifacts", "cli_conform", "cli_policy", "cli_promote", "cli_rollback")


def _register_extensions() -> None:
    import importlib

    for name in EXTENSIONS:
        importlib.import_module(f"{__package__}.{name}").register(app)


_register_extensions()


def main(argv: list[str] | None = None) -> int:
    try:
        # standalone_mode=False: typer returns the code of typer.Exit instead of exiting
        rc = app(args=argv, standalone_mode=False)
    except KitchenError as exc:
        typer.echo(f"kitchen: error: {terminal(str(exc), keep_newlines=True)}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("kitchen: aborted", err=True)
        return 2
    except Exception as exc:
        # typer's (vendored) click usage errors: unknown command, bad option value
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            return 2
        if os.environ.get("KITCHEN_DEBUG"):
            raise
        # a bug of kitchen's, not the input's: say so on one line, never a traceback in CI logs
        typer.echo(f"kitchen: internal error: {type(exc).__name__}: {visible(str(exc))[:500]} "
                   "(set KITCHEN_DEBUG=1 for the traceback, and report it)", err=True)
        return 2
    return int(rc) if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
