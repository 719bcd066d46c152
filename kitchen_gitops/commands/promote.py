"""``kitchen promote``: what an environment would newly serve, the signed evidence for
each flavor version, and with ``--write`` the tenants' flavor lists and the evidence index.
The decisions are :mod:`kitchen_gitops.promotion`'s; this module gathers their inputs and
writes their outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import pipeline
from ..errors import ConfigError, UsageError
from ..findings import Gates, Result, sort_findings
from ..write import WriteFailed, replace_files
from . import S3Options

if TYPE_CHECKING:
    from ..evidence import TrustedKey
    from ..model import Environment
    from ..promotion import BaselinePins, Decision, Index


@dataclass(frozen=True)
class Options:
    root: Path
    environment: str
    evidence: tuple[Path, ...] = ()
    from_s3: bool = False
    storage: S3Options = field(default_factory=S3Options)
    write: bool = False
    flavors: tuple[str, ...] = ()
    now: datetime | None = None
    baseline: str | None = None  # record what the environment serves today, without an entry, as the baseline


@dataclass
class Promotion:
    """A promotion assembled: the catalog, the environment and the one it promotes from,
    its index, the keys trusted and the policy floors' maximum age of evidence."""

    outcome: pipeline.Outcome
    env: Environment
    source: Environment
    index: Index
    trusted: dict[str, TrustedKey]
    max_days: int
    now: datetime
    pins: BaselinePins  # the baseline security accepted (policies/data.yaml)


def _evidence_files(opts: Options, source: Environment) -> list[tuple[str, bytes]]:
    from ..evidence import S3Location, download, read_folder, s3_client

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
        files += download(s3_client(storage.settings(source.name)), S3Location.parse(source.evidence.uri))
    return files


def build(opts: Options, outcome: pipeline.Outcome) -> Promotion:
    from ..evidence import load_trusted_keys
    from ..policy.library import load_library
    from ..promotion import BaselinePins, check_promotable, load_index, max_age_days

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
    return Promotion(outcome, env, source, load_index(opts.root, env.name), trusted, max_age_days(data),
                     opts.now or datetime.now(UTC), BaselinePins.of(data, env))


def execute(opts: Options) -> Result:
    """What the environment would newly serve, the evidence for each, and with ``write``
    the tenants' flavor lists and the evidence index."""
    outcome = pipeline.validate(opts.root)
    command = "promote --write" if opts.write else "promote"
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = ["the catalog has errors: fix them before promoting"]
        return result
    p = build(opts, outcome)
    if opts.baseline is not None:
        return _write_baseline(opts, p)
    return _promote(opts, p, Result(command, environments=[p.env.name], gates=outcome.gates))


def _promote(opts: Options, p: Promotion, result: Result) -> Result:
    from ..evidence import verified_records
    from ..promotion import decide, decision_dict, decision_findings, decision_line, refusal_findings

    given = bool(opts.evidence) or opts.from_s3
    records, refused = verified_records(_evidence_files(opts, p.source) if given else [], p.trusted)
    decisions = decide(p.outcome.catalog, p.env, p.source, p.index, records, refused, given=given,
                       trusted=p.trusted, max_days=p.max_days, now=p.now, pins=p.pins,
                       only=opts.flavors)
    result.findings = sort_findings([*refusal_findings(refused, p.source.name),
                                     *decision_findings(decisions, p.env.name)])
    result.summary = [decision_line(d) for d in decisions]
    result.info = {"environment": p.env.name, "from": p.source.name,
                   "promotions": [decision_dict(d) for d in decisions]}
    if not decisions:
        result.summary = [f"nothing to promote: every flavor version {p.env.name} would serve has evidence in "
                          f"{p.index.display}"]
        return result
    if result.exit_code:
        if opts.write:
            result.notes = ["nothing written: fix the findings above"]
        return result
    if not opts.write:
        result.summary.append(f"{len(decisions)} flavor version(s) can be promoted to {p.env.name}: "
                              "run with --write")
        return result
    written = _write_promotion(opts.root, p, decisions)
    result.summary.append(f"promoted {len(decisions)} flavor version(s) to {p.env.name}; wrote "
                          f"{', '.join(written)}; run `kitchen render` and commit")
    return result


def _write_baseline(opts: Options, p: Promotion) -> Result:
    """``--baseline REASON``: the flavor versions the environment serves today that its
    index has no entry for become its baseline."""
    from ..promotion import INDEX_FILE, add_baseline

    env, index = p.env, p.index
    result = Result("promote --baseline", environments=[env.name], gates=Gates())
    reason = " ".join((opts.baseline or "").split())
    if not reason:
        raise UsageError("--baseline needs a reason (who decided, and why)")
    added = add_baseline(p.outcome.catalog, env.name, index, reason, p.now)
    if added:
        _write({index.folder / INDEX_FILE: index.to_bytes()})
    result.summary = [f"baseline of {env.name}: {', '.join(added)} added to {index.display}" if added
                      else f"baseline of {env.name}: every flavor version it serves has an entry already"]
    for floor, pins in p.pins.floors:  # what the gate honours is what security pins
        unpinned = [ref for ref in added if pins.get(ref) != index.entries[ref]["digest"]]
        if unpinned:
            result.summary.append(f"the gate honours them once security pins them in policies/data.yaml, "
                                  f"gate_floors.environments.{floor}.promotion_baseline:")
            result.summary += [f'  {ref}: "{index.entries[ref]["digest"]}"' for ref in unpinned]
    return result


def _write_promotion(root: Path, p: Promotion, decisions: Sequence[Decision]) -> list[str]:
    """Tenant files, records and the index, all or nothing; the catalog must still plan."""
    from ..promotion import promotion_files

    contents = promotion_files(p.outcome.catalog, p.env.name, p.index, decisions, p.now)

    def plans() -> None:
        check = pipeline.plan(root, [p.env.name])
        if not check.ok:
            first = next(f for f in check.findings if f.severity.value == "error")
            raise ConfigError(f"the promoted catalog does not plan: {first.format_text()}; nothing written")

    _write(contents, verify=plans)
    return sorted({path.relative_to(root).as_posix() for path in contents})


def _write(contents: dict[Path, bytes], verify: Callable[[], None] | None = None) -> None:
    """Every file written, or none (the old ones back when ``verify`` fails)."""
    for path in contents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write the promotion: {exc}; nothing written") from exc
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ConfigError(f"{path}: not a regular file; nothing written")
    try:
        replace_files(contents, verify=verify)
    except WriteFailed as exc:
        raise ConfigError(f"cannot write the promotion: {exc.error}; nothing written") from exc
