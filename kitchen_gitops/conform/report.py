"""Conformance reports: a readable summary, JSON, and JUnit XML.

``REPORTERS`` is both the registry and the CLI's list of ``--format`` choices.  Every
reporter reads only ``ConformReport``: check results and their findings.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from ..findings import Finding
from ..report import finding_dict
from .results import ConformReport, Status, extra_value

_MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR",
         Status.SKIP: "SKIP"}


def conform_finding_dict(f: Finding) -> dict[str, Any]:
    d = finding_dict(f)
    for k, v in f.extra:
        d.setdefault(k, v)
    return d


def _finding_text(f: Finding) -> str:
    text = f.format_text()
    actual = extra_value(f, "actual")
    if actual and actual not in f.message:
        shown = repr(actual) if len(actual) <= 200 else repr(actual[:199]) + "…"
        text += f"\n        got: {shown}"
    return text


def _dist(d: dict[str, float]) -> str:
    return f"p50 {d['median']:.1f}  p95 {d['p95']:.1f}  p99 {d['p99']:.1f}  mean {d['mean']:.1f}"


def _perf_lines(details: dict[str, Any]) -> list[str]:
    m = details.get("metrics")
    if not m:
        return []
    load = details["load"]
    lines = [
        f"      load: {load['requests']} streaming requests at concurrency {load['concurrency']}, "
        f"{load['output_tokens']} output tokens each, models {', '.join(load['models'])}"
        + (f"; prompts: {load['prompt_tokens']} {load['prompts']}, seed {load['seed']}"
           if "seed" in load else ""),
        f"      TTFT ms  {_dist(m['ttft_ms'])}",
        f"      TPOT ms  {_dist(m['tpot_ms'])}",
        f"      ITL  ms  {_dist(m['itl_ms'])}",
        f"      E2E  ms  {_dist(m['e2e_ms'])}",
        f"      throughput {m['request_throughput_per_s']:.2f} req/s, "
        f"{m['output_token_throughput_per_s']:.1f} output tok/s, "
        f"{m['total_token_throughput_per_s']:.1f} total tok/s; goodput "
        f"{m['goodput_requests_per_s']:.2f} req/s ({m['goodput_ratio']:.0%}); "
        f"{m['completed']} ok, {m['failed']} failed in {m['duration_s']:.1f}s",
    ]
    if pc := details.get("prefix_cache"):
        lines.append(f"      /metrics prefix cache: {pc['hit_rate']:.1%} of "
                     f"{pc['queried_tokens']:g} prompt tokens found")
    for key, c in sorted((details.get("server_metrics") or {}).items()):
        lines.append(f"      /metrics {key.upper():4} mean: client {c['client_mean_ms']:.1f} ms, "
                     f"server {c['server_mean_ms']:.1f} ms (server p50 {c['server_p50_ms']:.1f}, "
                     f"p95 {c['server_p95_ms']:.1f}; {c['observations']:g} obs) "
                     f"{'agree' if c['agrees'] else 'DISAGREE'}")
    return lines


def _gpu_lines(report: ConformReport) -> list[str]:
    gpus = report.info.get("gpus") or []
    if not gpus:
        return []
    lines = [f"  node {report.info.get('node', '?')}: driver {report.info.get('driver_version')}, "
             f"{len(gpus)} GPU(s)"]
    for g in gpus:
        lines.append(
            f"    GPU {g['index']}: {g['name']}, {g['memory_total_gib']:.1f} GiB "
            f"({g['memory_used_gib']:.1f} used), ECC uncorrected volatile "
            f"{_na(g['ecc_uncorrected_volatile'])} / aggregate {_na(g['ecc_uncorrected_aggregate'])}, "
            f"row remap pending {_na(g['row_remap_pending'])}, MIG {_onoff(g['mig_mode'])}")
    return lines


def _na(v: Any) -> str:
    return "n/a" if v is None else str(v).lower()


def _onoff(v: Any) -> str:
    return "n/a" if v is None else ("on" if v else "off")


def report_text(report: ConformReport) -> str:
    lines = [f"kitchen conform {report.kind}: environment {report.environment}: "
             f"{report.verdict} (exit {report.exit_code})"]
    lines += _gpu_lines(report)
    width = max((len(r.check) for r in report.results), default=10)
    for r in report.results:
        note = f" — {r.note}" if r.note else ""
        lines.append(f"  [{_MARK[r.status]:5}] {r.check:{width}}  {r.subject}  "
                     f"({r.duration_s:.1f}s){note}")
        lines += [f"      {_finding_text(f)}" for f in r.findings]
        if r.check == "performance":
            lines += _perf_lines(r.details)
        if r.check == "gpu.cuda":
            for key, v in sorted(r.details.items()):
                if isinstance(v, dict):
                    lines.append(f"      {key}: {v.get('framework')}: {v.get('tflops_fp32')} "
                                 f"TFLOPS fp32 ({v.get('size')}² matmul), relative error "
                                 f"{v.get('max_relative_error'):.2e}")
    c = report.counts()
    warnings = sum(1 for f in report.findings if f.severity.value == "warning")
    lines.append(f"{c['pass'] + c['warn']} passed, {c['fail']} failed, {c['error']} could not run, "
                 f"{c['skip']} skipped, {warnings} warning(s) in {report.duration_s:.1f}s")
    return "\n".join(lines) + "\n"


def report_dict(report: ConformReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "environment": report.environment,
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "started": report.started,
        "duration_s": report.duration_s,
        "counts": report.counts(),
        "info": report.info,
        "checks": [{"check": r.check, "subject": r.subject, "status": r.status.value,
                    "duration_s": r.duration_s, "note": r.note, "details": r.details,
                    "findings": [conform_finding_dict(f) for f in r.findings]}
                   for r in report.results],
    }


def report_json(report: ConformReport) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=True, ensure_ascii=False,
                      default=str) + "\n"


def report_junit(report: ConformReport) -> str:
    suites = ET.Element("testsuites", name=f"kitchen conform {report.kind} {report.environment}")
    groups: dict[str, list[Any]] = {}
    for r in report.results:
        groups.setdefault(r.subject.split(":", 1)[0], []).append(r)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for name, results in groups.items():
        suite = ET.SubElement(suites, "testsuite", name=f"{report.environment}/{name}")
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        suite_time = 0.0
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"conform.{r.check}",
                                 name=r.subject, time=f"{r.duration_s:.3f}")
            suite_time += r.duration_s
            body = "\n".join(_finding_text(f) for f in r.findings)
            if r.status is Status.FAIL:
                counts["failures"] += 1
                errors = [f for f in r.findings if f.severity.value == "error"]
                el = ET.SubElement(case, "failure", message=errors[0].message if errors else r.check,
                                   type=errors[0].rule_id if errors else f"conform.{r.check}")
                el.text = body
            elif r.status is Status.ERROR:
                counts["errors"] += 1
                first = r.findings[0] if r.findings else None
                el = ET.SubElement(case, "error", message=first.message if first else r.note,
                                   type=first.rule_id if first else f"conform.{r.check}")
                el.text = body
            elif r.status is Status.SKIP:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=r.note)
            stdout = [] if r.status in (Status.FAIL, Status.ERROR) or not body else [body]
            if r.check == "performance":
                stdout += [line.strip() for line in _perf_lines(r.details)]
            if stdout:
                ET.SubElement(case, "system-out").text = "\n".join(stdout)
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("time", f"{suite_time:.3f}")
        total_time += suite_time
    for k, v in totals.items():
        suites.set(k, str(v))
    suites.set("time", f"{total_time:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


REPORTERS: dict[str, Callable[[ConformReport], str]] = {
    "text": report_text,
    "json": report_json,
    "junit": report_junit,
}
