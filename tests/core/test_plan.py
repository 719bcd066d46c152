"""Planning: vLLM arguments computed from the catalog, GPUs per replica, memory fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.cli import main
from kitchen_gitops.plan import round_lora_rank
from tests.conftest import REPO, copy_catalog


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
        {"name": "faq-v1", "path": "/mnt/models/adapters/faq-v1", "base_model_name": "tiny-base"},
        {"name": "summary-v2", "path": "/mnt/models/adapters/summary-v2", "base_model_name": "tiny-base"},
    ]
    assert [s["mountPath"] for s in svc.storage_uris] == [
        "/mnt/models/base", "/mnt/models/adapters/faq-v1", "/mnt/models/adapters/summary-v2"]


def test_alias_serves_a_version_under_a_second_name(tmp_path: Path) -> None:
    root = copy_catalog(REPO / "tests/cases/versions", tmp_path / "versions")
    svc = pipeline.plan(root).plans["dev"].services[0]
    assert [(m.name, m.flavor.ref, m.alias) for m in svc.adapters] == [
        ("faq-v1", "faq@v1", False), ("faq-v2", "faq@v2", False), ("faq", "faq@v1", True)]
    flags = svc.vllm.flags()
    modules = [json.loads(m) for m in flags["--lora-modules"] or ()]
    assert [(m["name"], m["path"]) for m in modules] == [
        ("faq-v1", "/mnt/models/adapters/faq-v1"), ("faq-v2", "/mnt/models/adapters/faq-v2"),
        ("faq", "/mnt/models/adapters/faq-v1")]
    # vLLM gives the alias a slot of its own; the files are mounted once
    assert flags["--max-loras"] == "3" and flags["--max-cpu-loras"] == "3"
    assert [s["mountPath"] for s in svc.storage_uris] == [
        "/mnt/models/base", "/mnt/models/adapters/faq-v1", "/mnt/models/adapters/faq-v2"]


def test_llm_inference_service_leaves_the_controller_its_flags(tmp_path: Path) -> None:
    root = copy_catalog(REPO / "tests/cases/llmisvc", tmp_path / "llmisvc")
    svc = pipeline.plan(root).plans["dev"].services[0]
    assert (svc.kind, svc.api_version) == ("LLMInferenceService", "serving.kserve.io/v1alpha2")
    assert svc.workload_args == ("--dtype=bfloat16", "--max-model-len=512", "--gpu-memory-utilization=0.9",
                                 "--max-num-seqs=256", "--enable-prefix-caching")
    assert "--lora-modules" in svc.args  # the plan keeps the whole command line


def test_lora_slot_memory_as_vllm_allocates_it() -> None:
    # Llama-3.1-8B shape at --max-lora-rank 32: vLLM 0.26's stacked A/B tensors (q, k, v, o,
    # gate, up, down of 32 layers: 0.15625 GiB) plus embed_tokens and lm_head (vocab 128256:
    # 0.01578 GiB); the H200 run of issue 13 measured the slot in "Model loading took"
    from kitchen_gitops.gpu_memory import GIB, lora_slot_bytes
    from kitchen_gitops.model import Architecture

    arch = Architecture(model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=32,
                        hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                        num_key_value_heads=8, head_dim=128, vocab_size=128256,
                        max_position_embeddings=131072, torch_dtype="bfloat16", parameters_billions=8.03)
    projections = 32 * 32 * (2 * (4096 + 4096) + 2 * (4096 + 1024) + 2 * (4096 + 14336) + 14336 + 4096) * 2
    embeddings = 2 * 32 * (128256 + 4096) * 2
    assert lora_slot_bytes(arch, 32, 2) == projections + embeddings
    assert projections / GIB == pytest.approx(0.15625)
    assert lora_slot_bytes(arch, 32, 2) / GIB == pytest.approx(0.1720, abs=1e-4)


def test_memory_is_what_cuda_reports_and_budget_parts(minimal_repo: Path) -> None:
    from kitchen_gitops.gpu_memory import CUDA_VISIBLE_FRACTION, GIB, KV_BLOCK_TOKENS

    svc = pipeline.plan(minimal_repo).plans["dev"].services[0]
    m, tp = svc.memory, svc.tensor_parallel_size
    assert m.gpu_memory_gib == pytest.approx(24 * CUDA_VISIBLE_FRACTION * tp)
    assert m.kv_tokens % KV_BLOCK_TOKENS == 0
    assert m.max_num_batched_tokens == 2048  # vLLM's default below 70 GiB
    inside = m.weights_gib + m.lora_gib + m.activation_gib + m.non_torch_gib
    assert inside + m.kv_cache_gib == pytest.approx(m.usable_gib)
    assert m.serving_gib == pytest.approx(m.usable_gib - m.activation_gib + m.cuda_graph_gib
                                          + m.cuda_context_gib)
    assert m.kv_tokens * m.kv_bytes_per_token <= m.kv_cache_gib * GIB
    # declared, the memory CUDA reports is what the plan divides (an L4 "24 GB": 22.03 GiB)
    env = minimal_repo / "environments/dev.yaml"
    text = env.read_text()
    assert "    memory_gib: 24\n" in text
    env.write_text(text.replace("    memory_gib: 24\n", "    memory_gib: 24\n    cuda_memory_gib: 22.03\n"))
    svc2 = pipeline.plan(minimal_repo).plans["dev"].services[0]
    assert svc2.memory.gpu_memory_gib == pytest.approx(22.03 * svc2.tensor_parallel_size)
    assert svc2.memory.kv_tokens < m.kv_tokens
    # --max-num-batched-tokens, where the environment sets it, is rendered and planned
    env.write_text(text.replace("  vllm:\n", "  vllm:\n    max_num_batched_tokens: 4096\n"))
    svc3 = pipeline.plan(minimal_repo).plans["dev"].services[0]
    assert "--max-num-batched-tokens=4096" in svc3.args
    assert svc3.memory.activation_gib == pytest.approx(2 * m.activation_gib)
