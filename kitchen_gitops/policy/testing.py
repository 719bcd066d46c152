"""``kitchen policy test``: run the library's ``test_`` rules, like ``opa test``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..findings import Finding, Severity
from ..rules import POLICY_TEST
from .engines import Engine, make_engine
from .errors import PolicyError
from .library import Library, TestRule

TEST_RULE = POLICY_TEST


@dataclass(frozen=True)
class TestResult:
    test: TestRule
    passed: bool
    error: str = ""
    seconds: float = 0.0

    def finding(self) -> Finding:
        what = self.error or f"{self.test.package}.{self.test.name} is not true"
        return Finding(TEST_RULE, Severity.ERROR, f"policy test {self.test.name} failed: {what}",
                       self.test.location, expected="the test rule evaluates to true")

    def format(self) -> str:
        status = "PASS" if self.passed else ("ERROR" if self.error else "FAIL")
        text = f"{self.test.location}: {status} {self.test.package}.{self.test.name}"
        return f"{text}: {self.error}" if self.error else text


def run_tests(library: Library, engine: Engine | None = None, *,
              match: str = "") -> list[TestResult]:
    """Evaluate every test rule (optionally those whose name contains ``match``)."""
    engine = engine if engine is not None else make_engine()
    engine.load([*library.policy_modules(), *library.test_modules()], library.data)
    results = []
    for test in library.tests():
        if match and match not in f"{test.package}.{test.name}":
            continue
        start = time.perf_counter()
        try:
            value = engine.evaluate(f"{test.package}.{test.name}", {})
        except PolicyError as exc:
            results.append(TestResult(test, False, exc.args[0], time.perf_counter() - start))
            continue
        results.append(TestResult(test, value is True, "", time.perf_counter() - start))
    return results
