"""Signed evidence for the operations tests, made with the project's own code: the
expectations ``kitchen conform serving`` would run against (built from the catalog), check
records as its checks write them, and the record built and signed as the conformance Job
does (:func:`kitchen_gitops.evidence.build_record`, :func:`~kitchen_gitops.evidence.sign_record`)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from kitchen_gitops.evidence import build_record, load_signing_key, public_pem, record_name, sign_record
from kitchen_gitops.findings import CheckRecord, Finding, Location, Result, Severity
from tests.conform.conform_support import new_signing_key

METRICS = {"ttft_ms": 84.5, "tpot_ms": 12.1, "output_throughput": 950.0, "goodput_ratio": 0.99}


def keys(root: Path, tmp: Path, *environments: str) -> dict[str, Path]:
    """A signing key per environment, each trusted for its environment only."""
    out, body = {}, "keys:\n"
    for env in environments:
        path = tmp / f"{env}-signing-key.pem"
        new_signing_key(path)
        out[env] = path
        pem = "".join(f"      {line}\n" for line in public_pem(load_signing_key(path)).strip().splitlines())
        body += f"  - name: {env}-2026\n    environments: [{env}]\n    public_key: |\n{pem}"
    (root / "policies/evidence-keys.yaml").write_text(body, encoding="utf-8")
    return out


def conformance_record(root: Path, env: str, key: Path, out: Path, when: dt.datetime,
                       failing: str = "", score: float = 0.91) -> Path:
    """A signed record of a conformance run of ``env`` over the catalog at ``root``: every
    flavor scored (``failing``: this flavor version below its threshold), every InferenceService
    within its SLOs; written under ``out``."""
    from kitchen_gitops.commands.conform import ExpectationsSource, build_expectations

    exp: Any = build_expectations(ExpectationsSource(catalog=root, environment=env))
    records = []
    for svc in exp.services:
        for f in svc.flavors:
            low = f.ref == failing
            rec = CheckRecord("evaluation", f.ref, details={
                "metric": "accuracy", "threshold": 0.8, "recorded": 0.9, "score": 0.62 if low else score,
                "base_score": 0.41, "service": f"{svc.namespace}/{svc.name}"})
            if low:
                rec.add(Finding("conform.evaluation.threshold", Severity.ERROR,
                                f"flavor {f.ref} scores 0.6200 accuracy, below its threshold 0.8",
                                Location("catalog/flavors/x.yaml", 1, 1), environment=env))
            records.append(rec)
        records.append(CheckRecord("performance", f"{svc.namespace}/{svc.name}", details={"metrics": METRICS}))
    result = Result("conform serving", records=records, started=when.isoformat(timespec="seconds"))
    result.info = {"checks": ["inventory", "evaluation", "performance"]}
    record = build_record(result, exp, now=when)
    data = sign_record(record, load_signing_key(key))
    out.mkdir(parents=True, exist_ok=True)
    path = out / record_name(record, data)
    path.write_bytes(data)
    return path


def git(root: Path, *args: str, when: str = "2026-12-01T00:00:00Z", author: str = "ci") -> str:
    """``git`` in ``root`` as ``author``, at a fixed time (a deterministic history)."""
    env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "PATH": "/usr/bin:/bin",
           "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", f"user.email={author}@example.com", "-c", f"user.name={author}",
                           "-c", "commit.gpgsign=false", *args], cwd=root, check=True, capture_output=True,
                          text=True, env=env).stdout


def commit(root: Path, message: str, when: str, author: str = "ci") -> str:
    git(root, "add", "-A", when=when, author=author)
    git(root, "commit", "-qm", message, when=when, author=author)
    return git(root, "rev-parse", "HEAD").strip()
