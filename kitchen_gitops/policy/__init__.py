"""The policy stage: a Rego library over one input document per environment.

``library`` reads ``policies/`` and each rule's metadata, ``inputs`` builds the
documents, ``engines`` evaluates them (embedded regorus by default, real OPA, or an
OPA server), ``gate`` turns violations into findings, ``waivers`` applies exceptions,
``testing`` runs the library's unit tests and ``docs`` writes docs/policies.md.
"""

from __future__ import annotations

from .engines import Engine, OpaLibEngine, OpaServerEngine, RegorusEngine, make_engine
from .errors import EngineUnavailable, PolicyError
from .gate import evaluate_policies, prepare
from .inputs import build_inputs
from .library import Library, Rule, load_library

__all__ = [
    "Engine", "EngineUnavailable", "Library", "OpaLibEngine", "OpaServerEngine",
    "PolicyError", "RegorusEngine", "Rule", "build_inputs", "evaluate_policies", "load_library",
    "make_engine", "prepare",
]
