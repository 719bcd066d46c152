"""Options that several commands share, declared once: the catalog root, the
environments, and the findings report format (the reporters' registry is its list)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .report import REPORTERS

Format = Enum("Format", {name: name for name in REPORTERS}, type=str)  # type: ignore[misc]

RootOpt = Annotated[Path, typer.Option(
    "--root", "--catalog",
    help="Repository root holding catalog/, environments/, templates/ and policies/.")]
EnvOpt = Annotated[list[str] | None, typer.Option(
    "--env", "-e", help="Environment (repeatable); default: all.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
