"""Every command that reports findings or check results, in every format: the exit code is
the same whatever the format, and every finding's environment and objects survive into
JSON and SARIF (SARIF validated against the 2.1.0 schema)."""

from __future__ import annotations

import json
import shutil
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.report import REPORTERS
from tests.conftest import CASES, copy_catalog
from tests.policy.test_policy_cases import sarif_validator

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "tests" / "golden" / "lock" / "odd-formatting" / "input"
FORMATS = [f for f in REPORTERS if f != "auto"]


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, (rel, old)
    path.write_text(text.replace(old, new))


def _example(tmp: Path) -> Path:
    return copy_catalog(REPO, tmp / "repo")


def _validate(tmp: Path) -> list[str]:
    root = copy_catalog(CASES / "minimal", tmp / "repo")
    shutil.copytree(CASES / "load" / "many-at-once" / "catalog", root / "catalog", dirs_exist_ok=True)
    return ["validate", "--root", str(root)]


def _render_check(tmp: Path) -> list[str]:
    root = _example(tmp)
    _edit(root, "catalog/flavors/ticket-router@v1-2.yaml", "rank: 8\n", "rank: 48\n")
    return ["render", "--check", "--root", str(root)]


def _check(tmp: Path) -> list[str]:
    root = _example(tmp)
    _edit(root, "catalog/flavors/faq-answerer@v3.yaml", "s3://lora/faq-answerer/v3/", "s3://lora/faq-answerer/v2/")
    return ["check", "--root", str(root), "--no-render-check"]


def _diff(tmp: Path) -> list[str]:
    # the plan does not fit prod's GPUs: a finding of the plan, with its environment and service
    root = _example(tmp)
    _edit(root, "environments/prod.yaml", "memory_gib: 80", "memory_gib: 1")
    return ["diff", "--root", str(root)]


def _mirror(tmp: Path) -> Path:
    from tests.artifacts.test_artifacts_lock import MIRROR_FILES

    mirror = tmp / "mirror"
    for rel, data in MIRROR_FILES.items():
        if rel.endswith("tokenizer.json"):
            continue  # missing from storage
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).write_bytes(data)
    return mirror


def _verify(tmp: Path) -> list[str]:
    shutil.copytree(LOCK, tmp / "repo")
    return ["artifacts", "verify", "--root", str(tmp / "repo"), "--pvc-mirror", str(_mirror(tmp))]


def _lock_check(tmp: Path) -> list[str]:
    shutil.copytree(LOCK, tmp / "repo")
    return ["artifacts", "lock", "--check", "--root", str(tmp / "repo"), "--pvc-mirror", str(_mirror(tmp))]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conform_serving(tmp: Path) -> list[str]:
    root = copy_catalog(CASES / "minimal", tmp / "repo")
    return ["conform", "serving", "--catalog", str(root), "--env", "dev", "--no-readiness",
            "--endpoint", f"http://127.0.0.1:{_closed_port()}"]


def _conform_gpu(tmp: Path) -> list[str]:
    root = copy_catalog(CASES / "minimal", tmp / "repo")
    return ["conform", "gpu", "--catalog", str(root), "--env", "dev", "--no-workload"]


def _policy_test(tmp: Path) -> list[str]:
    """One rule and its tests beside the library (the reports' formats do not depend on the
    library's size; tests/policy/test_policy_reports.py runs the whole library's tests)."""
    root = _example(tmp)
    policies = root / "policies"
    shutil.rmtree(policies, ignore_errors=True)
    shutil.copytree(REPO / "policies/lib", policies / "lib")
    shutil.copy(REPO / "policies/data.yaml", policies / "data.yaml")
    (policies / "rules").mkdir()
    for name in ("lora_rank.rego", "lora_rank_test.rego"):
        shutil.copy(REPO / "policies/rules" / name, policies / "rules" / name)
    _edit(root, "policies/rules/lora_rank_test.rego", "test_pass", "test_pass_broken if { false }\n\ntest_pass")
    return ["policy", "test", "--root", str(root)]


# command → (how to set it up, exit code, whether its findings name an environment)
SCENARIOS: dict[str, tuple[Callable[[Path], list[str]], int, bool]] = {
    "validate": (_validate, 1, False),
    "render-check": (_render_check, 1, True),
    "check": (_check, 1, True),
    "diff": (_diff, 1, True),
    "artifacts-verify": (_verify, 1, True),
    "artifacts-lock-check": (_lock_check, 1, True),
    "conform-serving": (_conform_serving, 2, True),
    "conform-gpu": (_conform_gpu, 2, True),
    "policy-test": (_policy_test, 1, False),
}


def _gpu_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[int, str]]:
    return {}


def _run(name: str, fmt: str, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    setup, _, _ = SCENARIOS[name]
    argv = setup(tmp)
    capsys.readouterr()
    code = main([*argv, "--format", fmt])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def _objects(finding: dict[str, Any]) -> tuple[Any, ...]:
    res = finding.get("resource") or {}
    return (finding["rule_id"], finding.get("environment"), res.get("kind"), res.get("namespace"),
            res.get("name"), finding.get("object"))


def _sarif_objects(result: dict[str, Any]) -> tuple[Any, ...]:
    props = result.get("properties") or {}
    res = props.get("resource") or {}
    return (result["ruleId"], props.get("environment"), res.get("kind"), res.get("namespace"),
            res.get("name"), props.get("object"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_command_in_every_format(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if name == "conform-gpu" and _gpu_present():
        pytest.skip("this machine has a GPU: the NVML scenario expects none")
    _, code, has_env = SCENARIOS[name]
    runs = {fmt: _run(name, fmt, tmp_path / fmt, capsys) for fmt in FORMATS}
    assert {fmt: c for fmt, (c, _) in runs.items()} == dict.fromkeys(FORMATS, code)

    doc = json.loads(runs["json"][1])
    assert doc["exit_code"] == code
    findings = doc["findings"]
    assert findings, f"{name}: the scenario must produce findings"
    if has_env:
        assert all(f["environment"] for f in findings), findings
        assert any(f.get("resource") or f.get("object") for f in findings), findings
    want = sorted(_objects(f) for f in findings)

    sarif = json.loads(runs["sarif"][1])
    sarif_validator().validate(sarif)
    run = sarif["runs"][0]
    assert sorted(_sarif_objects(r) for r in run["results"]) == want
    described = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for r in run["results"]:
        rule = described[r["ruleId"]]
        assert rule["fullDescription"]["text"] and rule["shortDescription"]["text"]
        assert rule.get("helpUri", "https://").startswith("https://")
    assert run["properties"]["exitCode"] == code

    ET.fromstring(runs["junit"][1])  # well-formed
    gh = runs["github"][1].splitlines()
    assert sum(line.startswith("::") for line in gh) == len(findings)
    text = runs["text"][1]
    for f in findings:
        if f.get("environment"):
            assert f"env {f['environment']}" in text
    assert runs["markdown"][1].startswith("### ")


def _id_literals(source: str) -> set[str]:
    """String literals shaped like a rule id of any prefix the registry knows (and the GPU
    checks', which report as conform.gpu.<check>)."""
    import ast
    import re

    from kitchen_gitops.rules import REGISTRY

    prefixes = sorted({rule_id.split(".")[0] for rule_id in REGISTRY} | {"gpu"})
    shape = re.compile(rf"^({'|'.join(map(re.escape, prefixes))})\.[a-z0-9][a-z0-9.-]*$")
    return {node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and shape.match(node.value)}


def test_the_code_reports_with_registered_rules_not_strings() -> None:
    """Built-in checks report with the registry's typed entries (``rules.LOAD_ALIAS``): no
    module but rules.py spells a registered id, and every other literal shaped like an id
    (of any prefix) is a check name, a family member or a file name, never an id that has
    no entry."""
    from kitchen_gitops.rules import REGISTRY, describe

    registered = {rule_id for rule_id, info in REGISTRY.items() if not info.family}
    spelled: dict[str, set[str]] = {}
    others: set[str] = set()
    for path in sorted((REPO / "kitchen_gitops").rglob("*.py")):
        if path.name == "rules.py":
            continue
        found = _id_literals(path.read_text(encoding="utf-8"))
        if found & registered:
            spelled[path.name] = found & registered
        others |= found - registered
    assert not spelled, f"use the registry's constants: {spelled}"
    # the rules of the policy library (the admission policies name them; a rollback lifts
    # policy.promotion-order's findings) describe themselves in their METADATA
    from kitchen_gitops.policy.library import load_library

    others -= {r.id for r in load_library(REPO / "policies", REPO).rules.values()}
    # a conformance check's name reports as conform.<name>, which is registered
    missing = sorted(r for r in others if describe(r) is None and f"conform.{r}" not in REGISTRY)
    assert not missing, f"rule ids without a registry entry: {missing}"


def test_the_literal_check_covers_every_prefix() -> None:
    from kitchen_gitops.rules import REGISTRY

    prefixes = {rule_id.split(".")[0] for rule_id in REGISTRY}
    assert {"load", "schema", "catalog", "evaluation", "plan", "render", "policy", "artifacts", "promotion",
            "conform"} <= prefixes
    for prefix in prefixes:
        assert _id_literals(f'X = "{prefix}.made-up"\n') == {f"{prefix}.made-up"}


def test_every_rule_is_described() -> None:
    from kitchen_gitops.rules import REGISTRY, describe

    for info in REGISTRY.values():
        assert info.title and info.description and info.help_uri.startswith("https://")
    # families: the dynamic ids are described by them
    from kitchen_gitops.conform.results import CHECKS

    for check in CHECKS:
        assert describe(f"conform.{check}") is not None
    assert describe("schema.int-parsing") is REGISTRY["schema."]
