"""Every rendered object validates against its schema.

KServe and Argo CD objects against the CRDs' OpenAPI v3 schemas in ../shared/schemas/
(made strict the way the API server's strict field validation is: no unknown fields
where the schema lists properties); core kinds against Kubernetes' own schemas
(kubernetes-validate, strict).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from kitchen_gitops import pipeline
from tests.conftest import CASES, REPO, copy_catalog, shared_path

SCHEMAS = shared_path("schemas")
CRD_FILES = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "ServingRuntime"): "kserve/serving.kserve.io_servingruntimes.yaml",
    ("serving.kserve.io", "LLMInferenceService"): "kserve/serving.kserve.io_llminferenceservices.yaml",
    ("argoproj.io", "Application"): "argocd/application-crd.yaml",
    ("argoproj.io", "ApplicationSet"): "argocd/applicationset-crd.yaml",
    ("monitoring.coreos.com", "PodMonitor"): "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com", "PrometheusRule"): "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
}
pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"CRD schemas not found at {SCHEMAS}")


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validator(group: str, kind: str, version: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((SCHEMAS / CRD_FILES[(group, kind)]).read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema = _strict(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
            return jsonschema.Draft7Validator(schema)
    raise AssertionError(f"{kind} {group}/{version} not in {CRD_FILES[(group, kind)]}")


@cache
def llm_model_validator(version: str) -> jsonschema.protocols.Validator:
    """An LLMInferenceService's ``spec.model`` schema (LLMModelSpec).  The CRD leaves
    ``spec.model.lora.adapters`` schemaless (the Go type is recursive: each adapter is an
    LLMModelSpec, pkg/apis/serving/v1alpha2/llm_inference_service_types.go), so the API
    server prunes nothing there and KServe's decoder rejects what the type lacks: each
    adapter is checked against the model's own schema, strictly."""
    crd = yaml.safe_load((SCHEMAS / CRD_FILES[("serving.kserve.io", "LLMInferenceService")]).read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            model = v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["model"]
            return jsonschema.Draft7Validator(_strict(copy.deepcopy(model)))
    raise AssertionError(f"LLMInferenceService {version} not in the CRD")


def validate_object(doc: dict[str, Any]) -> list[str]:
    group, _, version = doc["apiVersion"].rpartition("/")
    if (group, doc["kind"]) in CRD_FILES:
        v = crd_validator(group, doc["kind"], version)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]
        if doc["kind"] == "LLMInferenceService":
            adapters = ((doc.get("spec") or {}).get("model") or {}).get("lora", {}).get("adapters")
            if adapters is not None and not isinstance(adapters, list):
                errors.append("spec/model/lora/adapters: not a list")
            for i, adapter in enumerate(adapters or []):
                errors += [f"spec/model/lora/adapters/{i}/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                           for e in llm_model_validator(version).iter_errors(adapter)]
                if isinstance(adapter, dict) and not adapter.get("name"):
                    errors.append(f"spec/model/lora/adapters/{i}: an adapter needs a name")
        return errors
    if doc["kind"] == "Kustomization":
        return [] if isinstance(doc.get("resources"), list) else ["resources must be a list"]
    try:
        kubernetes_validate.validate(doc, latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc).splitlines()[0]]
    return []


def _rendered_docs(root: Path) -> list[tuple[str, dict[str, Any]]]:
    outcome = pipeline.render(root)
    assert outcome.ok, [f.format_text() for f in outcome.findings]
    docs = []
    for env, files in outcome.rendered.items():
        for f in files:
            for doc in yaml.safe_load_all(f.content):
                if doc:
                    docs.append((f"{env}/{f.path}", doc))
    return docs


@pytest.mark.parametrize("catalog", ["example", "minimal", "edge", "versions", "llmisvc"])
def test_rendered_objects_validate(catalog: str, tmp_path: Path) -> None:
    src = REPO if catalog == "example" else CASES / catalog
    root = copy_catalog(src, tmp_path / "repo")
    docs = _rendered_docs(root)
    kinds = {d["kind"] for _, d in docs}
    serving = ({"LLMInferenceService"} if catalog == "llmisvc" else {"InferenceService", "ServingRuntime"})
    assert serving | {"Application", "Namespace", "NetworkPolicy",
                      "ResourceQuota", "RoleBinding", "ServiceAccount", "PodMonitor", "PrometheusRule"} <= kinds
    problems = {path: errs for path, doc in docs if (errs := validate_object(doc))}
    assert problems == {}


def test_validation_catches_a_misspelt_field() -> None:
    """The strict CRD check is not vacuous: an unknown field in the predictor fails."""
    doc = yaml.safe_load((REPO / "rendered/prod/cs-llm/inferenceservice-llama-3-1-8b-instruct.yaml").read_text())
    assert validate_object(doc) == []
    doc["spec"]["predictor"]["storageUris"][0]["mountpath"] = "/x"
    assert any("mountpath" in e for e in validate_object(doc))
    monitor = yaml.safe_load((REPO / "rendered/prod/cs-llm/podmonitor-llama-3-1-8b-instruct.yaml").read_text())
    assert validate_object(monitor) == []
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"
    assert any("intervall" in e for e in validate_object(monitor))
    core = yaml.safe_load((REPO / "rendered/prod/cs-llm/resourcequota-gpu.yaml").read_text())
    core["spec"]["hard_limits"] = {}
    assert validate_object(core)


def test_llm_inference_service_validation_is_strict(tmp_path: Path) -> None:
    """The rendered LLMInferenceService is valid against the v1alpha2 CRD, and a misspelt
    field anywhere in it fails: in the spec, in the workload container, in an adapter."""
    root = copy_catalog(CASES / "llmisvc", tmp_path / "repo")
    doc = next(d for _, d in _rendered_docs(root) if d["kind"] == "LLMInferenceService")
    assert doc["apiVersion"] == "serving.kserve.io/v1alpha2"
    assert validate_object(doc) == []
    for path, key in ((("spec",), "replica"), (("spec", "model", "lora"), "maxRanks"),
                      (("spec", "template", "containers", 0), "argz"),
                      (("spec", "model", "lora", "adapters", 0), "url"),
                      (("spec", "router", "scheduler", "config"), "inlined")):
        broken = copy.deepcopy(doc)
        node: Any = broken
        for p in path:
            node = node[p]
        node[key] = 1
        assert any(key in e for e in validate_object(broken)), (path, key)
    nameless = copy.deepcopy(doc)
    del nameless["spec"]["model"]["lora"]["adapters"][0]["name"]
    assert validate_object(nameless) == ["spec/model/lora/adapters/0: an adapter needs a name"]
