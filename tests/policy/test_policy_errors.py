"""A broken policy stops the run with exit 2, the policy's file:line and a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.policy.policy_cases import REPO

HEADER = "# METADATA\n# title: Broken\n# custom:\n#   id: policy.broken\n#   severity: error\n"

BROKEN = {
    # name: (rule body, lines the engines may name, what the message says)
    # (a syntax error: regorus names the incomplete expression, OPA the token after it)
    "syntax": ("package kitchen.rules.broken\n\nviolation contains v if {\n\tv := input.x ==\n}\n", (9, 10),
               "syntax error"),
    "unsafe": ("package kitchen.rules.broken\n\nviolation contains v if {\n\tx := 1\n}\n", (8,),
               "unsafe variable"),
    "function": ("package kitchen.rules.broken\n\nviolation contains v if {\n\tv := nope.missing(1)\n}\n", (9,),
                 "unknown function"),
    "conflict": ("package kitchen.rules.broken\n\nlevel := \"a\"\n\nlevel := \"b\"\n\n"
                 "violation contains {\"msg\": level} if true\n", (8, 10), "conflicting outputs"),
}


def _repo(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "repo"
    for part in ("catalog", "environments", "evaluations", "templates", "policies"):
        shutil.copytree(REPO / part, root / part)
    (root / "policies" / "rules" / "broken.rego").write_text(HEADER + body, encoding="utf-8")
    return root


@pytest.mark.parametrize("engine", ["regorus", "opa"])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_bad_policy_gives_file_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               kind: str, engine: str) -> None:
    body, lines, words = BROKEN[kind]
    root = _repo(tmp_path, body)
    assert main(["check", "--root", str(root), "--engine", engine, "--no-render-check"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("kitchen: error: policies/rules/broken.rego:"), err
    assert any(f"policies/rules/broken.rego:{line}:" in err for line in lines), err
    assert words in err, err


def test_policy_test_reports_failures_with_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, "package kitchen.rules.broken\n\nviolation contains {\"msg\": \"x\"} if input.x\n")
    (root / "policies" / "rules" / "broken_test.rego").write_text(
        "package kitchen.rules.broken_test\n\nimport data.kitchen.rules.broken\n\n"
        "test_pass_nothing if {\n\tcount(broken.violation) == 0 with input as {}\n}\n\n"
        "test_fail_wrong if {\n\tcount(broken.violation) == 2 with input as {\"x\": true}\n}\n")
    assert main(["policy", "test", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("  [FAIL ] kitchen.rules.broken_test.test_fail_wrong ")
               and "policies/rules/broken_test.rego:9:1" in line for line in out.splitlines()), out
    assert "policies/rules/broken_test.rego:9:1: [error] policy test test_fail_wrong failed" in out
    assert "test_pass_nothing" not in out


def test_missing_metadata_is_a_policy_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, "")
    (root / "policies" / "rules" / "broken.rego").write_text(
        "package kitchen.rules.broken\n\nviolation contains {\"msg\": \"x\"} if false\n")
    assert main(["check", "--root", str(root), "--no-render-check"]) == 2
    assert "policies/rules/broken.rego:1:1: rule package kitchen.rules.broken has no # METADATA" \
        in capsys.readouterr().err


@pytest.mark.parametrize("scope", ["tenants", "Tenant", "[tenant]", "''"])
def test_a_scope_other_than_whole_environment_or_tenant_is_a_policy_error(
        scope: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, "")
    (root / "policies" / "rules" / "broken.rego").write_text(
        f"{HEADER}#   scope: {scope}\npackage kitchen.rules.broken\n\nviolation contains {{\"msg\": \"x\"}} if false\n")
    assert main(["check", "--root", str(root), "--no-render-check"]) == 2
    err = capsys.readouterr().err
    assert ("policies/rules/broken.rego:1:1: rule policy.broken: custom.scope must be whole, environment, "
            "plan or tenant") in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("call", "name"), [
    ('http.send({"method": "get", "url": "http://127.0.0.1:1/"})', "http.send"),
    ('http  [ "send" ]({"method": "get", "url": "http://127.0.0.1:1/"})', "http.send"),
    ("opa.runtime()", "opa.runtime"),
    ('net.lookup_ip_addr("example.com")', "net.lookup_ip_addr"),
])
@pytest.mark.parametrize("engine", ["regorus", "opa"])
def test_a_policy_that_reaches_outside_its_input_is_refused_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], call: str, name: str, engine: str) -> None:
    """On both engines, before anything is evaluated: regorus has none of these built-ins
    (it ignored the rule), OPA ran them from CI."""
    body = f"package kitchen.rules.broken\n\nviolation contains v if {{\n\tv := {{\"msg\": {call}}}\n}}\n"
    root = _repo(tmp_path, body)
    assert main(["check", "--root", str(root), "--engine", engine, "--no-render-check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kitchen: error: policies/rules/broken.rego:9:15: refers to {name}, which reaches "
                          "outside the policy input"), err
    assert main(["policy", "test", "--root", str(root)]) == 2


def test_a_policy_may_name_those_built_ins_in_comments_and_strings_and_use_pure_net_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = ("package kitchen.rules.broken\n\n# never http.send or opa.runtime()\n"
            "violation contains v if {\n\tnet.cidr_contains(\"10.0.0.0/8\", input.nothing)\n"
            "\tv := {\"msg\": \"no http.send here; net.lookup_ip_addr either\"}\n}\n")
    root = _repo(tmp_path, body)
    assert main(["check", "--root", str(root), "--env", "dev", "--no-render-check"]) == 0, capsys.readouterr()
