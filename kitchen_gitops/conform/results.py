"""The outcome of conformance checks, in the one result model.

Every check produces a :class:`~kitchen_gitops.findings.CheckRecord`: the check's name,
what it was run on, a status, its measurements, and the findings that explain a failure
(rule id ``conform.<check>``, the flavor or resource, what was expected and what came
back).  A run is a :class:`ConformReport`, a :class:`~kitchen_gitops.findings.Result`
whose records are the checks; the one report layer writes it in every format.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ..findings import CheckRecord, Finding, Gates, Location, ResourceRef, Result, Severity, Status
from ..plan import API_VERSIONS, ISVC_API_VERSION
from ..rules import CONFORM
from .expectations import ServiceExpectation

# the checks of ``kitchen conform serving``, in the order they run (here, not in serving.py,
# so that the CLI names them without importing the HTTP client)
CHECKS = ("readiness", "inventory", "smoke", "adapter-effect", "evaluation", "isolation", "performance")

__all__ = ["CheckRecord", "ConformReport", "Status", "clip", "finding", "isvc_ref", "timed"]


@contextmanager
def timed(result: CheckRecord) -> Iterator[CheckRecord]:
    t0 = time.monotonic()
    try:
        yield result
    finally:
        result.duration_s = round(time.monotonic() - t0, 3)


class ConformReport(Result):
    """A conformance run: ``kind`` is ``serving`` or ``gpu``; its records are the checks."""

    records: list[CheckRecord]

    def __init__(self, kind: str, environment: str, *, started: str = "", fail_on_warn: bool = False,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__(command=f"conform {kind}", records=[], environments=[environment],
                         gates=Gates(frozenset({environment}) if fail_on_warn else frozenset()),
                         started=started, info=dict(info or {}))
        self.kind = kind
        self.environment = environment

    def finish(self) -> None:
        """Every finding names the environment it was checked in."""
        for r in self.records:
            r.findings = [f if f.environment else replace(f, environment=self.environment)
                          for f in r.findings]


def isvc_ref(svc: ServiceExpectation, environment: str = "") -> ResourceRef:
    kind = svc.kind or "InferenceService"
    return ResourceRef(kind, svc.name, svc.namespace, API_VERSIONS.get(kind, ISVC_API_VERSION))


def finding(check: str, message: str, *, location: Location, resource: ResourceRef | None,
            expected: str = "", actual: str = "", flavor: str = "",
            severity: Severity = Severity.ERROR, environment: str = "") -> Finding:
    """A conformance finding; ``actual`` is what came back, ``flavor`` the model asked."""
    return Finding(CONFORM.member(check), severity, message, location, resource, expected, actual,
                   environment=environment, subject=f"model/{flavor}" if flavor else "")


def clip(text: str, limit: int = 160) -> str:
    """A one-line ``repr`` of model output, shortened for messages."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…'"
