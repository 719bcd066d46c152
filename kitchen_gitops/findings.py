"""The one result model: every stage produces it, one exit rule judges it, every reporter reads it.

A :class:`Finding` carries, as typed fields, a rule id, a severity, a message, what was
expected and what was found, the catalog location it comes from (``file:line:col``), the
environment it concerns (none for catalog-wide findings), the rendered object it concerns
(kind, namespace, name) and the catalog object a waiver names (``Flavor/x@v1``).  Its
identity — deduplication, sorting, waiver matching — includes the environment and the
objects, so the same problem in three environments is three findings.

Commands that run checks (``conform``, ``artifacts verify``) add a :class:`CheckRecord` per
check: what ran on what, its status and measurements, and the findings that explain it.
A :class:`Result` holds both; :func:`exit_code` is the one exit rule of every command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_COULD_NOT_RUN = 2


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file; line and column are 1-based (0 = unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{max(self.col, 1)}"

    def relative_to(self, root: Path) -> Location:
        try:
            rel = Path(self.file).resolve().relative_to(root.resolve())
        except ValueError:
            return self
        return Location(rel.as_posix(), self.line, self.col)


@dataclass(frozen=True, order=True)
class ResourceRef:
    """A rendered (or live) Kubernetes object a finding concerns."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""

    @property
    def id(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped): what a waiver names."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    location: Location
    resource: ResourceRef | None = None
    expected: str = ""
    actual: str = ""
    # the environment the finding concerns; "" for catalog-wide findings
    environment: str = ""
    # the catalog object it concerns, as a waiver names it: Flavor/x@v1, Base/y@2, Tenant/t
    subject: str = ""
    # set by the policy stage: the waiver that waives it ("" = not waived)
    waived_by: str = ""

    @property
    def waived(self) -> bool:
        return bool(self.waived_by)

    def identity(self) -> tuple[Any, ...]:
        """What makes two findings the same problem (deduplication, sorting)."""
        loc = self.location
        res = self.resource
        return (loc.file, loc.line, loc.col, self.environment, self.severity.rank, self.rule_id,
                res.id if res else "", self.subject, self.message, self.expected, self.actual)

    def objects(self) -> list[str]:
        """The names a waiver's ``object`` can use for this finding."""
        out = [self.subject] if self.subject else []
        if self.resource is not None:
            out.append(self.resource.id)
        return out

    def where(self) -> str:
        """``env prod, InferenceService ns/name, Flavor/x@v1``: what the finding concerns."""
        parts = []
        if self.environment:
            parts.append(f"env {self.environment}")
        if self.resource is not None:
            parts.append(str(self.resource))
        if self.subject:
            parts.append(self.subject)
        return ", ".join(parts)

    def detail(self) -> str:
        """The message with what was expected and what was found."""
        text = self.message
        if self.expected:
            text += f"; expected {self.expected}"
        if self.actual and self.actual not in self.message:
            shown = self.actual if len(self.actual) <= 200 else self.actual[:199] + "…"
            text += f"; got {shown!r}"
        return text

    def format_text(self) -> str:
        text = f"{self.location}: [{self.severity.value}] {self.detail()}"
        where = self.where()
        if where:
            text += f" [{where}]"
        if self.waived:
            text += f" [waived: {self.waived_by}]"
        return f"{text} ({self.rule_id})"


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deduplicated (same identity and waiver state) and in a stable order."""
    unique: dict[tuple[Any, ...], Finding] = {}
    for f in findings:
        unique.setdefault((*f.identity(), f.waived_by), f)
    return [unique[k] for k in sorted(unique)]


# ---------------------------------------------------------------- the one exit rule


@dataclass(frozen=True)
class Gates:
    """What fails a run besides errors: warnings in the environments whose gates say
    ``fail_on_warn`` (a catalog-wide warning concerns every environment, so it fails when
    any environment of the catalog does), or every warning (``--fail-on-warn``)."""

    fail_on_warn: frozenset[str] = frozenset()
    all_warnings: bool = False

    @classmethod
    def of(cls, environments: Mapping[str, Any], *, all_warnings: bool = False) -> Gates:
        """From the catalog's environments (each with ``gates.fail_on_warn``), all of them,
        whichever were selected: prod's gate holds when only dev was asked for."""
        return cls(frozenset(name for name, env in environments.items() if env.gates.fail_on_warn),
                   all_warnings)

    def fails(self, f: Finding) -> bool:
        if f.waived or f.severity is Severity.INFO:
            return False
        if f.severity is Severity.ERROR or self.all_warnings:
            return True
        if f.environment:
            return f.environment in self.fail_on_warn
        return bool(self.fail_on_warn)


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"  # passed with warnings
    FAIL = "fail"
    ERROR = "error"  # could not run: configuration, unreachable server
    SKIP = "skip"


@dataclass
class CheckRecord:
    """One check run on one subject (a flavor, an InferenceService, a GPU, an artifact)."""

    check: str
    subject: str
    status: Status = Status.PASS
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    note: str = ""
    # extra lines for the text and JUnit reports (measurements), computed by the check
    lines: list[str] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.severity is Severity.ERROR and self.status is not Status.ERROR:
            self.status = Status.FAIL
        elif finding.severity is Severity.WARNING and self.status is Status.PASS:
            self.status = Status.WARN

    def could_not_run(self, finding: Finding) -> None:
        self.findings.append(finding)
        self.status = Status.ERROR


def exit_code(findings: Iterable[Finding], records: Sequence[CheckRecord] | None = None,
              gates: Gates | None = None) -> int:
    """The one exit rule of every command.

    1 when an unwaived error remains, or a warning that ``gates`` fails on (among
    ``findings`` and those of the checks that ran), or a check failed; else 2 when a check
    could not run (or checks were expected and none ran: ``records`` is not None but
    empty); else 0.  The findings of a check that could not run explain why; they are not
    proof of non-conformance, so they give 2, not 1.
    """
    gates = gates if gates is not None else Gates()
    ran = [f for r in records or () if r.status not in (Status.ERROR, Status.SKIP) for f in r.findings]
    if any(gates.fails(f) for f in (*findings, *ran)):
        return EXIT_FINDINGS
    if records is not None:
        if any(r.status is Status.FAIL for r in records):
            return EXIT_FINDINGS
        if not records or any(r.status is Status.ERROR for r in records):
            return EXIT_COULD_NOT_RUN
    return EXIT_OK


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR and not f.waived for f in findings)


class Detail(Protocol):
    """What a command found that is not a finding, in the forms the reporters show."""

    def text(self) -> str: ...

    def markdown(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass
class Result:
    """What a command found: findings, per-check records where checks ran, and what the
    report shows besides (``title``, ``summary`` lines, ``info`` for the JSON)."""

    command: str  # "check", "validate", "conform serving", …
    findings: list[Finding] = field(default_factory=list)
    records: list[CheckRecord] | None = None
    environments: list[str] = field(default_factory=list)
    gates: Gates = field(default_factory=Gates)
    # rule metadata beyond the built-in registry (the Rego library's rules), by id
    rules: dict[str, Any] = field(default_factory=dict)
    # rules that ran, for JUnit passing cases: ids
    rules_run: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # text shown when nothing is found
    notes: list[str] = field(default_factory=list)  # for the person at the terminal: stderr, any format
    info: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    duration_s: float = 0.0
    # the command's own account beside its findings (kitchen diff's changes, kitchen plan's
    # plans), which each reporter shows in its own form
    detail: Detail | None = None

    def all_findings(self) -> list[Finding]:
        """The command's findings and those of its records, deduplicated, in order."""
        recorded = [f for r in self.records or () for f in r.findings]
        return sort_findings([*self.findings, *recorded])

    @property
    def exit_code(self) -> int:
        return exit_code(self.findings, self.records, self.gates)

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "PASS", EXIT_FINDINGS: "FAIL", EXIT_COULD_NOT_RUN: "COULD NOT RUN"}[self.exit_code]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        waived = 0
        for f in self.all_findings():
            if f.waived:
                waived += 1
            else:
                out[f.severity.value] += 1
        out["waived"] = waived
        return out

    def record_counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.records or ():
            out[r.status.value] += 1
        return out
