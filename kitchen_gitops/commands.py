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
from typing import TextIO

from . import pipeline
from .errors import ConfigError, UsageError
from .escape import terminal
from .findings import CheckRecord, Result, sort_findings
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
        stale = pipeline.stale_findings(target, outcome.rendered, full=full, root=opts.root)
        result = outcome.result(command)
        result.findings = sort_findings([*result.findings, *stale])
        result.summary = ([f"{len(stale)} rendered file(s) out of date: run `kitchen render` and commit"]
                          if stale else [f"rendered output up to date ({', '.join(outcome.rendered)})"])
        return result
    write_outputs(target, outcome.rendered, prune_environments=full)
    return outcome.result(command, [f"rendered {name}: {len(files)} files in {target / name}"
                                    for name, files in outcome.rendered.items()])


@dataclass(frozen=True)
class DiffOptions:
    root: Path
    base: str = "HEAD"


def execute_diff(opts: DiffOptions, fmt: str) -> Result:
    """What the working tree serves differently from ``base``: the changes in the result's
    summary (text, markdown) and ``info["diff"]`` (json)."""
    from .diff import FORMATS, diff_against

    outcome = pipeline.plan(opts.root)
    result = outcome.result("diff")
    result.headline = False
    if not outcome.ok:
        return result
    diff = diff_against(opts.root, opts.base, outcome.plans)
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


def _catalog(root: Path, envs: Sequence[str], command: str) -> tuple[pipeline.Outcome, list[str], Result | None]:
    outcome = pipeline.validate(root)
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
    return run_serving(exp, opts, source)


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
