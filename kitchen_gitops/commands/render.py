"""``kitchen render [--check]``: manifests per environment, written all or nothing, or
compared with the committed output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..errors import ConfigError
from ..findings import Result, sort_findings
from ..write import link_on_the_way, write_outputs


@dataclass(frozen=True)
class Options:
    root: Path
    environments: tuple[str, ...] = ()
    out: Path | None = None
    check: bool = False


def execute(opts: Options) -> Result:
    """Render (or with ``check``, compare with the committed output) every environment asked."""
    outcome = pipeline.render(opts.root, opts.environments or None)
    command = "render --check" if opts.check else "render"
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = [] if opts.check else ["nothing written: fix the findings above"]
        return result
    target = opts.out if opts.out is not None else pipeline.output_dir(opts.root, outcome.catalog)
    full = not opts.environments
    if opts.check:
        stale = pipeline.stale_findings(target, outcome.outputs, full=full, root=opts.root)
        result = outcome.result(command)
        result.findings = sort_findings([*result.findings, *stale])
        result.summary = ([f"{len(stale)} rendered file(s) out of date: run `kitchen render` and commit"]
                          if stale else [f"rendered output up to date ({', '.join(outcome.rendered)})"])
        return result
    linked = link_on_the_way(opts.root, target) if opts.out is None else None
    if linked is not None:
        raise ConfigError(f"{pipeline.shown(linked, opts.root)}: a symbolic link on the way to the rendered output; "
                          "kitchen writes it only into folders of the repository, never through a link "
                          "(remove the link, then render)")
    write_outputs(target, outcome.outputs, prune_environments=full)
    return outcome.result(command, [f"rendered {name}: {len(files)} files in {target / name}"
                                    for name, files in outcome.outputs.items()])
