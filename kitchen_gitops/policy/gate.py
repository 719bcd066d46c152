"""Evaluate the policy library over each environment's input, violations → findings.

Each rule is evaluated on the part of the input its scope names — the whole input, the
input without the tenants' resources (and without the catalog's flavors), or each slice of it
(:mod:`kitchen_gitops.policy.slices`) — in one batch per environment; an answer found in
the gate's cache (by the query and the bytes of its input) is not evaluated again.
``evaluate_policies`` is the policy stage; ``kitchen check`` assembles it with the other
stages in :mod:`kitchen_gitops.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..escape import visible
from ..findings import Finding, Location, ResourceRef, sort_findings
from ..input_items import input_digest, input_json
from ..limits import Pending
from ..model import PositionError
from .engines import Engine, RegorusEngine, Request, start_batch
from .errors import PolicyError
from .library import (
    ENVIRONMENT_SCOPE,
    GATE_PACKAGE,
    PLAN_SCOPE,
    TENANT_SCOPE,
    WHOLE_SCOPE,
    Library,
    Rule,
    violation_location,
)
from .slices import environment_part, merge, plan_part, slices

GATE_QUERY = f"{GATE_PACKAGE}.violations"  # every rule on one input: what the scopes are proven against
WHOLE_QUERY = f"{GATE_PACKAGE}.whole_violations"  # the rules of the whole input (the default scope)
ENVIRONMENT_QUERY = f"{GATE_PACKAGE}.environment_violations"  # on the input without the tenants' resources
PLAN_QUERY = f"{GATE_PACKAGE}.plan_violations"  # on that input without the catalog's flavors
TENANT_QUERY = f"{GATE_PACKAGE}.tenant_violations"  # on each slice


def prepare(library: Library, engine: Engine) -> Engine:
    """Compile the library on ``engine`` and surface static errors now, not mid-run."""
    engine.load([*library.policy_modules(), library.gate_module()], library.data)
    engine.evaluate(GATE_QUERY, {})
    return engine


Locate = Callable[[str, str], Location]  # (catalog file, dotted field path) → its position


def _location(value: Any, fallback: Location, locate: Locate | None = None, rule: Rule | None = None) -> Location:
    """Where a violation points: a field (``lib.at``) resolved through the catalog, else the
    ``{file, line, col}`` it gives — or the environment's file for anything malformed."""
    at = violation_location(value, fallback)
    if at is fallback or not isinstance(value, dict):
        return at
    path = value.get("path")
    if isinstance(path, str) and path and locate is not None:
        try:
            return locate(at.file, path)
        except PositionError as exc:
            where = rule.location if rule is not None else None
            raise PolicyError(where, f"rule {rule.id if rule else '?'} points at a field that does not "
                                     f"exist: {visible(str(exc))}") from None
    return at


def violations_to_findings(library: Library, env: str, result: Any,
                           fallback: Location, locate: Locate | None = None) -> list[Finding]:
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
                                       str(res.get("namespace") or ""), str(res.get("apiVersion") or ""))
            subject = str(v.get("object") or "")
            if resource is not None and subject == resource.id:
                subject = ""
            out.append(Finding(rule.id, rule.severity, v["msg"], _location(v.get("at"), fallback, locate, rule),
                               resource=resource, expected=str(v.get("expected") or ""),
                               actual=str(v.get("actual") or ""), environment=env, subject=subject))
    return out


def evaluate_policies(library: Library, engine: Engine, inputs: Mapping[str, Mapping[str, Any]],
                      locate: Locate | None = None) -> list[Finding]:
    """Every rule over every environment's input; the engine must be :func:`prepare`d.
    ``locate`` resolves the fields that violations point at (``lib.at``)."""
    return start_policies(library, engine, inputs, locate).result()


class Answers(Protocol):
    """Where the engine's answers for an input are found again and kept (the gate's
    cache): by the query and the digest that names the input's bytes exactly
    (:func:`~kitchen_gitops.input_items.input_digest`), what the engine reads."""

    def find(self, query: str, digest: bytes) -> Pending[Any] | None: ...

    def keep(self, query: str, digest: bytes, answer: Any) -> None: ...


def requests_of(library: Library, doc: Mapping[str, Any], namespaces: Sequence[str | None] | None = None,
                sources: Mapping[str, Any] | None = None) -> list[Request]:
    """The evaluations of one environment's input, by the scopes of the library's rules:
    the whole input, the input without the tenants' resources, that without the catalog's
    flavors too, and each slice (:mod:`kitchen_gitops.policy.slices`; ``namespaces``: each
    resource's namespace, ``sources``: each flavor's source, where the caller knows them)."""
    scopes = {r.scope for r in library.rules.values()}
    out = []
    if WHOLE_SCOPE in scopes:
        out.append(_request(WHOLE_QUERY, doc))
    if scopes & {ENVIRONMENT_SCOPE, PLAN_SCOPE, TENANT_SCOPE}:
        cut = slices(doc, namespaces, sources)
        if ENVIRONMENT_SCOPE in scopes:
            out.append(_request(ENVIRONMENT_QUERY, environment_part(doc, cut)))
        if PLAN_SCOPE in scopes:
            out.append(_request(PLAN_QUERY, plan_part(doc, cut)))
        if TENANT_SCOPE in scopes:
            out += [_request(TENANT_QUERY, piece) for piece in cut.values()]
    return out


def _request(path: str, doc: Mapping[str, Any]) -> Request:
    """A request named by its input's digest; its JSON is written only where it is evaluated."""
    return Request(path, doc, digest=input_digest(doc))


class _EnvironmentRun(Pending[list[Finding]]):
    def __init__(self, library: Library, env: str, doc: Mapping[str, Any], locate: Locate | None,
                 requests: list[Request], found: dict[int, Pending[Any]], batch: Pending[list[Any]],
                 answers: Answers | None) -> None:
        self.library, self.env, self.locate, self.answers = library, env, locate, answers
        self.fallback = _location(doc.get("environment", {}).get("_source"), Location(f"<{env}>"))
        self.requests, self.found, self.batch = requests, found, batch

    def result(self) -> list[Finding]:
        computed = iter(self.batch.result())
        values = []
        for i, request in enumerate(self.requests):
            if i in self.found:
                value = self.found[i].result()
            else:
                value = next(computed)
                if self.answers is not None and request.digest is not None:
                    self.answers.keep(request.path, request.digest, value)
            values.append(value)
        answer = united(self.requests, values)
        return violations_to_findings(self.library, self.env, answer, self.fallback, self.locate)


def united(requests: Sequence[Request], values: Sequence[Any]) -> dict[str, Any]:
    """One answer of the answers of an environment's requests: each scope's rules are
    apart, and the slices' violations of the tenant's rules are united."""
    out: dict[str, Any] = {}
    for request, value in zip(requests, values, strict=True):
        if not isinstance(value, dict):
            raise PolicyError(None, f"{request.path} did not evaluate to an object (got {type(value).__name__})")
        if request.path != TENANT_QUERY:
            out.update(value)
    return {**out, **merge(v for r, v in zip(requests, values, strict=True) if r.path == TENANT_QUERY)}


def start_environment(library: Library, engine: Engine, env: str, doc: Mapping[str, Any],
                      locate: Locate | None = None, answers: Answers | None = None,
                      namespaces: Sequence[str | None] | None = None,
                      sources: Mapping[str, Any] | None = None) -> Pending[list[Finding]]:
    """The findings of one environment's input, started: the answers ``answers`` holds are
    found, the others evaluated in one batch (in a child process where the engine runs in
    one, while the caller goes on) and kept."""
    requests = requests_of(library, doc, namespaces, sources)
    found: dict[int, Pending[Any]] = {}
    if answers is not None:
        for i, request in enumerate(requests):
            answer = answers.find(request.path, request.digest) if request.digest is not None else None
            if answer is not None:
                found[i] = answer
    # the inputs to evaluate written here, each kept item read (ItemsGone is raised here, not in the engine's
    # child); one orjson cannot write (an integer beyond 64 bits) the engine writes the slow way
    todo = [replace(r, text=input_json(r.doc)) for i, r in enumerate(requests) if i not in found]
    batch = start_batch(engine, todo)
    return _EnvironmentRun(library, env, doc, locate, requests, found, batch, answers)


class _PolicyRun(Pending[list[Finding]]):
    def __init__(self, started: list[Pending[list[Finding]]]) -> None:
        self.started = started

    def result(self) -> list[Finding]:
        return sort_findings([f for run in self.started for f in run.result()])


def start_policies(library: Library, engine: Engine, inputs: Mapping[str, Mapping[str, Any]],
                   locate: Locate | None = None) -> Pending[list[Finding]]:
    """:func:`evaluate_policies` started: where the engine evaluates in a child process,
    the caller goes on while it runs, and ``result()`` collects the findings."""
    return _PolicyRun([start_environment(library, engine, env, doc, locate) for env, doc in inputs.items()])


def default_engine() -> Engine:
    return RegorusEngine()
