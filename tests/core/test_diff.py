"""``kitchen diff``: what a catalog change serves differently, per environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.conftest import git as _git


def test_diff_names_every_serving_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    router = repo / "catalog/flavors/ticket-router@v1-2.yaml"
    router.write_text(router.read_text().replace("rank: 8\n", "rank: 48\n"))
    (repo / "catalog/tenants/marketing-analytics.yaml").unlink()
    tenant = repo / "catalog/tenants/customer-support.yaml"
    tenant.write_text(tenant.read_text().replace("    replicas: 2\n", "    replicas: 3\n"))
    assert main(["diff", "--root", str(repo), "--base", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:15] == [
        "dev: cs-llm/llama-3-1-8b-instruct changed",
        "    --max-lora-rank 32 → 64",
        "dev: mkt-sentiment/qwen2-5-7b-instruct removed",
        "    base qwen2-5-7b-instruct@2.5",
        "prod: cs-llm/llama-3-1-8b-instruct changed",
        "    replicas 2 → 3",
        "    GPUs 2 → 3",
        "    --max-lora-rank 32 → 64",
        "prod: mkt-sentiment/qwen2-5-7b-instruct removed",
        "    base qwen2-5-7b-instruct@2.5",
        "staging: cs-llm/llama-3-1-8b-instruct changed",
        "    --max-lora-rank 32 → 64",
        "staging: mkt-sentiment/qwen2-5-7b-instruct removed",
        "    base qwen2-5-7b-instruct@2.5",
        "6 InferenceService(s) change against HEAD in dev, prod, staging",
    ]
    # then the rendered objects: mkt-sentiment's namespace gone with all it held
    assert "dev: Namespace mkt-sentiment (v1) removed" in out.splitlines()[15:]


def test_diff_markdown_for_a_flavor_promotion(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = repo / "catalog/tenants/customer-support.yaml"
    text = tenant.read_text()
    # promote helpdesk-classifier v2026-03-15 into customer-support's dev
    dev, rest = text.split("  staging:", 1)
    tenant.write_text(dev.replace("helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15")
                      + "  staging:" + rest)
    assert main(["diff", "--root", str(repo), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "### kitchen: what this change serves, against `HEAD`" in out
    assert ("| `cs-llm/llama-3-1-8b-instruct` | changed | "
            "flavor helpdesk-classifier v2026-02-01 → v2026-03-15 |") in out
    assert "**prod**" not in out and "**staging**" not in out


def test_diff_two_versions_side_by_side(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prod serves the next version beside the one its clients are pinned to, the alias
    still on the old one; then the alias moves and the old version goes."""
    tenant = repo / "catalog/tenants/customer-support.yaml"
    text = tenant.read_text()
    head, prod = text.split("  prod:", 1)
    both = prod.replace("      - helpdesk-classifier@v2026-02-01\n",
                        "      - helpdesk-classifier@v2026-02-01\n      - helpdesk-classifier@v2026-03-15\n")
    tenant.write_text(head + "  prod:" + both)
    assert main(["diff", "--root", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "    flavor helpdesk-classifier@v2026-03-15 added\n" in out, out
    assert "alias" not in out and "removed" not in out
    _git(repo, "commit", "-qam", "both versions")
    moved = both.replace("      - helpdesk-classifier@v2026-02-01\n", "").replace(
        "helpdesk-classifier: helpdesk-classifier@v2026-02-01", "helpdesk-classifier: helpdesk-classifier@v2026-03-15")
    tenant.write_text(head + "  prod:" + moved)
    assert main(["diff", "--root", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "    flavor helpdesk-classifier@v2026-02-01 removed\n" in out, out
    assert ("    alias helpdesk-classifier helpdesk-classifier@v2026-02-01 → "
            "helpdesk-classifier@v2026-03-15\n") in out, out


def test_no_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--root", str(repo)]) == 0
    assert capsys.readouterr().out == "no serving changes against HEAD\nno rendered object changes against HEAD\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--base", "no-such-branch"], "unknown revision 'no-such-branch'"),
    (["--format", "html"], "'html' is not one of"),
])
def test_bad_usage(repo: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--root", str(repo), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_outside_git_is_a_configuration_error(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--root", str(example_repo)]) == 2
    assert "not a Git checkout" in capsys.readouterr().err


def test_diff_names_a_move_to_the_llm_inference_service_api(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = repo / "environments/staging.yaml"
    env.write_text(env.read_text().replace("serving:\n", "serving:\n  api: LLMInferenceService\n", 1))
    assert main(["diff", "--root", str(repo)]) == 0
    out = capsys.readouterr().out
    assert ("staging: cs-llm/llama-3-1-8b-instruct changed\n"
            "    served as InferenceService → LLMInferenceService\n") in out
    assert "dev:" not in out and "prod:" not in out
