"""Reporters: each turns the one finding model into one output format.

``REPORTERS`` is both the registry and the CLI's list of ``--format`` choices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .findings import Finding, Severity


def finding_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "severity": f.severity.value,
        "message": f.message,
        "location": {"file": f.location.file, "line": f.location.line, "col": f.location.col},
    }
    if f.expected:
        out["expected"] = f.expected
    if f.resource is not None:
        r = f.resource
        out["resource"] = {"kind": r.kind, "name": r.name, "namespace": r.namespace,
                           "environment": r.environment, "apiVersion": r.api_version}
    if f.waived:
        out["waived_by"] = f.waived_by
    return out


def summary_counts(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {s.value: 0 for s in Severity}
    waived = 0
    for f in findings:
        if f.waived:
            waived += 1
        else:
            counts[f.severity.value] += 1
    counts["waived"] = waived
    return counts


def report_text(findings: Sequence[Finding]) -> str:
    lines = [f.format_text() for f in findings]
    c = summary_counts(findings)
    lines.append(f"{c['error']} error(s), {c['warning']} warning(s), {c['info']} info, "
                 f"{c['waived']} waived")
    return "\n".join(lines) + "\n"


def report_json(findings: Sequence[Finding]) -> str:
    doc = {"summary": summary_counts(findings), "findings": [finding_dict(f) for f in findings]}
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


REPORTERS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "text": report_text,
    "json": report_json,
}


def report(findings: Sequence[Finding], fmt: str) -> str:
    return REPORTERS[fmt](findings)
