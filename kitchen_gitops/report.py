"""Reporters: each turns the one finding model into one output format.

``REPORTERS`` is both the registry and the CLI's list of ``--format`` choices.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .findings import Finding, Severity

TOOL_NAME = "kitchen"
TOOL_URI = "https://github.com/kitchen-gitops/kitchen-gitops"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class RuleInfo:
    """What a report can say about a rule beyond its id (SARIF rules, JUnit test cases)."""

    id: str
    title: str = ""
    description: str = ""
    severity: str = "error"
    help_uri: str = ""


class Reporter(Protocol):
    def __call__(self, findings: Sequence[Finding],
                 rules: Mapping[str, RuleInfo] | None = None) -> str: ...


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


def report_text(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    lines = [f.format_text() for f in findings]
    c = summary_counts(findings)
    lines.append(f"{c['error']} error(s), {c['warning']} warning(s), {c['info']} info, "
                 f"{c['waived']} waived")
    return "\n".join(lines) + "\n"


def report_json(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    doc = {"summary": summary_counts(findings), "findings": [finding_dict(f) for f in findings]}
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _level(f: Finding) -> str:
    return {"error": "error", "warning": "warning", "info": "note"}[f.severity.value]


def report_junit(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    """JUnit XML: one test case per finding (failure; skipped when waived), one per clean rule."""
    suite = ET.Element("testsuite", name=TOOL_NAME)
    failures = skipped = 0
    cases = 0
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=f.rule_id,
                             name=f"{f.location}" + (f" {f.resource}" if f.resource else ""),
                             file=f.location.file)
        if f.location.line > 0:
            case.set("line", str(f.location.line))
        cases += 1
        if f.waived:
            ET.SubElement(case, "skipped", message=f"waived: {f.waived_by}")
            skipped += 1
        elif f.severity is not Severity.INFO:
            fail = ET.SubElement(case, "failure", type=f.severity.value, message=f.message)
            fail.text = f.format_text()
            failures += 1
    flagged = {f.rule_id for f in findings}
    for rid in sorted(set(rules or {}) - flagged):
        ET.SubElement(suite, "testcase", classname=rid, name=(rules or {})[rid].title or rid)
        cases += 1
    if cases == 0:
        ET.SubElement(suite, "testcase", classname=TOOL_NAME, name="no findings")
        cases = 1
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name=TOOL_NAME, tests=str(cases), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def report_sarif(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    """SARIF 2.1.0 with real regions, rule metadata, and waivers as external suppressions."""
    known = dict(rules or {})
    ids = sorted({f.rule_id for f in findings} | set(known))
    index = {rid: i for i, rid in enumerate(ids)}
    descriptors = []
    for rid in ids:
        info = known.get(rid, RuleInfo(rid))
        d: dict[str, Any] = {"id": rid, "name": rid.replace(".", "/"),
                             "shortDescription": {"text": info.title or rid}}
        if info.description:
            d["fullDescription"] = {"text": info.description}
        d["defaultConfiguration"] = {
            "level": {"error": "error", "warning": "warning", "info": "note"}.get(info.severity, "error")}
        if info.help_uri:
            d["helpUri"] = info.help_uri
        descriptors.append(d)
    results = []
    for f in findings:
        phys: dict[str, Any] = {"artifactLocation": {"uri": f.location.file, "uriBaseId": "SRCROOT"}}
        if f.location.line > 0:
            phys["region"] = {"startLine": f.location.line, "startColumn": max(f.location.col, 1)}
        text = f.message + (f"; expected {f.expected}" if f.expected else "")
        result: dict[str, Any] = {
            "ruleId": f.rule_id, "ruleIndex": index[f.rule_id], "level": _level(f),
            "message": {"text": text}, "locations": [{"physicalLocation": phys}],
        }
        if f.resource is not None:
            r = f.resource
            result["locations"][0]["logicalLocations"] = [{
                "name": r.name, "kind": "resource",
                "fullyQualifiedName": "/".join(p for p in (r.environment, r.kind, r.namespace, r.name) if p)}]
            result["properties"] = {"resource": {"kind": r.kind, "name": r.name, "namespace": r.namespace,
                                                 "environment": r.environment, "apiVersion": r.api_version}}
        if f.waived:
            result["suppressions"] = [{"kind": "external", "justification": f.waived_by}]
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "informationUri": TOOL_URI, "rules": descriptors}},
            "originalUriBaseIds": {"SRCROOT": {"description": {"text": "the repository root"}}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def report_github(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    """GitHub Actions workflow commands: annotations on the exact catalog lines."""
    lines = []
    for f in findings:
        command = "notice" if f.waived or f.severity is Severity.INFO else (
            "error" if f.severity is Severity.ERROR else "warning")
        props = [f"file={_gh_escape(f.location.file, prop=True)}"]
        if f.location.line > 0:
            props += [f"line={f.location.line}", f"col={max(f.location.col, 1)}"]
        title = f.rule_id + (" (waived)" if f.waived else "")
        props.append(f"title={_gh_escape(title, prop=True)}")
        text = f.message + (f"; expected {f.expected}" if f.expected else "")
        if f.resource is not None:
            text += f" [{f.resource}]"
        if f.waived:
            text += f" [waived: {f.waived_by}]"
        lines.append(f"::{command} {','.join(props)}::{_gh_escape(text)}")
    c = summary_counts(findings)
    lines.append(f"{c['error']} error(s), {c['warning']} warning(s), {c['info']} info, {c['waived']} waived")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    """A pull-request comment: counts, then a table per state (open, waived)."""
    c = summary_counts(findings)
    icon = "❌" if c["error"] else ("⚠️" if c["warning"] else "✅")
    out = [f"### {icon} kitchen check", "",
           f"**{c['error']}** error(s), **{c['warning']}** warning(s), **{c['info']}** info, "
           f"**{c['waived']}** waived", ""]
    open_ = [f for f in findings if not f.waived]
    waived = [f for f in findings if f.waived]
    if open_:
        out += ["| | rule | where | resource | finding |", "|---|---|---|---|---|"]
        for f in open_:
            mark = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity.value]
            msg = f.message + (f"; expected {f.expected}" if f.expected else "")
            out.append(f"| {mark} | `{f.rule_id}` | `{f.location}` | {_md(str(f.resource or ''))} | "
                       f"{_md(msg)} |")
        out.append("")
    if waived:
        out += ["<details><summary>Waived findings</summary>", "",
                "| rule | where | finding | waiver |", "|---|---|---|---|"]
        out += [f"| `{f.rule_id}` | `{f.location}` | {_md(f.message)} | {_md(f.waived_by)} |"
                for f in waived]
        out += ["", "</details>", ""]
    return "\n".join(out)


def resolve_format(fmt: str, environ: Mapping[str, str] | None = None) -> str:
    """``auto``: GitHub workflow commands under GitHub Actions, text elsewhere."""
    if fmt != "auto":
        return fmt
    env = os.environ if environ is None else environ
    return "github" if env.get("GITHUB_ACTIONS") == "true" else "text"


def report_auto(findings: Sequence[Finding], rules: Mapping[str, RuleInfo] | None = None) -> str:
    return REPORTERS[resolve_format("auto")](findings, rules)


REPORTERS: dict[str, Reporter] = {
    "text": report_text,
    "json": report_json,
    "junit": report_junit,
    "sarif": report_sarif,
    "github": report_github,
    "markdown": report_markdown,
    "auto": report_auto,
}


def report(findings: Sequence[Finding], fmt: str,
           rules: Mapping[str, RuleInfo] | None = None) -> str:
    return REPORTERS[fmt](findings, rules)
