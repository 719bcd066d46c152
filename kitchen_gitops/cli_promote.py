"""``kitchen promote``: option parsing only.

Exit codes: 0 every flavor version the environment would newly serve has passing,
signed, fresh evidence (with ``--write``: promoted); 1 evidence is missing, refused,
failed, expired or for other bytes (nothing written); 2 usage or configuration
(unknown environment, no ``promotes_from``, unreadable index or keys, S3 unreachable).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from . import commands, settings
from .cli_options import Format, FormatOpt, OutputOpt, RootOpt
from .commands import promote as promote_command
from .errors import UsageError


def _now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now {value!r} is not a time like 2026-03-01T12:00:00Z") from None
    if when.tzinfo is None:
        raise UsageError(f"--now {value!r} needs a time zone (Z for UTC)")
    return when


def promote(
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to promote into (e.g. prod).")],
    root: RootOpt = Path("."),
    evidence: Annotated[list[Path] | None, typer.Option(
        "--evidence", file_okay=False,
        help="A folder of signed evidence records (*.json, searched recursively); repeatable.")] = None,
    from_s3: Annotated[bool, typer.Option(
        "--from-s3", help="Read the evidence records from the S3 prefix of the environment promoted from.")] = False,
    write: Annotated[bool, typer.Option(
        "--write", help="Update the tenants' flavor lists and the evidence index (all or nothing).")] = False,
    flavor: Annotated[list[str] | None, typer.Option(
        "--flavor", help="Promote only this flavor (name); repeatable.")] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", metavar="REASON",
        help="Record the flavor versions the environment serves today, and its index lacks, as its baseline "
             "(adopting the gate; the owners of evidence/ review it).")] = None,
    now: Annotated[str | None, typer.Option(
        "--now", help="Judge freshness at this time (UTC, e.g. 2026-03-01T12:00:00Z); default now.")] = None,
    s3_endpoint: Annotated[str | None, typer.Option(
        "--s3-endpoint", envvar=settings.S3_ENDPOINT.name,
        help="S3 endpoint as seen from here; default the source environment's.")] = None,
    s3_region: Annotated[str, typer.Option("--s3-region", help="S3 region.")] = settings.S3_REGION,
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", envvar=settings.CA_BUNDLE.name, dir_okay=False,
        help="PEM CA bundle of the S3 endpoint.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="S3 timeout in seconds.")] = settings.S3_TIMEOUT_S,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """Promote flavor versions into an environment, with signed conformance evidence from the one before."""
    opts = promote_command.Options(root, env, tuple(evidence or ()), from_s3,
                                   commands.S3Options(s3_endpoint, s3_region, ca_bundle, timeout), write,
                                   tuple(flavor or ()), _now(now), baseline)
    raise typer.Exit(commands.publish(promote_command.execute(opts), fmt.value, output=output))


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
