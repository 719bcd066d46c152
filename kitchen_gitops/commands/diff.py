"""``kitchen diff``: what the working tree's catalog serves and renders differently from a
Git revision."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..findings import Result
from ..report import resolve_format


@dataclass(frozen=True)
class Options:
    root: Path
    base: str = "HEAD"
    format: str = "text"


def execute(opts: Options) -> Result:
    """What the working tree serves and renders differently from ``base``: the changes in
    the result's summary (text, markdown, github) and ``info["diff"]`` (json)."""
    from ..diff import FORMATS, diff_against

    outcome = pipeline.render(opts.root)
    result = outcome.result("diff")
    result.headline = False
    if not outcome.ok:
        return result
    diff = diff_against(opts.root, opts.base, outcome.plans, outcome.rendered)
    name = resolve_format(opts.format, os.environ)
    result.summary = FORMATS["markdown" if name == "markdown" else "text"](diff).rstrip("\n").split("\n")
    result.info = {"diff": json.loads(FORMATS["json"](diff))}
    return result
