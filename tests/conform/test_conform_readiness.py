"""Readiness and the Argo CD health check, both on KServe's real InferenceService statuses.

The samples in ``../shared/fixtures/isvc-status/`` come unchanged from Argo CD's test data;
``fixtures/`` adds a crash-looping and a starting RawDeployment.  The Python readiness logic
and the Lua health check (run in Lua 5.1, the dialect of Argo CD's gopher-lua) must agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops.conform.expectations import ServiceExpectation, Source
from kitchen_gitops.conform.objects import health_lua
from kitchen_gitops.conform.readiness import Forbidden, NotFound, isvc_health, wait_ready
from kitchen_gitops.conform.results import Status
from tests.conftest import shared_path

SHARED = shared_path("fixtures", "isvc-status")
LOCAL = Path(__file__).parent / "fixtures"

EXPECTED = {
    "healthy.yaml": "Healthy",
    "healthy_ocp.yaml": "Healthy",
    "healthy_raw.yaml": "Healthy",
    "progressing.yaml": "Progressing",
    "degraded.yaml": "Degraded",
    "degraded_ocp.yaml": "Degraded",
    "crashloop_raw.yaml": "Degraded",
    "starting_raw.yaml": "Progressing",
    # LLMInferenceService statuses (fixtures/llmisvc_*.yaml, synthesized from KServe's
    # v1alpha2 status schema and its controller's condition types and reasons)
    "llmisvc_ready.yaml": "Healthy",
    "llmisvc_starting.yaml": "Progressing",
    "llmisvc_config_error.yaml": "Degraded",
    "llmisvc_stopped.yaml": "Suspended",
}


def sample(name: str) -> dict[str, Any]:
    path = LOCAL / name if (LOCAL / name).exists() else SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not checked out")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def run_lua(obj: Mapping[str, Any]) -> dict[str, str]:
    from lupa.lua51 import LuaRuntime

    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(health_lua())
    return {"status": str(result["status"]), "message": str(result["message"])}


def test_every_shared_sample_is_covered() -> None:
    if SHARED.is_dir():
        assert {p.name for p in SHARED.glob("*.yaml")} <= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_python_readiness_on_real_statuses(name: str) -> None:
    health = isvc_health(sample(name))
    assert health.status == EXPECTED[name], health.message
    assert health.ready is (EXPECTED[name] == "Healthy")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lua_health_check_agrees_with_python(name: str) -> None:
    obj = sample(name)
    lua = run_lua(obj)
    py = isvc_health(obj)
    assert lua["status"] == EXPECTED[name]
    assert lua == {"status": py.status, "message": py.message}


def test_crashloop_is_degraded_with_the_reason() -> None:
    health = isvc_health(sample("crashloop_raw.yaml"))
    assert health.message.startswith("model BlockedByFailedLoad; ModelLoadFailed: ValueError: LoRA rank 64")
    assert "PredictorReady is False (MinimumReplicasUnavailable)" in health.message


def test_degraded_message_names_the_failed_revision() -> None:
    assert "RevisionFailed" in isvc_health(sample("degraded.yaml")).message


def test_stopped_and_missing_status() -> None:
    stopped = {"status": {"conditions": [{"type": "Stopped", "status": "True"},
                                         {"type": "Ready", "status": "False"}]}}
    assert isvc_health(stopped).status == "Suspended" == run_lua(stopped)["status"]
    assert isvc_health({}).status == "Progressing" == run_lua({"metadata": {}})["status"]


# ---------------------------------------------------------------- wait_ready


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


class Source_:
    """InferenceServices that change over (fake) time: name -> [(from_time, object or exception)]."""

    def __init__(self, clock: Clock, timeline: dict[str, list[tuple[float, Any]]]) -> None:
        self.clock, self.timeline, self.calls = clock, timeline, 0

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        self.calls += 1
        current = [v for t, v in self.timeline[name] if t <= self.clock.now][-1]
        if isinstance(current, Exception):
            raise current
        return current  # type: ignore[no-any-return]


def svc(name: str) -> ServiceExpectation:
    return ServiceExpectation(tenant="t", namespace="ns", name=name, endpoint="http://x", base="b",
                              source=Source(file="catalog/tenants/t.yaml", line=3, col=1))


def test_waits_until_ready() -> None:
    clock = Clock()
    src = Source_(clock, {"a": [(0, NotFound("ns/a")), (10, sample("progressing.yaml")),
                                (40, sample("healthy_raw.yaml"))]})
    done = wait_ready(src, [svc("a")], "dev", timeout_s=300, poll_s=5, clock=clock, sleep=clock.sleep)
    r = done["ns/a"]
    assert r.record.status is Status.PASS and r.health.ready
    assert 40 <= r.record.details["waited_s"] < 50


def test_deadline_reports_the_last_state() -> None:
    clock = Clock()
    src = Source_(clock, {"a": [(0, sample("progressing.yaml"))], "b": [(0, sample("healthy.yaml"))]})
    done = wait_ready(src, [svc("a"), svc("b")], "dev", timeout_s=60, poll_s=5, clock=clock,
                      sleep=clock.sleep)
    assert done["ns/b"].record.status is Status.PASS
    fail = done["ns/a"].record
    assert fail.status is Status.FAIL
    (f,) = fail.findings
    assert f.rule_id == "conform.readiness" and "is Progressing" in f.message
    assert f.expected == "Ready within 60s" and str(f.location) == "catalog/tenants/t.yaml:3:1"
    assert f.resource is not None and f.resource.kind == "InferenceService"
    assert 60 <= clock.now < 70


def test_degraded_fails_after_the_grace_period_not_the_deadline() -> None:
    clock = Clock()
    src = Source_(clock, {"a": [(0, sample("crashloop_raw.yaml"))]})
    done = wait_ready(src, [svc("a")], "dev", timeout_s=900, poll_s=5, degraded_grace_s=30,
                      clock=clock, sleep=clock.sleep)
    assert done["ns/a"].record.status is Status.FAIL
    assert "Degraded: model BlockedByFailedLoad" in done["ns/a"].record.findings[0].message
    assert 30 <= clock.now < 40


def test_transient_degraded_recovers() -> None:
    clock = Clock()
    src = Source_(clock, {"a": [(0, sample("degraded.yaml")), (15, sample("healthy.yaml"))]})
    done = wait_ready(src, [svc("a")], "dev", timeout_s=900, poll_s=5, degraded_grace_s=60,
                      clock=clock, sleep=clock.sleep)
    assert done["ns/a"].record.status is Status.PASS


def test_forbidden_could_not_run() -> None:
    clock = Clock()
    src = Source_(clock, {"a": [(0, Forbidden("403 Forbidden"))]})
    done = wait_ready(src, [svc("a")], "dev", timeout_s=900, clock=clock, sleep=clock.sleep)
    assert done["ns/a"].record.status is Status.ERROR
    assert src.calls == 1


class _LlmSource:
    """Serves one LLMInferenceService status through ``get_kind``, as the cluster would."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.asked: list[tuple[str, str, str]] = []

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        raise AssertionError("an LLMInferenceService is not read as an InferenceService")

    def get_kind(self, kind: str, namespace: str, name: str) -> Mapping[str, Any]:
        self.asked.append((kind, namespace, name))
        return self.obj


def test_llm_inference_service_ready_with_its_gateway_url() -> None:
    svc = ServiceExpectation(tenant="support", namespace="support", name="tiny-llama",
                             endpoint="https://tiny-llama-kserve-workload-svc.support.svc.cluster.local:8000",
                             base="tiny-llama", kind="LLMInferenceService", source=Source())
    source = _LlmSource(sample("llmisvc_ready.yaml"))
    done = wait_ready(source, [svc], "dev", timeout_s=5, poll_s=0.01)
    assert source.asked == [("LLMInferenceService", "support", "tiny-llama")]
    r = done["support/tiny-llama"]
    assert r.record.status is Status.PASS
    assert r.url == "http://openshift-ai-inference.openshift-ingress.svc.cluster.local/support/tiny-llama"
    assert r.record.findings == []


def test_llm_inference_service_config_error_fails_with_the_reason() -> None:
    health = isvc_health(sample("llmisvc_config_error.yaml"))
    assert health.status == "Degraded"
    assert "CombineBaseError" in health.message and "kitchen-base" in health.message
