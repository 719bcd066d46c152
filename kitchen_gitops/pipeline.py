"""Assemble the stages: load → model → plan → render → policy, for the environments asked for.

The CLI parses options into a value and calls these functions; tests call them directly.
``check`` is the CI gate: every stage in memory, every finding at once, one result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import check_cache, settings
from .admission import FOLDER as ADMISSION_FOLDER
from .admission import render_admission, reserved_findings
from .cache import Cache, DigestTooLarge, Stats
from .conform.objects import CONTRIBUTIONS as CONFORMANCE_OBJECTS
from .errors import ConfigError, UsageError
from .findings import Finding, Gates, Location, ResourceRef, Result, Severity, has_errors, sort_findings
from .input_items import ItemsGone
from .limits import Pending
from .load import CATALOG_DIRS
from .model import Catalog, load_catalog, output_prefix
from .observability import CONTRIBUTION as OBSERVABILITY
from .plan import EnvironmentPlan, cluster_findings, plan_environment, plan_findings
from .policy.engines import make_engine
from .policy.floors import waiver_max_days, wildcards_forbidden
from .policy.gate import prepare, start_environment
from .policy.inputs import InputBuilder, resource_items, resource_namespaces
from .policy.library import Library, load_library, load_policy_data, repository_policy_folder
from .policy.waivers import apply_waivers, load_waivers
from .render import (
    Contribution,
    RenderedFile,
    contributions_id,
    drift_findings,
    render_environment,
    unintended_findings,
)
from .render_memo import ObjectMemo, TenantMemo
from .rules import RENDER_STALE, RuleInfo
from .sandbox import template_dir
from .vllm_allow import allow_list, extra_args_findings
from .write import Difference, check_outputs, foreign_entries, link_on_the_way, stale_environments

if TYPE_CHECKING:  # the evidence stage (and its cryptography) loads only where a floor asks for it
    from .promotion import EvidenceVerdicts

POLICY_DIR = "policies"
WAIVERS_FILE = "waivers.yaml"
STALE_RULE = RENDER_STALE


@dataclass
class Outcome:
    catalog: Catalog
    findings: list[Finding] = field(default_factory=list)
    plans: dict[str, EnvironmentPlan] = field(default_factory=dict)
    rendered: dict[str, list[RenderedFile]] = field(default_factory=dict)
    # the admission policies of every environment, paths relative to <prefix>/admission/
    admission: list[RenderedFile] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, list[RenderedFile]]:
        """What ``kitchen render`` writes under the output folder: each environment's
        folder and, where anything was rendered, the admission folder."""
        if not self.rendered:
            return dict(self.rendered)
        return {**self.rendered, ADMISSION_FOLDER: self.admission}

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


def validate(root: Path, cache: Cache | None = None) -> Outcome:
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory (--root names the catalog repository)")
    if not any((root / rel).is_dir() for rel in CATALOG_DIRS.values()):
        raise ConfigError(f"{root}: not a catalog repository: none of "
                          f"{', '.join(sorted(set(CATALOG_DIRS.values())))} exists")
    catalog, findings = load_catalog(root, cache)
    return Outcome(catalog, sort_findings(findings))


def plan(root: Path, envs: Sequence[str] | None = None, cache: Cache | None = None) -> Outcome:
    outcome = validate(root, cache)
    if not outcome.ok:
        return outcome
    extra: list[Finding] = []
    for env in select_environments(outcome.catalog, envs):
        p = plan_environment(outcome.catalog, env)
        outcome.plans[env] = p
        extra.extend(plan_findings(outcome.catalog, p))
    extra.extend(cluster_findings(outcome.catalog, outcome.plans))
    outcome.findings = sort_findings([*outcome.findings, *extra])
    return outcome


def contributions() -> tuple[Contribution, ...]:
    """What other stages add to every environment's rendered output."""
    return (*CONFORMANCE_OBJECTS, OBSERVABILITY)


def _planned(root: Path, envs: Sequence[str] | None, cache: Cache | None = None) -> Outcome:
    """``plan``, and an environment that would render into the admission folder refused."""
    outcome = plan(root, envs, cache)
    if outcome.ok:
        outcome.findings = sort_findings([*outcome.findings, *reserved_findings(outcome.catalog)])
    return outcome


# The collector's first generation is collected after this many allocations (Python's default
# is 700) while a command builds its catalog, plans, objects and policy inputs.
COLLECT_AFTER = 100_000


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """A command's whole run with the cyclic collector run less often.

    A run holds large trees of small objects that live to its end (the catalog, every
    rendered object, the policy inputs); with Python's default threshold the collector
    walks them again every few hundred allocations: about a quarter of a large
    organisation's check (bench/cache_bench.py).  Cycles are still collected, less often;
    the thresholds are put back after the run."""
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_AFTER, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def render(root: Path, envs: Sequence[str] | None = None) -> Outcome:
    with _few_collections():
        return _render(root, envs)


def _render(root: Path, envs: Sequence[str] | None = None) -> Outcome:
    outcome = _planned(root, envs)
    if not outcome.ok:
        return outcome
    templates = template_dir(root)
    extra = contributions()
    for env, p in outcome.plans.items():
        outcome.rendered[env] = render_environment(outcome.catalog, p, templates, extra)
    outcome.admission = render_admission(outcome.catalog, load_policy_data(root))
    return outcome


def output_dir(root: Path, catalog: Catalog) -> Path:
    """Where ``<env>/`` of rendered output lives: the folder the environments' Argo CD
    ``path_prefix`` names (one for the repository; validate checks that they agree)."""
    return root / output_prefix(catalog)


def stale_findings(out_dir: Path, rendered: Mapping[str, Sequence[RenderedFile]], *, full: bool,
                   root: Path) -> list[Finding]:
    """The committed rendered output that differs from what the catalog renders (the
    admission folder's findings name the environment below it); nothing is read through a
    link on the way to the output folder (a render refuses to write through one)."""
    linked = link_on_the_way(root, out_dir)
    if linked is not None:
        return [Finding(STALE_RULE, Severity.ERROR, "the rendered output is reached through a symbolic link; "
                        "kitchen render writes only into folders of the repository", Location(shown(linked, root)),
                        expected="a real folder: remove the link, run `kitchen render` and commit")]
    diffs = check_outputs(out_dir, rendered, prune_environments=full)
    named = {d.path for d in diffs}  # the objects of the files that differ, read for their names
    objects = {f"{env}/{f.path}": f.objects[0] for env, files in rendered.items() for f in files
               if f"{env}/{f.path}" in named and f.objects}
    return _as_stale(out_dir, diffs, objects, root)


def shown(path: Path, root: Path) -> str:
    """``path`` as a finding names it: relative to the repository where it is in it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _as_stale(out_dir: Path, diffs: Sequence[Difference], objects: Mapping[str, Any], root: Path) -> list[Finding]:
    words = {"missing": "is missing", "changed": "is out of date", "extra": "is no longer rendered",
             "foreign": "is nothing kitchen renders"}
    remedy = {"foreign": "rendered/ to hold only what `kitchen render` writes: remove it"}
    try:
        shown = out_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = out_dir.as_posix()

    def resource(path: str) -> ResourceRef | None:
        obj = objects.get(path)
        return ResourceRef(obj.kind, obj.name, obj.namespace, obj.api_version) if obj is not None else None

    return [Finding(STALE_RULE, Severity.ERROR, f"committed rendered output {words.get(d.change, d.change)}",
                    Location(f"{shown}/{d.path}"), resource=resource(d.path),
                    expected=remedy.get(d.change, "run `kitchen render` and commit the rendered output"),
                    environment="" if d.change == "foreign" else _environment_of(d.path))
            for d in diffs]


def _environment_of(path: str) -> str:
    """The environment a path of the output belongs to: its first folder, or the second
    one below the admission folder."""
    parts = path.rstrip("/").split("/")
    return parts[1] if parts[0] == ADMISSION_FOLDER and len(parts) > 2 else parts[0]


def policy_folder(root: Path, policies: Path | None) -> Path:
    """The policy library's folder: ``--policies``, else ``<root>/policies``."""
    folder = policies if policies is not None else repository_policy_folder(root)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no policy folder (expected {POLICY_DIR}/*.rego)")
    return folder


@dataclass(frozen=True)
class CheckOptions:
    """``kitchen check``, parsed."""

    root: Path
    environments: tuple[str, ...] = ()
    policies: Path | None = None
    waivers: Path | None = None
    engine: str = settings.DEFAULT_ENGINE
    opa_url: str | None = None
    opa_timeout: float = settings.OPA_TIMEOUT_S
    render_check: bool = True
    fail_on_warn: bool = False
    today: dt.date | None = None
    cache: bool = True  # read and write <root>/.kitchen-cache (unless $KITCHEN_CACHE is off)
    verbose: bool = False  # what the cache did, as notes


def check(opts: CheckOptions) -> Result:
    """``kitchen check``: validate, plan, render in memory, policies, waivers, and the
    staleness of the committed output; every finding at once, in one result.

    Each environment is rendered and evaluated on its own — in parallel worker processes
    when there are several environments, several CPUs and the embedded engine — and its
    findings come back; nothing else crosses between them."""
    with _few_collections():
        return _check(opts)


def _check(opts: CheckOptions) -> Result:
    root = opts.root
    envs = list(opts.environments) or None
    cache = _cache(opts)
    # what the environments' keys read, before the gate reads it: a file that changes while
    # it works stops the results from being stored
    inputs = _inputs(root, opts, cache)
    outcome = _planned(root, envs, cache)
    result = outcome.result("check")
    result.gates = Gates.of(outcome.catalog.environments, all_warnings=opts.fail_on_warn)
    if not outcome.ok:
        _cache_notes(result, cache, opts)
        return result
    folder = policy_folder(root, opts.policies)
    library = load_library(folder, root, cache)
    out_dir = output_dir(root, outcome.catalog)
    # an output folder reached through a link is one finding, and nothing is read through it
    linked = link_on_the_way(root, out_dir) if opts.render_check else None
    job = _EnvironmentJob(outcome, library, opts if linked is None else replace(opts, render_check=False),
                          template_dir(root), out_dir)
    names = sorted(outcome.plans)
    judged: list[EvidenceVerdicts] = []  # judged while the workers run: it reads none of their work
    per_env = _environments(job, names, cache, inputs,
                            lambda: judged.append(_promotion_evidence(outcome, library.data, folder, root)))
    findings = [f for name in names for f in per_env[name]]
    allowed = allow_list(library.data)
    allow_findings = [f for name in names for f in extra_args_findings(outcome.catalog, outcome.plans[name], allowed)]
    (evidence,) = judged
    findings = _after_rollback([*findings, *evidence.findings], evidence.rolled_back)
    stale = [f for f in findings if f.rule_id == STALE_RULE]
    result.findings.extend(_waived([f for f in findings if f.rule_id != STALE_RULE], outcome, library,
                                   folder, opts))
    result.findings.extend(allow_findings)  # security widens the allow-list itself: not waived
    if opts.render_check:
        result.findings.extend(stale)
        admission = {ADMISSION_FOLDER: render_admission(outcome.catalog, library.data)}
        result.findings.extend(stale_findings(job.out_dir, admission, full=False, root=root))
        if not envs and linked is None:  # environments no longer in the catalog, and what kitchen never wrote
            result.findings.extend(_as_stale(job.out_dir, stale_environments(job.out_dir, names), {}, root))
            result.findings.extend(_as_stale(job.out_dir, foreign_entries(job.out_dir, [*names, ADMISSION_FOLDER]),
                                             {}, root))
    result.findings = sort_findings(result.findings)
    result.rules = {r.id: RuleInfo(r.id, r.title, r.severity, r.description, r.location.file)
                    for r in library.rules.values()}
    result.rules_run = sorted(result.rules)
    ran = f"{len(library.rules)} rules"
    rendered_ok = "; rendered/ up to date" if opts.render_check else ""
    result.summary = [f"check ok: {', '.join(result.environments)}; {ran}{rendered_ok}"] \
        if not result.findings else []
    _cache_notes(result, cache, opts)
    return result


def _cache(opts: CheckOptions) -> Cache:
    """The repository's cache where the options ask for one and none of the engine's work
    happens elsewhere (an OPA server's policies are not kitchen's files)."""
    if not opts.cache:
        return Cache.disabled()
    if opts.opa_url:
        return Cache.disabled("the policies run on an OPA server: no environment is stored")
    return Cache.of(opts.root)


def _inputs(root: Path, opts: CheckOptions, cache: Cache) -> check_cache.Inputs | None:
    """What the environments' keys read, or None without a cache or where the folders hold
    more than a digest reads (then nothing of the environments is found or stored)."""
    if not cache.enabled:
        return None
    try:
        return check_cache.inputs_digest({**{d: root / d for d in check_cache.READ_FOLDERS},
                                          "templates": root / "templates",
                                          "policy folder": opts.policies or root / POLICY_DIR}, root,
                                         given=("policy folder",) if opts.policies else ())
    except DigestTooLarge as exc:
        cache.stats.ignored.append(f"{exc} below the folders the gate reads: more than a digest reads; "
                                   "no environment is found or stored")
        return None


def _cache_notes(result: Result, cache: Cache, opts: CheckOptions) -> None:
    cache.trim()
    if opts.verbose:
        result.notes.extend(cache.stats.lines())


def _environments(job: _EnvironmentJob, names: list[str], cache: Cache, inputs: check_cache.Inputs | None,
                  meanwhile: Callable[[], None] = lambda: None) -> dict[str, list[Finding]]:
    """Every environment's findings: from the cache where everything it reads is as it was,
    else computed (in workers where there are several) and stored.  ``meanwhile`` runs in
    this process while the workers work (else before the environments are computed)."""
    opts = job.opts
    keys: dict[str, str] = {}
    out: dict[str, list[Finding]] = {}
    if inputs is not None:
        job.inputs, job.cache = inputs, cache  # rendered objects are found by their context
    impure = check_cache.nondeterministic(job.library) if inputs is not None else ""
    if inputs is not None and impure:
        cache.stats.ignored.append(f"{impure}: the policies call a built-in whose answer changes from run "
                                   "to run; no environment is stored")
    elif inputs is not None:
        options = [opts.engine, f"render_check={opts.render_check}", job.out_dir.as_posix(),
                   job.templates.as_posix()]
        outputs = {name: check_cache.output_digest(job.out_dir / name if opts.render_check else None, inputs)
                   for name in names}
        job.stages = check_cache.Stages.of(cache, job.library)
        for name in names:
            output = outputs[name]
            if output is None:
                cache.stats.ignored.append(f"{name}: its committed output holds more than a digest reads; "
                                           "the environment is neither found nor stored")
                continue
            keys[name] = check_cache.environment_key(name, inputs, options, output)
            found = cache.read(check_cache.KIND, keys[name], check_cache.decode, "not a list of findings")
            if found is not None:
                out[name] = found
    todo = [n for n in names if n not in out]
    workers = min(len(todo), _jobs(opts))
    if workers > 1:
        computed = _run_in_workers(job, todo, workers, meanwhile)
    elif todo:
        meanwhile()
        engine = make_engine(opts.engine, opa_url=opts.opa_url, timeout=opts.opa_timeout)
        prepare(job.library, engine)
        computed = job.run_all(todo, engine)
    else:
        meanwhile()
        computed = {}
    if inputs is not None and keys and computed and not inputs.signatures.unchanged():
        cache.stats.ignored.append("files the gate reads changed while it ran; no environment is stored")
        keys.clear()
    for name, found in computed.items():
        if name in keys:
            cache.put(check_cache.KIND, keys[name], check_cache.encode(found))
    return {**out, **computed}


def _waived(policy: list[Finding], outcome: Outcome, library: Library, folder: Path,
            opts: CheckOptions) -> list[Finding]:
    """The policy findings with the waivers of ``--waivers`` (else ``policies/waivers.yaml``)
    applied, and the waivers file's own problems."""
    wpath = opts.waivers if opts.waivers is not None else folder / WAIVERS_FILE
    if opts.waivers is not None and not wpath.is_file():
        raise UsageError(f"{wpath}: no such waivers file")
    if not wpath.is_file():
        return policy
    parsed, problems = load_waivers(wpath, opts.root, library.rule_by_id())
    clusters = {name: env.cluster.name for name, env in outcome.catalog.environments.items()}
    waived = apply_waivers(sort_findings(policy), parsed, today=opts.today or dt.date.today(),
                           environments=outcome.plans, complete=not opts.environments,
                           no_wildcards=wildcards_forbidden(library.data, clusters),
                           max_days=waiver_max_days(library.data))
    return [*waived, *problems]


def _promotion_evidence(outcome: Outcome, data: Mapping[str, Any], folder: Path, root: Path) -> EvidenceVerdicts:
    """``policy.promotion-evidence`` for the environments whose floor requires it, and the
    versions a recorded rollback served again there."""
    from .promotion import EvidenceVerdicts, judge_evidence, requires_evidence

    envs = [outcome.catalog.environments[n] for n in outcome.plans]
    if not any(requires_evidence(data, e) for e in envs):
        return EvidenceVerdicts()
    from .evidence import load_trusted_keys

    return judge_evidence(outcome.catalog, outcome.plans, data, load_trusted_keys(folder, root), root,
                          dt.datetime.now(dt.UTC))


def _after_rollback(findings: list[Finding], rolled_back: set[tuple[str, str]]) -> list[Finding]:
    """A version a recorded rollback served again, proven in its environment, needs no
    promotion order: the environment it promotes from may have moved on."""
    return [f for f in findings if not (f.rule_id == "policy.promotion-order"
                                        and (f.environment, f.subject.removeprefix("Flavor/")) in rolled_back)]


def _jobs(opts: CheckOptions) -> int:
    """Worker processes for the environments: where this process may use several CPUs, one
    more than it may use, unless ``$KITCHEN_JOBS`` (settings.JOBS) says otherwise; one (in
    process) on one CPU, and for engines that cannot be forked (the real OPA engine runs
    Go) or reached from several processes at once.

    Environments are the unit of work: with one worker per CPU, three environments on two
    CPUs leave one CPU idle while the other finishes its second environment.  One worker
    more lets the system share the CPUs out to the end, for one more environment held at
    once (bench/cache_bench.py: about 0.5 s less on every row of the synthetic
    organisation; the largest process no larger, all processes together 1.5 GiB against
    1.05 GiB)."""
    if opts.engine != settings.DEFAULT_ENGINE or opts.opa_url:
        return 1
    configured = settings.JOBS.count()
    if configured is not None:
        return configured
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return cpus + 1 if cpus > 1 else 1


@dataclass
class _EnvironmentJob:
    """One environment's share of ``check``: render, stale files, policy input, evaluation."""

    outcome: Outcome
    library: Library
    opts: CheckOptions
    templates: Path
    out_dir: Path
    stages: check_cache.Stages | None = None  # where the render and the evaluation are cached
    cache: Cache | None = None  # where rendered objects are cached
    inputs: check_cache.Inputs | None = None
    lazy: bool = True  # a found tenant's items read only for an input that is evaluated

    def start(self, name: str, engine: Any) -> Pending[list[Finding]]:
        """Render ``name`` and start its policy evaluation, which runs in a child process
        (the embedded engine) while the caller goes on; ``result()`` has every finding.
        The tenants' objects and the engine's answers come from the cache where what they
        read is as it was; a found tenant's items are read only for an input that is
        evaluated, and where the cache lost them since, the environment is rendered again
        with each found tenant's items read at once (a lost one rendered again)."""
        try:
            return self._start(name, engine)
        except ItemsGone as gone:
            if self.cache is not None:
                self.cache.stats.ignored.append(f"{gone}: environment {name} rendered again, each found "
                                                "tenant's items read at once")
            self.lazy = False
            try:
                return self._start(name, engine)
            finally:
                self.lazy = True

    def _start(self, name: str, engine: Any) -> Pending[list[Finding]]:
        found, doc, namespaces = self.render(name)
        answers = self.stages.answers(self.opts.engine, name) if self.stages is not None else None
        evaluation = start_environment(self.library, engine, name, doc, self.outcome.catalog.locate, answers,
                                       namespaces=namespaces, sources=self.sources)
        return _Joined(found, evaluation, answers.flush if answers is not None else None)

    @functools.cached_property
    def sources(self) -> dict[str, str]:
        """Each flavor's source, by reference: what the slices group the flavors by."""
        return {ref: f.source for ref, f in self.outcome.catalog.flavors.items()}

    def render(self, name: str) -> tuple[list[Finding], dict[str, Any], list[str | None]]:
        """The render of ``name``: its findings (rendered as planned, the closed world, the
        committed output), its policy input and the namespace of each of its resources."""
        catalog = self.outcome.catalog
        prefix = output_prefix(catalog)
        memo = units = None
        extra = contributions()
        compiled = False
        if self.cache is not None and self.inputs is not None:
            templates = self.inputs.digest_of(("templates",))
            memo = ObjectMemo(self.cache, name, templates)
            units = TenantMemo(self.cache, name, templates, contributions_id(extra), prefix)
            units.lazy = self.lazy
            compiled = check_cache.templates_compiled(self.cache, templates)
        files = render_environment(catalog, self.outcome.plans[name], self.templates, extra, memo, units,
                                   compiled)
        found: list[Finding] = drift_findings(self.outcome.plans[name], files)
        found += unintended_findings(name, files, self.library.data)
        if self.opts.render_check:
            found += stale_findings(self.out_dir, {name: files}, full=False, root=self.opts.root)
        items = resource_items(name, files, prefix)
        builder = InputBuilder(catalog, self.cache if units is not None else None, name)
        doc = builder.build(self.outcome.plans[name], files, items, prefix, units)
        if memo is not None and units is not None and self.inputs is not None \
                and self.inputs.signatures.unchanged():
            memo.flush()  # else a template or a catalog file may have been read as other bytes than the key's
            units.flush()
            builder.flush()
            if not compiled and self.cache is not None:  # every template compiled before this render began
                check_cache.mark_compiled(self.cache, templates)
        return found, doc, resource_namespaces(files, items)

    def run_all(self, names: Sequence[str], engine: Any) -> dict[str, list[Finding]]:
        """Every environment of ``names``, each rendered while the previous one's policies
        are evaluated: one render and one evaluation at a time, side by side."""
        out: dict[str, list[Finding]] = {}
        previous: tuple[str, Pending[list[Finding]]] | None = None
        for name in names:
            started = self.start(name, engine)
            if previous is not None:
                out[previous[0]] = previous[1].result()
            previous = (name, started)
        if previous is not None:
            out[previous[0]] = previous[1].result()
        return out


class _Joined(Pending[list[Finding]]):
    """Findings found already, and those of an evaluation under way."""

    def __init__(self, found: list[Finding], evaluation: Pending[list[Finding]],
                 done: Callable[[], None] | None = None) -> None:
        self.found, self.evaluation, self.done = found, evaluation, done

    def result(self) -> list[Finding]:
        out = self.found + self.evaluation.result()
        if self.done is not None:
            self.done()  # the answers the evaluation kept, written
        return out


# the job of a forked worker and its engine, the library loaded: inherited from the parent
_JOB: tuple[_EnvironmentJob, Any] | None = None


def _worker(names: list[str]) -> tuple[dict[str, list[Finding]], Stats | None]:
    """A worker's share, and what it did with the cache (its counters live in this process)."""
    assert _JOB is not None
    job, engine = _JOB
    cache = job.cache
    if cache is not None:
        cache.stats = Stats()  # counted afresh: the parent's account came along with the fork
    found = job.run_all(names, engine)
    return found, cache.stats if cache is not None else None


def _shares(plans: Mapping[str, EnvironmentPlan], workers: int) -> list[list[str]]:
    """The environments split between ``workers`` with about the same work each (the
    largest first, each to the least loaded worker); the work of one is its tenants and
    services, which its rendered objects follow. Within a share the largest comes first,
    so that the last render, which no evaluation runs beside, is the smallest."""
    def size(name: str) -> int:
        plan = plans[name]
        return len(plan.tenants) + len(plan.services) + 1

    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for name in sorted(plans, key=lambda n: (-size(n), n)):
        least = loads.index(min(loads))
        shares[least].append(name)
        loads[least] += size(name)
    return [share for share in shares if share]


def _run_in_workers(job: _EnvironmentJob, names: list[str], workers: int,
                    meanwhile: Callable[[], None] = lambda: None) -> dict[str, list[Finding]]:
    """``job`` for every environment in forked processes that inherit the catalog and the
    plans, each with its share of the environments, and ``meanwhile`` here while they work;
    an error in one (a broken template or policy) is raised here as it was there.  The
    engine loads the library here, once, and the workers inherit it."""
    global _JOB
    context = multiprocessing.get_context("fork")
    shares = _shares({n: job.outcome.plans[n] for n in names}, workers)
    engine = make_engine(job.opts.engine)
    prepare(job.library, engine)
    _JOB = (job, engine)
    out: dict[str, list[Finding]] = {}
    try:
        with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
            started = pool.map(_worker, shares)
            meanwhile()
            for part, stats in started:
                out.update(part)
                if stats is not None and job.cache is not None:
                    job.cache.stats.merge(stats)
    finally:
        _JOB = None
    return out
