"""The one finding model that every stage produces and every reporter reads.

A finding carries a rule id, a severity, a message, the catalog location it comes
from (``file:line:col``) and, where it concerns one, the rendered resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


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
    """A rendered Kubernetes object a finding concerns."""

    kind: str
    name: str
    namespace: str = ""
    environment: str = ""
    api_version: str = ""

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        env = f"[{self.environment}] " if self.environment else ""
        return f"{env}{self.kind} {ns}{self.name}"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    location: Location
    resource: ResourceRef | None = None
    expected: str = ""
    # waiver state is set by the policy stage; "" means not waived
    waived_by: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def waived(self) -> bool:
        return bool(self.waived_by)

    def sort_key(self) -> tuple[str, int, int, int, str, str]:
        loc = self.location
        return (loc.file, loc.line, loc.col, self.severity.rank, self.rule_id, self.message)

    def format_text(self) -> str:
        text = f"{self.location}: [{self.severity.value}] {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.waived:
            text += f" [waived: {self.waived_by}]"
        return f"{text} ({self.rule_id})"


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    unique = {(f.sort_key(), f.resource, f.waived_by): f for f in findings}
    return [unique[k] for k in sorted(unique, key=lambda k: (k[0], str(k[1]), k[2]))]


def exit_code(findings: Iterable[Finding], *, fail_on_warn: bool = False) -> int:
    """0 clean, 1 when an unwaived error (or warning with ``fail_on_warn``) remains."""
    for f in findings:
        if f.waived:
            continue
        if f.severity is Severity.ERROR:
            return 1
        if fail_on_warn and f.severity is Severity.WARNING:
            return 1
    return 0


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR and not f.waived for f in findings)
