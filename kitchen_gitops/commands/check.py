"""``kitchen check``: the CI gate (the work is :func:`kitchen_gitops.pipeline.check`)."""

from __future__ import annotations

import datetime as dt

from .. import pipeline
from ..errors import UsageError
from ..findings import Result

Options = pipeline.CheckOptions  # what the command line says, parsed


def parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date YYYY-MM-DD") from None


def execute(opts: Options) -> Result:
    return pipeline.check(opts)
