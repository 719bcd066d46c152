"""``kitchen diff``: what the working tree's catalog serves and renders differently from a
Git revision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..findings import Result
from ..report import Options as Display

# the changes are the report: no headline of counts above them
DISPLAY = Display(headline=False)


@dataclass(frozen=True)
class Options:
    root: Path
    base: str = "HEAD"


def execute(opts: Options) -> Result:
    """What the working tree serves and renders differently from ``base``: the changes as
    the result's detail (each reporter shows them in its form) and ``info["diff"]`` (json)."""
    from ..diff import diff_against

    outcome = pipeline.render(opts.root)
    result = outcome.result("diff")
    if not outcome.ok:
        return result
    diff = diff_against(opts.root, opts.base, outcome.plans, outcome.rendered)
    result.detail = diff
    result.info = {"diff": diff.as_dict()}
    return result
