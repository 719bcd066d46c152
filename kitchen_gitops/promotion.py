"""Promotion with evidence: an environment serves a flavor version only with proof that
these exact bytes passed in the environment it promotes from.

``evidence/<env>/index.json`` records, per flavor version the environment may serve, the
flavor digest (:mod:`kitchen_gitops.serving_digest`) and why it may: a **promotion** (a
signed evidence record of the environment it promotes from, copied beside the index
under ``records/``, and the time of the promotion) or the **baseline** (flavor versions
served before the environment's floor required evidence; a change to it is reviewed by
the owners of ``evidence/``, as CODEOWNERS says).

``kitchen promote --env E`` proposes what E's tenants would newly serve (the versions of
the environment E promotes from, for the tenants that run in both) and looks for
passing, signed, fresh evidence whose flavor digest is the one E will serve; with
``--write`` it updates the tenants' flavor lists (a splice that keeps every other byte)
and the index.  ``kitchen check`` verifies the index (``policy.promotion-evidence``) for
every environment whose floor in ``policies/data.yaml`` says ``promotion_evidence: true``:
every flavor version it serves has an entry whose digest is the one served, and every
promotion's record verifies, passed, names that digest and was fresh when promoted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, UsageError
from .escape import visible
from .evidence import (
    CLOCK_SKEW,
    EvidenceError,
    Refusal,
    TrustedKey,
    VerifiedRecord,
    fresh,
    parse_time,
    utc_text,
    verify_signed,
)
from .findings import Finding, Location, Severity
from .model import Catalog, Environment
from .policy.floors import floors_of, named_floors_of
from .rules import (
    POLICY_PROMOTION_EVIDENCE,
    PROMOTION_DIGEST_MISMATCH,
    PROMOTION_EVIDENCE_EXPIRED,
    PROMOTION_EVIDENCE_FAILED,
    PROMOTION_EVIDENCE_INVALID,
    PROMOTION_EVIDENCE_MISSING,
)
from .serving_digest import flavor_digest, flavor_digest_v1

if TYPE_CHECKING:
    from ruamel.yaml.nodes import Node

INDEX_DIR = "evidence"
INDEX_FILE = "index.json"
RECORDS_DIR = "records"
INDEX_FORMAT = "kitchen-evidence-index/1"
CHECK_RULE = POLICY_PROMOTION_EVIDENCE
MAX_AGE_KEY = "evidence_max_age_days"
DEFAULT_MAX_AGE_DAYS = 14
# an entry is a few hundred bytes: room for tens of thousands of flavor versions
MAX_INDEX_BYTES = 16 << 20


def requires_evidence(data: Mapping[str, object], env: Environment) -> bool:
    """Whether a floor that holds ``env`` says ``promotion_evidence: true``."""
    return any(f.get("promotion_evidence") is True for f in floors_of(data, env.name, env.cluster.name))


@dataclass(frozen=True)
class BaselinePins:
    """What the floors that require promotion evidence of an environment accept as its
    baseline: per floor (by name), flavor version → flavor digest (``promotion_baseline``).
    An index's baseline entry is honoured only where every such floor pins its digest."""

    floors: tuple[tuple[str, Mapping[str, object]], ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, object], env: Environment) -> BaselinePins:
        return cls(tuple((name, pins if isinstance(pins := floor.get("promotion_baseline"), dict) else {})
                         for name, floor in named_floors_of(data, env.name, env.cluster.name)
                         if floor.get("promotion_evidence") is True))

    def problem(self, index: Index, ref: str, digest: str) -> Problem | None:
        """Why the baseline entry of ``ref`` (with ``digest``, the one served) is not one
        security accepted; None when every floor pins it."""
        for name, pins in self.floors:
            if pins.get(ref) != digest:
                return Problem(CHECK_RULE, f"{ref}: {index.display} enters it as its baseline (served before "
                               f"promotion evidence was required), but the floor {name} in policies/data.yaml "
                               "does not pin it: an index cannot accept a version by itself",
                               f"promotion evidence (kitchen promote --env {index.environment}), or security's "
                               f"pin '{ref}: {digest}' in gate_floors.environments.{name}.promotion_baseline")
        return None


def max_age_days(data: Mapping[str, object]) -> int:
    days = data.get(MAX_AGE_KEY)
    return days if isinstance(days, int) and not isinstance(days, bool) else DEFAULT_MAX_AGE_DAYS


def legacy_digest_of(catalog: Catalog, ref: str) -> str:
    flavor = catalog.flavors[ref]
    return flavor_digest_v1(flavor, catalog.bases[str(flavor.base)])


def digest_of(catalog: Catalog, ref: str) -> str:
    flavor = catalog.flavors[ref]
    return flavor_digest(flavor, catalog.bases[str(flavor.base)])


def source_problem(catalog: Catalog, index: Index, ref: str) -> Problem | None:
    """Why the flavor's ``source`` is not the one its entry was recorded with (None when it
    is, or the entry records none).  The digest covers the source, so a changed source fails
    the digest comparison too; this says which part changed, at the flavor's source line."""
    entry = index.entries.get(ref)
    recorded = entry.get("source") if entry else None
    now = catalog.flavors[ref].source
    if recorded is None or recorded == now:
        return None
    return Problem(CHECK_RULE, f"{ref} loads from {now}, but the evidence in {index.display} proved it from "
                   f"{visible(str(recorded))[:200]}: a changed source needs new evidence",
                   f"source {visible(str(recorded))[:200]}, or new evidence for {now} "
                   f"(kitchen promote --env {index.environment})")


# ---------------------------------------------------------------- the index


@dataclass
class Index:
    environment: str
    folder: Path  # evidence/<env>
    display: str  # as findings name it
    entries: dict[str, dict[str, object]] = field(default_factory=dict)
    exists: bool = False
    # the rollbacks recorded (kitchen rollback --write), oldest first; what the gate verifies
    # is the entries, never these
    rollbacks: list[dict[str, Any]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {"format": INDEX_FORMAT, "environment": self.environment,
                                  "flavors": {k: self.entries[k] for k in sorted(self.entries)}}
        if self.rollbacks:
            doc["rollbacks"] = self.rollbacks
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def index_folder(root: Path, env: str) -> Path:
    return root / INDEX_DIR / env


def load_index(root: Path, env: str) -> Index:
    """The environment's index (empty when there is none); ConfigError when it is unreadable."""
    from .load import read_regular_file

    folder = index_folder(root, env)
    path = folder / INDEX_FILE
    display = f"{INDEX_DIR}/{env}/{INDEX_FILE}"
    if not path.exists() and not path.is_symlink():
        return Index(env, folder, display)
    if path.is_symlink() or folder.is_symlink() or (root / INDEX_DIR).is_symlink():
        raise ConfigError(f"{display}: a link; the evidence index and its folders are plain files in the repository")
    try:
        raw = read_regular_file(path, MAX_INDEX_BYTES)
    except OSError as exc:
        raise ConfigError(f"{display}: not a readable evidence index ({visible(str(exc))[:200]})") from None
    return parse_index(raw, env, folder, display)


def parse_index(raw: bytes, env: str, folder: Path, display: str) -> Index:
    """An index from its bytes (the working tree's, or a commit's); ConfigError when it is not one."""
    index = Index(env, folder, display)
    try:
        if len(raw) > MAX_INDEX_BYTES:
            raise ValueError(f"larger than {MAX_INDEX_BYTES >> 20} MiB")
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{display}: not a readable evidence index ({visible(str(exc))[:200]})") from None
    if (not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or doc.get("environment") != env
            or not isinstance(doc.get("flavors"), dict)
            or not all(isinstance(v, dict) for v in doc["flavors"].values())):
        raise ConfigError(f"{display}: expected {{format: {INDEX_FORMAT}, environment: {env}, flavors: "
                          "{name@version: {digest, …}}}")
    rollbacks = doc.get("rollbacks", [])
    if not isinstance(rollbacks, list) or not all(isinstance(r, dict) for r in rollbacks):
        raise ConfigError(f"{display}: expected rollbacks: a list of {{time, to, changes, …}}")
    index.entries = dict(doc["flavors"])
    index.rollbacks = list(rollbacks)
    index.exists = True
    return index


@dataclass(frozen=True)
class Problem:
    rule: str
    message: str
    expected: str


def record_path(index: Index, name: object) -> Path | None:
    """The record file an entry names, confined to the index's records/ folder."""
    if not isinstance(name, str) or not name.startswith(f"{RECORDS_DIR}/"):
        return None
    rest = name[len(RECORDS_DIR) + 1:]
    if not rest or "/" in rest or "\\" in rest or rest in (".", "..") or not rest.endswith(".json"):
        return None
    return index.folder / RECORDS_DIR / rest


def check_record(record: VerifiedRecord, ref: str, digest: str, source: Environment) -> Problem | None:
    """Whether a verified record is evidence for ``ref`` with ``digest`` from ``source``
    (freshness aside)."""
    if record.environment != source.name:
        return Problem(PROMOTION_EVIDENCE_MISSING,
                       f"the record is evidence of {record.environment}, not of {source.name}",
                       f"evidence of {source.name}")
    if record.cluster != source.cluster.name:
        return Problem(PROMOTION_EVIDENCE_MISSING,
                       f"the record comes from cluster {record.cluster}, not {source.name}'s "
                       f"{source.cluster.name}", f"evidence from cluster {source.cluster.name}")
    seen = record.flavors.get(ref)
    if not seen:
        return Problem(PROMOTION_EVIDENCE_MISSING, f"the record does not cover {ref}",
                       f"a record of a run that served {ref}")
    if all(e.digest != digest for e in seen):
        return Problem(PROMOTION_DIGEST_MISMATCH,
                       f"the record proves {ref} with digest {seen[0].digest}, other bytes than the "
                       f"{digest} that will be served (another adapter or base, or a re-upload)",
                       f"evidence for digest {digest}")
    if record.verdict != "PASS":
        return Problem(PROMOTION_EVIDENCE_FAILED, f"the conformance run of {record.origin} did not pass "
                       f"(verdict {record.verdict})", "a run whose every check passed")
    return None


def entry_problem(index: Index, ref: str, digest: str, source: Environment | None,
                  trusted: Mapping[str, TrustedKey], max_days: int, now: dt.datetime,
                  legacy_digest: Callable[[], str] | None = None, *, pins: BaselinePins) -> Problem | None:
    """Why the index does not allow ``ref`` with ``digest`` (None when it does; a baseline
    entry where ``pins`` hold it);
    ``legacy_digest``: the flavor's digest of format 1, to tell an entry recorded before the
    digest covered the source apart from other bytes (made only for an entry that does
    not hold ``digest``: the two formats hash different texts)."""
    entry = index.entries.get(ref)
    where = index.display
    if entry is None:
        return Problem(CHECK_RULE, f"no promotion evidence for {ref} in {where}",
                       f"an entry for {ref} (run `kitchen promote --env {index.environment}`)")
    if entry.get("digest") != digest and legacy_digest is not None and entry.get("digest") == legacy_digest():
        return Problem(CHECK_RULE, f"{ref}: {where} records its digest of format 1, which does not pin the "
                       "adapter's source; its evidence does not prove where the adapter is loaded from",
                       f"new evidence (kitchen promote --env {index.environment}), or the entry removed and "
                       "recorded again with --baseline")
    if entry.get("digest") != digest:
        return Problem(CHECK_RULE, f"{ref} is served with digest {digest}, but {where} records "
                       f"{visible(str(entry.get('digest')))[:80]}: other adapter or base bytes than were promoted",
                       f"evidence for digest {digest}")
    if "baseline" in entry:
        return pins.problem(index, ref, digest)
    if source is None:
        return Problem(CHECK_RULE, f"{ref}: environment {index.environment} promotes from no environment, so "
                       "no promotion in its index can be verified", "promotes_from set")
    path = record_path(index, entry.get("record"))
    if path is None or not path.is_file() or path.is_symlink():
        return Problem(CHECK_RULE, f"{ref}: the record {visible(str(entry.get('record')))[:120]} that {where} "
                       "names is not a file of its records/ folder", "records/<name>.json beside the index")
    from .evidence import MAX_RECORD_BYTES
    from .load import read_regular_file

    try:
        data = read_regular_file(path, MAX_RECORD_BYTES)
    except OSError as exc:
        return Problem(CHECK_RULE, f"{ref}: cannot read {path.name}: {exc.strerror or exc}", "a readable record")
    if hashlib.sha256(data).hexdigest() != entry.get("record_sha256"):
        return Problem(CHECK_RULE, f"{ref}: {path.name} is not the record {where} pins (sha256 differs)",
                       "the record as promoted")
    try:
        record = verify_signed(data, f"{where} → {RECORDS_DIR}/{path.name}", trusted)
        promoted = parse_time(entry.get("promoted"))
    except EvidenceError as exc:
        return Problem(CHECK_RULE, f"{ref}: {exc}", "a record signed by a key of policies/evidence-keys.yaml")
    except ValueError:
        return Problem(CHECK_RULE, f"{ref}: {where} has no valid promotion time", "promoted: a UTC time")
    problem = check_record(record, ref, digest, source)
    if problem is not None:
        return Problem(CHECK_RULE, f"{ref}: {problem.message}", problem.expected)
    if promoted > now + CLOCK_SKEW:
        return Problem(CHECK_RULE, f"{ref}: promoted at {utc_text(promoted)}, in the future",
                       "a promotion time in the past")
    stale = fresh(record, promoted, max_days)
    if stale:
        return Problem(CHECK_RULE, f"{ref}: the record was not fresh when promoted: {stale}",
                       f"evidence at most {max_days} days old at promotion")
    return None


# ---------------------------------------------------------------- what an environment serves


@dataclass(frozen=True)
class Served:
    """One tenant's flavor version in an environment, and where its list names it."""

    tenant: str
    ref: str
    location: Location
    old_ref: str = ""  # a promotion: the version it replaces ("" when new, or already listed)
    source_location: Location | None = None
    position: int = -1  # its index in the tenant's list (-1: appended by the promotion)


def _listed_in(catalog: Catalog, env: str) -> Iterator[tuple[str, int, str]]:
    """Each flavor version a tenant lists for ``env``: the tenant, its index, the version."""
    for name in sorted(catalog.tenants):
        tenv = catalog.tenants[name].environments.get(env)
        for i, ref in enumerate(tenv.flavors if tenv else ()):
            yield name, i, str(ref)


def served_in(catalog: Catalog, env: str) -> list[Served]:
    return [Served(name, ref, catalog.location("Tenant", name, ("environments", env, "flavors", i)), position=i)
            for name, i, ref in _listed_in(catalog, env)]


def proposed(catalog: Catalog, env: Environment, only: Sequence[str] = ()) -> list[Served]:
    """What ``env`` serves once the versions of the environment it promotes from are taken
    over, for the tenants that run in both (``only``: these flavor names)."""
    source = env.promotes_from
    assert source is not None
    out = []
    for name in sorted(catalog.tenants):
        tenant = catalog.tenants[name]
        target, origin = tenant.environments.get(env.name), tenant.environments.get(source)
        current = list(target.flavors) if target else []
        listed = {r.name: i for i, r in enumerate(current)}
        items = [Served(name, str(r), catalog.location("Tenant", name, ("environments", env.name, "flavors", i)),
                        position=i) for i, r in enumerate(current)]
        if target is None or origin is None:
            out += items
            continue
        for j, ref in enumerate(origin.flavors):
            if only and ref.name not in only:
                continue
            src_loc = catalog.location("Tenant", name, ("environments", source, "flavors", j))
            if ref.name in listed:
                i = listed[ref.name]
                if str(current[i]) != str(ref):
                    items[i] = Served(name, str(ref), items[i].location, str(current[i]), src_loc, i)
            else:
                loc = catalog.location("Tenant", name, ("environments", env.name, "flavors"))
                items.append(Served(name, str(ref), loc, "", src_loc, -1))
        out += items
    return out


# ---------------------------------------------------------------- looking for evidence


@dataclass
class Decision:
    served: Served
    digest: str
    record: VerifiedRecord | None = None
    problem: Problem | None = None


def choose_evidence(ref: str, digest: str, source: Environment, records: Sequence[VerifiedRecord],
                    now: dt.datetime, max_days: int) -> tuple[VerifiedRecord | None, Problem]:
    """The newest acceptable record for ``ref``, or the most telling reason there is none."""
    order: dict[str, int] = {PROMOTION_EVIDENCE_MISSING: 0, PROMOTION_DIGEST_MISMATCH: 1, PROMOTION_EVIDENCE_FAILED: 2,
             PROMOTION_EVIDENCE_EXPIRED: 3}
    best = Problem(PROMOTION_EVIDENCE_MISSING,
                   f"no signed evidence record of {source.name} covers {ref}",
                   f"a passing conformance record of {source.name} (cluster {source.cluster.name}) "
                   f"for {ref} with digest {digest}, at most {max_days} days old")
    for record in sorted(records, key=lambda r: r.time, reverse=True):
        problem = check_record(record, ref, digest, source)
        if problem is None:
            stale = fresh(record, now, max_days)
            if not stale:
                return record, best
            problem = Problem(PROMOTION_EVIDENCE_EXPIRED, f"the newest passing record ({record.origin}) "
                              f"is too old: {stale}", f"evidence at most {max_days} days old")
        if order.get(problem.rule, 0) > order.get(best.rule, 0):
            best = Problem(problem.rule, f"{ref}: {problem.message}", problem.expected)
    return None, best


def decide(catalog: Catalog, env: Environment, source: Environment, index: Index,
           records: Sequence[VerifiedRecord], refused: Sequence[Refusal], *, given: bool,
           trusted: Mapping[str, TrustedKey], max_days: int, now: dt.datetime, pins: BaselinePins,
           only: Sequence[str] = ()) -> list[Decision]:
    """A decision for each flavor version ``env`` would newly serve that its index does not
    allow yet: the record that proves it, or the problem (``given``: evidence was passed at
    all; ``refused``: the files that did not verify, which a missing record mentions)."""
    decisions: list[Decision] = []
    for item in proposed(catalog, env, only):
        digest = digest_of(catalog, item.ref)
        if entry_problem(index, item.ref, digest, source, trusted, max_days, now, pins=pins) is None:
            continue
        earlier = next((d for d in decisions if d.served.ref == item.ref), None)
        if earlier is not None:
            decisions.append(Decision(item, digest, earlier.record, earlier.problem))
            continue
        record, problem = choose_evidence(item.ref, digest, source, records, now, max_days)
        if not given:
            problem = Problem(problem.rule, f"no evidence given for {item.ref}: pass --evidence DIR or --from-s3",
                              problem.expected)
        elif refused and problem.rule == PROMOTION_EVIDENCE_MISSING:
            problem = Problem(problem.rule, f"{problem.message}; {len(refused)} record(s) refused (see warnings)",
                              problem.expected)
        decisions.append(Decision(item, digest, record, None if record is not None else problem))
    return decisions


def refusal_findings(refused: Sequence[Refusal], source: str) -> list[Finding]:
    """A warning per evidence file that does not verify, at the file."""
    return [Finding(PROMOTION_EVIDENCE_INVALID, Severity.WARNING, r.reason, Location(r.origin),
                    expected="a record signed by a key of policies/evidence-keys.yaml, unchanged since signing",
                    environment=source) for r in refused]


def decision_findings(decisions: Sequence[Decision], env: str) -> list[Finding]:
    """An error per flavor version without evidence, at the tenant's list."""
    return [Finding(d.problem.rule, Severity.ERROR, d.problem.message, d.served.location,
                    expected=d.problem.expected, environment=env, subject=f"Flavor/{d.served.ref}")
            for d in decisions if d.problem is not None]


def decision_line(d: Decision) -> str:
    s = d.served
    what = f"{s.old_ref} → {s.ref}" if s.old_ref else (f"{s.ref} (new)" if s.position < 0 else s.ref)
    if d.record is not None:
        return (f"{s.tenant}: {what}: evidence {d.record.origin} ({d.record.verdict}, recorded "
                f"{d.record.time.strftime('%Y-%m-%dT%H:%M:%SZ')}, signed by {d.record.signer})")
    return f"{s.tenant}: {what}: no evidence"


def decision_dict(d: Decision) -> dict[str, str | None]:
    return {"tenant": d.served.tenant, "flavor": d.served.ref, "replaces": d.served.old_ref, "digest": d.digest,
            "record": d.record.origin if d.record else None, "problem": d.problem.rule if d.problem else None}


def add_baseline(catalog: Catalog, env: str, index: Index, reason: str, now: dt.datetime) -> list[str]:
    """The flavor versions ``env`` serves today that its index has no entry for, entered as
    its baseline (an entry with other bytes stays a finding: a baseline never covers a
    re-upload); returns the references added."""
    added = []
    for s in served_in(catalog, env):
        if s.ref in index.entries:
            continue
        index.entries[s.ref] = {"digest": digest_of(catalog, s.ref), "source": catalog.flavors[s.ref].source,
                                "baseline": reason, "recorded": now.strftime("%Y-%m-%d")}
        added.append(s.ref)
    return added


def _tenant_edit(catalog: Catalog, env: str, tenant: str, items: Sequence[Served]) -> bytes:
    from .load import read_regular_file

    doc = catalog.documents[("Tenant", tenant)]
    text = read_regular_file(doc.path).decode("utf-8")
    try:
        # an alias of a version the promotion replaces follows it: clients of the stable
        # name get the promoted version, as they got the one before
        moved = {s.old_ref: s.ref for s in items if s.old_ref}
        tenv = catalog.tenants[tenant].environments.get(env)
        follow = {a: moved[str(t)] for a, t in (tenv.aliases.items() if tenv else ()) if str(t) in moved}
        new = edit_flavor_list(text, env, {s.position: s.ref for s in items if s.position >= 0},
                               [s.ref for s in items if s.position < 0], follow)
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ConfigError(f"{doc.display_path}: cannot edit the flavors of {env} ({exc}); "
                          "nothing written") from None
    return new.encode("utf-8")


def promotion_files(catalog: Catalog, env: str, index: Index, decisions: Sequence[Decision],
                    now: dt.datetime) -> dict[Path, bytes]:
    """Every file a promotion writes, with its new content: the tenants' flavor lists, the
    records beside the index, and the index (whose entries are updated)."""
    contents: dict[Path, bytes] = {}
    by_tenant: dict[str, list[Served]] = {}
    for d in decisions:
        if d.served.old_ref or d.served.position < 0:
            by_tenant.setdefault(d.served.tenant, []).append(d.served)
    for tenant, items in sorted(by_tenant.items()):
        contents[catalog.documents[("Tenant", tenant)].path] = _tenant_edit(catalog, env, tenant, items)
    for d in decisions:
        assert d.record is not None
        name = record_file_name(d.record)
        contents[index.folder / RECORDS_DIR / name] = d.record.data
        index.entries[d.served.ref] = index_entry(d.record, d.digest, name, now, catalog.flavors[d.served.ref].source)
    contents[index.folder / INDEX_FILE] = index.to_bytes()
    return contents


# ---------------------------------------------------------------- writing


def _yaml_compose(text: str) -> Node | None:
    from ruamel.yaml import YAML

    root: Node | None = YAML(typ="rt", pure=True).compose(io.StringIO(text))
    return root


def _node(root: Node | None, path: Sequence[str | int]) -> Node | None:
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    node = root
    for part in path:
        if isinstance(node, MappingNode):
            node = next(v for k, v in node.value if getattr(k, "value", None) == part)
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            node = node.value[part]
        else:
            raise KeyError(part)
    return node


def edit_flavor_list(text: str, env: str, replace: Mapping[int, str], append: Sequence[str],
                     aliases: Mapping[str, str] | None = None, remove: Sequence[int] = ()) -> str:
    """``text`` (a tenant file) with items of ``environments.<env>.flavors`` replaced, new
    ones appended in the list's own style, the items at ``remove`` (positions before the
    edit) taken out with their line, and the ``aliases`` named (alias → version) pointed at
    the version that replaces theirs; every other byte as it was."""
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    from .artifacts.lock import splice_values

    bom = text.startswith("\ufeff")
    body = text[1:] if bom else text
    changes: dict[tuple[str | int, ...], str] = {("environments", env, "flavors", i): v for i, v in replace.items()}
    changes.update({("environments", env, "aliases", a): v for a, v in (aliases or {}).items()})
    if changes:
        body = splice_values(body, changes)
    if append:
        seq = _node(_yaml_compose(body), ("environments", env, "flavors"))
        if not isinstance(seq, SequenceNode) or not all(isinstance(n, ScalarNode) for n in seq.value):
            raise KeyError("flavors is not a list of names")
        if seq.flow_style or not seq.value:
            if not seq.value:
                close = body.rindex("]", 0, seq.end_mark.index)
                body = body[:close] + ", ".join(append) + body[close:]
            else:
                at = seq.value[-1].end_mark.index
                body = body[:at] + "".join(f", {v}" for v in append) + body[at:]
        else:
            last = seq.value[-1]
            line_start = body.rfind("\n", 0, last.start_mark.index) + 1
            prefix = body[line_start:last.start_mark.index]
            if prefix.strip() != "-":
                raise KeyError("list items are not one per line")
            end = body.find("\n", last.end_mark.index)
            end = len(body) if end < 0 else end
            newline = "\r\n" if body[end - 1:end] == "\r" else "\n"
            if newline == "\r\n":
                end -= 1
            body = body[:end] + "".join(f"{newline}{prefix}{v}" for v in append) + body[end:]
    for position in sorted(set(remove), reverse=True):
        body = _remove_item(body, env, position)
    return ("\ufeff" if bom else "") + body


def _remove_item(body: str, env: str, position: int) -> str:
    """``body`` without item ``position`` of the flavor list: its whole line (a comment on it
    goes with it) in a block list, the item and one comma in a flow list."""
    from ruamel.yaml.nodes import SequenceNode

    seq = _node(_yaml_compose(body), ("environments", env, "flavors"))
    if not isinstance(seq, SequenceNode):
        raise KeyError("flavors is not a list of names")
    items = seq.value
    item = items[position]
    if seq.flow_style:
        if position + 1 < len(items):
            return body[:item.start_mark.index] + body[items[position + 1].start_mark.index:]
        start = items[position - 1].end_mark.index if position else item.start_mark.index
        return body[:start] + body[item.end_mark.index:]
    line_start = body.rfind("\n", 0, item.start_mark.index) + 1
    if body[line_start:item.start_mark.index].strip() != "-":
        raise KeyError("list items are not one per line")
    end = body.find("\n", item.end_mark.index)
    return body[:line_start] + ("" if end < 0 else body[end + 1:])


@dataclass
class EvidenceVerdicts:
    """What the evidence indexes say of the versions the environments serve: the findings
    of ``policy.promotion-evidence``, and the (environment, name@version) a rollback its
    index records served again whose entry the gate accepts — proven in that environment,
    so the promotion chain is not asked again (``policy.promotion-order`` does not apply
    to them; docs/operations.md)."""

    findings: list[Finding] = field(default_factory=list)
    rolled_back: set[tuple[str, str]] = field(default_factory=set)


def judge_evidence(catalog: Catalog, plans: Mapping[str, object], data: Mapping[str, object],
                   trusted: Mapping[str, TrustedKey], root: Path, now: dt.datetime) -> EvidenceVerdicts:
    """Each flavor version served where the floor requires evidence, judged once against
    its environment's index."""
    out = EvidenceVerdicts()
    days = max_age_days(data)
    for name in sorted(plans):
        env = catalog.environments[name]
        if requires_evidence(data, env):
            _judge_environment(catalog, name, env, load_index(root, name), trusted, days, now,
                               BaselinePins.of(data, env), out)
    return out


def _judge_environment(catalog: Catalog, name: str, env: Environment, index: Index,
                       trusted: Mapping[str, TrustedKey], days: int, now: dt.datetime, pins: BaselinePins,
                       out: EvidenceVerdicts) -> None:
    restored = {str(c.get("flavor")) for r in index.rollbacks for c in r.get("changes") or ()
                if isinstance(c, dict)}
    source = catalog.environments.get(env.promotes_from) if env.promotes_from else None
    verdicts: dict[str, Problem | None] = {}
    for tenant, i, ref in _listed_in(catalog, name):
        if ref not in verdicts:
            moved = source_problem(catalog, index, ref)
            problem = None if moved is not None and ref not in restored else entry_problem(
                index, ref, digest_of(catalog, ref), source, trusted, days, now,
                partial(legacy_digest_of, catalog, ref), pins=pins)
            if ref in restored and problem is None:
                out.rolled_back.add((name, ref))
            if moved is not None:  # once, at the flavor's source line
                out.findings.append(Finding(CHECK_RULE, Severity.ERROR, moved.message,
                                            catalog.location("Flavor", ref, ("source",)), expected=moved.expected,
                                            environment=name, subject=f"Flavor/{ref}"))
                problem = None
            verdicts[ref] = problem
        problem = verdicts[ref]
        if problem is not None:  # at the tenant's list item (looked up for a finding only)
            out.findings.append(Finding(CHECK_RULE, Severity.ERROR, problem.message,
                                        catalog.location("Tenant", tenant, ("environments", name, "flavors", i)),
                                        expected=problem.expected, environment=name, subject=f"Flavor/{ref}"))


def index_entry(record: VerifiedRecord, digest: str, name: str, promoted: dt.datetime,
                source: str) -> dict[str, object]:
    """An entry of a promotion; ``source``: the flavor's source, which its digest covers,
    recorded as well to say so when it changes."""
    return {"digest": digest, "source": source, "from": record.environment, "record": f"{RECORDS_DIR}/{name}",
            "record_sha256": record.sha256, "promoted": utc_text(promoted), "signed_by": record.signer,
            "recorded": utc_text(record.time)}


def record_file_name(record: VerifiedRecord) -> str:
    return f"{record.environment}-{utc_text(record.time).replace('-', '').replace(':', '')}-{record.sha256[:16]}.json"


def check_promotable(env: Environment, data: Mapping[str, object]) -> str:
    """The environment ``env`` promotes from: its ``promotes_from``, which must be the one its
    floors in ``policies/data.yaml`` name (an environment file cannot choose its evidence)."""
    floors = [f["promotes_from"] for f in floors_of(data, env.name, env.cluster.name) if "promotes_from" in f]
    if not env.promotes_from:
        raise UsageError(f"environment {env.name} promotes from no environment (promotes_from is not set)")
    if any(f != env.promotes_from for f in floors):
        raise ConfigError(f"environment {env.name} promotes from {env.promotes_from}, but its floor in "
                          f"policies/data.yaml says {', '.join(sorted({str(f) for f in floors}))} "
                          "(policy.gate-floor): no evidence is looked for")
    return env.promotes_from
