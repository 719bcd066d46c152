"""What an environment served over time, read from Git: per flavor version, when it entered
and left the environment, the commit and its author, the evidence its index recorded for it
(verified again: signed by a key trusted today, the bytes the index pins) and the rollback
that removed it.

A *state* is what the tenants' files of one commit list for the environment (flavor
versions and aliases per tenant).  The commits read are the first-parent commits of the
branch that touched ``catalog/tenants/`` or ``evidence/<env>/``, oldest first; a state is
read from the files of its commit alone, so a later edit of the working tree or of another
commit changes nothing of it.  A commit whose tenant file does not parse counts that tenant
as it was before, and says so (``history.unreadable``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from .errors import ConfigError
from .escape import visible
from .evidence import MAX_RECORD_BYTES, EvidenceError, TrustedKey, VerifiedRecord, verify_signed
from .findings import Finding, Location, Severity
from .load import MAX_FILE_BYTES, parse_text
from .model import Catalog
from .promotion import INDEX_DIR, INDEX_FILE, MAX_INDEX_BYTES, RECORDS_DIR, Index, parse_index
from .revisions import Blob, Commit, Repository
from .rules import HISTORY_EVIDENCE_INVALID, HISTORY_UNREADABLE

TENANTS_DIR = "catalog/tenants"
INVALID_RULE = HISTORY_EVIDENCE_INVALID
UNREADABLE_RULE = HISTORY_UNREADABLE


@dataclass(frozen=True)
class TenantState:
    """One tenant's flavor list and aliases in the environment, and where its file has them."""

    tenant: str
    file: str
    flavors: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    lines: tuple[Location, ...] = ()  # each flavor item's position

    def location(self, ref: str) -> Location:
        return self.lines[self.flavors.index(ref)] if ref in self.flavors and self.lines else Location(self.file)


@dataclass
class State:
    commit: Commit | None  # None: the working tree
    tenants: dict[str, TenantState] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)

    def served(self) -> set[tuple[str, str]]:
        return {(t.tenant, ref) for t in self.tenants.values() for ref in t.flavors}

    def key(self) -> tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]], ...]:
        """What the state serves, comparable between commits (positions aside)."""
        return tuple((t.tenant, tuple(sorted(t.flavors)), t.aliases) for t in sorted(
            self.tenants.values(), key=lambda t: t.tenant))


def _env_lists(data: object, env: str) -> tuple[list[str], dict[str, str]] | None:
    envs = data.get("environments") if isinstance(data, dict) else None
    block = envs.get(env) if isinstance(envs, dict) else None
    if not isinstance(block, dict):
        return None
    flavors = block.get("flavors") or []
    aliases = block.get("aliases") or {}
    if not isinstance(flavors, list) or not isinstance(aliases, dict):
        raise ValueError("flavors is a list and aliases a mapping")
    return [str(f) for f in flavors], {str(k): str(v) for k, v in aliases.items()}


def tenant_state(raw: bytes, display: str, env: str, where: str) -> tuple[TenantState | None, list[Finding]]:
    """A tenant file's lists for ``env`` (None when the tenant does not run there)."""
    doc, problems = parse_text(raw, Path(display), display)
    if doc is None:
        return None, [Finding(UNREADABLE_RULE, Severity.WARNING, f"{where}: {p.message}", p.location,
                              expected=p.expected or "a readable tenant file") for p in problems[:1]]
    try:
        lists = _env_lists(doc.data, env)
    except ValueError as exc:
        return None, [Finding(UNREADABLE_RULE, Severity.WARNING, f"{where}: the tenant's {env} lists are not "
                              "readable", doc.location(("environments", env)), expected=str(exc))]
    if lists is None or doc.kind != "Tenant":
        return None, []
    flavors, aliases = lists
    lines = tuple(doc.location(("environments", env, "flavors", i), value=True) for i in range(len(flavors)))
    return TenantState(doc.name, display, tuple(flavors), tuple(sorted(aliases.items())), lines), []


def state_at(repo: Repository, commit: Commit, env: str) -> State:
    """What the tenants' files of ``commit`` list for ``env``."""
    state = State(commit)
    blobs = [b for b in repo.files(commit.sha, TENANTS_DIR) if b.path.endswith((".yaml", ".yml"))]
    data = repo.read(blobs, MAX_FILE_BYTES)
    for blob in blobs:
        tenant, problems = tenant_state(data.get(blob.sha, b"x" * (MAX_FILE_BYTES + 1)), blob.path, env,
                                        f"at {commit.short}")
        state.problems += problems
        if tenant is not None:
            state.tenants[tenant.tenant] = tenant
    return state


def current_state(catalog: Catalog, env: str) -> State:
    """What the working tree's (validated) catalog lists for ``env``."""
    state = State(None)
    for name in sorted(catalog.tenants):
        tenv = catalog.tenants[name].environments.get(env)
        if tenv is None:
            continue
        doc = catalog.documents[("Tenant", name)]
        flavors = tuple(str(r) for r in tenv.flavors)
        lines = tuple(catalog.location("Tenant", name, ("environments", env, "flavors", i))
                      for i in range(len(flavors)))
        state.tenants[name] = TenantState(name, doc.display_path, flavors,
                                          tuple(sorted((a, str(t)) for a, t in tenv.aliases.items())), lines)
    return state


# ---------------------------------------------------------------- the index at a commit


def index_files(repo: Repository, commit: str, env: str) -> tuple[Blob | None, list[Blob]]:
    folder = f"{INDEX_DIR}/{env}"
    blobs = repo.files(commit, folder)
    index = next((b for b in blobs if b.path == f"{folder}/{INDEX_FILE}"), None)
    records = [b for b in blobs if b.path.startswith(f"{folder}/{RECORDS_DIR}/")]
    return index, records


def index_at(repo: Repository, commit: str, env: str, into: Path | None = None) -> Index:
    """The index of ``env`` as ``commit`` holds it (empty when it holds none); with ``into``,
    it and its records are written under ``into/evidence/<env>/`` for verification."""
    display = f"{INDEX_DIR}/{env}/{INDEX_FILE}"
    folder = (into or Path("/nonexistent")) / INDEX_DIR / env
    blob, records = index_files(repo, commit, env)
    if blob is None:
        return Index(env, folder, display)
    raw = repo.read([blob], MAX_INDEX_BYTES).get(blob.sha)
    if raw is None:
        raise ConfigError(f"{display} at {commit[:12]}: larger than {MAX_INDEX_BYTES >> 20} MiB")
    index = parse_index(raw, env, folder, f"{display} at {commit[:12]}")
    if into is not None:
        (folder / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
        data = repo.read(records, MAX_RECORD_BYTES)
        for rec in records:
            name = rec.path.rsplit("/", 1)[1]
            if rec.sha in data and "/" not in rec.path[len(f"{INDEX_DIR}/{env}/{RECORDS_DIR}/"):]:
                (folder / RECORDS_DIR / name).write_bytes(data[rec.sha])
    return index


def entry_location(raw: bytes | None, display: str, ref: str) -> Location:
    """Where the index's text has the entry of ``ref`` (its key), or the file."""
    text = (raw or b"").decode("utf-8", "replace")
    at = text.find(json.dumps(ref, ensure_ascii=False) + ":")
    if at < 0:
        return Location(display)
    line = text.count("\n", 0, at) + 1
    return Location(display, line, at - (text.rfind("\n", 0, at) + 1) + 1)


# ---------------------------------------------------------------- evidence of one version


class EvidenceSummary(TypedDict):
    """What a verified record says about one flavor version (``kitchen history``)."""

    record: str
    environment: str
    cluster: str
    time: str
    verdict: str
    signed_by: str
    checks_run: list[str]
    scores: list[dict[str, object]]
    slo: list[dict[str, object]]


def evidence_summary(record: VerifiedRecord, ref: str) -> EvidenceSummary:
    """What a verified record says about ``ref``: the run, its scores, the SLO results."""
    services = {e.service for e in record.flavors.get(ref, ())}
    scores = [{k: e.get(k) for k in ("metric", "score", "threshold", "recorded", "base_score", "status")}
              for e in record.record.get("evaluations") or () if isinstance(e, dict) and e.get("subject") == ref]
    slo = [{"service": c.get("subject"), "status": c.get("status"),
            "metrics": (c.get("details") or {}).get("metrics") if isinstance(c.get("details"), dict) else None}
           for c in record.record.get("checks") or ()
           if isinstance(c, dict) and c.get("check") == "performance" and c.get("subject") in services]
    return {"record": record.origin.rsplit("/", 1)[-1], "environment": record.environment,
            "cluster": record.cluster, "time": record.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verdict": record.verdict, "signed_by": record.signer,
            "checks_run": [str(c) for c in record.record.get("checks_run") or ()],
            "scores": scores, "slo": slo}


def verify_entry(repo: Repository, commit: str, index: Index, ref: str,
                 trusted: Mapping[str, TrustedKey]) -> tuple[EvidenceSummary | None, str]:
    """The evidence an index entry names, verified again (its summary), or why it is not."""
    entry = index.entries.get(ref) or {}
    if "baseline" in entry:
        return None, ""
    name = entry.get("record")
    if not isinstance(name, str) or not name.startswith(f"{RECORDS_DIR}/") or "/" in name[len(RECORDS_DIR) + 1:]:
        return None, f"the entry of {ref} names no record of its {RECORDS_DIR}/ folder"
    _, records = index_files(repo, commit, index.environment)
    blob = next((b for b in records if b.path == f"{INDEX_DIR}/{index.environment}/{name}"), None)
    data = repo.read([blob], MAX_RECORD_BYTES).get(blob.sha) if blob else None
    if data is None:
        return None, f"the record {visible(name)[:120]} of {ref} is missing"
    if hashlib.sha256(data).hexdigest() != entry.get("record_sha256"):
        return None, f"{visible(name)[:120]} is not the record the index pins for {ref} (sha256 differs)"
    try:
        record = verify_signed(data, name, trusted)
    except EvidenceError as exc:
        return None, str(exc)
    if all(e.digest != entry.get("digest") for e in record.flavors.get(ref, ())):
        return None, f"{visible(name)[:120]} does not prove {ref} with the digest the index records"
    return evidence_summary(record, ref), ""


# ---------------------------------------------------------------- the history


@dataclass
class Stint:
    """One flavor version served by one tenant, from the commit that listed it to the one
    that took it away (None: still served at the newest commit)."""

    tenant: str
    ref: str
    entered: Commit
    left: Commit | None = None
    entry: dict[str, object] = field(default_factory=dict)  # the index entry when it entered (as recorded)
    evidence: EvidenceSummary | None = None
    problem: str = ""
    rollback: dict[str, object] | None = None  # the rollback that removed it
    seen: tuple[str, ...] = ()  # the entry and record verified last

    def as_dict(self) -> dict[str, object]:
        kind = "baseline" if "baseline" in self.entry else ("promotion" if self.entry else None)
        return {"tenant": self.tenant, "flavor": self.ref, "entered": self.entered.as_dict(),
                "left": self.left.as_dict() if self.left else None, "kind": kind,
                "baseline": self.entry.get("baseline"), "promoted": self.entry.get("promoted"),
                "from": self.entry.get("from"), "evidence": self.evidence, "evidence_problem": self.problem or None,
                "rollback": self.rollback}


@dataclass
class History:
    environment: str
    stints: list[Stint] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    commits: int = 0


def _rollback_removing(before: Index, after: Index, tenant: str, ref: str) -> dict[str, object] | None:
    for item in after.rollbacks[len(before.rollbacks):]:
        for change in item.get("changes") or ():
            if isinstance(change, dict) and change.get("tenant") == tenant and change.get("replaces") == ref:
                return {k: item.get(k) for k in ("time", "to", "from", "reason")}
    return None


def read_history(repo: Repository, env: str, trusted: Mapping[str, TrustedKey],
                 flavors: Sequence[str] = ()) -> History:
    """Every stint of every flavor version in ``env`` (``flavors``: these names or versions only)."""
    out = History(env)
    commits = list(reversed(repo.log([TENANTS_DIR, f"{INDEX_DIR}/{env}"])))
    out.commits = len(commits)
    open_: dict[tuple[str, str], Stint] = {}
    previous: State = State(None)
    prev_index = Index(env, Path("/nonexistent"), "")
    for commit in commits:
        state = state_at(repo, commit, env)
        out.findings += state.problems
        for name, tenant in previous.tenants.items():  # an unreadable file keeps its last state
            if any(p.location.file == tenant.file for p in state.problems):
                state.tenants.setdefault(name, tenant)
        try:
            index = index_at(repo, commit.sha, env)
        except ConfigError as exc:
            blob, _ = index_files(repo, commit.sha, env)
            out.findings.append(Finding(INVALID_RULE, Severity.ERROR, str(exc), Location(
                f"{INDEX_DIR}/{env}/{INDEX_FILE}"), expected="an evidence index", environment=env))
            index = prev_index if blob is not None else Index(env, prev_index.folder, prev_index.display)
        for key in sorted(previous.served() - state.served()):
            stint = open_.pop(key)
            stint.left = commit
            stint.rollback = _rollback_removing(prev_index, index, *key)
        for key in sorted(state.served() - previous.served()):
            open_[key] = _enter(out, repo, commit, index, key, trusted)
        for key, stint in open_.items():  # an entry recorded later, or its record changed since
            if key[1] in index.entries and stint.seen != _fingerprint(repo, commit.sha, index, key[1]):
                _attach(out, repo, commit, index, stint, trusted)
        previous, prev_index = state, index
    if flavors:
        out.stints = [s for s in out.stints if s.ref in flavors or s.ref.split("@", 1)[0] in flavors]
        refs = {s.ref for s in out.stints}
        out.findings = [f for f in out.findings if f.rule_id != INVALID_RULE or not f.subject
                        or f.subject.removeprefix("Flavor/") in refs]
    return out


def _enter(out: History, repo: Repository, commit: Commit, index: Index, key: tuple[str, str],
           trusted: Mapping[str, TrustedKey]) -> Stint:
    stint = Stint(key[0], key[1], commit)
    out.stints.append(stint)
    if key[1] in index.entries:
        _attach(out, repo, commit, index, stint, trusted)
    return stint


def _fingerprint(repo: Repository, commit: str, index: Index, ref: str) -> tuple[str, ...]:
    entry = json.dumps(index.entries.get(ref), sort_keys=True, default=str)
    _, records = index_files(repo, commit, index.environment)
    name = f"{INDEX_DIR}/{index.environment}/{(index.entries.get(ref) or {}).get('record')}"
    return entry, next((b.sha for b in records if b.path == name), "")


def _attach(out: History, repo: Repository, commit: Commit, index: Index, stint: Stint,
            trusted: Mapping[str, TrustedKey]) -> None:
    """Verify the entry of the stint's version at ``commit``: the evidence it shows is the
    first that verified; a later change that does not verify is a finding."""
    stint.seen = _fingerprint(repo, commit.sha, index, stint.ref)
    evidence, problem = verify_entry(repo, commit.sha, index, stint.ref, trusted)
    if not stint.entry or (stint.evidence is None and not problem):
        stint.entry, stint.evidence = dict(index.entries[stint.ref]), evidence
    if problem:
        stint.problem = problem
        blob, _ = index_files(repo, commit.sha, index.environment)
        raw = repo.read([blob], MAX_INDEX_BYTES).get(blob.sha) if blob else None
        out.findings.append(Finding(
            INVALID_RULE, Severity.ERROR, f"at {commit.short}: {problem}",
            entry_location(raw, f"{INDEX_DIR}/{index.environment}/{INDEX_FILE}", stint.ref),
            expected="the record the index pins, signed by a key of policies/evidence-keys.yaml",
            environment=index.environment, subject=f"Flavor/{stint.ref}"))
