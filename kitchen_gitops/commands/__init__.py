"""One module per command: each parses nothing and decides nothing of its stages' business.

A command's module holds its ``Options`` (what the command line said, as a value), a
``build`` that assembles the parts the options name (where there is more than the options
to assemble) and ``execute``, which runs them and returns a
:class:`~kitchen_gitops.findings.Result`.  The CLI modules (``cli*.py``) only parse a
command line into ``Options`` (and the reporter's display options) and hand the result to
:func:`publish`, which writes it through the one reporter registry and returns the one
exit rule's code (``Result.exit_code``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import settings
from ..errors import ConfigError, UsageError
from ..escape import terminal
from ..findings import Result
from ..report import SHOWN, report, resolve_format

if TYPE_CHECKING:  # the S3 client loads where a command reaches S3
    from ..artifacts.storage import S3Settings
from ..report import Options as Display
from ..write import write_reports


def publish(result: Result, fmt: str, *, display: Display = SHOWN, output: Path | None = None,
            stream: TextIO | None = None, also: Sequence[tuple[Path, str]] = ()) -> int:
    """Write the report (to ``output`` or ``stream``, default stdout) and any extra copies
    in other formats, shown as ``display`` says; returns the exit code of the one exit rule."""
    name = resolve_format(fmt)
    files = {path: report(result, other, display) for path, other in also}
    for path, other in also:
        _make_folder(path, other)
    if display.document and result.findings:  # the detail is the report: findings beside it
        sys.stderr.write(report(result, "text"))
    text = report(result, name, display)
    if output is not None:
        files[output] = text
    write_reports(files)  # the report and its copies: all written, or none
    if output is None:
        (stream or sys.stdout).write(text)
    for note in result.notes:
        sys.stderr.write(terminal(note) + "\n")
    return result.exit_code


def _make_folder(path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the {what} report: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class S3Options:
    """An S3 endpoint as seen from here; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""

    endpoint: str | None = None
    region: str = settings.S3_REGION
    ca_bundle: Path | None = None
    timeout_s: float = settings.S3_TIMEOUT_S

    def settings(self, environment: str = "") -> S3Settings:
        from ..artifacts.storage import S3Settings

        if not self.endpoint:
            raise UsageError("S3 needs --s3-endpoint (host:port or http(s)://host:port)")
        return S3Settings(endpoint=self.endpoint, region=self.region,
                          access_key=settings.credential(settings.ACCESS_KEY),
                          secret_key=settings.credential(settings.SECRET_KEY),
                          session_token=settings.credential(settings.SESSION_TOKEN),
                          ca_bundle=self.ca_bundle, timeout_s=self.timeout_s, environment=environment)
