"""The cluster refuses what the gate refuses.

The admission policies ``kitchen render`` writes to ``rendered/admission/<env>/`` are
evaluated, as the API server would evaluate them, with a real CEL engine (cel-expr-python,
the CEL reference implementation) on every object each case renders; the gate's verdicts
come from the Rego library on both engines (regorus and OPA) and from the built-in checks.

- the example catalog and the test catalogs are admitted whole;
- an acceptance folder marked ``admission: deny`` is denied on exactly the objects the gate
  refuses under a rule admission enforces, each denial naming the environment, the object
  and the gate's rule id;
- one marked ``ci-only`` (only the whole catalog tells) is denied on no object the gate admits;
- every generated object validates against the Kubernetes schemas (1.30 and the newest).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops import pipeline
from kitchen_gitops.admission import denial_rules
from kitchen_gitops.findings import Finding, Severity
from kitchen_gitops.policy.engines import Engine, OpaLibEngine, RegorusEngine
from kitchen_gitops.policy.gate import evaluate_policies, prepare
from kitchen_gitops.policy.inputs import build_inputs
from kitchen_gitops.policy.library import Library, load_library
from kitchen_gitops.render import drift_findings, unintended_findings
from kitchen_gitops.vllm_allow import allow_list, extra_args_findings
from tests.conftest import CASES, copy_catalog
from tests.policy.policy_cases import REPO, Case, build_repo, cases
from tests.support.admission_eval import KINDS, Denial, admit

RULES = frozenset(denial_rules())
ADMISSION_CASES = [c for c in cases() if c.admission]
Key = tuple[str, str, str, str]  # environment, kind, namespace, name


def _key(env: str, kind: str, namespace: str, name: str) -> Key:
    return (env, kind, namespace, name)


def _objects(outcome: pipeline.Outcome, env: str) -> list[dict[str, Any]]:
    return [o.manifest for f in outcome.rendered[env] for o in f.objects if isinstance(o.manifest, dict)]


def denials(outcome: pipeline.Outcome) -> list[tuple[str, Denial]]:
    """Every denial of the admission output over the rendered objects, per environment."""
    out = []
    for env in outcome.rendered:
        admission = [o.manifest for f in outcome.admission if f.path.startswith(f"{env}/") for o in f.objects]
        out += [(env, d) for d in admit(admission, _objects(outcome, env))]
    return out


def _builtin(outcome: pipeline.Outcome, library: Library) -> list[Finding]:
    found: list[Finding] = []
    allowed = allow_list(library.data)
    for env, files in outcome.rendered.items():
        found += drift_findings(outcome.plans[env], files)
        found += unintended_findings(env, files, library.data)
        found += extra_args_findings(outcome.catalog, outcome.plans[env], allowed)
    return found


def refused(outcome: pipeline.Outcome, findings: Iterable[Finding], rules: frozenset[str] | None) -> set[Key]:
    """The objects admission could judge that the gate refuses (under ``rules``; any rule: None).
    An extra_args entry outside the allow-list is on every serving object of its environment."""
    out: set[Key] = set()
    for f in findings:
        if f.severity != Severity.ERROR or (rules is not None and f.rule_id not in rules):
            continue
        if f.rule_id == "plan.vllm-arg-not-allowed":
            out |= {_key(f.environment, o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
                    for o in _objects(outcome, f.environment)
                    if o["kind"] in ("InferenceService", "LLMInferenceService")}
        elif f.resource is not None and f.resource.kind in KINDS:
            out.add(_key(f.environment, f.resource.kind, f.resource.namespace, f.resource.name))
    return out


@cache
def _engines(data_text: str) -> dict[str, Engine]:
    library = load_library(REPO / "policies", REPO)
    return {"regorus": prepare(library, RegorusEngine()), "opa": prepare(library, OpaLibEngine())}


def verdicts(root: Path, envs: list[str] | None) -> tuple[pipeline.Outcome, dict[str, list[Finding]]]:
    """The rendered case and the gate's findings on each engine (built-in checks included)."""
    outcome = pipeline.render(root, envs)
    assert outcome.ok, [str(f.message) for f in outcome.findings]
    library = load_library(root / "policies", root)
    data_text = (root / "policies" / "data.yaml").read_text(encoding="utf-8")
    if data_text != (REPO / "policies" / "data.yaml").read_text(encoding="utf-8"):
        engines = {"regorus": prepare(library, RegorusEngine()), "opa": prepare(library, OpaLibEngine())}
    else:
        engines = _engines(data_text)
    inputs = build_inputs(outcome.catalog, outcome.plans, outcome.rendered)
    builtin = _builtin(outcome, library)
    return outcome, {name: [*evaluate_policies(library, e, inputs, outcome.catalog.locate), *builtin]
                     for name, e in engines.items()}


def _message_names_what(env: str, d: Denial) -> None:
    assert d.message.startswith(f"[{env}] {d.rule}: {d.kind} {d.namespace}/{d.name} "), d.message
    assert d.rule in RULES, d


@pytest.mark.parametrize("case", ADMISSION_CASES, ids=[c.name for c in ADMISSION_CASES])
def test_admission_agrees_with_the_gate(case: Case, tmp_path: Path) -> None:
    root = build_repo(case, tmp_path / "repo")
    outcome, gate = verdicts(root, case.environments)
    found = denials(outcome)
    for env, d in found:
        _message_names_what(env, d)
    denied = {_key(env, d.kind, d.namespace, d.name) for env, d in found}
    for engine, findings in gate.items():
        if case.admission == "deny":
            assert denied, f"{case.name}: admission denies nothing"
            assert denied == refused(outcome, findings, RULES), f"{case.name} on {engine}"
        else:  # the gate alone can tell; admission never refuses what the gate admits
            assert denied <= refused(outcome, findings, None), f"{case.name} on {engine}"


def test_every_rule_admission_names_is_one_the_gate_reports() -> None:
    from kitchen_gitops.rules import REGISTRY

    library = load_library(REPO / "policies", REPO)
    assert {r.id for r in library.rules.values()} | set(REGISTRY) >= RULES


def test_every_case_of_an_enforced_rule_says_what_admission_does() -> None:
    unmarked = [c.name for c in cases() if c.rule in RULES and not c.admission]
    assert unmarked == []


@pytest.mark.parametrize("name", ["example", "versions", "llmisvc", "edge", "minimal"])
def test_the_catalogs_are_admitted_as_the_gate_admits_them(name: str, tmp_path: Path) -> None:
    """The example is admitted whole; the test catalogs, under the example's policies, are
    denied where the gate refuses them (edge: an S3 endpoint outside the cluster without
    egress_cidrs lets the storage egress reach any host on 443)."""
    root = REPO
    if name != "example":
        root = copy_catalog(CASES / name, tmp_path / name)
        shutil.copytree(REPO / "policies", root / "policies")
    outcome, gate = verdicts(root, None)
    denied = {_key(env, d.kind, d.namespace, d.name) for env, d in denials(outcome)}
    if name == "example":
        assert denied == set()
    for engine, findings in gate.items():
        assert denied == refused(outcome, findings, RULES), engine


def test_every_namespace_enforces_the_restricted_profile() -> None:
    outcome = pipeline.render(REPO)
    for env in outcome.rendered:
        namespaces = [o for o in _objects(outcome, env) if o["kind"] == "Namespace"]
        assert {o["metadata"]["name"] for o in namespaces} >= {"kitchen-conformance"}
        for ns in namespaces:
            labels = ns["metadata"]["labels"]
            assert {labels.get(f"pod-security.kubernetes.io/{m}") for m in ("enforce", "warn", "audit")} == \
                {"restricted"}, ns["metadata"]["name"]


# ---------------------------------------------------------------- the objects themselves


def _admission_documents(root: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted((root / "rendered" / "admission").rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc.get("apiVersion", "").startswith("admissionregistration"):
            docs.append(doc)
    return docs


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_the_policies_validate_against_the_kubernetes_schema(version: str) -> None:
    import kubernetes_validate

    docs = _admission_documents(REPO)
    assert {d["kind"] for d in docs} == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_binding_names_a_policy_and_an_environment() -> None:
    docs = _admission_documents(REPO)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert sorted(b["spec"]["policyName"] for b in bindings) == sorted(policies)
    for b in bindings:
        env = b["metadata"]["labels"]["kitchen-gitops.io/environment"]
        assert b["spec"]["matchResources"] == \
            {"namespaceSelector": {"matchLabels": {"kitchen-gitops.io/environment": env}}}
        assert b["spec"]["validationActions"] == ["Deny"]
        assert policies[b["spec"]["policyName"]]["spec"]["failurePolicy"] == "Fail"



# ---------------------------------------------------------------- hostile input


def test_an_environment_named_like_the_admission_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("catalog", "environments", "evaluations", "templates", "policies", "evidence"):
        shutil.copytree(REPO / part, root / part)
    text = (root / "environments" / "dev.yaml").read_text(encoding="utf-8")
    (root / "environments" / "admission.yaml").write_text(text.replace("name: dev\n", "name: admission\n", 1),
                                                           encoding="utf-8")
    outcome = pipeline.render(root)
    found = [f for f in outcome.findings if f.rule_id == "render.admission-folder"]
    assert [str(f.location) for f in found] == ["environments/admission.yaml:3:7"]
    assert not outcome.rendered and not outcome.admission


@pytest.mark.parametrize("text", ['a") || true || ("', "back\\slash", "line\nbreak", "'quote'", "ümlaut\u202e"])
def test_a_value_enters_an_expression_as_a_string_and_nothing_else(text: str) -> None:
    from kitchen_gitops.admission_cel import literal
    from tests.support.admission_eval import evaluate

    assert evaluate(f"{literal(text)} == object.v", {"object": {"v": text}}) is True
    assert evaluate(f"[{literal(text)}].exists(r, 'x'.startsWith(r))", {}) is False


def test_deny_and_warn_together_is_refused_at_its_line(tmp_path: Path) -> None:
    from kitchen_gitops.policy.errors import PolicyError

    shutil.copytree(REPO / "policies", tmp_path / "policies")
    data = tmp_path / "policies" / "data.yaml"
    data.write_text(data.read_text(encoding="utf-8").replace("admission_actions: [Deny]",
                                                             "admission_actions: [Deny, Warn]"), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_library(tmp_path / "policies", tmp_path)
    assert "admission_actions" in str(err.value) and "data.yaml:" in str(err.value)
