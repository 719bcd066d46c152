"""The one report layer: every command's :class:`~kitchen_gitops.findings.Result` in one format.

``REPORTERS`` is both the registry and the CLI's list of ``--format`` choices.  Each
reporter reads only the result model: findings (with their environment and objects),
per-check records where checks ran, a command's own :class:`~kitchen_gitops.findings.Detail`
and rule metadata from :mod:`kitchen_gitops.rules`.  How a result is shown — which
records, whether the detail is the whole report — is the reporter's :class:`Options`
(as conftest's ``output.Options``), never the result's.  There is one JUnit writer and one
SARIF writer for every command.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import settings
from .escape import (
    github_log,
    github_message,
    github_property,
    json_text,
    markdown_cell,
    markdown_code,
    terminal,
    visible,
    xml_text,
)
from .findings import CheckRecord, Finding, ResourceRef, Result, Severity, Status
from .rules import RuleInfo, describe

TOOL_NAME = "kitchen"
TOOL_URI = "https://github.com/kitchen-gitops/kitchen-gitops"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"



@dataclass(frozen=True)
class Options:
    """How a result is shown; nothing here changes what was found or the exit code."""

    show_passing: bool = True  # text: list the checks that passed too
    text_records: bool = True  # text: list the checks (else only the findings, as for check)
    headline: bool = True  # markdown: a headline with the counts (else the detail is the report)
    document: bool = False  # text and json: the result's detail alone (plan); findings go to stderr


SHOWN = Options()

Reporter = Callable[[Result, Options], str]

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR",
         Status.SKIP: "SKIP"}


def _rules(result: Result) -> dict[str, RuleInfo]:
    return {k: v for k, v in result.rules.items() if isinstance(v, RuleInfo)}


def _resource_dict(r: ResourceRef) -> dict[str, str]:
    return {"kind": r.kind, "name": r.name, "namespace": r.namespace, "apiVersion": r.api_version}


def finding_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "severity": f.severity.value,
        "message": f.message,
        "location": {"file": f.location.file, "line": f.location.line, "col": f.location.col},
        "environment": f.environment or None,
    }
    if f.expected:
        out["expected"] = f.expected
    if f.actual:
        out["actual"] = f.actual
    if f.resource is not None:
        out["resource"] = _resource_dict(f.resource)
    if f.subject:
        out["object"] = f.subject
    if f.waived:
        out["waived_by"] = f.waived_by
    return out


def record_dict(r: CheckRecord) -> dict[str, Any]:
    return {"check": r.check, "subject": r.subject, "status": r.status.value,
            "duration_s": r.duration_s, "note": r.note, "details": r.details,
            "findings": [finding_dict(f) for f in r.findings]}


def _warning_gate(result: Result, findings: list[Finding]) -> str:
    """Why warnings fail the run, when they do: which environments' gates say so."""
    failing = [f for f in findings if f.severity is Severity.WARNING and result.gates.fails(f)]
    if not failing:
        return ""
    if result.gates.all_warnings:
        return "; warnings fail the run (--fail-on-warn)"
    envs = sorted({f.environment for f in failing if f.environment} or result.gates.fail_on_warn)
    return f"; warnings fail the run in {', '.join(envs)} (gates.fail_on_warn)"


def _counts_line(result: Result) -> str:
    c = result.counts()
    return f"{c['error']} error(s), {c['warning']} warning(s), {c['info']} info, {c['waived']} waived"


# ---------------------------------------------------------------- text


def _summary(result: Result, *, markdown: bool = False) -> list[str]:
    """The summary lines, or the detail's text (or Markdown) where the command has one."""
    if result.detail is None:
        return result.summary
    text = result.detail.markdown() if markdown else result.detail.text()
    return text.rstrip("\n").split("\n")


def report_text(result: Result, options: Options = SHOWN) -> str:
    if options.document:
        return result.detail.text() if result.detail is not None else ""
    if result.records is None or not options.text_records:
        findings = result.all_findings()
        lines = [terminal(f.format_text()) for f in findings]
        if findings:
            lines.append(_counts_line(result) + _warning_gate(result, findings))
        lines += [terminal(line) for line in _summary(result)]
        return "\n".join(lines) + "\n" if lines else ""
    envs = f": environment {', '.join(result.environments)}" if result.environments else ""
    lines = [terminal(f"kitchen {result.command}{envs}: {result.verdict} (exit {result.exit_code})")]
    lines += [terminal(line) for line in _summary(result)]
    records = result.records
    width = max((len(r.check) for r in records), default=10)
    for r in records:
        if not options.show_passing and r.status in (Status.PASS, Status.SKIP):
            continue
        note = f" — {r.note}" if r.note else ""
        lines.append(terminal(f"  [{_MARK[r.status]:5}] {r.check:{width}}  {r.subject}  ({r.duration_s:.1f}s){note}"))
        lines += [f"      {terminal(f.format_text())}" for f in r.findings]
        lines += [f"      {terminal(line)}" for line in r.lines]
    lines += [f"  {terminal(f.format_text())}" for f in result.findings]
    c = result.record_counts()
    warnings = sum(1 for f in result.all_findings() if f.severity is Severity.WARNING and not f.waived)
    lines.append(f"{c['pass'] + c['warn']} passed, {c['fail']} failed, {c['error']} could not run, "
                 f"{c['skip']} skipped, {warnings} warning(s) in {result.duration_s:.1f}s")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- json


def report_dict(result: Result) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "command": result.command,
        "environments": result.environments,
        "exit_code": result.exit_code,
        "verdict": result.verdict,
        "summary": result.counts(),
        "findings": [finding_dict(f) for f in result.all_findings()],
    }
    if result.records is not None:
        doc["counts"] = result.record_counts()
        doc["checks"] = [record_dict(r) for r in result.records]
        doc["started"] = result.started
        doc["duration_s"] = result.duration_s
    if result.info:
        doc["info"] = result.info
    return doc


def _json_safe(value: Any) -> Any:
    """Every string encodable as UTF-8 (no lone surrogates from a hostile catalog)."""
    if isinstance(value, str):
        return json_text(value)
    if isinstance(value, dict):
        return {json_text(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def report_json(result: Result, options: Options = SHOWN) -> str:
    if options.document:
        if result.detail is None:
            return ""
        return json.dumps(result.detail.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return json.dumps(_json_safe(report_dict(result)), indent=2, ensure_ascii=False, sort_keys=True,
                      default=str) + "\n"


# ---------------------------------------------------------------- junit


def _attr(text: str) -> str:
    """A one-line XML attribute value that every XML 1.0 parser reads back."""
    return xml_text(text, keep_newlines=False)


def _case_name(f: Finding) -> str:
    where = f.where()
    return _attr(f"{f.location}" + (f" [{where}]" if where else ""))


def _finding_case(suite: ET.Element, f: Finding) -> tuple[int, int]:
    case = ET.SubElement(suite, "testcase", classname=_attr(f.rule_id), name=_case_name(f),
                         file=_attr(f.location.file))
    if f.location.line > 0:
        case.set("line", str(f.location.line))
    if f.waived:
        ET.SubElement(case, "skipped", message=_attr(f"waived: {f.waived_by}"))
        return 0, 1
    if f.severity is Severity.INFO:
        ET.SubElement(case, "system-out").text = xml_text(f.format_text())
        return 0, 0
    fail = ET.SubElement(case, "failure", type=f.severity.value, message=_attr(f.detail()))
    fail.text = xml_text(f.format_text())
    return 1, 0


def _record_case(suite: ET.Element, r: CheckRecord) -> dict[str, int]:
    case = ET.SubElement(suite, "testcase", classname=_attr(f"conform.{r.check}" if "." not in r.check
                         else r.check), name=_attr(r.subject), time=f"{r.duration_s:.3f}")
    body = xml_text("\n".join(f.format_text() for f in r.findings))
    out = {"failures": 0, "errors": 0, "skipped": 0}
    if r.status is Status.FAIL:
        out["failures"] = 1
        errors = [f for f in r.findings if f.severity is Severity.ERROR]
        el = ET.SubElement(case, "failure", message=_attr(errors[0].message if errors else r.check),
                           type=_attr(errors[0].rule_id if errors else r.check))
        el.text = body
    elif r.status is Status.ERROR:
        out["errors"] = 1
        first = r.findings[0] if r.findings else None
        el = ET.SubElement(case, "error", message=_attr(first.message if first else r.note),
                           type=_attr(first.rule_id if first else r.check))
        el.text = body
    elif r.status is Status.SKIP:
        out["skipped"] = 1
        ET.SubElement(case, "skipped", message=_attr(r.note))
    stdout = [] if r.status in (Status.FAIL, Status.ERROR) or not body else [body]
    stdout += [xml_text(line) for line in r.lines]
    if stdout:
        ET.SubElement(case, "system-out").text = "\n".join(stdout)
    return out


def report_junit(result: Result, options: Options = SHOWN) -> str:
    """JUnit XML.  Checks: a test case per check record, a suite per environment and subject
    group.  Findings: a test case per finding (failed; skipped when waived), and a passing
    case per rule that ran and found nothing, in a suite per environment."""
    root = ET.Element("testsuites", name=_attr(f"{TOOL_NAME} {result.command}"))
    suites: dict[str, ET.Element] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    times: dict[str, float] = {}

    def suite(name: str) -> ET.Element:
        if name not in suites:
            suites[name] = ET.SubElement(root, "testsuite", name=_attr(name))
            for k in totals:
                suites[name].set(k, "0")
        return suites[name]

    def bump(el: ET.Element, key: str, n: int = 1) -> None:
        el.set(key, str(int(el.get(key, "0")) + n))
        totals[key] += n

    env_label = ",".join(result.environments) or TOOL_NAME
    for r in result.records or ():
        name = f"{env_label}/{r.subject.split(':', 1)[0]}"
        s = suite(name)
        bump(s, "tests")
        for k, v in _record_case(s, r).items():
            if v:
                bump(s, k, v)
        times[name] = times.get(name, 0.0) + r.duration_s
    flagged: set[tuple[str, str]] = set()
    for f in result.findings if result.records is not None else result.all_findings():
        s = suite(f"{TOOL_NAME} {result.command}" + (f" {f.environment}" if f.environment else ""))
        bump(s, "tests")
        failed, skipped = _finding_case(s, f)
        if failed:
            bump(s, "failures")
        if skipped:
            bump(s, "skipped")
        flagged.add((f.environment, f.rule_id))
    for env in result.environments or [""]:
        for rid in sorted(result.rules_run):
            if (env, rid) in flagged:
                continue
            s = suite(f"{TOOL_NAME} {result.command}" + (f" {env}" if env else ""))
            info = describe(rid, _rules(result))
            ET.SubElement(s, "testcase", classname=_attr(rid), name=_attr(info.title if info else rid))
            bump(s, "tests")
    if not suites:
        s = suite(f"{TOOL_NAME} {result.command}")
        ET.SubElement(s, "testcase", classname=TOOL_NAME, name="no findings")
        bump(s, "tests")
    for name, el in suites.items():
        if name in times:
            el.set("time", f"{times[name]:.3f}")
    for k, v in totals.items():
        root.set(k, str(v))
    if result.records is not None:
        root.set("time", f"{sum(times.values()):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- sarif


def report_sarif(result: Result, options: Options = SHOWN) -> str:
    """SARIF 2.1.0: real regions, the environment and the rendered object as logical
    locations, every reported rule described in ``tool.driver.rules``, waivers as
    external suppressions."""
    findings = result.all_findings()
    extra = _rules(result)
    ids = sorted({f.rule_id for f in findings} | set(result.rules_run))
    index = {rid: i for i, rid in enumerate(ids)}
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "informationUri": TOOL_URI,
                                "rules": [_sarif_rule(rid, extra) for rid in ids]}},
            "originalUriBaseIds": {"SRCROOT": {"description": {"text": "the repository root"}}},
            "results": [_sarif_result(f, index[f.rule_id]) for f in findings],
            "properties": {"command": result.command, "environments": result.environments,
                           "exitCode": result.exit_code},
        }],
    }
    return json.dumps(_json_safe(doc), indent=2, ensure_ascii=False) + "\n"


def _sarif_rule(rid: str, extra: Mapping[str, RuleInfo]) -> dict[str, Any]:
    """A rule's descriptor: its title and description, default level, help and source."""
    info = describe(rid, extra)
    title = info.title if info else rid
    d: dict[str, Any] = {"id": rid, "name": rid.replace(".", "/"),
                         "shortDescription": {"text": title},
                         "fullDescription": {"text": (info.description if info else "") or title},
                         "defaultConfiguration": {
                             "level": _LEVEL[(info.severity if info else Severity.ERROR).value]}}
    if info is not None:
        d["helpUri"] = info.help_uri
        d["properties"] = {"source": info.source}
    return d


def _sarif_result(f: Finding, rule_index: int) -> dict[str, Any]:
    """A finding as a SARIF result: its location, the finding's properties, a waiver as an
    external suppression."""
    props: dict[str, Any] = {"environment": f.environment or None}
    if f.resource is not None:
        props["resource"] = _resource_dict(f.resource)
    if f.subject:
        props["object"] = f.subject
    if f.expected:
        props["expected"] = f.expected
    if f.actual:
        props["actual"] = f.actual
    item: dict[str, Any] = {
        "ruleId": f.rule_id, "ruleIndex": rule_index, "level": _LEVEL[f.severity.value],
        "message": {"text": f.detail() + (f" [{f.where()}]" if f.where() else "")},
        "locations": [_sarif_location(f)], "properties": props,
    }
    if f.waived:
        item["suppressions"] = [{"kind": "external", "justification": f.waived_by}]
    return item


def _sarif_location(f: Finding) -> dict[str, Any]:
    """The catalog region, and the environment, rendered resource and object as logical locations."""
    phys: dict[str, Any] = {"artifactLocation": {"uri": f.location.file, "uriBaseId": "SRCROOT"}}
    if f.location.line > 0:
        phys["region"] = {"startLine": f.location.line, "startColumn": max(f.location.col, 1)}
    location: dict[str, Any] = {"physicalLocation": phys}
    logical = []
    if f.environment:
        logical.append({"name": f.environment, "kind": "namespace",
                        "fullyQualifiedName": f"environment/{f.environment}"})
    if f.resource is not None:
        r = f.resource
        logical.append({"name": r.name, "kind": "resource",
                        "fullyQualifiedName": "/".join(
                            p for p in (f.environment, r.kind, r.namespace, r.name) if p)})
    if f.subject:
        logical.append({"name": f.subject, "kind": "object", "fullyQualifiedName": f.subject})
    if logical:
        location["logicalLocations"] = logical
    return location


# ---------------------------------------------------------------- github


def report_github(result: Result, options: Options = SHOWN) -> str:
    """GitHub Actions workflow commands: annotations on the exact catalog lines."""
    lines = []
    for f in result.all_findings():
        command = "notice" if f.waived or f.severity is Severity.INFO else (
            "error" if f.severity is Severity.ERROR else "warning")
        props = [f"file={github_property(f.location.file)}"]
        if f.location.line > 0:
            props += [f"line={f.location.line}", f"col={max(f.location.col, 1)}"]
        title = f.rule_id + (" (waived)" if f.waived else "")
        props.append(f"title={github_property(title)}")
        text = f.detail()
        if f.where():
            text += f" [{f.where()}]"
        if f.waived:
            text += f" [waived: {f.waived_by}]"
        lines.append(f"::{command} {','.join(props)}::{github_message(text)}")
    if not options.headline and (summary := _summary(result)):
        lines += github_log(summary)  # the detail is the report (diff): printed, never run
    if result.records is not None:
        lines.append(visible(f"kitchen {result.command}: {result.verdict} (exit {result.exit_code})"))
    lines.append(_counts_line(result))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return markdown_cell(text)


def report_markdown(result: Result, options: Options = SHOWN) -> str:
    """A pull-request comment: counts, then a table per state (open, waived)."""
    c = result.counts()
    code = result.exit_code
    icon = "❌" if code == 1 else ("⚠️" if code == 2 or c["warning"] else "✅")
    findings = result.all_findings()
    out: list[str] = []
    if options.headline or findings:
        out += [f"### {icon} kitchen {markdown_cell(result.command)}", "",
                f"**{c['error']}** error(s), **{c['warning']}** warning(s), **{c['info']}** info, "
                f"**{c['waived']}** waived — exit {code}", ""]
    if not options.headline and (summary := _summary(result, markdown=True)):
        out += [*(terminal(line) for line in summary), ""]
    if result.records is not None:
        out += ["| | check | subject | time |", "|---|---|---|---|"]
        out += [f"| {_MARK[r.status]} | {markdown_code(r.check)} | {_md(r.subject)} | {r.duration_s:.1f}s |"
                for r in result.records]
        out.append("")
    open_ = [f for f in findings if not f.waived]
    waived = [f for f in findings if f.waived]
    if open_:
        out += ["| | rule | where | environment | object | finding |", "|---|---|---|---|---|---|"]
        for f in open_:
            mark = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity.value]
            obj = ", ".join(p for p in (str(f.resource or ""), f.subject) if p)
            out.append(f"| {mark} | {markdown_code(f.rule_id)} | {markdown_code(str(f.location))} | "
                       f"{_md(f.environment or 'all')} | "
                       f"{_md(obj)} | {_md(f.detail())} |")
        out.append("")
    if waived:
        out += ["<details><summary>Waived findings</summary>", "",
                "| rule | where | environment | finding | waiver |", "|---|---|---|---|---|"]
        out += [f"| {markdown_code(f.rule_id)} | {markdown_code(str(f.location))} | {_md(f.environment or 'all')} | "
                f"{_md(f.detail())} | {_md(f.waived_by)} |" for f in waived]
        out += ["", "</details>", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- registry


def resolve_format(fmt: str, environ: Mapping[str, str] | None = None) -> str:
    """``auto``: GitHub workflow commands under GitHub Actions, text elsewhere."""
    if fmt != "auto":
        return fmt
    flag = settings.GITHUB_ACTIONS.get() if environ is None else environ.get(settings.GITHUB_ACTIONS.name)
    return "github" if flag == "true" else "text"


def report_auto(result: Result, options: Options = SHOWN) -> str:
    return REPORTERS[resolve_format("auto")](result, options)


REPORTERS: dict[str, Reporter] = {
    "text": report_text,
    "json": report_json,
    "junit": report_junit,
    "sarif": report_sarif,
    "github": report_github,
    "markdown": report_markdown,
    "auto": report_auto,
}


def report(result: Result, fmt: str, options: Options = SHOWN) -> str:
    return REPORTERS[resolve_format(fmt)](result, options)
