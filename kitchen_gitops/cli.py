"""The ``kitchen`` command line: option parsing only.

Each command parses its options into its module's ``Options`` (:mod:`kitchen_gitops.commands`);
the result is written in the chosen format and judged by the one exit rule.  Exit codes:
0 clean, 1 findings (or a stale ``rendered/``), 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from . import commands, settings
from .cli_options import EnvOpt, Format, FormatOpt, OutputOpt, RootOpt
from .commands import diff as diff_command
from .commands import plan as plan_command
from .commands import render as render_command
from .commands import validate as validate_command
from .errors import KitchenError
from .escape import terminal, visible

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
    result = validate_command.execute(validate_command.Options(root))
    raise typer.Exit(commands.publish(result, fmt.value, output=output))


@app.command()
def plan(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.table,
) -> None:
    """Show which InferenceService serves which base with which flavors, per environment."""
    opts = plan_command.Options(root, tuple(env or ()), fmt.value)
    result = plan_command.execute(opts)
    raise typer.Exit(commands.publish(result, plan_command.FORMATS[opts.format], display=plan_command.DISPLAY))


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
    opts = render_command.Options(root, tuple(env or ()), out, check)
    raise typer.Exit(commands.publish(render_command.execute(opts), fmt.value, output=output))


@app.command()
def diff(
    root: RootOpt = Path("."),
    base: Annotated[str, typer.Option("--base", "-b", help="Git revision to compare with, e.g. origin/main.")] = "HEAD",
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """What the catalog in the working tree changes, per environment, against a Git revision."""
    result = diff_command.execute(diff_command.Options(root, base))
    raise typer.Exit(commands.publish(result, fmt.value, display=diff_command.DISPLAY, output=output))


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
        if settings.DEBUG.flag():
            raise
        # a bug of kitchen's, not the input's: say so on one line, never a traceback in CI logs
        typer.echo(f"kitchen: internal error: {type(exc).__name__}: {visible(str(exc))[:500]} "
                   f"(set {settings.DEBUG.name}=1 for the traceback, and report it)", err=True)
        return 2
    return int(rc) if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
