"""``kitchen validate``: the catalog's YAML, schema, names and cross references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..findings import Result


@dataclass(frozen=True)
class Options:
    root: Path


def execute(opts: Options) -> Result:
    outcome = pipeline.validate(opts.root)
    c = outcome.catalog
    summary = [f"catalog ok: {len(c.bases)} bases, {len(c.flavors)} flavors, {len(c.tenants)} tenants, "
               f"{len(c.environments)} environments"] if outcome.ok else []
    result = outcome.result("validate", summary)
    result.environments = sorted(c.environments)
    return result
