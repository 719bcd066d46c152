"""Planning: vLLM arguments computed from the catalog, GPUs per replica, memory fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.cli import main
from kitchen_gitops.plan import round_lora_rank
from tests.conftest import REPO


@pytest.mark.parametrize(("rank", "expected"), [(1, 1), (2, 8), (8, 8), (12, 16), (33, 64), (300, 320), (512, 512)])
def test_rank_rounds_up_to_a_rank_vllm_accepts(rank: int, expected: int) -> None:
    assert round_lora_rank(rank) == expected


def test_plan_json_golden(minimal_repo: Path, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    assert main(["plan", "--root", str(minimal_repo), "--format", "json"]) == 0
    out = capsys.readouterr().out
    golden = REPO / "tests/golden/plan-minimal.json"
    if update_golden:
        golden.write_text(out)
    assert out == golden.read_text()
    svc = json.loads(out)["dev"]["tenants"][0]["services"][0]
    assert svc["max_lora_rank"] == 64 and svc["max_loras"] == 2 and svc["max_cpu_loras"] == 2
    assert svc["max_model_len"] == 4096


def _set_base(root: Path, params_b: float, ctx: int = 131072) -> None:
    base = root / "catalog/bases/tiny-base.yaml"
    text = base.read_text().replace("parameters_billions: 8.03", f"parameters_billions: {params_b}")
    base.write_text(text.replace("max_position_embeddings: 131072", f"max_position_embeddings: {ctx}"))


def test_large_base_gets_tensor_parallelism(minimal_repo: Path) -> None:
    # 20B in bf16 = 37 GiB of weights: does not fit one 24 GiB L4, fits two
    _set_base(minimal_repo, 20.0)
    outcome = pipeline.plan(minimal_repo)
    svc = outcome.plans["dev"].services[0]
    assert outcome.ok
    assert svc.tensor_parallel_size == 2 and svc.memory.fits
    assert "--tensor-parallel-size=2" in svc.args


def test_base_too_large_for_a_node_is_a_finding(minimal_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _set_base(minimal_repo, 70.0)  # 130 GiB of weights; a node has 2 × 24 GiB
    assert main(["plan", "--root", str(minimal_repo)]) == 1
    err = capsys.readouterr().err
    assert "catalog/tenants/support.yaml:9:3: [error] tiny-base@1.0 for tenant support in dev does not fit" in err
    assert "(plan.gpu-memory)" in err


def test_max_model_len_is_capped_by_the_base_context(minimal_repo: Path) -> None:
    _set_base(minimal_repo, 8.03, ctx=2048)
    svc = pipeline.plan(minimal_repo).plans["dev"].services[0]
    assert svc.max_model_len == 2048 and "--max-model-len=2048" in svc.args


def test_lora_modules_name_the_served_base(minimal_repo: Path) -> None:
    svc = pipeline.plan(minimal_repo).plans["dev"].services[0]
    i = svc.args.index("--lora-modules")
    modules = [json.loads(a) for a in svc.args[i + 1:] if a.startswith("{")]
    assert modules == [
        {"name": "faq", "path": "/mnt/models/adapters/faq", "base_model_name": "tiny-base"},
        {"name": "summary", "path": "/mnt/models/adapters/summary", "base_model_name": "tiny-base"},
    ]
    assert [s["mountPath"] for s in svc.storage_uris] == [
        "/mnt/models/base", "/mnt/models/adapters/faq", "/mnt/models/adapters/summary"]
