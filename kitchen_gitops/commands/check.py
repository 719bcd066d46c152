"""``kitchen check``: the CI gate (the work is :func:`kitchen_gitops.pipeline.check`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .. import pipeline, settings
from ..errors import UsageError
from ..findings import Result


@dataclass(frozen=True)
class Options:
    root: Path
    environments: tuple[str, ...] = ()
    policies: Path | None = None
    waivers: Path | None = None
    engine: str = settings.DEFAULT_ENGINE
    opa_url: str | None = None
    opa_timeout: float = settings.OPA_TIMEOUT_S
    render_check: bool = True
    fail_on_warn: bool = False
    today: str | None = None  # YYYY-MM-DD: the day waivers expire against (tests)


def parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date YYYY-MM-DD") from None


def build(opts: Options) -> pipeline.CheckOptions:
    return pipeline.CheckOptions(opts.root, opts.environments, opts.policies, opts.waivers, opts.engine,
                                 opts.opa_url, opts.opa_timeout, opts.render_check, opts.fail_on_warn,
                                 parse_day(opts.today))


def execute(opts: Options) -> Result:
    return pipeline.check(build(opts))
