"""GPUs per replica and memory per GPU for Llama-3.1 shapes on H100 (80 GiB) and H200 (141 GiB).

The expected GPU count is computed here from the documented rule (README, "How a manifest
is derived"), not with the planner's functions: the smallest power of two dividing the
attention heads, within a node, such that on each GPU the weights' share, the LoRA slots,
the runtime overhead and one full-length sequence's KV cache fit in gpu_memory_utilization ×
the memory CUDA reports, and what runs outside that budget (CUDA graphs, contexts) fits
the GPU.  The measured constants are the planner's (they come from the GPU runs); the
arithmetic is this file's.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.gpu_memory import (
    ACTIVATION_FACTOR,
    CUDA_CONTEXT_GIB,
    CUDA_VISIBLE_FRACTION,
    GIB,
    LORA_ALLOCATION_FACTOR,
    NON_TORCH_GIB,
    cuda_graphs,
    estimate_memory,
)
from kitchen_gitops.model import Architecture, Base, Catalog, Environment
from kitchen_gitops.plan import plan_service

# meta-llama/Llama-3.1-{8B,70B,405B}'s config.json (and their parameter counts)
SHAPES = {
    "8b": dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
               num_key_value_heads=8, parameters_billions=8.03),
    "70b": dict(num_hidden_layers=80, hidden_size=8192, intermediate_size=28672, num_attention_heads=64,
                num_key_value_heads=8, parameters_billions=70.55),
    "405b": dict(num_hidden_layers=126, hidden_size=16384, intermediate_size=53248, num_attention_heads=128,
                 num_key_value_heads=8, parameters_billions=405.85),
}
GPUS = {"h100": ("NVIDIA-H100-80GB-HBM3", 80), "h200": ("NVIDIA-H200", 141)}
HEAD_DIM, VOCAB, BF16 = 128, 128256, 2
UTIL = 0.9  # the minimal catalog's release (0.11.0) default
LORAS, RANK = 2, 64  # the minimal catalog's tenant: two flavors, ranks up to 64


def _arch(shape: str) -> Architecture:
    return Architecture(model_type="llama", architectures=["LlamaForCausalLM"], head_dim=HEAD_DIM,
                        vocab_size=VOCAB, max_position_embeddings=131072, torch_dtype="bfloat16",
                        **SHAPES[shape])  # type: ignore[arg-type]


def _catalog(minimal_repo: Path) -> Catalog:
    outcome = pipeline.validate(minimal_repo)
    assert outcome.ok
    return outcome.catalog


def _setup(catalog: Catalog, shape: str, gpu: str, max_model_len: int) -> tuple[Environment, Base]:
    env = catalog.environments["dev"]
    product, memory = GPUS[gpu]
    cluster = env.cluster.model_copy(update={"gpu": env.cluster.gpu.model_copy(
        update={"product": product, "memory_gib": memory, "per_node": 8})})
    serving = env.serving.model_copy(update={"vllm": env.serving.vllm.model_copy(
        update={"max_model_len": max_model_len})})
    base = next(iter(catalog.bases.values()))
    return env.model_copy(update={"cluster": cluster, "serving": serving}), \
        base.model_copy(update={"architecture": _arch(shape)})


def _lora_slot_bytes_per_gpu(s: dict[str, float], tp: int) -> float:
    """vLLM's LoRA tensors on one rank: a column-parallel projection (q, k, v, gate, up) keeps
    all of A (rank × in) and 1/tp of B (out × rank); a row-parallel one (o, down) 1/tp of A
    and all of B; embeddings and LM head whole."""
    h, inter = s["hidden_size"], s["intermediate_size"]
    q, kv = s["num_attention_heads"] * HEAD_DIM, s["num_key_value_heads"] * HEAD_DIM
    column = (h + q / tp) + 2 * (h + kv / tp) + 2 * (h + inter / tp)
    row = (q / tp + h) + (inter / tp + h)
    return (s["num_hidden_layers"] * RANK * (column + row) + 2 * RANK * (VOCAB + h)) * BF16


def _expected(shape: str, gpu: str, max_model_len: int, max_num_seqs: int = 256) -> tuple[int | None, dict[int, int]]:
    """The smallest TP that fits, by the rule; and each candidate's KV tokens per GPU."""
    s = SHAPES[shape]
    memory = GPUS[gpu][1] * CUDA_VISIBLE_FRACTION * GIB  # bytes CUDA reports per GPU
    batched = 8192  # vLLM's default on GPUs of 70 GiB and more
    tokens: dict[int, int] = {}
    chosen = None
    for tp in (1, 2, 4, 8):
        if s["num_attention_heads"] % tp:
            continue
        weights = s["parameters_billions"] * 1e9 * BF16 / tp + 131072 * HEAD_DIM * BF16  # + rotary cache
        lora = LORAS * LORA_ALLOCATION_FACTOR * _lora_slot_bytes_per_gpu(s, tp)
        activation = ACTIVATION_FACTOR * batched * (3 * s["intermediate_size"] / tp + 4 * s["hidden_size"]) * BF16
        kv_per_token = 2 * s["num_hidden_layers"] * max(1, int(s["num_key_value_heads"]) // tp) * HEAD_DIM * BF16
        kv = UTIL * memory - weights - lora - activation - NON_TORCH_GIB * GIB
        tokens[tp] = max(0, math.floor(kv / (kv_per_token * 16)) * 16)
        graphs = cuda_graphs([], max_num_seqs, batched, LORAS, tp).gib(_arch(shape), BF16) * GIB
        outside = graphs + CUDA_CONTEXT_GIB * GIB
        if chosen is None and tokens[tp] >= max_model_len and UTIL * memory - activation + outside <= memory:
            chosen = tp
    return chosen, tokens


CASES = [(shape, gpu, length) for shape in SHAPES for gpu in GPUS for length in (8192, 32768, 131072)]


@pytest.mark.parametrize(("shape", "gpu", "max_model_len"), CASES)
def test_tensor_parallel_size_is_the_smallest_that_fits(minimal_repo: Path, shape: str, gpu: str,
                                                        max_model_len: int) -> None:
    catalog = _catalog(minimal_repo)
    env, base = _setup(catalog, shape, gpu, max_model_len)
    tenant = catalog.tenants["support"]
    flavors = [catalog.flavors[str(ref)] for ref in tenant.environments["dev"].flavors]
    svc = plan_service(env, tenant, base, flavors, 1)
    expected, tokens = _expected(shape, gpu, max_model_len)
    assert svc.max_loras == LORAS and svc.max_lora_rank == RANK
    if expected is None:  # nothing in a node fits: the largest candidate, flagged
        assert svc.tensor_parallel_size == 8 and not svc.memory.fits
    else:
        assert svc.tensor_parallel_size == expected and svc.memory.fits
    assert svc.memory.kv_tokens == tokens[svc.tensor_parallel_size]


# what the rule gives (the table docs/conformance.md quotes): GPUs per replica at 8k / 32k / 128k context
EXPECTED = {
    ("8b", "h100"): (1, 1, 1), ("8b", "h200"): (1, 1, 1),
    ("70b", "h100"): (2, 4, 4), ("70b", "h200"): (2, 2, 2),
    ("405b", "h100"): (None, None, None), ("405b", "h200"): (8, 8, 8),
}


@pytest.mark.parametrize(("shape", "gpu"), sorted(EXPECTED))
def test_gpus_per_replica_for_the_llama_3_1_family(shape: str, gpu: str) -> None:
    assert tuple(_expected(shape, gpu, n)[0] for n in (8192, 32768, 131072)) == EXPECTED[(shape, gpu)]


@pytest.mark.parametrize("gpu", sorted(GPUS))
def test_kv_cache_per_gpu_scales_with_the_heads_each_gpu_holds(minimal_repo: Path, gpu: str) -> None:
    catalog = _catalog(minimal_repo)
    env, base = _setup(catalog, "70b", gpu, 32768)
    arch = base.architecture
    per_tp = {tp: estimate_memory(base, env, tp, LORAS, RANK, 32768) for tp in (1, 2, 4, 8)}
    for tp, m in per_tp.items():
        assert m.gpus == tp
        # each GPU holds 8 / tp of the 8 KV heads of every token: its bytes per token shrink by tp
        per_gpu_bytes = 2 * arch.num_hidden_layers * (8 // tp) * HEAD_DIM * BF16
        assert m.per_gpu(m.kv_bytes_per_token) == per_gpu_bytes
        # the tokens are one GPU's KV memory over one GPU's bytes per token, in whole blocks
        assert m.kv_tokens == math.floor(m.per_gpu(m.kv_cache_gib) * GIB / (per_gpu_bytes * 16)) * 16
        assert m.kv_tokens == _expected("70b", gpu, 32768)[1][tp]
    # twice the GPUs: each holds half the weights' bytes and half the heads, so more than twice the tokens
    for tp in (1, 2, 4):
        small, large = per_tp[tp], per_tp[2 * tp]
        assert large.per_gpu(large.kv_cache_gib) > small.per_gpu(small.kv_cache_gib)
        assert large.kv_tokens > 2 * small.kv_tokens or small.kv_tokens == 0
    # more GPUs than KV heads: vLLM gives each rank one head (replicated); the tokens stop scaling by heads
    four_heads = base.model_copy(update={"architecture": arch.model_copy(update={"num_key_value_heads": 4})})
    m8 = estimate_memory(four_heads, env, 8, LORAS, RANK, 32768)
    assert m8.per_gpu(m8.kv_bytes_per_token) == 2 * arch.num_hidden_layers * 1 * HEAD_DIM * BF16


def test_lora_slot_per_gpu_keeps_the_whole_halves() -> None:
    from kitchen_gitops.gpu_memory import lora_slot_bytes

    s = SHAPES["70b"]
    for tp in (1, 2, 4, 8):
        assert lora_slot_bytes(_arch("70b"), RANK, BF16, tp) == pytest.approx(_lora_slot_bytes_per_gpu(s, tp))
    # the whole halves are on every GPU: between them eight GPUs hold 3.6 slots' bytes, not one
    whole, eighth = lora_slot_bytes(_arch("70b"), RANK, BF16, 1), lora_slot_bytes(_arch("70b"), RANK, BF16, 8)
    assert 8 * eighth / whole == pytest.approx(3.57, abs=0.01)


# ---- CUDA graphs: what vLLM 0.26 captures, and what it took on the GPU runs

H100_512_SIZES = [1, 2, 4, *range(8, 256, 8), *range(256, 513, 16)]  # the H100 log's cudagraph_capture_sizes


def test_capture_sizes_follow_max_num_seqs_and_the_batch() -> None:
    assert list(cuda_graphs([], 512, 8192, 4).sizes) == H100_512_SIZES
    assert list(cuda_graphs([], 256, 8192, 4).sizes) == H100_512_SIZES  # min(2 × 256, 512)
    assert cuda_graphs([], 128, 8192, 4).sizes[-1] == 256 and len(cuda_graphs([], 128, 8192, 4).sizes) == 35
    assert list(cuda_graphs([], 32, 8192, 4).sizes) == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]
    # max_num_batched_tokens caps the largest size, and is captured itself when off the stride
    assert list(cuda_graphs([], 256, 100, 0).sizes) == [1, 2, 4, *range(8, 97, 8), 100]
    # named sizes (either option) replace the rule, above max_num_batched_tokens dropped
    assert cuda_graphs(["-cc", '{"cudagraph_capture_sizes": [4, 1, 9000, 16]}'], 256, 8192, 0).sizes == (1, 4, 16)
    assert cuda_graphs(["--cudagraph-capture-sizes", "1", "2", "8"], 256, 8192, 0).sizes == (1, 2, 8)
    assert cuda_graphs(["--max-cudagraph-capture-size=64"], 256, 8192, 0).sizes[-1] == 64
    # interactivity: every size up to 32
    assert cuda_graphs(["--performance-mode", "interactivity"], 256, 8192, 0).sizes[:33] == (*range(1, 33), 40)
    # sequence parallelism (named in the compilation config) keeps the multiples of the GPUs
    sp = '--compilation-config={"pass_config": {"enable_sp": true}}'
    assert cuda_graphs([sp], 256, 8192, 0, tp=2).sizes[:3] == (2, 4, 8)


def test_graphs_captured_per_size_and_lora_case() -> None:
    # the H100 log at max_num_seqs 512: "Capturing CUDA graphs (PIECEWISE): 102/102", "(FULL): 102/102"
    g = cuda_graphs([], 512, 8192, 4)
    assert (g.mode, g.lora_cases, g.piecewise_captures, g.full_captures) == ("FULL_AND_PIECEWISE", 2, 102, 102)
    # a full graph only for batches of decodes: at most max_num_seqs tokens
    g = cuda_graphs([], 256, 8192, 4)
    assert (g.piecewise_captures, g.full_captures, g.full_tokens) == (102, 70, 2 * sum(H100_512_SIZES[:35]))
    assert cuda_graphs([], 256, 8192, 0).lora_cases == 1
    assert cuda_graphs(["--specialize-active-lora"], 256, 8192, 4).lora_cases == 5  # 0, 1, 2, 4, 5 adapters
    assert cuda_graphs(["-O1"], 256, 8192, 4).full_captures == 0
    decode_only = cuda_graphs(["-cc", '{"cudagraph_mode": "FULL_DECODE_ONLY"}'], 256, 8192, 4)
    assert decode_only.piecewise_captures == 0 and decode_only.full_captures == 70
    for eager in (["--enforce-eager"], ["-O0"], ["--optimization-level", "0"], ['-cc={"cudagraph_mode": "NONE"}']):
        assert cuda_graphs(eager, 256, 8192, 4).gib(_arch("8b"), BF16) == 0.0


@pytest.mark.parametrize(("max_num_seqs", "measured"), [(128, 0.63), (256, 0.91), (512, 1.34)])
def test_graph_memory_as_measured(max_num_seqs: int, measured: float) -> None:
    # "Graph capturing finished ..., took X GiB": Llama-3.1-8B shape, 4 LoRA slots, 8192 batched
    # tokens; 128 and 512 on an H100, 256 on an H200 (docs/conformance.md, "CUDA graphs")
    assert cuda_graphs([], max_num_seqs, 8192, 4).gib(_arch("8b"), BF16) == pytest.approx(measured, abs=0.01)


def test_plan_counts_the_graphs_of_its_own_options(minimal_repo: Path) -> None:
    catalog = _catalog(minimal_repo)
    env, base = _setup(catalog, "8b", "h100", 8192)

    def graphs(**vllm: object) -> float:
        e = env.model_copy(update={"serving": env.serving.model_copy(update={
            "vllm": env.serving.vllm.model_copy(update=vllm)})})
        m = estimate_memory(base, e, 1, LORAS, RANK, 8192)
        assert m.graphs is not None
        return m.cuda_graph_gib

    assert graphs(max_num_seqs=512) > graphs(max_num_seqs=256) > graphs(max_num_seqs=32) > 0
    assert graphs(extra_args=["--enforce-eager"]) == 0.0
    # each GPU of a replica captures the same graphs: the replica's total is tp times one GPU's
    m1, m2 = (estimate_memory(base, env, tp, LORAS, RANK, 8192) for tp in (1, 2))
    assert m2.per_gpu(m2.cuda_graph_gib) == pytest.approx(m1.cuda_graph_gib)
