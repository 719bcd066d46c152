"""``kitchen diff`` names every rendered object that changes, not only what is served:
objects added and removed, and each changed field with its old and new value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.conftest import edit_once as _edit


def _diff(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["diff", "--root", str(repo), *args]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out


def test_a_changed_rolebinding_subject(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "catalog/tenants/customer-support.yaml", "admin: [cs-platform-admins]", "admin: [everyone]")
    assert _diff(repo, capsys).splitlines() == [
        "no serving changes against HEAD",
        "dev: RoleBinding cs-llm/kitchen-admin (rbac.authorization.k8s.io/v1) changed",
        '    subjects[0].name: "cs-platform-admins" → "everyone"',
        "prod: RoleBinding cs-llm/kitchen-admin (rbac.authorization.k8s.io/v1) changed",
        '    subjects[0].name: "cs-platform-admins" → "everyone"',
        "staging: RoleBinding cs-llm/kitchen-admin (rbac.authorization.k8s.io/v1) changed",
        '    subjects[0].name: "cs-platform-admins" → "everyone"',
        "3 rendered object(s) change against HEAD in dev, prod, staging",
    ]


def test_a_template_that_opens_egress(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "templates/networkpolicy.yaml.j2", "{%- if rule.peers %}\n      to:",
          '{%- if rule.peers %}\n      to:\n        - ipBlock:\n            cidr: "0.0.0.0/0"')
    out = _diff(repo, capsys).splitlines()
    assert out[0] == "no serving changes against HEAD"
    assert out[1:3] == [
        "dev: NetworkPolicy cs-llm/allow-dns-and-storage-egress (networking.k8s.io/v1) changed",
        '    spec.egress[1].to[0]: (absent) → {"ipBlock": {"cidr": "0.0.0.0/0"}}',
    ]
    # every tenant namespace of every environment: dev and staging 4, prod 3
    assert out[-1] == "11 rendered object(s) change against HEAD in dev, prod, staging"


def test_an_alert_that_waits_longer(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "templates/prometheusrule-groups.yaml.j2", 'for: {{ r["for"] | tojson }}',
          'for: {{ ("24h" if r.alert == "KitchenTTFTAboveSLO" else r["for"]) | tojson }}')
    out = _diff(repo, capsys, "--format", "markdown")
    assert out.startswith("### kitchen: no serving changes against `HEAD`\n\n#### Rendered objects: 11 changed\n")
    assert ('| `PrometheusRule cs-llm/kitchen-vllm (monitoring.coreos.com/v1)` | changed | '
            '`spec.groups[1].rules[0].for`: `"10m"` → `"24h"` |') in out
    assert "kitchen-gitops.io/sources" not in out


def test_a_template_that_adds_an_object(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A template writes a List (kustomize applies its items): the ServiceAccount it stood
    for is unchanged, the ClusterRoleBinding beside it is added."""
    (repo / "templates/serviceaccount.yaml.j2").write_text(
        '{%- import "_macros.j2" as m -%}\n'
        "{{ m.header(sources) }}\n"
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "  - apiVersion: v1\n"
        "    kind: ServiceAccount\n"
        "{{ m.metadata(meta, indent=4) }}\n"
        "    secrets:\n"
        "      - name: {{ secret | tojson }}\n"
        "  - apiVersion: rbac.authorization.k8s.io/v1\n"
        "    kind: ClusterRoleBinding\n"
        "    metadata:\n"
        '      name: {{ (meta.namespace ~ "-storage") | tojson }}\n'
        "    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        "    subjects: [{kind: ServiceAccount, name: kitchen-storage, namespace: {{ meta.namespace | tojson }}}]\n")
    out = _diff(repo, capsys).splitlines()
    assert [line for line in out if line.startswith("dev:")] == [
        f"dev: ClusterRoleBinding {ns}-storage (rbac.authorization.k8s.io/v1) added"
        for ns in ("cs-llm", "legal-ai", "mkt-sentiment", "platform-eng")]
    assert "ServiceAccount" not in "\n".join(out)


def test_a_kustomization_that_pulls_in_a_remote_base(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "templates/kustomization.yaml.j2", "resources:\n",
          'resources:\n  - "https://github.com/example/manifests//base?ref=main"\n')
    out = _diff(repo, capsys, "--format", "json")
    objects = json.loads(out)["info"]["diff"]["objects"]
    assert objects == [{
        "environment": env, "api_version": "", "kind": "", "namespace": "", "name": "",
        "path": "kustomization.yaml", "change": "changed", "more_fields": 0,
        "fields": [{"path": "resources[0]", "old": None,
                    "new": '"https://github.com/example/manifests//base?ref=main"'}],
    } for env in ("dev", "prod", "staging")]


def test_an_application_pointed_at_a_branch(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "environments/prod.yaml", "  target_revision: main\n", "  target_revision: my-branch\n")
    assert _diff(repo, capsys).splitlines() == [
        "no serving changes against HEAD",
        "prod: Application openshift-gitops/kitchen-prod (argoproj.io/v1alpha1) changed",
        '    spec.source.targetRevision: "main" → "my-branch"',
        "1 rendered object(s) change against HEAD in prod",
    ]


def test_formatting_and_comments_change_no_object(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reindented, requoted, reordered and commented: the same RoleBindings."""
    (repo / "templates/rolebinding.yaml.j2").write_text(
        '{%- import "_macros.j2" as m -%}\n'
        "{{ m.header(sources) }}\n"
        "# who may do what in this namespace\n"
        "kind:     'RoleBinding'\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "subjects:\n"
        "{%- for group in groups %}\n"
        "- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: {{ group | tojson }}}  # a group\n"
        "{%- endfor %}\n"
        "roleRef: {name: {{ role | tojson }}, kind: ClusterRole, apiGroup: 'rbac.authorization.k8s.io'}\n"
        "{{ m.metadata(meta) }}\n")
    assert _diff(repo, capsys) == "no serving changes against HEAD\nno rendered object changes against HEAD\n"


def test_serving_summary_first_then_the_objects(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "catalog/tenants/customer-support.yaml", "    replicas: 2\n", "    replicas: 3\n")
    out = _diff(repo, capsys).splitlines()
    assert out[:5] == [
        "prod: cs-llm/llama-3-1-8b-instruct changed",
        "    replicas 2 → 3",
        "    GPUs 2 → 3",
        "1 InferenceService(s) change against HEAD in prod",
        "prod: InferenceService cs-llm/llama-3-1-8b-instruct (serving.kserve.io/v1beta1) changed",
    ]
    assert out[5:7] == ["    spec.predictor.maxReplicas: 2 → 3", "    spec.predictor.minReplicas: 2 → 3"]
    assert out[-1].endswith(" rendered object(s) change against HEAD in prod")


HOSTILE = "x\\n::error file=a.py::forged\\u2028| <img src=x> @org/team ``"


def _hostile_subject(repo: Path) -> None:
    """A template that renders a subject name with a line break, a workflow command, a
    Unicode line separator and Markdown, under a key that is itself a workflow command."""
    _edit(repo / "templates/rolebinding.yaml.j2", "    name: {{ group | tojson }}",
          f'    name: "{HOSTILE}"\n    "::warning::key\\n##[error]x": 1')


def test_hostile_values_stay_on_their_line_in_text(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _hostile_subject(repo)
    out = _diff(repo, capsys).splitlines()
    i = out.index("dev: RoleBinding cs-llm/kitchen-admin (rbac.authorization.k8s.io/v1) changed")
    assert out[i + 1:i + 3] == [
        '    subjects[0]["::warning::key\\n##[error]x"]: (absent) → 1',
        '    subjects[0].name: "cs-platform-admins" → "x\\n::error file=a.py::forged\\u2028| <img src=x> @org/team ``"',
    ]
    assert not [line for line in out if line.lstrip().startswith("::")]


def test_hostile_values_stay_in_their_cell_in_markdown(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _hostile_subject(repo)
    out = _diff(repo, capsys, "--format", "markdown").splitlines()
    row = next(line for line in out if line.startswith("| `RoleBinding cs-llm/kitchen-admin"))
    # each value an inline code span that nothing inside can close (a fence longer than any
    # run of backticks in it), so <img>, @org and | are text; (absent) is escaped prose
    assert row == (
        '| `RoleBinding cs-llm/kitchen-admin (rbac.authorization.k8s.io/v1)` | changed | '
        '`subjects[0]["::warning::key\\n##[error]x"]`: \\(absent\\) → `1`<br>'
        '`subjects[0].name`: `"cs-platform-admins"` → '
        '```"x\\n::error file=a.py::forged\\u2028\\| <img src=x> @org/team ``"``` |')
    assert not [line for line in out if line.lstrip().startswith(("::", "<", "@"))]


def test_hostile_values_run_no_workflow_command(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _hostile_subject(repo)
    out = _diff(repo, capsys, "--format", "github").splitlines()
    start, token = out[0].split("::stop-commands::")
    assert start == "" and len(token) > 40
    end = out.index(f"::{token}::")
    assert out[1] == "no serving changes against HEAD" and end == len(out) - 2
    assert not [line for line in out[1:end] if f"::{token}::" in line]
    assert out[-1].startswith("0 error(s)")
    # the same output gets the same token
    assert _diff(repo, capsys, "--format", "github").splitlines()[0] == out[0]
