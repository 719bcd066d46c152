"""The outcome of conformance checks, expressed in the one finding model.

Every check produces a ``CheckResult``: the check's name, what it was run on, a status,
its measurements, and the findings that explain a failure (rule id ``conform.<check>``,
the flavor or resource, what was expected and what came back).  The reporters in
``conform.report`` read only these.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..findings import Finding, Location, ResourceRef, Severity
from .expectations import ISVC_API_VERSION, ServiceExpectation

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_COULD_NOT_RUN = 2


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"  # passed with warnings
    FAIL = "fail"
    ERROR = "error"  # could not run: configuration, unreachable server
    SKIP = "skip"


@dataclass
class CheckResult:
    check: str
    subject: str
    status: Status = Status.PASS
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    note: str = ""

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.severity is Severity.ERROR and self.status is not Status.ERROR:
            self.status = Status.FAIL
        elif finding.severity is Severity.WARNING and self.status is Status.PASS:
            self.status = Status.WARN

    def could_not_run(self, finding: Finding) -> None:
        self.findings.append(finding)
        self.status = Status.ERROR


@contextmanager
def timed(result: CheckResult) -> Iterator[CheckResult]:
    t0 = time.monotonic()
    try:
        yield result
    finally:
        result.duration_s = round(time.monotonic() - t0, 3)


@dataclass
class ConformReport:
    kind: str  # "serving" or "gpu"
    environment: str
    results: list[CheckResult] = field(default_factory=list)
    started: str = ""
    duration_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    @property
    def exit_code(self) -> int:
        """1 when a check failed (proven non-conformant), else 2 when one could not run."""
        statuses = {r.status for r in self.results}
        if Status.FAIL in statuses:
            return EXIT_FAIL
        if Status.ERROR in statuses or not self.results:
            return EXIT_COULD_NOT_RUN
        return EXIT_PASS

    @property
    def verdict(self) -> str:
        return {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL", EXIT_COULD_NOT_RUN: "COULD NOT RUN"}[
            self.exit_code]


def isvc_ref(svc: ServiceExpectation, environment: str) -> ResourceRef:
    return ResourceRef("InferenceService", svc.name, svc.namespace, environment, ISVC_API_VERSION)


def finding(check: str, message: str, *, location: Location, resource: ResourceRef | None,
            expected: str = "", actual: str = "", flavor: str = "",
            severity: Severity = Severity.ERROR,
            extra: Iterable[tuple[str, str]] = ()) -> Finding:
    """A conformance finding; ``actual`` is what came back, ``flavor`` the model asked."""
    more: list[tuple[str, str]] = []
    if flavor:
        more.append(("flavor", flavor))
    if actual:
        more.append(("actual", actual))
    more.extend(extra)
    return Finding(f"conform.{check}", severity, message, location, resource, expected,
                   extra=tuple(more))


def extra_value(f: Finding, key: str) -> str:
    for k, v in f.extra:
        if k == key:
            return v
    return ""


def clip(text: str, limit: int = 160) -> str:
    """A one-line ``repr`` of model output, shortened for messages."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…'"
