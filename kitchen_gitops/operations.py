"""``kitchen rollback`` and ``kitchen history``, given their parsed options: the stages
(:mod:`kitchen_gitops.rollback`, :mod:`kitchen_gitops.history`) assembled into one
:class:`~kitchen_gitops.findings.Result` each, which every report format writes."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import pipeline
from .errors import UsageError
from .escape import markdown_cell
from .findings import Finding, Location, Result, Severity, sort_findings
from .report import Options as Display

if TYPE_CHECKING:
    from .evidence import TrustedKey
    from .history import History, Stint
    from .model import Catalog, Environment
    from .rollback import Candidate, Edits, Judge

# the rollback and the history are the report: no headline of counts above them
DISPLAY = Display(headline=False)


@dataclass(frozen=True)
class RollbackOptions:
    root: Path
    environment: str
    to: str | None = None
    write: bool = False
    reason: str = ""
    now: datetime | None = None


@dataclass(frozen=True)
class HistoryOptions:
    root: Path
    environment: str
    flavors: tuple[str, ...] = ()


def _setup(root: Path, environment: str, command: str) -> tuple[Catalog, Environment] | Result:
    """The validated catalog and the environment; or the result that says why not."""
    outcome = pipeline.validate(root)
    if not outcome.ok:
        result = outcome.result(command)
        result.notes = [f"the catalog has errors: fix them before {command.split()[0]}"]
        return result
    env = outcome.catalog.environments.get(environment)
    if env is None:
        raise UsageError(f"unknown environment {environment}; the catalog defines "
                         f"{', '.join(sorted(outcome.catalog.environments))}")
    return outcome.catalog, env


def _trust(root: Path) -> tuple[dict[str, object], dict[str, TrustedKey]]:
    from .evidence import load_trusted_keys
    from .policy.library import load_library

    folder = pipeline.policy_folder(root, None)
    return load_library(folder, root).data, load_trusted_keys(folder, root)


# ---------------------------------------------------------------- rollback


def execute_rollback(opts: RollbackOptions, fmt: str = "text") -> Result:
    """``kitchen rollback``: the proven state the environment returns to, as the change
    each tenant's list makes; with ``write``, the edits and the index."""
    from .history import current_state
    from .promotion import BaselinePins, max_age_days
    from .revisions import Repository
    from .rollback import NONE_RULE, Judge, find_target, plan_edits

    command = "rollback --write" if opts.write else "rollback"
    setup = _setup(opts.root, opts.environment, command)
    if isinstance(setup, Result):
        return setup
    catalog, env = setup
    repo = Repository.open(opts.root)
    data, trusted = _trust(opts.root)
    judge = Judge(catalog, env, trusted, max_age_days(data), opts.now or datetime.now(UTC),
                  BaselinePins.of(data, env))
    current = current_state(catalog, env.name)
    result = Result(command, environments=[env.name])
    with tempfile.TemporaryDirectory(prefix="kitchen-rollback-") as tmp:
        target, passed = find_target(repo, judge, current, Path(tmp), opts.to)
        if target is None:
            result.findings += [f for cand in passed[:1] for f in cand.findings]
            if opts.to is None:
                result.findings.append(Finding(
                    NONE_RULE, Severity.ERROR, f"no earlier state of {env.name} in the Git history has evidence "
                    "for every flavor version it serves" + (f" (the newest, at {passed[0].commit.short}: "
                                                            "see the findings)" if passed else ""),
                    Location(f"evidence/{env.name}/index.json"), expected="a state whose every version was "
                    "promoted with evidence or is in the baseline", environment=env.name))
            result.findings = sort_findings(result.findings)
            result.summary = [f"no rollback of {env.name}: nothing written"] if opts.write else []
            return result
        if target.state.key() == current.key():
            result.summary = [f"{env.name} already serves what {target.commit.short} served: nothing to roll back"]
            return result
        edits = plan_edits(current, target, env.name)
        result.findings = sort_findings([*result.findings, *edits.findings])
        result.info = _rollback_info(env.name, target, edits, passed)
        result.summary = _rollback_lines(env.name, target, edits, passed, fmt)
        if result.exit_code or not opts.write:
            if result.exit_code and opts.write:
                result.notes = ["nothing written: fix the findings above"]
            elif not opts.write:
                result.summary.append(f"run with --write to roll {env.name} back to {target.commit.short}")
            return result
        written = _write(opts, catalog, judge, target, edits, repo.head())
    result.summary.append(f"rolled {env.name} back to {target.commit.short}; wrote {', '.join(written)}; "
                          "run `kitchen render` and commit")
    return result


def _write(opts: RollbackOptions, catalog: Catalog, judge: Judge, target: Candidate, edits: Edits,
           head: str | None) -> list[str]:
    from .errors import ConfigError
    from .rollback import rollback_contents, rollback_record
    from .write import WriteFailed, replace_files

    reason = " ".join(opts.reason.split())
    contents = rollback_contents(opts.root, catalog, judge, target, edits,
                                 rollback_record(target, edits, head, judge.now, reason))

    def plans() -> None:
        check = pipeline.plan(opts.root, [judge.env.name])
        if not check.ok:
            first = next(f for f in check.findings if f.severity.value == "error")
            raise ConfigError(f"the rolled-back catalog does not plan: {first.format_text()}; nothing written")

    for path in contents:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ConfigError(f"{path}: not a regular file; nothing written")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_files(contents, verify=plans)
    except WriteFailed as exc:
        raise ConfigError(f"cannot write the rollback: {exc.error}; nothing written") from exc
    return sorted({p.relative_to(opts.root).as_posix() for p in contents})


def _evidence_text(entry: Mapping[str, object]) -> str:
    if not entry:
        return "no evidence"
    if "baseline" in entry:
        return f"baseline ({entry['baseline']}, recorded {entry.get('recorded')})"
    return (f"evidence {entry.get('record')} of {entry.get('from')} (signed by {entry.get('signed_by')}, "
            f"recorded {entry.get('recorded')}, promoted {entry.get('promoted')})")


def _rollback_lines(env: str, target: Candidate, edits: Edits, passed: list[Candidate], fmt: str) -> list[str]:
    c = target.commit
    lines = [f"{env} returns to {c.short} ({c.time}, {c.author}: {c.subject})"]
    if passed:
        lines.append(f"passed over {len(passed)} newer state(s) without evidence for every version "
                     f"(the newest: {passed[0].commit.short})")
    for ch in edits.changes:
        what = (f"{ch.replaces} → {ch.flavor}" if ch.replaces and ch.flavor else
                f"{ch.replaces} (removed)" if ch.replaces else f"{ch.flavor} (added back)")
        lines.append(f"{ch.tenant}: {what}" + (f": {_evidence_text(ch.entry)}" if ch.flavor else ""))
    lines += [f"{a.tenant}: alias {a.alias} {a.now} → {a.then}" for a in edits.aliases]
    if fmt == "markdown":
        return [f"**{markdown_cell(lines[0])}**", "", *(f"- {markdown_cell(line)}" for line in lines[1:])]
    return lines


def _rollback_info(env: str, target: Candidate, edits: Edits, passed: list[Candidate]) -> dict[str, object]:
    return {"environment": env, "to": target.commit.as_dict(),
            "passed_over": [p.commit.as_dict() for p in passed],
            "changes": [c.as_dict() for c in edits.changes], "aliases": [a.as_dict() for a in edits.aliases]}


# ---------------------------------------------------------------- history


def execute_history(opts: HistoryOptions, fmt: str = "text") -> Result:
    """``kitchen history``: every flavor version's stints in the environment, from Git."""
    from .history import read_history
    from .revisions import Repository

    setup = _setup(opts.root, opts.environment, "history")
    if isinstance(setup, Result):
        return setup
    _, env = setup
    repo = Repository.open(opts.root)
    _, trusted = _trust(opts.root)
    history = read_history(repo, env.name, trusted, opts.flavors)
    findings = [f if f.environment else dataclasses.replace(f, environment=env.name) for f in history.findings]
    result = Result("history", sort_findings(findings), environments=[env.name])
    result.info = {"environment": env.name, "commits": history.commits,
                   "history": [s.as_dict() for s in history.stints]}
    result.summary = _history_lines(env.name, history, fmt)
    return result


def _stint_lines(s: Stint) -> list[str]:
    e = s.entered
    lines = [f"{s.tenant}: {s.ref}",
             f"  entered {e.time} in {e.short} by {e.author} <{e.email}>: {e.subject}"]
    if "baseline" in s.entry:
        lines.append(f"  baseline: {s.entry['baseline']} (recorded {s.entry.get('recorded')})")
    elif s.evidence:
        ev = s.evidence
        lines.append(f"  evidence {ev['record']}: {ev['verdict']} in {ev['environment']} ({ev['cluster']}) at "
                     f"{ev['time']}, signed by {ev['signed_by']}; promoted {s.entry.get('promoted')}")
        lines += [f"  score {x.get('metric')} {x.get('score')} (threshold {x.get('threshold')}, "
                  f"{x.get('status')})" for x in ev["scores"]]
        lines += [f"  SLO {x.get('service')}: {x.get('status')}" for x in ev["slo"]]
        lines += [f"  evidence refused later: {s.problem}"] if s.problem else []
    elif s.problem:
        lines.append(f"  evidence refused: {s.problem}")
    else:
        lines.append("  no evidence recorded")
    if s.left is not None:
        how = ""
        if s.rollback:
            how = f" by the rollback to {str(s.rollback.get('to'))[:12]}"
            how += f" ({s.rollback['reason']})" if s.rollback.get("reason") else ""
        lines.append(f"  left {s.left.time} in {s.left.short} by {s.left.author} <{s.left.email}>{how}: "
                     f"{s.left.subject}")
    else:
        lines.append("  still served")
    return lines


def _history_lines(env: str, history: History, fmt: str) -> list[str]:
    head = f"history of {env}: {len(history.stints)} flavor version stint(s) in {history.commits} commit(s)"
    if fmt != "markdown":
        return [head, *(line for s in history.stints for line in _stint_lines(s))]
    out = [f"**{markdown_cell(head)}**", "", "| tenant | flavor | entered | left | evidence |",
           "|---|---|---|---|---|"]
    for s in history.stints:
        lines = _stint_lines(s)
        entered, left = lines[1].strip(), lines[-1].strip()
        evidence = "; ".join(line.strip() for line in lines[2:-1])
        out.append(f"| {markdown_cell(s.tenant)} | {markdown_cell(s.ref)} | {markdown_cell(entered)} | "
                   f"{markdown_cell(left)} | {markdown_cell(evidence)} |")
    return out
