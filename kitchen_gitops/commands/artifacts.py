"""``kitchen artifacts verify`` and ``kitchen artifacts lock``: models and adapters in
storage against the catalog's pins; the pins written from storage."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import pipeline
from ..artifacts.scan import StorageOptions
from ..findings import Result, sort_findings
from ..report import Options as Display
from ..rules import EVALUATION_DATASET_PIN


@dataclass(frozen=True)
class Options:
    root: Path
    environments: tuple[str, ...] = ()
    storage: StorageOptions = field(default_factory=StorageOptions)
    check: bool = False  # lock --check
    out: Path | None = None  # bundle
    with_files: bool = False  # bundle


# verify's text lists the findings only: a line per artifact is for the machine-read formats
VERIFY_DISPLAY = Display(text_records=False)

# What the artifacts commands settle themselves: verify reports a repository set that
# differs from its pin as artifacts.checksum-mismatch, and lock writes the new pin.
ARTIFACT_SETTLED = frozenset({EVALUATION_DATASET_PIN})


def catalog_for(root: Path, envs: Sequence[str], command: str) -> tuple[pipeline.Outcome, list[str], Result | None]:
    """The validated catalog and the environments asked, or the result that stops the command."""
    outcome = pipeline.validate(root)
    outcome.findings = [f for f in outcome.findings if f.rule_id not in ARTIFACT_SETTLED]
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = ["the catalog has errors: fix them before checking artifacts"]
        return outcome, [], result
    return outcome, pipeline.select_environments(outcome.catalog, envs), None


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def execute_verify(opts: Options) -> Result:
    from ..artifacts.scan import scan_environments
    from ..artifacts.verify import verify_records

    outcome, envs, failed = catalog_for(opts.root, opts.environments, "artifacts verify")
    if failed is not None:
        return failed
    t0 = time.monotonic()
    scans = scan_environments(outcome.catalog, envs, opts.storage)
    result = Result("artifacts verify", records=verify_records(outcome.catalog, scans), environments=envs,
                    gates=outcome.gates, started=datetime.now(UTC).isoformat(timespec="seconds"))
    result.duration_s = round(time.monotonic() - t0, 3)
    files = {(s.store.identity if s.store else "", s.artifact.source.uri(n)): d.size
             for s in scans for n, d in s.digests.items()}
    arts = {(s.kind, s.key) for s in (sc.artifact for sc in scans)}
    bases = sum(1 for k, _ in arts if k == "Base")
    verdict = "ok" if result.exit_code == 0 else "FAILED"
    line = (f"artifacts {verdict}: {len(files)} files ({mib(sum(files.values()))}) of {bases} bases and "
            f"{len(arts) - bases} flavors checked in {', '.join(envs)}")
    if result.all_findings():
        result.notes = [line]
    else:
        result.summary = [line]
    result.info = {"files": len(files), "bytes": sum(files.values())}
    return result


def execute_lock(opts: Options) -> Result:
    from ..artifacts.lock import lock_updates, render_locked, stale_findings, write_files
    from ..artifacts.scan import scan_environments

    command = "artifacts lock --check" if opts.check else "artifacts lock"
    outcome, envs, failed = catalog_for(opts.root, opts.environments, command)
    if failed is not None:
        return failed
    scans = scan_environments(outcome.catalog, envs, opts.storage)
    updates, findings = lock_updates(outcome.catalog, scans)
    result = Result(command, sort_findings(findings), environments=envs, gates=outcome.gates)
    if opts.check:
        result.findings = sort_findings([*findings, *stale_findings(updates)])
        if not result.findings:
            result.summary = [f"catalog pins up to date with storage ({', '.join(envs)})"]
        return result
    if result.exit_code:
        result.notes = ["nothing written: fix the findings above"]
        return result
    write_files(render_locked(updates), root=outcome.catalog.root)
    files = len({u.path for u in updates})
    result.summary = [f"{u.location}: {u.what}: {u.old} -> {u.new}" for u in updates]
    result.summary.append(f"locked {len(updates)} pin(s) in {files} file(s)" if updates
                          else "catalog pins already match storage")
    return result
