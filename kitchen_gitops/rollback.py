"""Rollback to the last proven state: what an environment would return to, and the edits.

A state (what the tenants' files of one commit list for the environment,
:mod:`kitchen_gitops.history`) is **proven** when every flavor version it lists is allowed by
the evidence index of that same commit, as ``kitchen check`` would allow it today: an entry
whose digest is the one the working tree's catalog computes for the version (the bytes
the rollback will serve), and either a baseline or a promotion whose record is the one
pinned, verifies with a key trusted today, comes from the environment this one promotes
from, passed, covers that digest and was fresh **when it was promoted** — expiry since
then does not block a rollback (the version was proven in this environment; an incident
is no time to wait for a new run), but a record that no longer verifies, a key no longer
trusted, other bytes under the version or a flavor file since deleted do.

By default the target is the newest first-parent commit whose state differs from the
working tree's and is proven; ``--to REV`` names it (and is refused when it is not
proven).  With ``--write`` the tenants' flavor lists and aliases are edited back with the
promotion's splice (every other byte kept), the index entries of the restored versions
(and their records) come back from the target commit where today's index lacks them, and
the rollback is recorded in the index's ``rollbacks``; so ``policy.promotion-evidence``
accepts the result without new evidence.  The promotion chain is not consulted again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .errors import ConfigError
from .escape import visible
from .evidence import TrustedKey, utc_text
from .findings import Finding, Location, Severity
from .history import TENANTS_DIR, State, TenantState, index_at, state_at
from .model import Catalog, Environment
from .promotion import (
    INDEX_DIR,
    INDEX_FILE,
    RECORDS_DIR,
    BaselinePins,
    Index,
    digest_of,
    edit_flavor_list,
    entry_problem,
    legacy_digest_of,
    load_index,
    record_path,
)
from .revisions import Commit, Repository
from .rules import ROLLBACK_MANUAL_EDIT, ROLLBACK_NO_PROVEN_STATE, ROLLBACK_UNPROVEN

UNPROVEN_RULE = ROLLBACK_UNPROVEN
NONE_RULE = ROLLBACK_NO_PROVEN_STATE
MANUAL_RULE = ROLLBACK_MANUAL_EDIT
MAX_STATES = 500  # commits examined for the default target


@dataclass(frozen=True)
class Judge:
    """What a state is judged against: today's catalog, keys and floors."""

    catalog: Catalog
    env: Environment
    trusted: Mapping[str, TrustedKey]
    max_days: int
    now: dt.datetime
    pins: BaselinePins

    @property
    def source(self) -> Environment | None:
        src = self.env.promotes_from
        return self.catalog.environments.get(src) if src else None


@dataclass
class Candidate:
    state: State
    index: Index
    findings: list[Finding] = field(default_factory=list)

    @property
    def commit(self) -> Commit:
        assert self.state.commit is not None
        return self.state.commit


def judge_state(judge: Judge, state: State, index: Index) -> list[Finding]:
    """Why ``state`` is not proven (none when it is), a finding at each version's line of that commit."""
    out: list[Finding] = []
    where = state.commit.short if state.commit else "the working tree"
    verdicts: dict[str, str] = {}
    for tenant in sorted(state.tenants.values(), key=lambda t: t.tenant):
        for ref in tenant.flavors:
            if ref not in verdicts:
                verdicts[ref] = _why(judge, index, ref)
            if verdicts[ref]:
                out.append(Finding(UNPROVEN_RULE, Severity.ERROR, f"at {where}: {verdicts[ref]}",
                                   tenant.location(ref), expected="a version proven in this environment "
                                   "(an index entry of that commit that kitchen check accepts today)",
                                   environment=judge.env.name, subject=f"Flavor/{ref}"))
    if not state.tenants:
        out.append(Finding(UNPROVEN_RULE, Severity.ERROR, f"at {where}: no tenant runs in {judge.env.name}",
                           Location(TENANTS_DIR), expected="a state that serves the environment",
                           environment=judge.env.name))
    return out


def _why(judge: Judge, index: Index, ref: str) -> str:
    if ref not in judge.catalog.flavors:
        return f"the catalog no longer defines {ref}: its flavor file must come back first"
    problem = entry_problem(index, ref, digest_of(judge.catalog, ref), judge.source, judge.trusted,
                            judge.max_days, judge.now, partial(legacy_digest_of, judge.catalog, ref),
                            pins=judge.pins)
    return problem.message if problem else ""


def candidate_at(repo: Repository, judge: Judge, state: State, tmp: Path) -> Candidate:
    commit = state.commit
    assert commit is not None
    try:
        index = index_at(repo, commit.sha, judge.env.name, tmp / commit.sha)
    except ConfigError as exc:
        finding = Finding(UNPROVEN_RULE, Severity.ERROR, str(exc), Location(f"{INDEX_DIR}/{judge.env.name}/"
                          f"{INDEX_FILE}"), expected="a readable evidence index", environment=judge.env.name)
        return Candidate(state, Index(judge.env.name, tmp, ""), [finding])
    return Candidate(state, index, [*state.problems, *judge_state(judge, state, index)])


def find_target(repo: Repository, judge: Judge, current: State, tmp: Path,
                to: str | None = None) -> tuple[Candidate | None, list[Candidate]]:
    """The proven state to return to (None: none), and the newer differing states passed over
    (the newest first; with ``to``, the one named when it is not proven).  A state the same
    as today's is no rollback and is passed over silently."""
    if to is not None:
        named = candidate_at(repo, judge, state_at(repo, repo.commit(repo.resolve(to)), judge.env.name), tmp)
        return (named, []) if not named.findings else (None, [named])
    passed: list[Candidate] = []
    for commit in repo.log([TENANTS_DIR, f"{INDEX_DIR}/{judge.env.name}"])[:MAX_STATES]:
        state = state_at(repo, commit, judge.env.name)
        if state.key() == current.key():
            continue
        cand = candidate_at(repo, judge, state, tmp)
        if not cand.findings:
            return cand, passed
        passed.append(cand)
    return None, passed


# ---------------------------------------------------------------- the change


@dataclass(frozen=True)
class Change:
    tenant: str
    flavor: str  # served after the rollback ("" when removed)
    replaces: str  # served now ("" when the rollback adds it back)
    location: Location  # today's line (the list's, when added back)
    entry: Mapping[str, object]  # the target's index entry of ``flavor``

    def as_dict(self) -> dict[str, object]:
        kind = "baseline" if "baseline" in self.entry else ("promotion" if self.entry else None)
        return {"tenant": self.tenant, "flavor": self.flavor or None, "replaces": self.replaces or None,
                "evidence": kind, "record": self.entry.get("record"), "signed_by": self.entry.get("signed_by"),
                "recorded": self.entry.get("recorded"), "promoted": self.entry.get("promoted")}


@dataclass(frozen=True)
class AliasChange:
    tenant: str
    alias: str
    now: str
    then: str

    def as_dict(self) -> dict[str, str]:
        return {"tenant": self.tenant, "alias": self.alias, "replaces": self.now, "to": self.then}


@dataclass
class Edits:
    changes: list[Change] = field(default_factory=list)
    aliases: list[AliasChange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # per tenant: positions replaced, versions appended, positions removed, aliases set
    replace: dict[str, dict[int, str]] = field(default_factory=dict)
    append: dict[str, list[str]] = field(default_factory=dict)
    remove: dict[str, list[int]] = field(default_factory=dict)
    set_alias: dict[str, dict[str, str]] = field(default_factory=dict)


def plan_edits(current: State, target: Candidate, env: str) -> Edits:
    """The edits that make today's lists the target's: a version both list stays; then the
    remaining versions of one flavor replace each other in order; what is left is removed or
    added back."""
    out = Edits()
    for name in sorted(current.tenants.keys() | target.state.tenants.keys()):
        now, then = current.tenants.get(name), target.state.tenants.get(name)
        if now is None or then is None:
            which = f"runs in {env} now but did not at {target.commit.short}" if then is None else \
                f"ran in {env} at {target.commit.short} but does not now"
            either = now or then
            assert either is not None
            loc = now.lines[0] if now and now.lines else Location(either.file)
            out.findings.append(Finding(MANUAL_RULE, Severity.ERROR, f"tenant {name} {which}: kitchen rollback "
                                        "edits flavor lists and aliases only", loc,
                                        expected="the tenant's environment edited by hand, or a later --to",
                                        environment=env))
            continue
        _tenant_edits(out, now, then, target, env)
    return out


def _tenant_edits(out: Edits, now: TenantState, then: TenantState, target: Candidate, env: str) -> None:
    entries = target.index.entries
    left = [i for i, ref in enumerate(now.flavors) if ref not in then.flavors]
    wanted = [ref for ref in then.flavors if ref not in now.flavors]
    for ref in list(wanted):
        same = next((i for i in left if now.flavors[i].split("@", 1)[0] == ref.split("@", 1)[0]), None)
        if same is not None:
            left.remove(same)
            wanted.remove(ref)
            out.replace.setdefault(now.tenant, {})[same] = ref
            out.changes.append(Change(now.tenant, ref, now.flavors[same], now.lines[same], entries.get(ref, {})))
    for i in left:
        out.remove.setdefault(now.tenant, []).append(i)
        out.changes.append(Change(now.tenant, "", now.flavors[i], now.lines[i], {}))
    for ref in wanted:
        out.append.setdefault(now.tenant, []).append(ref)
        out.changes.append(Change(now.tenant, ref, "", Location(now.file), entries.get(ref, {})))
    a_now, a_then = dict(now.aliases), dict(then.aliases)
    for alias in sorted(a_now.keys() | a_then.keys()):
        if a_now.get(alias) == a_then.get(alias):
            continue
        if alias in a_now and alias in a_then:
            out.set_alias.setdefault(now.tenant, {})[alias] = a_then[alias]
            out.aliases.append(AliasChange(now.tenant, alias, a_now[alias], a_then[alias]))
        else:
            what = "added since" if alias in a_now else "removed since"
            out.findings.append(Finding(MANUAL_RULE, Severity.ERROR, f"alias {alias} of tenant {now.tenant} was "
                                        f"{what} {target.commit.short}: kitchen rollback moves aliases, it does "
                                        "not add or remove them", Location(now.file), expected="the alias edited "
                                        "by hand", environment=env))


# ---------------------------------------------------------------- writing


def rollback_contents(root: Path, catalog: Catalog, judge: Judge, target: Candidate, edits: Edits,
                      record: Mapping[str, object]) -> dict[Path, bytes]:
    """The files ``--write`` replaces: the tenants' files, the index, and the records that
    come back; ConfigError when a tenant file cannot be edited."""
    from .load import read_regular_file

    env = judge.env.name
    contents: dict[Path, bytes] = {}
    for tenant in sorted(edits.replace.keys() | edits.append.keys() | edits.remove.keys() | edits.set_alias.keys()):
        doc = catalog.documents[("Tenant", tenant)]
        text = read_regular_file(doc.path).decode("utf-8")
        try:
            new = edit_flavor_list(text, env, edits.replace.get(tenant, {}), edits.append.get(tenant, []),
                                   edits.set_alias.get(tenant, {}), edits.remove.get(tenant, []))
        except (KeyError, IndexError, StopIteration, ValueError) as exc:
            raise ConfigError(f"{doc.display_path}: cannot edit the flavors of {env} ({exc}); nothing written") \
                from None
        contents[doc.path] = new.encode("utf-8")
    index = load_index(root, env)
    for ref in sorted({ref for t in target.state.tenants.values() for ref in t.flavors}):
        if index.entries.get(ref) == target.index.entries[ref] or not _why(judge, index, ref):
            continue  # today's index allows it already
        entry = target.index.entries[ref]
        index.entries[ref] = dict(entry)
        if "record" in entry:
            source = record_path(target.index, entry["record"])  # confined to its records/ folder
            if source is None:
                raise ConfigError(f"{visible(str(entry['record']))[:120]}: the record the revision's index names "
                                  f"for {ref} is not a file of its records/ folder; nothing written")
            contents[index.folder / RECORDS_DIR / source.name] = source.read_bytes()
    index.rollbacks.append(dict(record))
    contents[index.folder / INDEX_FILE] = index.to_bytes()
    return contents


def rollback_record(target: Candidate, edits: Edits, head: str | None, now: dt.datetime,
                    reason: str) -> dict[str, object]:
    """What the index records of the rollback (unsigned, like a promotion time: the commit
    that adds it, and its review, say who did it)."""
    out: dict[str, object] = {"time": utc_text(now), "to": target.commit.sha, "from": head,
                              "changes": [c.as_dict() for c in edits.changes],
                              "aliases": [a.as_dict() for a in edits.aliases]}
    if reason:
        out["reason"] = reason
    return out
