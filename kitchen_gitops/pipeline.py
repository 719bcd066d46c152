"""Assemble the stages: load → model → plan → render, for the environments asked for.

The CLI parses options and calls these functions; tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, UsageError
from .findings import Finding, has_errors, sort_findings
from .load import CATALOG_DIRS
from .model import Catalog, load_catalog
from .plan import EnvironmentPlan, plan_environment, plan_findings
from .render import RenderedFile, render_environment, template_dir


@dataclass
class Outcome:
    catalog: Catalog
    findings: list[Finding] = field(default_factory=list)
    plans: dict[str, EnvironmentPlan] = field(default_factory=dict)
    rendered: dict[str, list[RenderedFile]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)


def select_environments(catalog: Catalog, envs: list[str] | None) -> list[str]:
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


def plan(root: Path, envs: list[str] | None = None) -> Outcome:
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


def render(root: Path, envs: list[str] | None = None) -> Outcome:
    outcome = plan(root, envs)
    if not outcome.ok:
        return outcome
    templates = template_dir(root)
    for env, p in outcome.plans.items():
        outcome.rendered[env] = render_environment(outcome.catalog, p, templates)
    return outcome
