"""The closed world: what the templates render is exactly what kitchen intends.

Every catalog of the tests renders with no difference from the intended objects; and a
template mutated as a hostile or careless author would — a field inserted after every key
at every level, a second document, another kind — fails the gate at the mutated line,
unless the field is a customisation point of ``policies/data.yaml``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.cli import main
from kitchen_gitops.closed_world import FIELD_RULE, OBJECT_RULE, check_points, diff_paths, points, reserved, same
from kitchen_gitops.errors import ConfigError
from kitchen_gitops.policy.library import load_policy_data
from kitchen_gitops.render import render_environment, unintended_findings
from kitchen_gitops.sandbox import _environment
from tests.conftest import CASES, REPO, copy_catalog

BASES = ["minimal", "edge", "versions", "llmisvc", *sorted(p.name for p in CASES.glob("vllm-*"))]
TEMPLATES = sorted(p.name for p in (REPO / "templates").glob("*.j2"))
DATA = load_policy_data(REPO)
Planned = tuple[Path, dict[str, pipeline.Outcome]]


@pytest.mark.parametrize("case", ["example", *BASES])
def test_every_catalog_renders_exactly_the_intended_objects(case: str, tmp_path: Path) -> None:
    root = copy_catalog(REPO if case == "example" else CASES / case, tmp_path / case)
    outcome = pipeline.render(root)
    assert outcome.ok, [str(f.location) for f in outcome.findings]
    differing = [(env, f.path, o.differences[:2]) for env, files in outcome.rendered.items()
                 for f in files for o in f.objects if o.differences]
    assert differing == []
    assert sum(len(files) for files in outcome.rendered.values()) > 10


def test_types_count_true_is_not_one() -> None:
    assert not same({"a": True}, {"a": 1})
    assert not same([1.0], [1])
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert diff_paths({"a": True, "x": 1}, {"a": 1, "y": 2}) == [
        ("changed", ("a",), True, 1), ("added", ("x",), 1, None), ("missing", ("y",), None, 2)]


# ---------------------------------------------------------------- mutations


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, pipeline.Outcome]]]:
    """The example (InferenceService) and the llmisvc case (LLMInferenceService), planned once."""
    base = tmp_path_factory.mktemp("mutations")
    roots = {"example": copy_catalog(REPO, base / "example"), "llmisvc": copy_catalog(CASES / "llmisvc", base / "llm")}
    outcomes = {name: pipeline.plan(root) for name, root in roots.items()}
    assert all(o.ok for o in outcomes.values())
    yield base, outcomes
    _environment.cache_clear()


def _gate(base: Path, outcomes: dict[str, pipeline.Outcome], templates: dict[str, str]) -> tuple[list[str], str]:
    """Render every environment of both catalogs with ``templates`` (name → text): the
    closed-world findings (``file:line rule``) and all the rendered text."""
    folder = base / f"templates-{len(list(base.glob('templates-*')))}" / "templates"
    folder.mkdir(parents=True)
    for name, text in templates.items():
        (folder / name).write_text(text, encoding="utf-8")
    _environment.cache_clear()
    found: list[str] = []
    texts: list[str] = []
    for outcome in outcomes.values():
        for env, plan in outcome.plans.items():
            files = render_environment(outcome.catalog, plan, folder, pipeline.contributions())
            texts += [f.content for f in files]
            found += [f"{f.location.file}:{f.location.line} {f.rule_id}" for f in unintended_findings(env, files, DATA)]
    shutil.rmtree(folder.parent)
    return found, "\n".join(texts)


def _originals() -> dict[str, str]:
    return {name: (REPO / "templates" / name).read_text(encoding="utf-8") for name in TEMPLATES}


_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<dash>- )?(?P<key>[A-Za-z{][^:#]*):(?P<rest>.*)$")


def _insertions(text: str) -> Iterator[tuple[int, str]]:
    """(line number of the inserted line, mutated text): a field inserted after each key
    line, as its sibling and, where the key opens a block, as its child."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _KEY_LINE.match(line)
        if not m or line.lstrip().startswith(("{%", "{#")):
            continue
        indent = len(m["indent"]) + (2 if m["dash"] else 0)
        shapes = [indent]
        if not m["rest"].strip():
            shapes.append(indent + 2)
        for pad in shapes:
            mutated = [*lines[: i + 1], " " * pad + "kitchenMutant: smuggled", *lines[i + 1:]]
            yield i + 2, "\n".join(mutated)


@pytest.mark.parametrize("template", [t for t in TEMPLATES if t != "_macros.j2"])
def test_a_field_inserted_anywhere_fails_the_gate_at_its_line(template: str, planned: Planned) -> None:
    base, outcomes = planned
    tried = caught = 0
    for line, text in _insertions(_originals()[template]):
        try:
            found, rendered = _gate(base, outcomes, {**_originals(), template: text})
        except ConfigError:  # no longer YAML: the gate stops with exit 2, which fails it too
            caught += 1
            tried += 1
            continue
        if "kitchenMutant" not in rendered:
            continue  # a branch no catalog takes
        tried += 1
        shown = "templates/prometheusrule.yaml.j2" if template == "prometheusrule-groups.yaml.j2" \
            else f"templates/{template}"
        ours = [f for f in found if f.startswith(f"{shown}:") and f.endswith((FIELD_RULE, OBJECT_RULE))]
        assert ours, (line, found[:3])
        if template != "prometheusrule-groups.yaml.j2":
            assert any(f.startswith(f"{shown}:{line} ") for f in found), (line, sorted(set(found))[:5])
        caught += 1
    assert tried == caught and tried > 0


@pytest.mark.parametrize("template", [t for t in TEMPLATES if t not in ("_macros.j2", "prometheusrule-groups.yaml.j2")])
def test_a_second_document_or_another_kind_fails_the_gate(template: str, planned: Planned) -> None:
    base, outcomes = planned
    original = _originals()[template]
    smuggled = original.rstrip("\n") + "\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: smuggled\n"
    found, rendered = _gate(base, outcomes, {**_originals(), template: smuggled})
    if "smuggled" in rendered:
        line = smuggled.split("\n").index("apiVersion: v1", len(original.rstrip("\n").split("\n"))) + 1
        assert f"templates/{template}:{line} {OBJECT_RULE}" in found
    kind = re.search(r"^kind: (\w+)$", original, re.M)
    assert kind is not None
    other = original.replace(kind.group(0), "kind: Pod")
    found, rendered = _gate(base, outcomes, {**_originals(), template: other})
    if "kind: Pod" in rendered:
        line = original[: kind.start()].count("\n") + 1
        assert f"templates/{template}:{line} {OBJECT_RULE}" in found


def test_customisation_points_pass_and_reserved_keys_do_not(planned: Planned) -> None:
    base, outcomes = planned
    macros = _originals()["_macros.j2"]
    anchor = "{{ pad }}  labels:\n"
    assert anchor in macros
    ours = macros.replace(anchor, anchor + '{{ pad }}    kitchen.example.com/cost-center: "ml-42"\n')
    found, rendered = _gate(base, outcomes, {**_originals(), "_macros.j2": ours})
    assert "kitchen.example.com/cost-center" in rendered and found == []
    for key in ("pod-security.kubernetes.io/enforce-version", "sidecar.istio.io/inject", "other.example.org/x"):
        theirs = macros.replace(anchor, anchor + f'{{{{ pad }}}}    {key}: "privileged"\n')
        found, _ = _gate(base, outcomes, {**_originals(), "_macros.j2": theirs})
        assert found and all(f.endswith(FIELD_RULE) for f in found), key
    isvc = _originals()["inferenceservice.yaml.j2"]
    anchor = "    serviceAccountName: {{ service_account | tojson }}\n"
    for value, ok in (("kitchen-inference-critical", True), ("system-node-critical", False)):
        text = isvc.replace(anchor, anchor + f"    priorityClassName: {value}\n")
        found, _ = _gate(base, outcomes, {**_originals(), "inferenceservice.yaml.j2": text})
        assert (found == []) is ok, (value, found[:2])


def test_reserved_prefixes_hold_whatever_the_data_lists() -> None:
    for key in ("kitchen-gitops.io/tenant", "serving.kserve.io/deploymentMode", "argocd.argoproj.io/sync-wave",
                "pod-security.kubernetes.io/enforce", "sidecar.istio.io/inject", "networking.knative.dev/x",
                "security.openshift.io/scc", "app.kubernetes.io/name", "kubernetes.io/metadata.name"):
        assert reserved(key), key
    assert not reserved("kitchen.example.com/team")
    wide = points({"customisation_points": [{"path": "metadata.labels", "keys": ["*"], "value": "label"}]})
    assert not wide[0].allows(("metadata", "labels", "pod-security.kubernetes.io/enforce"), "privileged")
    assert wide[0].allows(("metadata", "labels", "team"), "ml")
    assert not wide[0].allows(("metadata", "labels", "team"), "two words")


@pytest.mark.parametrize(("points_data", "where", "expected"), [
    ([{"path": "metadata.labels", "keys": ["team"], "colour": "red"}], (0, "colour"), "one of"),
    ([{"path": "metadata.labels", "keys": ["team"], "values": ["a"]}], (0,), "either keys"),
    ([{"path": "metadata.labels", "keys": ["pod-security.kubernetes.io/*"]}], (0, "keys"), "reserved"),
    ([{"path": "spec..x", "values": ["a"]}], (0, "path"), "field path"),
    ([{"path": "metadata.labels", "keys": ["team"], "value": "anything"}], (0, "value"), "label, text"),
    ([{"path": "spec.x", "values": [1.5]}], (0, "values"), "strings, numbers or booleans"),
])
def test_customisation_point_data_is_checked(points_data: list[object], where: tuple[object, ...],
                                             expected: str) -> None:
    problem = check_points(points_data)
    assert problem is not None and problem[0] == where and expected in problem[1]


def test_a_bad_customisation_point_is_exit_2_at_its_line(example_repo: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = example_repo / "policies" / "data.yaml"
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace('keys: ["kitchen.example.com/*", team, cost-center]',
                                 'keys: ["argocd.argoproj.io/*"]'), encoding="utf-8")
    lines = data.read_text(encoding="utf-8").split("\n")
    line = next(i for i, text in enumerate(lines, 1) if "argocd.argoproj.io/*" in text)
    assert main(["check", "--root", str(example_repo)]) == 2
    err = capsys.readouterr().err
    assert f"policies/data.yaml:{line}:" in err and "reserved prefix" in err



def test_a_key_twice_in_a_rendered_mapping_stops_the_gate(planned: Planned) -> None:
    """PyYAML keeps the last copy, other readers refuse the document: what a check read
    could differ from what is applied, so the gate stops at the template (exit 2)."""
    base, outcomes = planned
    isvc = _originals()["inferenceservice.yaml.j2"]
    anchor = "    minReplicas: {{ replicas }}\n"
    for text in (isvc.replace(anchor, "    minReplicas: 0\n" + anchor),
                 isvc.replace("kind: InferenceService\n", "kind: InferenceService\nkind: InferenceService\n")):
        with pytest.raises(ConfigError, match="appears twice"):
            _gate(base, outcomes, {**_originals(), "inferenceservice.yaml.j2": text})
    kustomization = _originals()["kustomization.yaml.j2"]
    with pytest.raises(ConfigError, match="appears twice"):
        _gate(base, outcomes, {**_originals(), "kustomization.yaml.j2": kustomization.replace(
            "kind: Kustomization\n", "kind: Kustomization\nresources: []\n")})


def _one_base(tenant: str) -> str:
    """One GPU of quota in dev and a flavor of one base: the example's dev cluster is full."""
    lines = [line for line in tenant.split("\n") if "helpdesk-classifier" not in line]
    return "\n".join(lines).replace("gpu_quota: 2", "gpu_quota: 1")


def test_legitimate_changes_keep_passing_the_gate(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new tenant, and the documented customisations (the organisation's own labels and
    annotations on every object, an allowed priority class), pass ``kitchen check``."""
    tenants = example_repo / "catalog" / "tenants"
    text = (tenants / "platform-eng.yaml").read_text(encoding="utf-8")
    text = text.replace("name: platform-eng\n", "name: search-eng\nnamespace: search-eng\n", 1)
    staging = text.index("  staging:")
    (tenants / "search-eng.yaml").write_text(_one_base(text[:staging]), encoding="utf-8")
    templates = example_repo / "templates"
    macros = (templates / "_macros.j2").read_text(encoding="utf-8")
    macros = macros.replace("{{ pad }}  labels:\n", '{{ pad }}  labels:\n{{ pad }}    team: "ml-platform"\n')
    macros = macros.replace("{%- if m.annotations %}\n{{ pad }}  annotations:\n",
                            '{{ pad }}  annotations:\n{{ pad }}    kitchen.example.com/owner: "ml platform"\n'
                            "{%- if m.annotations %}\n")
    (templates / "_macros.j2").write_text(macros, encoding="utf-8")
    isvc = (templates / "inferenceservice.yaml.j2").read_text(encoding="utf-8")
    anchor = "    serviceAccountName: {{ service_account | tojson }}\n"
    (templates / "inferenceservice.yaml.j2").write_text(
        isvc.replace(anchor, anchor + "    priorityClassName: kitchen-inference-standard\n"), encoding="utf-8")
    assert main(["render", "--root", str(example_repo)]) == 0
    capsys.readouterr()
    assert main(["check", "--root", str(example_repo)]) == 0, capsys.readouterr().out
    rendered = (example_repo / "rendered" / "dev" / "search-eng" / "namespace.yaml").read_text(encoding="utf-8")
    assert 'team: "ml-platform"' in rendered and "kitchen.example.com/owner" in rendered
