"""``kitchen policy test`` and ``kitchen policy docs``: the policy library's unit tests and
its generated documentation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import pipeline, settings
from ..errors import ConfigError
from ..findings import CheckRecord, Finding, Location, Result, Severity
from ..rules import POLICY_DOCS_STALE


@dataclass(frozen=True)
class TestOptions:
    __test__ = False  # not a test class, whatever pytest's name patterns say

    root: Path
    policies: Path | None = None
    engine: str = settings.DEFAULT_ENGINE
    match: str = ""
    verbose: bool = False


def execute_test(opts: TestOptions) -> Result:
    """The library's ``test_`` rules, a check record each."""
    from ..policy.engines import make_engine
    from ..policy.library import load_library
    from ..policy.testing import run_tests

    library = load_library(pipeline.policy_folder(opts.root, opts.policies), opts.root)
    t0 = time.monotonic()
    tests = run_tests(library, make_engine(opts.engine), match=opts.match)
    result = Result("policy test", records=[], started=datetime.now(UTC).isoformat(timespec="seconds"))
    assert result.records is not None
    for t in tests:
        # a test that errors (or runs out of time) fails, as `opa test` counts it
        rec = CheckRecord(f"{t.test.package}.{t.test.name}", str(t.test.location),
                          duration_s=round(t.seconds, 4), note=t.error)
        if not t.passed:
            rec.add(t.finding())
        result.records.append(rec)
    result.duration_s = round(time.monotonic() - t0, 3)
    failed = sum(1 for t in tests if not t.passed)
    result.summary = [f"{len(tests) - failed}/{len(tests)} policy tests passed ({opts.engine}, "
                      f"{len(library.rules)} rules)"]
    result.info = {"engine": opts.engine, "rules": len(library.rules), "verbose": opts.verbose}
    return result


@dataclass(frozen=True)
class DocsOptions:
    root: Path
    policies: Path | None = None
    check: bool = False


def execute_docs(opts: DocsOptions) -> Result:
    """Generate (or check) the rule reference."""
    from ..policy.docs import DOC_PATH, committed_text, render_docs, write_docs
    from ..policy.library import load_library
    from ..write import link_on_the_way

    library = load_library(pipeline.policy_folder(opts.root, opts.policies), opts.root)
    path = opts.root / DOC_PATH
    result = Result("policy docs --check" if opts.check else "policy docs")
    linked = link_on_the_way(opts.root, path.parent)  # the docs are read and written in folders of the repository
    if opts.check:
        current = committed_text(path) if linked is None else None
        if current != render_docs(library).encode("utf-8"):
            result.findings = [Finding(POLICY_DOCS_STALE, Severity.ERROR, "out of date: run "
                                       "`kitchen policy docs` and commit", Location(DOC_PATH),
                                       expected="the docs the policy library generates")]
        else:
            result.summary = [f"{path} up to date"]
        return result
    if linked is not None:
        raise ConfigError(f"{pipeline.shown(linked, opts.root)}: a symbolic link on the way to {DOC_PATH}; kitchen "
                          "writes it only into folders of the repository, never through a link (remove the link)")
    changed = write_docs(library, path)
    result.summary = [f"{'wrote' if changed else 'unchanged'} {path}"]
    return result
