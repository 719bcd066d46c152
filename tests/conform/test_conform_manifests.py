"""The rendered conformance objects: hook Job, least-privilege RBAC, expectations ConfigMap,
Argo CD health check — schema-valid, traced to the catalog, and passing the policy gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from kitchen_gitops import pipeline
from kitchen_gitops.conform.expectations import parse_expectations
from kitchen_gitops.conform.objects import HEALTH_KEY, health_lua, sync_timeout_s
from tests.conftest import copy_catalog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    outcome = pipeline.render(REPO)
    assert outcome.ok
    return {f"{env}/{f.path}": {"content": f.content, "doc": yaml.safe_load(f.content), "file": f}
            for env, files in outcome.rendered.items() for f in files}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_job_is_a_postsync_hook_with_a_deadline(rendered: dict[str, Any], env: str) -> None:
    job = rendered[f"{env}/kitchen-conformance/job-kitchen-conformance.yaml"]["doc"]
    ann = job["metadata"]["annotations"]
    assert ann["argocd.argoproj.io/hook"] == "PostSync"
    assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    spec = job["spec"]
    cat = pipeline.plan(REPO, [env]).catalog.environments[env]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == cat.conformance.active_deadline_s
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "kitchen-conformance" and pod["restartPolicy"] == "Never"
    images = {c["image"] for c in pod["containers"]}
    assert images == {cat.images.kitchen} and "@sha256:" in cat.images.kitchen
    args = {c["name"]: c["args"] for c in pod["containers"]}
    assert args["serving"][:2] == ["conform", "serving"] and args["gpu"][:2] == ["conform", "gpu"]
    assert ("--token-file" in args["serving"]) is cat.serving.auth
    kus = rendered[f"{env}/kustomization.yaml"]["doc"]["resources"]
    assert "kitchen-conformance/job-kitchen-conformance.yaml" in kus
    assert not any(r.startswith("argocd/") for r in kus)


def test_roles_allow_only_reading_inferenceservices(rendered: dict[str, Any]) -> None:
    roles = [v["doc"] for k, v in rendered.items() if k.endswith("/role-kitchen-conformance.yaml")]
    assert roles
    for role in roles:
        assert role["rules"] == [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                                  "verbs": ["get", "list", "watch"]}]
    for env in ("dev", "staging", "prod"):
        plan = pipeline.plan(REPO, [env]).plans[env]
        namespaces = {s.namespace for s in plan.services}
        bound = {k.split("/")[1] for k in rendered if k.startswith(f"{env}/")
                 and k.endswith("/rolebinding-kitchen-conformance.yaml")}
        assert bound == namespaces
        for ns in namespaces:
            rb = rendered[f"{env}/{ns}/rolebinding-kitchen-conformance.yaml"]["doc"]
            assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "kitchen-conformance",
                                       "namespace": "kitchen-conformance"}]
            assert rb["roleRef"]["kind"] == "Role"


def test_configmap_holds_the_expectations(rendered: dict[str, Any]) -> None:
    cm = rendered["prod/kitchen-conformance/configmap-kitchen-conformance-expectations.yaml"]["doc"]
    exp = parse_expectations(cm["data"]["expectations.json"], "cm")
    assert exp.environment == "prod"
    flavors = {f.ref for s in exp.services for f in s.flavors}
    assert "faq-answerer@v3" in flavors


def test_objects_validate_against_kubernetes_schemas(rendered: dict[str, Any]) -> None:
    version = latest_version()
    checked = 0
    for path, v in rendered.items():
        if "conformance" in path or path.endswith("argocd/argocd-cm-health.yaml"):
            kubernetes_validate.validate(v["doc"], version, strict=True)
            checked += 1
    assert checked >= 3 * 5


def test_argocd_health_check_is_the_tested_lua(rendered: dict[str, Any]) -> None:
    cm = rendered["prod/argocd/argocd-cm-health.yaml"]["doc"]
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["metadata"]["namespace"] == "openshift-gitops"
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert cm["data"][HEALTH_KEY] == health_lua()
    text = rendered["prod/argocd/argocd-cm-health.yaml"]["content"]
    assert f"controller.sync.timeout.seconds >= {sync_timeout_s(1200, 2400)}" in text


def test_the_policy_gate_passes_the_rendered_conformance_objects() -> None:
    gate = pytest.importorskip("kitchen_gitops.policy.gate")
    from kitchen_gitops.cli import main

    rc = main(["check", "--root", str(REPO)])
    assert rc == 0, gate


def test_llm_inference_service_environment_reads_and_checks_its_own_kind(tmp_path: Path) -> None:
    """An environment on the LLMInferenceService API: the Job may read llminferenceservices
    (and nothing else), the expectations name the kind, Argo CD's check is keyed by it."""
    outcome = pipeline.render(copy_catalog(REPO / "tests/cases/llmisvc", tmp_path / "repo"))
    assert outcome.ok
    files = {f.path: yaml.safe_load(f.content) for f in outcome.rendered["dev"]}
    role = files["support/role-kitchen-conformance.yaml"]
    assert role["rules"] == [{"apiGroups": ["serving.kserve.io"], "resources": ["llminferenceservices"],
                              "verbs": ["get", "list", "watch"]}]
    exp = parse_expectations(
        files["kitchen-conformance/configmap-kitchen-conformance-expectations.yaml"]["data"]["expectations.json"], "cm")
    (svc,) = exp.services
    assert svc.kind == "LLMInferenceService"
    assert svc.endpoint == "https://tiny-llama-kserve-workload-svc.support.svc.cluster.local:8000"
    assert [f.name for f in svc.flavors] == ["faq-v1", "faq-v2"] and svc.aliases == {"faq": "faq-v1"}
    health = files["argocd/argocd-cm-health.yaml"]["data"]
    assert list(health) == ["resource.customizations.health.serving.kserve.io_LLMInferenceService"]
    assert health["resource.customizations.health.serving.kserve.io_LLMInferenceService"] == health_lua()
    assert not any(p.startswith("support/servingruntime") for p in files)
