"""Evaluate the policy library: one evaluation per environment, violations → findings.

``evaluate_policies`` is the policy stage; ``kitchen check`` assembles it with the other
stages in :mod:`kitchen_gitops.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..escape import visible
from ..findings import Finding, Location, ResourceRef, sort_findings
from ..limits import Pending
from ..model import PositionError
from .engines import Engine, RegorusEngine, start_evaluation
from .errors import PolicyError
from .library import GATE_PACKAGE, Library, Rule, violation_location

GATE_QUERY = f"{GATE_PACKAGE}.violations"


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


class _PolicyRun(Pending[list[Finding]]):
    def __init__(self, library: Library, started: list[tuple[str, Location, Pending[Any]]],
                 locate: Locate | None) -> None:
        self.library, self.started, self.locate = library, started, locate

    def result(self) -> list[Finding]:
        findings: list[Finding] = []
        for env, fallback, evaluation in self.started:
            findings.extend(violations_to_findings(self.library, env, evaluation.result(), fallback, self.locate))
        return sort_findings(findings)


def start_policies(library: Library, engine: Engine, inputs: Mapping[str, Mapping[str, Any]],
                   locate: Locate | None = None,
                   answers: Mapping[str, Pending[Any]] | None = None) -> Pending[list[Finding]]:
    """:func:`evaluate_policies` started: where the engine evaluates in a child process,
    the caller goes on while it runs, and ``result()`` collects the findings.  ``answers``
    holds the engine's answer for an environment whose input it answered before."""
    started = [(env, _location(doc.get("environment", {}).get("_source"), Location(f"<{env}>")),
                (answers or {}).get(env) or start_evaluation(engine, GATE_QUERY, doc))
               for env, doc in inputs.items()]
    return _PolicyRun(library, started, locate)


def default_engine() -> Engine:
    return RegorusEngine()
