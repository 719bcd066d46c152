"""What each command does, given its parsed options: ``build_*`` assembles, ``execute_*`` runs.

The CLI modules (``cli*.py``) parse options into the values below and call these; the
result of every command that reports findings or check results is a
:class:`~kitchen_gitops.findings.Result`, written by :func:`publish` in the chosen format
and judged by the one exit rule (``Result.exit_code``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from . import pipeline
from .errors import ConfigError, UsageError
from .escape import terminal
from .findings import CheckRecord, Gates, Result, sort_findings
from .report import report, resolve_format
from .write import write_outputs, write_report

# ---------------------------------------------------------------- publishing


def publish(result: Result, fmt: str, *, output: Path | None = None, stream: TextIO | None = None,
            also: Sequence[tuple[Path, str]] = ()) -> int:
    """Write the report (to ``output`` or ``stream``, default stdout) and any extra copies
    in other formats; returns the exit code of the one exit rule."""
    name = resolve_format(fmt, os.environ)
    for path, other in also:
        _write(path, report(result, other), other)
    text = report(result, name)
    if output is not None:
        write_report(output, text)
    else:
        (stream or sys.stdout).write(text)
    for note in result.notes:
        sys.stderr.write(terminal(note) + "\n")
    return result.exit_code


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the {what} report: {exc.strerror or exc}") from None


def parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date YYYY-MM-DD") from None


# ---------------------------------------------------------------- validate, plan, render, diff


def execute_validate(root: Path) -> Result:
    outcome = pipeline.validate(root)
    c = outcome.catalog
    summary = [f"catalog ok: {len(c.bases)} bases, {len(c.flavors)} flavors, {len(c.tenants)} tenants, "
               f"{len(c.environments)} environments"] if outcome.ok else []
    result = outcome.result("validate", summary)
    result.environments = sorted(c.environments)
    return result


@dataclass(frozen=True)
class RenderOptions:
    root: Path
    environments: tuple[str, ...] = ()
    out: Path | None = None
    check: bool = False


def execute_render(opts: RenderOptions) -> Result:
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
    write_outputs(target, outcome.outputs, prune_environments=full)
    return outcome.result(command, [f"rendered {name}: {len(files)} files in {target / name}"
                                    for name, files in outcome.outputs.items()])


@dataclass(frozen=True)
class DiffOptions:
    root: Path
    base: str = "HEAD"


def execute_diff(opts: DiffOptions, fmt: str) -> Result:
    """What the working tree serves and renders differently from ``base``: the changes in
    the result's summary (text, markdown, github) and ``info["diff"]`` (json)."""
    from .diff import FORMATS, diff_against

    outcome = pipeline.render(opts.root)
    result = outcome.result("diff")
    result.headline = False
    if not outcome.ok:
        return result
    diff = diff_against(opts.root, opts.base, outcome.plans, outcome.rendered)
    name = resolve_format(fmt, os.environ)
    result.summary = FORMATS["markdown" if name == "markdown" else "text"](diff).rstrip("\n").split("\n")
    result.info = {"diff": json.loads(FORMATS["json"](diff))}
    return result


# ---------------------------------------------------------------- check and the policy library


def execute_check(opts: pipeline.CheckOptions) -> Result:
    return pipeline.check(opts)


@dataclass(frozen=True)
class PolicyTestOptions:
    root: Path
    policies: Path | None = None
    engine: str = "regorus"
    match: str = ""
    verbose: bool = False


def execute_policy_test(opts: PolicyTestOptions) -> Result:
    """The library's ``test_`` rules, a check record each."""
    from .policy.engines import make_engine
    from .policy.library import load_library
    from .policy.testing import run_tests

    library = load_library(pipeline.policy_folder(opts.root, opts.policies), opts.root)
    t0 = time.monotonic()
    tests = run_tests(library, make_engine(opts.engine), match=opts.match)
    result = Result("policy test", records=[], started=datetime.now(UTC).isoformat(timespec="seconds"))
    assert result.records is not None
    for t in tests:
        # a test that errors (or runs out of time) fails, as `opa test` counts it
        rec = CheckRecord(f"{t.test.package}.{t.test.name}", str(t.test.location),
                          duration_s=round(t.seconds, 4), note=t.error)
        if not t.passed:
            rec.add(t.finding())
        result.records.append(rec)
    result.show_passing = opts.verbose
    result.duration_s = round(time.monotonic() - t0, 3)
    failed = sum(1 for t in tests if not t.passed)
    result.summary = [f"{len(tests) - failed}/{len(tests)} policy tests passed ({opts.engine}, "
                      f"{len(library.rules)} rules)"]
    result.info = {"engine": opts.engine, "rules": len(library.rules), "verbose": opts.verbose}
    return result


@dataclass(frozen=True)
class PolicyDocsOptions:
    root: Path
    policies: Path | None = None
    check: bool = False


def execute_policy_docs(opts: PolicyDocsOptions) -> tuple[int, str]:
    """Generate (or check) the rule reference; returns the exit code and the line to print."""
    from .policy.docs import DOC_PATH, render_docs, write_docs
    from .policy.library import load_library

    library = load_library(pipeline.policy_folder(opts.root, opts.policies), opts.root)
    path = opts.root / DOC_PATH
    if opts.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != render_docs(library):
            return 1, f"{path} is out of date: run `kitchen policy docs`"
        return 0, f"{path} up to date"
    changed = write_docs(library, path)
    return 0, f"{'wrote' if changed else 'unchanged'} {path}"


# ---------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class ArtifactsOptions:
    root: Path
    environments: tuple[str, ...] = ()
    storage: object = None  # artifacts.scan.StorageOptions (imported lazily: minio is heavy)
    check: bool = False  # lock --check
    out: Path | None = None  # bundle
    with_files: bool = False  # bundle


# What the artifacts commands settle themselves: verify reports a repository set that
# differs from its pin as artifacts.checksum-mismatch, and lock writes the new pin.
ARTIFACT_SETTLED = frozenset({"evaluation.dataset-pin"})


def _catalog(root: Path, envs: Sequence[str], command: str) -> tuple[pipeline.Outcome, list[str], Result | None]:
    outcome = pipeline.validate(root)
    outcome.findings = [f for f in outcome.findings if f.rule_id not in ARTIFACT_SETTLED]
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = ["the catalog has errors: fix them before checking artifacts"]
        return outcome, [], result
    return outcome, pipeline.select_environments(outcome.catalog, envs), None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def execute_verify(opts: ArtifactsOptions) -> Result:
    from .artifacts.scan import StorageOptions, scan_environments
    from .artifacts.verify import verify_records

    outcome, envs, failed = _catalog(opts.root, opts.environments, "artifacts verify")
    if failed is not None:
        return failed
    assert isinstance(opts.storage, StorageOptions)
    t0 = time.monotonic()
    scans = scan_environments(outcome.catalog, envs, opts.storage)
    result = Result("artifacts verify", records=verify_records(outcome.catalog, scans), environments=envs,
                    gates=outcome.gates, started=datetime.now(UTC).isoformat(timespec="seconds"))
    result.duration_s = round(time.monotonic() - t0, 3)
    files = {(s.store.identity if s.store else "", s.artifact.source.uri(n)): d.size
             for s in scans for n, d in s.digests.items()}
    arts = {(s.kind, s.key) for s in (sc.artifact for sc in scans)}
    bases = sum(1 for k, _ in arts if k == "Base")
    result.text_records = False  # a line per artifact is for the machine-read formats
    verdict = "ok" if result.exit_code == 0 else "FAILED"
    line = (f"artifacts {verdict}: {len(files)} files ({_mib(sum(files.values()))}) of {bases} bases and "
            f"{len(arts) - bases} flavors checked in {', '.join(envs)}")
    if result.all_findings():
        result.notes = [line]
    else:
        result.summary = [line]
    result.info = {"files": len(files), "bytes": sum(files.values())}
    return result


def execute_lock(opts: ArtifactsOptions) -> Result:
    from .artifacts.lock import lock_updates, render_locked, stale_findings, write_files
    from .artifacts.scan import StorageOptions, scan_environments

    command = "artifacts lock --check" if opts.check else "artifacts lock"
    outcome, envs, failed = _catalog(opts.root, opts.environments, command)
    if failed is not None:
        return failed
    assert isinstance(opts.storage, StorageOptions)
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


def execute_bundle(opts: ArtifactsOptions) -> Result:
    from .artifacts.bundle import build_bundle, write_bundle
    from .artifacts.scan import StorageOptions, scan_environments

    if len(opts.environments) != 1:
        raise UsageError("kitchen bundle needs --env ENV (one environment)")
    env = opts.environments[0]
    outcome, envs, failed = _catalog(opts.root, [env], "bundle")
    if failed is not None:
        return failed
    assert isinstance(opts.storage, StorageOptions)
    scans = scan_environments(outcome.catalog, envs, opts.storage, hash_files=False)
    bundle, findings = build_bundle(outcome.catalog, env, scans)
    result = Result("bundle", sort_findings(findings), environments=envs, gates=outcome.gates)
    target = opts.out if opts.out is not None else opts.root / "bundle" / env
    if not result.exit_code:
        result.findings = sort_findings([*result.findings, *write_bundle(
            target, bundle, with_files=opts.with_files, jobs=opts.storage.jobs)])
    if result.exit_code:
        result.notes = ["nothing written: fix the findings above"]
        return result
    result.summary = [f"bundle for {env}: {len(bundle.images)} images, {len(bundle.entries)} files "
                      f"({_mib(bundle.total_bytes)}){' copied' if opts.with_files else ''} in {target}",
                      f"on the inside: cd {target} && sha256sum -c SHA256SUMS"]
    return result


# ---------------------------------------------------------------- conform


@dataclass(frozen=True)
class ExpectationsSource:
    path: Path | None = None
    catalog: Path | None = None
    environment: str | None = None


DEFAULT_EXPECTATIONS = "/etc/kitchen/expectations.json"
EXPECTATIONS_ENV = "KITCHEN_EXPECTATIONS"


def build_expectations(src: ExpectationsSource) -> object:
    """The expectations of a conformance run: from a catalog (with its environment) or
    from the JSON the rendered ConfigMap holds."""
    from .conform.expectations import build_expectations as from_catalog
    from .conform.expectations import load_expectations

    if src.catalog is not None:
        if not src.environment:
            raise UsageError("--catalog needs --env: which environment to check")
        outcome = pipeline.plan(src.catalog, [src.environment])
        if not outcome.ok:
            first = next(f for f in outcome.findings if f.severity.value == "error")
            raise ConfigError(f"the catalog does not plan: {first.format_text()}")
        return from_catalog(outcome.catalog, outcome.plans[src.environment])
    path = src.path if src.path is not None else Path(os.environ.get(EXPECTATIONS_ENV, DEFAULT_EXPECTATIONS))
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
class ServingCommand:
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


@dataclass(frozen=True)
class S3Options:
    """An S3 endpoint as seen from here; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""

    endpoint: str | None = None
    region: str = "us-east-1"
    ca_bundle: Path | None = None
    timeout_s: float = 10.0

    def settings(self, environment: str = "") -> object:
        from .artifacts.storage import S3Settings

        if not self.endpoint:
            raise UsageError("S3 needs --s3-endpoint (host:port or http(s)://host:port)")
        return S3Settings(endpoint=self.endpoint, region=self.region,
                          access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
                          secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
                          session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
                          ca_bundle=self.ca_bundle, timeout_s=self.timeout_s, environment=environment)


@dataclass(frozen=True)
class EvidenceOptions:
    """Where a conformance run writes its signed evidence record."""

    key: Path | None = None
    out: Path | None = None
    s3: str | None = None
    storage: S3Options = S3Options()

    @property
    def wanted(self) -> bool:
        return self.out is not None or self.s3 is not None


def _evidence_step(opts: EvidenceOptions | None) -> tuple[Any, Any] | None:
    """The signing key and upload location, checked before any check runs (exit 2 early)."""
    from .evidence import S3Location, load_signing_key

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


def write_evidence(result: Result, exp: Any, opts: EvidenceOptions, key: Any, where: Any) -> None:
    """Sign the run's record; write and upload it.  Adds an ``evidence`` check record: it
    passes when the record is stored, and could not run (exit 2) when storing failed."""
    from .artifacts.storage import S3Settings
    from .evidence import S3Location, build_record, record_name, s3_client, sign_record, upload, write_folder
    from .findings import Finding, Location, Severity

    record = build_record(result, exp, now=datetime.now(UTC))
    data = sign_record(record, key)
    name = record_name(record, data)
    rec = CheckRecord("evidence", record["environment"], details={"record": name, "verdict": record["verdict"]})
    stored = []
    try:
        if opts.out is not None:
            stored.append(str(write_folder(opts.out, name, data)))
        if isinstance(where, S3Location):
            settings = opts.storage.settings(record["environment"])
            assert isinstance(settings, S3Settings)
            stored.append(upload(s3_client(settings), where, name, data))
    except ConfigError as exc:
        rec.could_not_run(Finding("conform.evidence", Severity.ERROR, f"the evidence record was not stored: {exc}",
                                  Location("<evidence>"), expected="a writable folder or S3 prefix",
                                  environment=record["environment"]))
    rec.details["stored"] = stored
    rec.lines = [f"signed evidence {name} ({record['verdict']}): {', '.join(stored)}"] if stored else []
    assert result.records is not None
    result.records.append(rec)


def execute_serving(cmd: ServingCommand) -> Result:
    from .conform.expectations import Expectations
    from .conform.readiness import IsvcSource, KubeIsvcSource
    from .conform.serving import CHECKS, ServingOptions, run_serving

    built = build_expectations(cmd.source)
    assert isinstance(built, Expectations)
    exp = built.select(list(cmd.tenants) or None, list(cmd.services) or None)
    if not exp.services:
        raise UsageError(f"no InferenceService matches --tenant/--service in environment {exp.environment}")
    unknown = sorted((set(cmd.checks) | set(cmd.skip)) - set(CHECKS))
    if unknown:
        raise UsageError(f"unknown check {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    chosen = tuple(c for c in CHECKS if (not cmd.checks or c in cmd.checks) and c not in cmd.skip)
    if cmd.no_readiness:
        chosen = tuple(c for c in chosen if c != "readiness")
    overrides = {k: v for k, v in cmd.load.items() if v is not None}
    if overrides:
        exp = exp.model_copy(update={"load": exp.load.model_copy(update=overrides)})
    token = None
    if cmd.token_file is not None:
        try:
            token = cmd.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{cmd.token_file}: cannot read the token: {exc.strerror}") from None
    opts = ServingOptions(checks=chosen, token=token, endpoints=parse_endpoints(cmd.endpoints),
                          perf_models=cmd.perf_models, isolation_rounds=cmd.isolation_rounds,
                          readiness_timeout_s=cmd.readiness_timeout,
                          evaluation_concurrency=cmd.evaluation_concurrency)
    source: IsvcSource | None = KubeIsvcSource(cmd.kubeconfig) if "readiness" in chosen else None
    signing = _evidence_step(cmd.evidence)
    result = run_serving(exp, opts, source)
    if signing is not None:
        assert cmd.evidence is not None
        write_evidence(result, exp, cmd.evidence, *signing)
    return result


@dataclass(frozen=True)
class GpuCommand:
    source: ExpectationsSource
    product: str | None = None
    count: int | None = None
    memory_gib: float | None = None
    mig: bool | None = None
    no_expectations: bool = False
    node: str = ""
    min_driver: str | None = None
    workload: bool = True


def execute_gpu(cmd: GpuCommand) -> Result:
    from .conform.expectations import Expectations, GpuSpec, Source
    from .conform.gpu import GpuOptions, check_gpus

    spec: GpuSpec | None = None
    environment = cmd.source.environment or "-"
    fail_on_warn = False
    if not cmd.no_expectations:
        exp = build_expectations(cmd.source)
        assert isinstance(exp, Expectations)
        spec, environment, fail_on_warn = exp.gpu, exp.environment, bool(exp.fail_on_warn)
    overrides = {k: v for k, v in {"product": cmd.product, "per_node": cmd.count,
                                   "memory_gib": cmd.memory_gib, "mig": cmd.mig}.items() if v is not None}
    if spec is not None:
        spec = spec.model_copy(update=overrides)
    elif overrides:
        if cmd.product is None or cmd.count is None:
            raise UsageError("without expectations, give at least --product and --count")
        spec = GpuSpec(product=cmd.product, per_node=cmd.count, memory_gib=cmd.memory_gib or 0.0,
                       mig=bool(cmd.mig), source=Source(file="<command line>"))
    return check_gpus(spec, environment, GpuOptions(node=cmd.node, min_driver=cmd.min_driver,
                                                     workload=cmd.workload), fail_on_warn=fail_on_warn)


# ---------------------------------------------------------------- promote


@dataclass(frozen=True)
class PromoteOptions:
    root: Path
    environment: str
    evidence: tuple[Path, ...] = ()
    from_s3: bool = False
    storage: S3Options = S3Options()
    write: bool = False
    flavors: tuple[str, ...] = ()
    now: datetime | None = None
    baseline: str | None = None  # record what the environment serves today, without an entry, as the baseline


def _evidence_files(opts: PromoteOptions, catalog: Any, source: Any) -> list[tuple[str, bytes]]:
    from .artifacts.storage import S3Settings
    from .evidence import S3Location, download, read_folder, s3_client

    files: list[tuple[str, bytes]] = []
    for folder in opts.evidence:
        files += read_folder(folder)
    if opts.from_s3:
        if source.evidence is None:
            raise ConfigError(f"environment {source.name} has no evidence: setting (s3://BUCKET/PREFIX/ its "
                              "conformance Job uploads to); use --evidence DIR")
        s3 = source.storage.s3
        storage = opts.storage
        if not storage.endpoint:
            endpoint = s3.endpoint if "://" in s3.endpoint else f"{'https' if s3.use_https else 'http'}://{s3.endpoint}"
            storage = S3Options(endpoint, s3.region, storage.ca_bundle, storage.timeout_s)
        settings = storage.settings(source.name)
        assert isinstance(settings, S3Settings)
        files += download(s3_client(settings), S3Location.parse(source.evidence.uri))
    return files


def execute_promote(opts: PromoteOptions) -> Result:
    """``kitchen promote``: what the environment would newly serve, the evidence for each,
    and with ``write`` the tenants' flavor lists and the evidence index."""
    from .evidence import load_trusted_keys, verified_records
    from .findings import Finding, Location, Severity
    from .policy.library import load_library
    from .promotion import (
        Decision,
        Problem,
        check_promotable,
        choose_evidence,
        digest_of,
        entry_problem,
        load_index,
        max_age_days,
        proposed,
    )

    outcome = pipeline.validate(opts.root)
    command = "promote --write" if opts.write else "promote"
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = ["the catalog has errors: fix them before promoting"]
        return result
    catalog = outcome.catalog
    env = catalog.environments.get(opts.environment)
    if env is None:
        raise UsageError(f"unknown environment {opts.environment}; the catalog defines "
                         f"{', '.join(sorted(catalog.environments))}")
    folder = pipeline.policy_folder(opts.root, None)
    data = load_library(folder, opts.root).data
    source = catalog.environments[check_promotable(env, data)]
    unknown = sorted(set(opts.flavors) - {f.name for f in catalog.flavors.values()})
    if unknown:
        raise UsageError(f"--flavor {', '.join(unknown)}: no such flavor in the catalog")
    trusted = load_trusted_keys(folder, opts.root)
    now = opts.now or datetime.now(UTC)
    days = max_age_days(data)
    index = load_index(opts.root, env.name)
    if opts.baseline is not None:
        return _write_baseline(opts, catalog, env, index, now)
    result = Result(command, environments=[env.name], gates=outcome.gates)
    given = bool(opts.evidence) or opts.from_s3
    files = _evidence_files(opts, catalog, source) if given else []
    records, refused = verified_records(files, trusted)
    for reason in refused:
        origin, _, why = reason.partition(": ")
        result.findings.append(Finding("promotion.evidence-invalid", Severity.WARNING, why or reason,
                                       Location(origin), expected="a record signed by a key of "
                                       "policies/evidence-keys.yaml, unchanged since signing",
                                       environment=source.name))
    decisions: list[Decision] = []
    for item in proposed(catalog, env, opts.flavors):
        digest = digest_of(catalog, item.ref)
        if entry_problem(index, item.ref, digest, source, trusted, days, now) is None:
            continue
        if any(d.served.ref == item.ref for d in decisions):
            earlier = next(d for d in decisions if d.served.ref == item.ref)
            decisions.append(Decision(item, digest, earlier.record, earlier.problem))
            continue
        record, problem = choose_evidence(item.ref, digest, source, records, now, days)
        if not given:
            problem = Problem(problem.rule, f"no evidence given for {item.ref}: pass --evidence DIR or --from-s3",
                              problem.expected)
        elif refused and problem.rule == "promotion.evidence-missing":
            problem = Problem(problem.rule, f"{problem.message}; {len(refused)} record(s) refused (see warnings)",
                              problem.expected)
        decisions.append(Decision(item, digest, record, None if record is not None else problem))
    for d in decisions:
        if d.problem is not None:
            result.findings.append(Finding(d.problem.rule, Severity.ERROR, d.problem.message, d.served.location,
                                           expected=d.problem.expected, environment=env.name,
                                           subject=f"Flavor/{d.served.ref}"))
    result.findings = sort_findings(result.findings)
    result.summary = [_promotion_line(d) for d in decisions]
    result.info = {"environment": env.name, "from": source.name, "promotions": [
        {"tenant": d.served.tenant, "flavor": d.served.ref, "replaces": d.served.old_ref, "digest": d.digest,
         "record": d.record.origin if d.record else None, "problem": d.problem.rule if d.problem else None}
        for d in decisions]}
    if not decisions:
        result.summary = [f"nothing to promote: every flavor version {env.name} would serve has evidence in "
                          f"{index.display}"]
        return result
    if result.exit_code:
        if opts.write:
            result.notes = ["nothing written: fix the findings above"]
        return result
    if not opts.write:
        result.summary.append(f"{len(decisions)} flavor version(s) can be promoted to {env.name}: "
                              "run with --write")
        return result
    written = _write_promotion(opts.root, catalog, env, index, decisions, now)
    result.summary.append(f"promoted {len(decisions)} flavor version(s) to {env.name}; wrote "
                          f"{', '.join(written)}; run `kitchen render` and commit")
    return result


def _write_baseline(opts: PromoteOptions, catalog: Any, env: Any, index: Any, now: datetime) -> Result:
    """``--baseline REASON``: the flavor versions ``env`` serves today that its index has no
    entry for become its baseline (an entry with other bytes stays a finding: a baseline never
    covers a re-upload)."""
    from .promotion import INDEX_FILE, digest_of, served_in

    result = Result("promote --baseline", environments=[env.name], gates=Gates())
    reason = " ".join((opts.baseline or "").split())
    if not reason:
        raise UsageError("--baseline needs a reason (who decided, and why)")
    added = []
    for s in served_in(catalog, env.name):
        if s.ref in index.entries:
            continue
        index.entries[s.ref] = {"digest": digest_of(catalog, s.ref), "source": catalog.flavors[s.ref].source,
                                "baseline": reason, "recorded": now.strftime("%Y-%m-%d")}
        added.append(s.ref)
    if added:
        _replace_all({index.folder / INDEX_FILE: index.to_bytes()})
    result.summary = [f"baseline of {env.name}: {', '.join(added)} added to {index.display}" if added
                      else f"baseline of {env.name}: every flavor version it serves has an entry already"]
    return result


def _promotion_line(d: Any) -> str:
    s = d.served
    what = f"{s.old_ref} → {s.ref}" if s.old_ref else (f"{s.ref} (new)" if s.position < 0 else s.ref)
    if d.record is not None:
        return (f"{s.tenant}: {what}: evidence {d.record.origin} ({d.record.verdict}, recorded "
                f"{d.record.time.strftime('%Y-%m-%dT%H:%M:%SZ')}, signed by {d.record.signer})")
    return f"{s.tenant}: {what}: no evidence"


def _write_promotion(root: Path, catalog: Any, env: Any, index: Any, decisions: Sequence[Any],
                     now: datetime) -> list[str]:
    """Tenant files, records and the index, all or nothing; the catalog must still plan."""
    from .load import read_regular_file
    from .promotion import INDEX_FILE, RECORDS_DIR, edit_flavor_list, index_entry, record_file_name

    contents: dict[Path, bytes] = {}
    by_tenant: dict[str, list[Any]] = {}
    for d in decisions:
        if d.served.old_ref or d.served.position < 0:
            by_tenant.setdefault(d.served.tenant, []).append(d.served)
    for tenant, items in sorted(by_tenant.items()):
        doc = catalog.documents[("Tenant", tenant)]
        text = read_regular_file(doc.path).decode("utf-8")
        try:
            # an alias of a version the promotion replaces follows it: clients of the stable
            # name get the promoted version, as they got the one before
            moved = {s.old_ref: s.ref for s in items if s.old_ref}
            tenv = catalog.tenants[tenant].environments.get(env.name)
            follow = {a: moved[str(t)] for a, t in (tenv.aliases.items() if tenv else ()) if str(t) in moved}
            new = edit_flavor_list(text, env.name, {s.position: s.ref for s in items if s.position >= 0},
                                   [s.ref for s in items if s.position < 0], follow)
        except (KeyError, IndexError, StopIteration, ValueError) as exc:
            raise ConfigError(f"{doc.display_path}: cannot edit the flavors of {env.name} ({exc}); "
                              "nothing written") from None
        contents[doc.path] = new.encode("utf-8")
    for d in decisions:
        name = record_file_name(d.record)
        contents[index.folder / RECORDS_DIR / name] = d.record.data
        index.entries[d.served.ref] = index_entry(d.record, d.digest, name, now, catalog.flavors[d.served.ref].source)
    contents[index.folder / INDEX_FILE] = index.to_bytes()
    old = _replace_all(contents)
    check = pipeline.plan(root, [env.name])
    if not check.ok:
        _restore(old)
        first = next(f for f in check.findings if f.severity.value == "error")
        raise ConfigError(f"the promoted catalog does not plan: {first.format_text()}; nothing written")
    return sorted({p.relative_to(root).as_posix() for p in contents})


def _restore(old: dict[Path, bytes | None]) -> None:
    for path, before in old.items():
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


def _replace_all(contents: dict[Path, bytes]) -> dict[Path, bytes | None]:
    """Every file replaced atomically, or none: the old bytes come back on any failure."""
    import tempfile

    old: dict[Path, bytes | None] = {}
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or (path.exists() and not path.is_file()):
                raise ConfigError(f"{path}: not a regular file; nothing written")
            old[path] = path.read_bytes() if path.exists() else None
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(name, path.stat().st_mode & 0o7777 if old[path] is not None else 0o644)
        done: list[Path] = []
        try:
            for tmp, path in staged:
                os.replace(tmp, path)
                done.append(path)
        except OSError:
            _restore({p: old[p] for p in done})
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the promotion: {exc}; nothing written") from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return old
