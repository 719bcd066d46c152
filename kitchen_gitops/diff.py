"""What a catalog change does to each environment, for the pull-request comment.

Plans the catalog as it is and as it was at a Git revision (``git archive`` of the
catalog, environments, evaluation sets and templates into a temporary folder) and compares them service
by service: InferenceServices added or removed, flavors added, removed or moved to
another version, the base version, replicas, GPUs and the vLLM arguments that change;
and per environment the SLO and observability settings that change, with the alerts
that appear, disappear or get another threshold.  After that, every rendered object
that changes (:mod:`kitchen_gitops.object_diff`): what a pull request does to a RoleBinding,
a NetworkPolicy, an alert rule, the kustomization or the Application shows even when it
serves nothing differently.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, UsageError
from .escape import markdown_cell, markdown_code, visible
from .evaluation_sets import DATASET_DIR
from .findings import has_errors
from .load import CATALOG_DIRS
from .model import Environment
from .object_diff import MAX_VALUES, ObjectChange, diff_rendered
from .observability import alert_rules, fmt
from .plan import EnvironmentPlan, ServicePlan
from .render import RenderedFile

if TYPE_CHECKING:
    from .pipeline import Outcome

MAX_OBJECTS_SHOWN = 100  # changed objects listed per environment in text and Markdown (JSON: all)


@dataclass(frozen=True)
class ServiceChange:
    environment: str
    namespace: str
    name: str
    change: str  # added | removed | changed
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"environment": self.environment, "namespace": self.namespace, "name": self.name,
                "change": self.change, "details": list(self.details)}


@dataclass(frozen=True)
class EnvironmentChange:
    """What changes for the whole environment: its SLOs, observability and alerts."""

    environment: str
    details: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"environment": self.environment, "details": list(self.details)}


@dataclass
class Diff:
    base: str
    changes: list[ServiceChange] = field(default_factory=list)
    environment_changes: list[EnvironmentChange] = field(default_factory=list)
    object_changes: list[ObjectChange] = field(default_factory=list)

    def environments(self) -> list[str]:
        return sorted({c.environment for c in self.changes} | {c.environment for c in self.environment_changes})

    def object_environments(self) -> list[str]:
        return sorted({c.environment for c in self.object_changes})

    # the forms the reporters show (findings.Detail)
    def text(self) -> str:
        return format_text(self)

    def markdown(self) -> str:
        return format_markdown(self)

    def as_dict(self) -> dict[str, object]:
        return {"base": self.base, "changes": [c.as_dict() for c in self.changes],
                "environments": [e.as_dict() for e in self.environment_changes],
                "objects": [c.as_dict() for c in self.object_changes]}


def _flavor_versions(svc: ServicePlan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in svc.flavors:
        out.setdefault(f.name, set()).add(f.version)
    return out


def _flavor_details(old: ServicePlan, new: ServicePlan) -> list[str]:
    """Flavor versions added and removed; one version replacing another as a move."""
    ov, nv = _flavor_versions(old), _flavor_versions(new)
    details: list[str] = []
    for name in sorted(ov.keys() | nv.keys()):
        before, after = ov.get(name, set()), nv.get(name, set())
        if before == after:
            continue
        if len(before) == 1 and len(after) == 1:
            details.append(f"flavor {name} {min(before)} → {min(after)}")
            continue
        details += [f"flavor {name}@{v} added" for v in sorted(after - before)]
        details += [f"flavor {name}@{v} removed" for v in sorted(before - after)]
    oa = {m.name: m.flavor.ref for m in old.aliases}
    na = {m.name: m.flavor.ref for m in new.aliases}
    for alias in sorted(oa.keys() | na.keys()):
        if alias not in oa:
            details.append(f"alias {alias} → {na[alias]} added")
        elif alias not in na:
            details.append(f"alias {alias} → {oa[alias]} removed")
        elif oa[alias] != na[alias]:
            details.append(f"alias {alias} {oa[alias]} → {na[alias]}")
    return details


def _args(svc: ServicePlan) -> dict[str, str]:
    """Flag → value as vLLM reads them, without the LoRA modules (reported as flavors)."""
    out: dict[str, str] = {}
    for flag, value in svc.vllm.flags().items():
        if flag != "--lora-modules":
            out[flag] = " ".join(value) if isinstance(value, tuple) else (value or "")
    return out


def _describe(old: ServicePlan, new: ServicePlan) -> list[str]:
    details: list[str] = []
    if old.kind != new.kind:
        details.append(f"served as {old.kind} → {new.kind}")
    if old.base.ref != new.base.ref:
        details.append(f"base {old.base.ref} → {new.base.ref}")
    details += _flavor_details(old, new)
    if old.replicas != new.replicas:
        details.append(f"replicas {old.replicas} → {new.replicas}")
    if old.gpus != new.gpus:
        details.append(f"GPUs {old.gpus} → {new.gpus}")
    if old.max_replicas != new.max_replicas and (old.scaling or new.scaling):  # fixed: said by replicas
        details.append(f"max replicas {old.max_replicas} → {new.max_replicas} "
                       f"(GPUs at full scale {old.gpus_max} → {new.gpus_max})")
    oa, na = _args(old), _args(new)
    for flag in sorted(oa.keys() | na.keys()):
        if oa.get(flag) != na.get(flag):
            before = oa.get(flag, "(unset)") or "(set)"
            after = na.get(flag, "(unset)") or "(set)"
            details.append(f"{flag} {before} → {after}")
    return details


def _flat(prefix: str, data: object) -> dict[str, object]:
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for k, v in data.items():
            out.update(_flat(f"{prefix}.{k}", v))
        return out
    return {prefix: data}


def _shown(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return fmt(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _alerts(env: Environment) -> dict[str, str]:
    """Alert name → its thresholds (the comparisons of its expression), as rendered per namespace."""
    if not env.observability.enabled:
        return {}
    return {r["alert"]: " and ".join(re.findall(r"[<>] \S+", r["expr"])) for r in alert_rules(env, "<namespace>", [])}


def describe_environment(old: Environment, new: Environment) -> list[str]:
    """SLO and observability settings that change, and what that does to the alerts."""
    details: list[str] = []
    before = {**_flat("slo", old.slo.model_dump()), **_flat("observability", old.observability.model_dump())}
    after = {**_flat("slo", new.slo.model_dump()), **_flat("observability", new.observability.model_dump())}
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            details.append(f"{key} {_shown(before.get(key))} → {_shown(after.get(key))}")
    oa, na = _alerts(old), _alerts(new)
    details += [f"alert {a} added ({na[a]})" if na[a] else f"alert {a} added" for a in sorted(na.keys() - oa.keys())]
    details += [f"alert {a} removed" for a in sorted(oa.keys() - na.keys())]
    details += [f"alert {a} threshold {oa[a]} → {na[a]}" for a in sorted(oa.keys() & na.keys()) if oa[a] != na[a]]
    return details


def diff_plans(old: dict[str, EnvironmentPlan], new: dict[str, EnvironmentPlan], base: str) -> Diff:
    out = Diff(base)
    for env in sorted(old.keys() & new.keys()):
        if details := describe_environment(old[env].environment, new[env].environment):
            out.environment_changes.append(EnvironmentChange(env, tuple(details)))
    for env in sorted(old.keys() | new.keys()):
        before = {(s.namespace, s.name): s for s in old[env].services} if env in old else {}
        after = {(s.namespace, s.name): s for s in new[env].services} if env in new else {}
        for key in sorted(before.keys() | after.keys()):
            ns, name = key
            if key not in before:
                svc = after[key]
                out.changes.append(ServiceChange(env, ns, name, "added", (
                    *([f"served as {svc.kind}"] if svc.kind != "InferenceService" else []),
                    f"base {svc.base.ref}", *(f"flavor {f.ref}" for f in svc.flavors),
                    *(f"alias {m.name} → {m.flavor.ref}" for m in svc.aliases),
                    f"{svc.replicas} replica(s) × {svc.tensor_parallel_size} GPU(s)")))
            elif key not in after:
                out.changes.append(ServiceChange(env, ns, name, "removed", (f"base {before[key].base.ref}",)))
            elif details := _describe(before[key], after[key]):
                out.changes.append(ServiceChange(env, ns, name, "changed", tuple(details)))
    return out


def checkout_revision(root: Path, revision: str, into: Path) -> Path:
    """The catalog repository at ``revision``, extracted under ``into``."""
    paths = [p for p in (*sorted(set(CATALOG_DIRS.values())), DATASET_DIR, "templates")]
    if revision.startswith("-") or any(c in revision for c in "\0\n\r"):
        raise UsageError(f"'{visible(revision)}' is not a Git revision")
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        prefix = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-prefix"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"{root}: not a Git checkout, so there is no revision to compare with") from exc
    proc = subprocess.run(["git", "-C", top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise UsageError(f"unknown revision '{revision}' in {top}")
    commit = proc.stdout.strip()
    listed = subprocess.run(["git", "-C", top, "ls-tree", "--name-only", commit, "--",
                             *(prefix + p for p in paths)], capture_output=True, text=True, check=True)
    present = [line for line in listed.stdout.splitlines() if line]
    target = into / "base"
    target.mkdir(parents=True)
    if present:
        tar = subprocess.run(["git", "-C", top, "archive", "--format=tar", commit, "--", *present],
                             capture_output=True, check=True).stdout
        with tarfile.open(fileobj=BytesIO(tar)) as archive:
            for member in archive.getmembers():
                _check_member(member, target, revision)
            archive.extractall(target, filter="data")
    return target / prefix if prefix else target


def _check_member(member: tarfile.TarInfo, target: Path, revision: str) -> None:
    """Refuse what the revision holds that the loader would refuse in a working tree: a link
    out of the repository, a special file.  Extraction itself never follows a link."""
    try:
        tarfile.data_filter(member, str(target))
    except tarfile.FilterError as exc:
        raise ConfigError(f"the catalog at {visible(revision)} holds {visible(member.name)}, which "
                          f"kitchen diff does not extract ({_filter_reason(exc)}); cannot compare "
                          "with it") from None


def _filter_reason(exc: tarfile.FilterError) -> str:
    if isinstance(exc, tarfile.AbsoluteLinkError | tarfile.LinkOutsideDestinationError):
        return "a link outside the repository"
    if isinstance(exc, tarfile.SpecialFileError):
        return "not a regular file"
    return type(exc).__name__


def diff_against(root: Path, revision: str, new: dict[str, EnvironmentPlan],
                 rendered: Mapping[str, Sequence[RenderedFile]] | None = None) -> Diff:
    """The serving changes of ``new`` against the catalog at ``revision``; with the working
    tree's ``rendered`` objects, the object changes too (the revision is rendered as well)."""
    from . import pipeline

    old_rendered: Mapping[str, Sequence[RenderedFile]] = {}
    with tempfile.TemporaryDirectory(prefix="kitchen-diff-") as tmp:
        base_root = checkout_revision(root, revision, Path(tmp))
        if not any((base_root / d).is_dir() for d in CATALOG_DIRS.values()):
            out = diff_plans({}, new, revision)  # the catalog is new in this change
        else:
            outcome = pipeline.plan(base_root) if rendered is None else _render_revision(base_root, revision)
            if has_errors(outcome.findings):
                raise ConfigError(f"the catalog at {revision} does not validate "
                                  f"({len(outcome.findings)} finding(s)); cannot compare with it")
            out = diff_plans(outcome.plans, new, revision)
            old_rendered = outcome.rendered
    if rendered is not None:
        out.object_changes = diff_rendered(old_rendered, rendered)
    return out


def _render_revision(base_root: Path, revision: str) -> Outcome:
    from . import pipeline

    try:
        return pipeline.render(base_root)
    except ConfigError as exc:
        message = str(exc).replace(str(base_root) + "/", "")
        raise ConfigError(f"the catalog at {visible(revision)} does not render ({message}); "
                          "cannot compare with it") from None


def _shown_objects(diff: Diff, env: str) -> tuple[list[ObjectChange], int]:
    changes = [c for c in diff.object_changes if c.environment == env]
    return changes[:MAX_OBJECTS_SHOWN], max(0, len(changes) - MAX_OBJECTS_SHOWN)


def _value(text: str | None) -> str:
    return "(absent)" if text is None else text


def _field_notes(c: ObjectChange) -> list[str]:
    """What is left out of a changed object's field list."""
    notes = [f"… and {c.more_fields} more changed field(s)"] if c.more_fields else []
    if c.incomplete:
        notes.append(f"… compared no further than {MAX_VALUES:,} values")
    return notes


def _serving_text(diff: Diff) -> list[str]:
    if not diff.changes and not diff.environment_changes:
        return [f"no serving changes against {visible(diff.base)}"]
    lines = []
    for e in diff.environment_changes:
        lines.append(f"{e.environment}: SLOs and alerts changed")
        lines += [f"    {d}" for d in e.details]
    for c in diff.changes:
        lines.append(f"{c.environment}: {c.namespace}/{c.name} {c.change}")
        lines += [f"    {d}" for d in c.details]
    summary = [f"{len(diff.changes)} InferenceService(s)"] if diff.changes else []
    if diff.environment_changes:
        summary.append(f"the SLOs or alerts of {len(diff.environment_changes)} environment(s)")
    lines.append(f"{' and '.join(summary)} change against {visible(diff.base)} in {', '.join(diff.environments())}")
    return lines


def _objects_text(diff: Diff) -> list[str]:
    """Each changed object on its own line, its changed fields below it: every line starts
    with the environment or indentation, and every value is escaped onto that one line."""
    if not diff.object_changes:
        return [f"no rendered object changes against {visible(diff.base)}"]
    lines = []
    for env in diff.object_environments():
        shown, hidden = _shown_objects(diff, env)
        for c in shown:
            lines.append(visible(f"{env}: {c.obj.label()} {c.change}"))
            lines += [visible(f"    {f.path}: {_value(f.old)} → {_value(f.new)}") for f in c.fields]
            lines += [f"    {note}" for note in _field_notes(c)]
        if hidden:
            lines.append(f"{visible(env)}: … and {hidden} more changed object(s) (--format json lists them all)")
    lines.append(f"{len(diff.object_changes)} rendered object(s) change against {visible(diff.base)} "
                 f"in {visible(', '.join(diff.object_environments()))}")
    return lines


def format_text(diff: Diff) -> str:
    return "\n".join([*_serving_text(diff), *_objects_text(diff)]) + "\n"


def _serving_markdown(diff: Diff) -> list[str]:
    if not diff.changes and not diff.environment_changes:
        return [f"### kitchen: no serving changes against {markdown_code(diff.base)}", ""]
    out = [f"### kitchen: what this change serves, against {markdown_code(diff.base)}", ""]
    for env in diff.environments():
        out += [f"**{env}**", ""]
        for e in (e for e in diff.environment_changes if e.environment == env):
            out += ["SLOs and alerts:", ""] + [f"- {d}" for d in e.details] + [""]
        if not any(c.environment == env for c in diff.changes):
            continue
        out += ["| InferenceService | change | details |", "|---|---|---|"]
        for c in (c for c in diff.changes if c.environment == env):
            details = "<br>".join(markdown_cell(d) for d in c.details)
            out.append(f"| {markdown_code(f'{c.namespace}/{c.name}')} | {c.change} | {details} |")
        out.append("")
    return out


def _md_value(text: str | None) -> str:
    return markdown_cell("(absent)") if text is None else markdown_code(text)


def _objects_markdown(diff: Diff) -> list[str]:
    if not diff.object_changes:
        return ["#### Rendered objects: no changes", ""]
    out = [f"#### Rendered objects: {len(diff.object_changes)} changed", ""]
    for env in diff.object_environments():
        shown, hidden = _shown_objects(diff, env)
        out += [f"**{markdown_cell(env)}**", "", "| object | change | fields |", "|---|---|---|"]
        for c in shown:
            fields = [f"{markdown_code(f.path)}: {_md_value(f.old)} → {_md_value(f.new)}" for f in c.fields]
            fields += [markdown_cell(note) for note in _field_notes(c)]
            out.append(f"| {markdown_code(c.obj.label())} | {c.change} | {'<br>'.join(fields)} |")
        if hidden:
            out.append(f"| … and {hidden} more | | `--format json` lists them all |")
        out.append("")
    return out


def format_markdown(diff: Diff) -> str:
    return "\n".join([*_serving_markdown(diff), *_objects_markdown(diff)])


def format_json(diff: Diff) -> str:
    return json.dumps(diff.as_dict(), indent=2, ensure_ascii=False) + "\n"

