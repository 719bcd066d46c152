"""``kitchen conform serving`` and ``kitchen conform gpu``: the post-sync proof, and the
signed evidence record of a serving run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import pipeline, settings
from ..errors import ConfigError, UsageError
from ..findings import CheckRecord, Result
from . import S3Options

if TYPE_CHECKING:
    from ..conform.expectations import Expectations
    from ..conform.readiness import IsvcSource
    from ..conform.serving import ServingOptions as RunOptions
    from ..evidence import S3Location

@dataclass(frozen=True)
class ExpectationsSource:
    path: Path | None = None
    catalog: Path | None = None
    environment: str | None = None


def build_expectations(src: ExpectationsSource) -> Expectations:
    """The expectations of a conformance run: from a catalog (with its environment) or
    from the JSON the rendered ConfigMap holds."""
    from ..conform.expectations import build_expectations as from_catalog
    from ..conform.expectations import load_expectations

    if src.catalog is not None:
        if not src.environment:
            raise UsageError("--catalog needs --env: which environment to check")
        outcome = pipeline.plan(src.catalog, [src.environment])
        if not outcome.ok:
            first = next(f for f in outcome.findings if f.severity.value == "error")
            raise ConfigError(f"the catalog does not plan: {first.format_text()}")
        return from_catalog(outcome.catalog, outcome.plans[src.environment])
    path = src.path if src.path is not None else settings.EXPECTATIONS.path(settings.EXPECTATIONS_FILE)
    exp = load_expectations(path)
    if src.environment and src.environment != exp.environment:
        raise UsageError(f"{path} holds the expectations of {exp.environment}, not {src.environment}")
    return exp


def parse_endpoints(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if v.startswith(("http://", "https://")):
            out["*"] = v
            continue
        key, sep, url = v.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise UsageError(f"--endpoint {v!r}: expected [NAMESPACE/NAME=]http(s)://HOST:PORT")
        out[key] = url
    return out


@dataclass(frozen=True)
class EvidenceOptions:
    """Where a conformance run writes its signed evidence record."""

    key: Path | None = None
    out: Path | None = None
    s3: str | None = None
    storage: S3Options = field(default_factory=S3Options)

    @property
    def wanted(self) -> bool:
        return self.out is not None or self.s3 is not None


@dataclass(frozen=True)
class ServingOptions:
    source: ExpectationsSource
    tenants: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    no_readiness: bool = False
    kubeconfig: str | None = None
    token_file: Path | None = None
    readiness_timeout: float | None = None
    load: dict[str, int | None] = field(default_factory=dict)
    isolation_rounds: int = 3
    perf_models: tuple[str, ...] = ()
    evaluation_concurrency: int | None = None
    evidence: EvidenceOptions | None = None


def _evidence_step(opts: EvidenceOptions | None) -> tuple[Any, S3Location | None] | None:
    """The signing key and upload location, checked before any check runs (exit 2 early)."""
    from ..evidence import S3Location, load_signing_key

    if opts is None or not opts.wanted:
        if opts is not None and opts.key is not None:
            raise UsageError("--evidence-key needs --evidence-out DIR or --evidence-s3 s3://BUCKET/PREFIX/")
        return None
    if opts.key is None:
        raise UsageError("--evidence-out/--evidence-s3 need --evidence-key FILE (the ed25519 signing key)")
    key = load_signing_key(opts.key)
    where = S3Location.parse(opts.s3) if opts.s3 is not None else None
    if where is not None:
        opts.storage.settings()  # an endpoint is given
    return key, where


def write_evidence(result: Result, exp: Expectations, opts: EvidenceOptions, key: Any,
                   where: S3Location | None) -> None:
    """Sign the run's record; write and upload it.  Adds an ``evidence`` check record: it
    passes when the record is stored, and could not run (exit 2) when storing failed."""
    from ..evidence import S3Location, build_record, record_name, s3_client, sign_record, upload, write_folder
    from ..findings import Finding, Location, Severity

    record = build_record(result, exp, now=datetime.now(UTC))
    data = sign_record(record, key)
    name = record_name(record, data)
    rec = CheckRecord("evidence", record["environment"], details={"record": name, "verdict": record["verdict"]})
    stored = []
    try:
        if opts.out is not None:
            stored.append(str(write_folder(opts.out, name, data)))
        if isinstance(where, S3Location):
            stored.append(upload(s3_client(opts.storage.settings(record["environment"])), where, name, data))
    except ConfigError as exc:
        rec.could_not_run(Finding("conform.evidence", Severity.ERROR, f"the evidence record was not stored: {exc}",
                                  Location("<evidence>"), expected="a writable folder or S3 prefix",
                                  environment=record["environment"]))
    rec.details["stored"] = stored
    rec.lines = [f"signed evidence {name} ({record['verdict']}): {', '.join(stored)}"] if stored else []
    assert result.records is not None
    result.records.append(rec)


@dataclass
class ServingRun:
    """A serving run assembled: the expectations, the checks' options, the cluster's API
    (for readiness) and the evidence signing key and upload location."""

    expectations: Expectations
    options: RunOptions
    source: IsvcSource | None
    signing: tuple[Any, S3Location | None] | None  # the key (cryptography's), where to upload


def _chosen_checks(opts: ServingOptions) -> tuple[str, ...]:
    from ..conform.results import CHECKS

    unknown = sorted((set(opts.checks) | set(opts.skip)) - set(CHECKS))
    if unknown:
        raise UsageError(f"unknown check {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    chosen = tuple(c for c in CHECKS if (not opts.checks or c in opts.checks) and c not in opts.skip)
    return tuple(c for c in chosen if c != "readiness") if opts.no_readiness else chosen


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the token: {exc.strerror}") from None


def build_serving(opts: ServingOptions) -> ServingRun:
    from ..conform.readiness import KubeIsvcSource
    from ..conform.serving import ServingOptions as RunOptions

    exp = build_expectations(opts.source).select(list(opts.tenants) or None, list(opts.services) or None)
    if not exp.services:
        raise UsageError(f"no InferenceService matches --tenant/--service in environment {exp.environment}")
    chosen = _chosen_checks(opts)
    overrides = {k: v for k, v in opts.load.items() if v is not None}
    if overrides:
        exp = exp.model_copy(update={"load": exp.load.model_copy(update=overrides)})
    run = RunOptions(checks=chosen, token=_token(opts.token_file), endpoints=parse_endpoints(opts.endpoints),
                     perf_models=opts.perf_models, isolation_rounds=opts.isolation_rounds,
                     readiness_timeout_s=opts.readiness_timeout,
                     evaluation_concurrency=opts.evaluation_concurrency)
    source: IsvcSource | None = KubeIsvcSource(opts.kubeconfig) if "readiness" in chosen else None
    return ServingRun(exp, run, source, _evidence_step(opts.evidence))


def execute_serving(opts: ServingOptions) -> Result:
    from ..conform.serving import run_serving

    built = build_serving(opts)
    result = run_serving(built.expectations, built.options, built.source)
    if built.signing is not None:
        assert opts.evidence is not None
        write_evidence(result, built.expectations, opts.evidence, *built.signing)
    return result


@dataclass(frozen=True)
class GpuOptions:
    source: ExpectationsSource
    product: str | None = None
    count: int | None = None
    memory_gib: float | None = None
    mig: bool | None = None
    no_expectations: bool = False
    node: str = ""
    min_driver: str | None = None
    workload: bool = True


def execute_gpu(opts: GpuOptions) -> Result:
    from ..conform.expectations import GpuSpec, Source
    from ..conform.gpu import GpuOptions as CheckOptions
    from ..conform.gpu import check_gpus

    spec: GpuSpec | None = None
    environment = opts.source.environment or "-"
    fail_on_warn = False
    if not opts.no_expectations:
        exp = build_expectations(opts.source)
        spec, environment, fail_on_warn = exp.gpu, exp.environment, bool(exp.fail_on_warn)
    overrides = {k: v for k, v in {"product": opts.product, "per_node": opts.count,
                                   "memory_gib": opts.memory_gib, "mig": opts.mig}.items() if v is not None}
    if spec is not None:
        spec = spec.model_copy(update=overrides)
    elif overrides:
        if opts.product is None or opts.count is None:
            raise UsageError("without expectations, give at least --product and --count")
        spec = GpuSpec(product=opts.product, per_node=opts.count, memory_gib=opts.memory_gib or 0.0,
                       mig=bool(opts.mig), source=Source(file="<command line>"))
    return check_gpus(spec, environment, CheckOptions(node=opts.node, min_driver=opts.min_driver,
                                                       workload=opts.workload), fail_on_warn=fail_on_warn)
