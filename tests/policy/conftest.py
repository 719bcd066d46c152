"""Fixtures of the engine agreement tests: the policy library, compiled on both engines."""

from __future__ import annotations

import pytest

from kitchen_gitops.policy.engines import Engine, OpaLibEngine, RegorusEngine
from kitchen_gitops.policy.gate import prepare
from kitchen_gitops.policy.library import Library, load_library
from tests.policy.policy_cases import REPO


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(REPO / "policies", REPO)


@pytest.fixture(scope="module")
def engines(library: Library) -> dict[str, Engine]:
    return {"regorus": prepare(library, RegorusEngine()), "opa": prepare(library, OpaLibEngine())}
