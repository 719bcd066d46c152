"""Assemble the stages: load → model → plan → render → policy, for the environments asked for.

The CLI parses options into a value and calls these functions; tests call them directly.
``check`` is the CI gate: every stage in memory, every finding at once, one result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .conform.manifests import CONTRIBUTIONS as CONFORMANCE_OBJECTS
from .errors import ConfigError, UsageError
from .findings import Finding, Gates, Location, ResourceRef, Result, Severity, has_errors, sort_findings
from .load import CATALOG_DIRS
from .model import Catalog, load_catalog
from .observability import CONTRIBUTION as OBSERVABILITY
from .plan import EnvironmentPlan, plan_environment, plan_findings
from .policy.engines import make_engine
from .policy.gate import evaluate_policies, prepare
from .policy.inputs import build_inputs
from .policy.library import load_library
from .policy.waivers import apply_waivers, load_waivers
from .render import Contribution, RenderedFile, render_environment, template_dir
from .rules import RuleInfo
from .write import check_outputs

RENDERED_DIR = "rendered"
POLICY_DIR = "policies"
WAIVERS_FILE = "waivers.yaml"
STALE_RULE = "render.stale"


@dataclass
class Outcome:
    catalog: Catalog
    findings: list[Finding] = field(default_factory=list)
    plans: dict[str, EnvironmentPlan] = field(default_factory=dict)
    rendered: dict[str, list[RenderedFile]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    @property
    def gates(self) -> Gates:
        return Gates.of(self.catalog.environments)

    def result(self, command: str, summary: Sequence[str] = ()) -> Result:
        return Result(command, list(self.findings), environments=sorted(self.plans), gates=self.gates,
                      summary=list(summary))


def select_environments(catalog: Catalog, envs: Sequence[str] | None) -> list[str]:
    known = sorted(catalog.environments)
    if not envs:
        return known
    unknown = [e for e in envs if e not in catalog.environments]
    if unknown:
        raise UsageError(f"unknown environment {', '.join(unknown)}; the catalog defines "
                         f"{', '.join(known) or 'none'}")
    return sorted(set(envs))


def validate(root: Path) -> Outcome:
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory (--root names the catalog repository)")
    if not any((root / rel).is_dir() for rel in CATALOG_DIRS.values()):
        raise ConfigError(f"{root}: not a catalog repository: none of "
                          f"{', '.join(sorted(set(CATALOG_DIRS.values())))} exists")
    catalog, findings = load_catalog(root)
    return Outcome(catalog, sort_findings(findings))


def plan(root: Path, envs: Sequence[str] | None = None) -> Outcome:
    outcome = validate(root)
    if not outcome.ok:
        return outcome
    extra: list[Finding] = []
    for env in select_environments(outcome.catalog, envs):
        p = plan_environment(outcome.catalog, env)
        outcome.plans[env] = p
        extra.extend(plan_findings(outcome.catalog, p))
    outcome.findings = sort_findings([*outcome.findings, *extra])
    return outcome


def contributions() -> tuple[Contribution, ...]:
    """What other stages add to every environment's rendered output."""
    return (*CONFORMANCE_OBJECTS, OBSERVABILITY)


def render(root: Path, envs: Sequence[str] | None = None) -> Outcome:
    outcome = plan(root, envs)
    if not outcome.ok:
        return outcome
    templates = template_dir(root)
    extra = contributions()
    for env, p in outcome.plans.items():
        outcome.rendered[env] = render_environment(outcome.catalog, p, templates, extra)
    return outcome


def output_dir(root: Path) -> Path:
    """Where ``rendered/<env>/`` lives: the folder every environment's Argo CD
    ``path_prefix`` names (one folder for the repository; validated to agree)."""
    return root / RENDERED_DIR


def stale_findings(out_dir: Path, rendered: Mapping[str, Sequence[RenderedFile]], *, full: bool,
                   root: Path) -> list[Finding]:
    """The committed rendered output that differs from what the catalog renders."""
    diffs = check_outputs(out_dir, rendered, prune_environments=full)
    words = {"missing": "is missing", "changed": "is out of date", "extra": "is no longer rendered"}
    try:
        shown = out_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = out_dir.as_posix()
    objects = {f"{env}/{f.path}": f.objects[0] for env, files in rendered.items() for f in files if f.objects}

    def resource(path: str) -> ResourceRef | None:
        obj = objects.get(path)
        return ResourceRef(obj.kind, obj.name, obj.namespace, obj.api_version) if obj is not None else None

    return [Finding(STALE_RULE, Severity.ERROR, f"committed rendered output {words.get(d.change, d.change)}",
                    Location(f"{shown}/{d.path}"), resource=resource(d.path),
                    expected="run `kitchen render` and commit the rendered output",
                    environment=d.path.split("/", 1)[0].rstrip("/"))
            for d in diffs]


@dataclass(frozen=True)
class CheckOptions:
    """``kitchen check``, parsed."""

    root: Path
    environments: tuple[str, ...] = ()
    policies: Path | None = None
    waivers: Path | None = None
    engine: str = "regorus"
    opa_url: str | None = None
    opa_timeout: float = 10.0
    render_check: bool = True
    fail_on_warn: bool = False
    today: dt.date | None = None


def check(opts: CheckOptions) -> Result:
    """``kitchen check``: validate, plan, render in memory, policies, waivers, and the
    staleness of the committed output; every finding at once, in one result."""
    root = opts.root
    envs = list(opts.environments) or None
    outcome = render(root, envs)
    result = outcome.result("check")
    result.gates = Gates.of(outcome.catalog.environments, all_warnings=opts.fail_on_warn)
    if not outcome.ok:
        return result
    folder = opts.policies if opts.policies is not None else root / POLICY_DIR
    if not folder.is_dir():
        raise UsageError(f"{folder}: no policy folder (expected {POLICY_DIR}/*.rego)")
    library = load_library(folder, root)
    engine = make_engine(opts.engine, opa_url=opts.opa_url, timeout=opts.opa_timeout)
    prepare(library, engine)
    inputs = build_inputs(outcome.catalog, outcome.plans, outcome.rendered)
    findings = evaluate_policies(library, engine, inputs, outcome.catalog.locate)
    wpath = opts.waivers if opts.waivers is not None else folder / WAIVERS_FILE
    if opts.waivers is not None and not wpath.is_file():
        raise UsageError(f"{wpath}: no such waivers file")
    if wpath.is_file():
        parsed, problems = load_waivers(wpath, root, library.rule_by_id())
        findings = apply_waivers(findings, parsed, today=opts.today or dt.date.today(),
                                 environments=outcome.plans, complete=not envs)
        findings.extend(problems)
    result.findings.extend(findings)
    if opts.render_check:
        result.findings.extend(stale_findings(output_dir(root), outcome.rendered, full=not envs, root=root))
    result.findings = sort_findings(result.findings)
    result.rules = {r.id: RuleInfo(r.id, r.title, r.severity, r.description, r.location.file)
                    for r in library.rules.values()}
    result.rules_run = sorted(result.rules)
    ran = f"{len(library.rules)} rules"
    rendered_ok = "; rendered/ up to date" if opts.render_check else ""
    result.summary = [f"check ok: {', '.join(result.environments)}; {ran}{rendered_ok}"] \
        if not result.findings else []
    return result
