"""Evaluate the policy library: one evaluation per environment, violations → findings.

``evaluate_policies`` is the policy stage; ``run_check`` is ``kitchen check``: validate,
plan, render in memory, policies, waivers, and the staleness of ``rendered/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import pipeline
from ..errors import UsageError
from ..findings import Finding, Location, ResourceRef, Severity, sort_findings
from ..write import check_outputs
from .engines import Engine, RegorusEngine, make_engine
from .errors import PolicyError
from .inputs import build_inputs
from .library import GATE_PACKAGE, Library, Rule, load_library
from .waivers import apply_waivers, load_waivers

GATE_QUERY = f"{GATE_PACKAGE}.violations"
POLICY_DIR = "policies"
WAIVERS_FILE = "waivers.yaml"
STALE_RULE = "render.stale"


def prepare(library: Library, engine: Engine) -> Engine:
    """Compile the library on ``engine`` and surface static errors now, not mid-run."""
    engine.load([*library.policy_modules(), library.gate_module()], library.data)
    engine.evaluate(GATE_QUERY, {})
    return engine


def _location(value: Any, fallback: Location) -> Location:
    if isinstance(value, dict) and value.get("file"):
        return Location(str(value["file"]), int(value.get("line") or 0), int(value.get("col") or 0))
    return fallback


def violations_to_findings(library: Library, env: str, result: Any,
                           fallback: Location) -> list[Finding]:
    if not isinstance(result, dict):
        raise PolicyError(None, f"{GATE_QUERY} did not evaluate to an object (got {type(result).__name__})")
    out = []
    for package, violations in result.items():
        rule: Rule | None = library.rules.get(package)
        if rule is None:  # pragma: no cover - the gate only lists known packages
            continue
        for v in violations or []:
            if not isinstance(v, dict) or not isinstance(v.get("msg"), str):
                raise PolicyError(rule.location, f"rule {rule.id}: a violation must be an object "
                                  f"with a string 'msg', got {str(v)[:120]}")
            res = v.get("resource")
            resource = None
            if isinstance(res, dict) and res.get("kind"):
                resource = ResourceRef(str(res["kind"]), str(res.get("name", "")),
                                       str(res.get("namespace") or ""), env,
                                       str(res.get("apiVersion") or ""))
            extra = [("environment", env)]
            if v.get("object"):
                extra.append(("object", str(v["object"])))
            out.append(Finding(rule.id, rule.severity, v["msg"], _location(v.get("at"), fallback),
                               resource=resource, expected=str(v.get("expected") or ""),
                               extra=tuple(extra)))
    return out


def evaluate_policies(library: Library, engine: Engine,
                      inputs: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Every rule over every environment's input; the engine must be :func:`prepare`d."""
    findings: list[Finding] = []
    for env, doc in inputs.items():
        fallback = _location(doc.get("environment", {}).get("_source"), Location(f"<{env}>"))
        result = engine.evaluate(GATE_QUERY, doc)
        findings.extend(violations_to_findings(library, env, result, fallback))
    return sort_findings(findings)


@dataclass
class CheckOutcome:
    findings: list[Finding] = field(default_factory=list)
    library: Library | None = None
    environments: list[str] = field(default_factory=list)
    fail_on_warn_envs: set[str] = field(default_factory=set)
    policies_ran: bool = False

    def exit_code(self, *, fail_on_warn: bool = False) -> int:
        for f in self.findings:
            if f.waived:
                continue
            if f.severity is Severity.ERROR:
                return 1
            if f.severity is Severity.WARNING and (
                    fail_on_warn or dict(f.extra).get("environment") in self.fail_on_warn_envs):
                return 1
        return 0


def _stale_findings(root: Path, rendered: Mapping[str, Sequence[Any]], full: bool) -> list[Finding]:
    out_dir = root / "rendered"
    diffs = check_outputs(out_dir, rendered, prune_environments=full)
    words = {"missing": "is missing", "changed": "is out of date", "extra": "is no longer rendered"}
    return [Finding(STALE_RULE, Severity.ERROR,
                    f"committed rendered output {words.get(d.change, d.change)}",
                    Location(f"rendered/{d.path}"), expected="run `kitchen render` and commit rendered/")
            for d in diffs]


def run_check(root: Path, envs: list[str] | None = None, *, engine: Engine | None = None,
              opa_url: str | None = None, policies: Path | None = None,
              waivers: Path | None = None, today: dt.date | None = None,
              render_check: bool = True) -> CheckOutcome:
    """``kitchen check``: every stage in memory, every finding at once."""
    outcome = pipeline.render(root, envs)
    result = CheckOutcome(list(outcome.findings), environments=sorted(outcome.plans))
    if not outcome.ok:
        return result
    result.fail_on_warn_envs = {e for e in outcome.plans if outcome.catalog.environments[e].gates.fail_on_warn}
    folder = policies if policies is not None else root / POLICY_DIR
    if not folder.is_dir():
        raise UsageError(f"{folder}: no policy folder (expected {POLICY_DIR}/*.rego)")
    library = load_library(folder, root)
    result.library = library
    engine = engine if engine is not None else make_engine(opa_url=opa_url)
    prepare(library, engine)
    inputs = build_inputs(outcome.catalog, outcome.plans, outcome.rendered)
    findings = evaluate_policies(library, engine, inputs)
    result.policies_ran = True
    wpath = waivers if waivers is not None else folder / WAIVERS_FILE
    if waivers is not None and not wpath.is_file():
        raise UsageError(f"{wpath}: no such waivers file")
    if wpath.is_file():
        parsed, problems = load_waivers(wpath, root, library.rule_by_id())
        findings = apply_waivers(findings, parsed, today=today or dt.date.today(),
                                 environments=outcome.plans, complete=not envs)
        findings.extend(problems)
    result.findings.extend(findings)
    if render_check:
        result.findings.extend(_stale_findings(root, outcome.rendered, full=not envs))
    result.findings = sort_findings(result.findings)
    return result


def default_engine() -> Engine:
    return RegorusEngine()
