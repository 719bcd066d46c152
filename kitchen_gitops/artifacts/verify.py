"""``kitchen artifacts verify``: every file an environment serves, against the catalog.

Findings point at the catalog line of the pin that is wrong (or of the source, rank,
base or architecture fact that does not match what storage holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..evaluation_sets import MAX_S3_DATASET_BYTES, METRICS, parse_dataset
from ..findings import CheckRecord, Finding, Location, Severity, sort_findings
from ..model import Base, Catalog, Flavor
from ..rules import (
    ARTIFACTS_CHECKSUM_MISMATCH,
    ARTIFACTS_MISSING_FILE,
    ARTIFACTS_READ_ERROR,
    ARTIFACTS_SIZE_MISMATCH,
    ARTIFACTS_UNSUPPORTED_SOURCE,
)
from .coherence import check_adapter, check_base
from .scan import Artifact, ArtifactScan, PathKey, Progress, StorageOptions, scan_environments
from .storage import REPOSITORY


def _loc(catalog: Catalog, kind: str, key: str, path: PathKey, *, value: bool) -> Location:
    doc = catalog.documents.get((kind, key))
    return doc.location(path, value=value) if doc is not None else Location("<catalog>")


@dataclass
class VerifyResult:
    scans: list[ArtifactScan]
    findings: list[Finding]

    @property
    def files_checked(self) -> int:
        return len({(s.store.identity if s.store else "", s.artifact.source.uri(n))
                    for s in self.scans for n in s.digests})

    @property
    def bytes_checked(self) -> int:
        seen: dict[tuple[str, str], int] = {}
        for s in self.scans:
            for n, d in s.digests.items():
                seen[(s.store.identity if s.store else "", s.artifact.source.uri(n))] = d.size
        return sum(seen.values())


def _source_path(art: Artifact) -> PathKey:
    """Where the catalog names the artifact's storage: a flavor's source, or its set."""
    if art.role == "dataset":
        ds = art.obj.evaluation.dataset if isinstance(art.obj, Flavor) and art.obj.evaluation else None
        return ("evaluation", "dataset", "path" if ds is not None and ds.path else "uri")
    return ("source",)


def storage_findings(catalog: Catalog, scan: ArtifactScan) -> list[Finding]:
    """What the listing says: an unreadable source, a missing file."""
    art = scan.artifact
    out: list[Finding] = []
    if scan.unsupported:
        out.append(Finding(ARTIFACTS_UNSUPPORTED_SOURCE, Severity.ERROR,
                           f"{art.kind} {art.key}: cannot read {art.source.uri()}: "
                           f"{scan.unsupported}",
                           _loc(catalog, art.kind, art.key, _source_path(art), value=True),
                           expected="an s3:// or pvc:// source"))
        return out
    if scan.problem is not None:
        out.append(Finding(scan.problem.rule, Severity.ERROR,
                           f"{art.kind} {art.key}: {scan.problem.message}",
                           _loc(catalog, art.kind, art.key, _source_path(art), value=True),
                           expected=f"{art.source.uri()} readable with the environment's "
                                    "credentials"))
        return out
    for pin in art.pins:
        if pin.name in scan.missing:
            out.append(Finding(ARTIFACTS_MISSING_FILE, Severity.ERROR,
                               f"{art.source.uri(pin.name)} is not in storage "
                               f"(environment {scan.environment})",
                               _loc(catalog, art.kind, art.key, pin.entry_path, value=False),
                               expected=f"the file pinned for {art.kind} {art.key}"))
        elif pin.name in scan.errors:
            out.append(Finding(ARTIFACTS_READ_ERROR, Severity.ERROR, scan.errors[pin.name],
                               _loc(catalog, art.kind, art.key, pin.entry_path, value=False)))
    return out


def checksum_findings(catalog: Catalog, scan: ArtifactScan) -> list[Finding]:
    art = scan.artifact
    out: list[Finding] = []
    for pin in art.pins:
        d = scan.digests.get(pin.name)
        if d is None:
            continue
        if d.sha256 != pin.sha256:
            out.append(Finding(
                ARTIFACTS_CHECKSUM_MISMATCH, Severity.ERROR,
                f"sha256 of {art.source.uri(pin.name)} is {d.sha256}, the catalog pins "
                f"{pin.sha256}",
                _loc(catalog, art.kind, art.key, pin.sha_path, value=True),
                expected=f"sha256 {pin.sha256}; if the new file is approved, run "
                         "`kitchen artifacts lock`"))
        if pin.size is not None and pin.size_path is not None and d.size != pin.size:
            out.append(Finding(
                ARTIFACTS_SIZE_MISMATCH, Severity.ERROR,
                f"{art.source.uri(pin.name)} has {d.size} bytes, the catalog pins {pin.size}",
                _loc(catalog, art.kind, art.key, pin.size_path, value=True),
                expected=f"size {pin.size}"))
    return out


def dataset_findings(catalog: Catalog, scan: ArtifactScan) -> list[Finding]:
    """An evaluation set in S3 read whole while it was hashed: every line a record
    (``s3://…:line:col``).  A set of the repository was read by validate already."""
    art = scan.artifact
    flavor = art.obj
    if art.source.scheme == REPOSITORY or not isinstance(flavor, Flavor) or flavor.evaluation is None:
        return []
    e = flavor.evaluation
    out: list[Finding] = []
    for pin in art.pins:
        d = scan.digests.get(pin.name)
        if d is None or d.sha256 != pin.sha256 or e.metric not in METRICS:
            continue  # a wrong pin is reported as such; a wrong metric by validate
        # the head holds the whole set up to far beyond its bound: a cut head is too large anyway
        _, problems = parse_dataset(d.head if d.head_complete else bytes(MAX_S3_DATASET_BYTES + 1),
                                    e.metric, e.labels or (), limit=MAX_S3_DATASET_BYTES)
        out += [Finding(p.rule, Severity.ERROR, f"evaluation set of flavor {art.key}: {p.message}",
                        Location(art.source.uri(pin.name), p.line, p.col), expected=p.expected)
                for p in problems]
    return out


def coherence_findings(catalog: Catalog, scan: ArtifactScan) -> list[Finding]:
    art = scan.artifact
    if art.role == "dataset":
        return dataset_findings(catalog, scan)
    uri = art.source.uri()
    if isinstance(art.obj, Flavor):
        base: Base | None = catalog.bases.get(str(art.obj.base))
        return check_adapter(catalog, art.key, art.obj, base,
                             scan.digests.get("adapter_config.json"),
                             scan.digests.get("adapter_model.safetensors"), uri)
    return check_base(catalog, art.key, art.obj, scan.digests, uri)


def scan_findings(catalog: Catalog, scan: ArtifactScan) -> list[Finding]:
    """Everything wrong with one artifact as one environment sees it."""
    found = [*storage_findings(catalog, scan), *checksum_findings(catalog, scan),
             *coherence_findings(catalog, scan)]
    subject = f"{scan.artifact.kind}/{scan.artifact.key}"
    return [replace(f, environment=scan.environment, subject=f.subject or subject) for f in found]


def verify_scans(catalog: Catalog, scans: Iterable[ArtifactScan]) -> list[Finding]:
    return sort_findings(f for scan in scans for f in scan_findings(catalog, scan))


def verify_records(catalog: Catalog, scans: Iterable[ArtifactScan]) -> list[CheckRecord]:
    """A check record per artifact and environment: its files, bytes and findings."""
    records = []
    for scan in scans:
        art = scan.artifact
        role = "" if art.role == "files" else f":{art.role}"
        rec = CheckRecord(f"artifacts.{art.kind.lower() if not role else art.role}",
                          f"{scan.environment}:{art.kind}/{art.key}{role}",
                          details={"source": art.source.uri(), "files": len(scan.digests),
                                   "bytes": sum(d.size for d in scan.digests.values())})
        for f in scan_findings(catalog, scan):
            rec.add(f)
        records.append(rec)
    return sorted(records, key=lambda r: r.subject)


def verify_artifacts(catalog: Catalog, env_names: Sequence[str], options: StorageOptions,
                     progress: Progress | None = None) -> VerifyResult:
    scans = scan_environments(catalog, env_names, options, progress=progress)
    return VerifyResult(scans, verify_scans(catalog, scans))
