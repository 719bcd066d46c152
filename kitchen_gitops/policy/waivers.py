"""Waivers: time-boxed, owned exceptions to a policy rule for one object.

    waivers:
      - rule: policy.lora-rank
        object: Flavor/sentiment-jp@v2026-02-10   # or InferenceService/<ns>/<name>; * globs
        environment: dev                          # optional: every environment when absent
        owner: ai-platform@example.com
        reason: rank 128 is under evaluation in dev only
        expires: 2026-06-30                       # waives through this day

A waived finding is still reported, marked waived.  An expired waiver waives nothing
and is reported itself; a waiver that matches no finding is reported as stale — each
concerning the waiver's environment (every environment when it names none), so it fails
the run where that environment's gates say ``fail_on_warn``.  A malformed waivers file
gives findings at its ``file:line:col``.

The policy data limits waivers (:mod:`.floors`): the owner is an address or a team id;
the expiry is at most ``waiver_max_days`` ahead (90 by default); where an environment's
floor sets ``waiver_wildcards: false``, a waiver whose object is a pattern waives nothing
there.  A waiver past those limits waives nothing and is an error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

from ..findings import Finding, Location, Severity
from ..load import Document, load_file
from ..rules import (
    POLICY_WAIVER_EXPIRED,
    POLICY_WAIVER_INVALID,
    POLICY_WAIVER_STALE,
    POLICY_WAIVER_TOO_LONG,
    POLICY_WAIVER_TOO_WIDE,
)
from .floors import WAIVER_MAX_DAYS

FIELDS = ("rule", "object", "environment", "owner", "reason", "expires")
REQUIRED = ("rule", "object", "owner", "reason", "expires")

INVALID = POLICY_WAIVER_INVALID
EXPIRED = POLICY_WAIVER_EXPIRED
STALE = POLICY_WAIVER_STALE
TOO_WIDE = POLICY_WAIVER_TOO_WIDE
TOO_LONG = POLICY_WAIVER_TOO_LONG

# who answers for a waiver: an address (ops@example.com) or a team id (ai-platform,
# @org/team) — not a blank, not a sentence
OWNER = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|@?[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?")
GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Waiver:
    rule: str
    object: str
    owner: str
    reason: str
    expires: dt.date
    location: Location
    environment: str = ""

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def matches(self, f: Finding) -> bool:
        if f.rule_id != self.rule:
            return False
        if self.environment and f.environment != self.environment:
            return False
        return any(fnmatchcase(obj, self.object) for obj in f.objects())

    @property
    def wildcard(self) -> bool:
        return bool(GLOB.search(self.object))

    def label(self) -> str:
        return f"{self.location} by {self.owner} until {self.expires.isoformat()}: {self.reason}"


def _invalid(loc: Location, message: str, expected: str = "") -> Finding:
    return Finding(INVALID, Severity.ERROR, message, loc, expected=expected)


def parse_waivers(doc: Document, known_rules: Iterable[str]) -> tuple[list[Waiver], list[Finding]]:
    known = set(known_rules)
    problems: list[Finding] = []
    data = doc.data
    if not isinstance(data, dict) or "waivers" not in data:
        return [], [_invalid(doc.location(), "a waivers file holds one key, 'waivers'",
                             "waivers: [ {rule, object, owner, reason, expires}, … ]")]
    for key in data:
        if key != "waivers":
            problems.append(_invalid(doc.location((key,)), f"unknown key '{key}'", "waivers"))
    items = data["waivers"]
    if items is None:
        return [], problems
    if not isinstance(items, list):
        return [], [*problems, _invalid(doc.location(("waivers",), value=True),
                                        "'waivers' must be a list", "a list of waivers")]
    out = []
    for i, item in enumerate(items):
        path: tuple[str | int, ...] = ("waivers", i)
        if not isinstance(item, dict):
            problems.append(_invalid(doc.location(path, value=True), "a waiver must be a mapping",
                                     ", ".join(REQUIRED)))
            continue
        wrong = _field_problems(doc, i, item) + _value_problems(doc, path, item, known)
        problems += wrong
        if not wrong:
            out.append(_waiver(doc, path, item))
    return out, problems


def _field_problems(doc: Document, i: int, item: dict[str, object]) -> list[Finding]:
    """Waiver ``i``'s fields: none unknown, every required one set, the textual ones strings."""
    path: tuple[str | int, ...] = ("waivers", i)
    problems = []
    for key in item:
        if key not in FIELDS:
            problems.append(_invalid(doc.location((*path, key)), f"unknown waiver field '{key}'",
                                     f"one of {', '.join(FIELDS)}"))
    for key in REQUIRED:
        if item.get(key) in (None, ""):
            problems.append(_invalid(doc.location(path), f"waiver {i + 1} has no '{key}'",
                                     f"a value for '{key}'"))
    for key in ("rule", "object", "owner", "reason", "environment"):
        if item.get(key) not in (None, "") and not isinstance(item.get(key), str):
            problems.append(_invalid(doc.location((*path, key), value=True),
                                     f"waiver field '{key}' must be a string", "a string"))
    return problems


def _value_problems(doc: Document, path: tuple[str | int, ...], item: dict[str, object],
                    known: set[str]) -> list[Finding]:
    """A waiver's owner, expiry date and rule: an address or team, a date, a rule that exists."""
    problems = []
    owner = item.get("owner")
    if isinstance(owner, str) and owner and not OWNER.fullmatch(owner):
        problems.append(_invalid(doc.location((*path, "owner"), value=True),
                                 f"owner '{owner}' is neither an address nor a team id",
                                 "an address (ops@example.com) or a team id (ai-platform, @org/team)"))
    expires = item.get("expires")
    if expires not in (None, "") and not isinstance(expires, dt.date):
        problems.append(_invalid(doc.location((*path, "expires"), value=True),
                                 f"expires: '{expires}' is not a date", "a date YYYY-MM-DD"))
    rule = item.get("rule")
    if rule and known and str(rule) not in known:
        problems.append(_invalid(doc.location((*path, "rule"), value=True),
                                 f"waiver names unknown rule '{rule}'",
                                 "a rule id from docs/policies.md"))
    return problems


def _waiver(doc: Document, path: tuple[str | int, ...], item: dict[str, object]) -> Waiver:
    """A waiver whose fields were all found valid."""
    expires = item.get("expires")
    assert isinstance(expires, dt.date)
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    return Waiver(str(item.get("rule")), str(item["object"]), str(item["owner"]), str(item["reason"]),
                  expires, doc.location(path), str(item.get("environment") or ""))


def load_waivers(path: Path, root: Path, known_rules: Iterable[str]) -> tuple[list[Waiver], list[Finding]]:
    doc, problems = load_file(path, root)
    if doc is None:
        return [], [replace(p, rule_id=INVALID) for p in problems]
    return parse_waivers(doc, known_rules)


def apply_waivers(findings: Sequence[Finding], waivers: Sequence[Waiver], *, today: dt.date,
                  environments: Iterable[str], complete: bool,
                  no_wildcards: frozenset[str] = frozenset(), max_days: int = WAIVER_MAX_DAYS) -> list[Finding]:
    """Mark waived findings; report expired and (when every environment ran) stale waivers,
    and waivers past the policy's limits (``no_wildcards``: the environments whose floor
    refuses a pattern as object; ``max_days``: how far ahead an expiry may be).

    ``complete`` says every environment was evaluated: a waiver for an environment that
    did not run is not stale.
    """
    envs = sorted(set(environments))
    latest = today + dt.timedelta(days=max_days)
    out: list[Finding] = []
    too_long = {i for i, w in enumerate(waivers) if w.expires > latest}
    too_wide: dict[int, list[str]] = {}
    for i, w in enumerate(waivers):
        if w.wildcard:
            hit = [e for e in envs if e in no_wildcards and (not w.environment or w.environment == e)]
            if hit:
                too_wide[i] = hit
    used: set[int] = set()
    for f in findings:
        waiver = None
        for i, w in enumerate(waivers):
            if w.matches(f):
                used.add(i)
                usable = (not w.expired(today) and i not in too_long
                          and f.environment not in too_wide.get(i, ()))
                if usable and waiver is None:
                    waiver = w
        out.append(replace(f, waived_by=waiver.label()) if waiver is not None else f)
    for i, w in enumerate(waivers):
        if i in too_long:
            out.append(Finding(
                TOO_LONG, Severity.ERROR,
                f"waiver for {w.rule} on {w.object} runs until {w.expires.isoformat()}, more than "
                f"{max_days} days ahead; it waives nothing",
                w.location, expected=f"an expiry on or before {latest.isoformat()}", environment=w.environment))
        for env in too_wide.get(i, []):
            out.append(Finding(
                TOO_WIDE, Severity.ERROR,
                f"waiver for {w.rule} uses the pattern '{w.object}' as its object, which the floor of "
                f"environment {env} refuses; it waives nothing there",
                w.location, expected="one object, named exactly (Kind/name or Kind/namespace/name)", environment=env))
        if w.expired(today):
            out.append(Finding(
                EXPIRED, Severity.WARNING,
                f"waiver for {w.rule} on {w.object} expired on {w.expires.isoformat()} "
                f"(owner {w.owner}); it no longer waives anything",
                w.location, expected="renew it with a new expiry date, or fix the findings and remove it",
                environment=w.environment))
        elif i not in used and (complete or (w.environment and w.environment in envs)):
            out.append(Finding(
                STALE, Severity.WARNING,
                f"waiver for {w.rule} on {w.object} matches no finding"
                + (f" in {w.environment}" if w.environment else ""),
                w.location, expected="remove the waiver", environment=w.environment))
    return out
