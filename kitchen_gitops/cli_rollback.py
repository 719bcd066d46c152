"""``kitchen rollback`` and ``kitchen history``: option parsing only.

Exit codes of ``rollback``: 0 a proven state to return to (with ``--write``: returned to),
or nothing to roll back; 1 no proven state, the one named by ``--to`` is not proven, or an
edit kitchen does not make (nothing written); 2 usage or configuration (unknown
environment, a revision the repository lacks, not a Git checkout, unreadable keys).
``history``: 0; 1 an index entry of the history whose record does not verify; 2 as above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import commands, operations
from .cli_options import Format, FormatOpt, OutputOpt, RootOpt
from .cli_promote import _now

EnvironmentOpt = Annotated[str, typer.Option("--env", "-e", help="The environment (e.g. prod).")]


def rollback(
    env: EnvironmentOpt,
    root: RootOpt = Path("."),
    to: Annotated[str | None, typer.Option(
        "--to", metavar="REV",
        help="The Git revision to return to; default the newest earlier state with evidence for every "
             "version.")] = None,
    write: Annotated[bool, typer.Option(
        "--write", help="Edit the tenants' flavor lists and aliases back, and record the rollback in the "
                        "evidence index (all or nothing).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded with the rollback.")] = "",
    now: Annotated[str | None, typer.Option(
        "--now", help="The time recorded (UTC, e.g. 2026-03-01T12:00:00Z); default now.")] = None,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """Return an environment to its last state whose every flavor version was proven there."""
    opts = operations.RollbackOptions(root, env, to, write, reason, _now(now))
    raise typer.Exit(commands.publish(operations.execute_rollback(opts, fmt.value), fmt.value,
                                      display=operations.DISPLAY, output=output))


def history(
    env: EnvironmentOpt,
    root: RootOpt = Path("."),
    flavor: Annotated[list[str] | None, typer.Option(
        "--flavor", help="Only this flavor (name, or name@version); repeatable.")] = None,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """Every flavor version an environment served: when, by whose commit, with which evidence."""
    opts = operations.HistoryOptions(root, env, tuple(flavor or ()))
    raise typer.Exit(commands.publish(operations.execute_history(opts, fmt.value), fmt.value,
                                      display=operations.DISPLAY, output=output))


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
    app.command("history")(history)
