"""``kitchen artifacts verify|lock`` and ``kitchen bundle``: option parsing only.

The storage options are declared once (:func:`~kitchen_gitops.cli_options.with_storage_options`);
the work is in :mod:`kitchen_gitops.commands.artifacts`, :mod:`kitchen_gitops.commands.bundle`
and :mod:`kitchen_gitops.artifacts`.  Exit
codes: 0 clean, 1 findings, 2 usage, configuration or storage that cannot be reached at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import commands
from .cli_options import EnvOpt, Format, FormatOpt, OutputOpt, RootOpt, with_storage_options
from .commands import artifacts as artifacts_command
from .commands import bundle as bundle_command

artifacts_app = typer.Typer(
    name="artifacts",
    help="Verify models and adapters in storage against the catalog; lock their digests.",
    no_args_is_help=True,
)


@artifacts_app.command("verify")
@with_storage_options
def verify(root: RootOpt = Path("."), env: EnvOpt = None, fmt: FormatOpt = Format["text"],
           output: OutputOpt = None, *, storage: Any = None) -> None:
    """Check every base and flavor an environment serves: present, pinned sha256, coherent."""
    opts = artifacts_command.Options(root, tuple(env or ()), storage)
    result = artifacts_command.execute_verify(opts)
    raise typer.Exit(commands.publish(result, fmt.value, display=artifacts_command.VERIFY_DISPLAY, output=output))


@artifacts_app.command("lock")
@with_storage_options
def lock(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; report the pins that would change (exit 1).")] = False,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
    *, storage: Any = None,
) -> None:
    """Write the sha256 of what is in storage into the catalog (comments and format kept)."""
    opts = artifacts_command.Options(root, tuple(env or ()), storage, check=check)
    raise typer.Exit(commands.publish(artifacts_command.execute_lock(opts), fmt.value, output=output))


@with_storage_options
def bundle(
    root: RootOpt = Path("."),
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to carry in.")] = "",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Bundle folder; default <root>/bundle/<env>.")] = None,
    with_files: Annotated[bool, typer.Option(
        "--with-files", help="Also copy every model and adapter file into the bundle, "
                             "checked against its pin.")] = False,
    fmt: FormatOpt = Format["text"],
    *, storage: Any = None,
) -> None:
    """Write the carry-in manifest of an environment: images by digest, files with sha256."""
    opts = bundle_command.Options(root, (env,) if env else (), storage, out=out, with_files=with_files)
    raise typer.Exit(commands.publish(bundle_command.execute(opts), fmt.value))


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts_app, name="artifacts")
    app.command("bundle")(bundle)
