"""One replica's GPU memory as vLLM divides it: the weights, the LoRA slots, the activation
peak, the KV cache, and the CUDA graphs and contexts outside vLLM's budget.

The plan chooses each InferenceService's GPUs per replica from these estimates and reports
a replica whose KV cache cannot hold one sequence of ``--max-model-len`` tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import vllm_release
from .model import Architecture, Base, Environment, Gpu
from .vllm_args import ArgValue, VllmArgs

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
GIB = 1024**3

# ---- GPU memory as vLLM 0.26 divides it (v1/worker/gpu_worker.determine_available_memory):
#   KV cache = total × gpu_memory_utilization − "Model loading took" (weights + LoRA slots)
#              − peak activation − non-torch memory
# where total is the memory CUDA reports (torch.cuda.mem_get_info), not the product's name.
# The constants below were measured on the lent H200 on 2026-12-01 (issue 13; the run's
# report is in docs/conformance.md): Llama-3.1-8B shape, bf16, max_model_len 32768,
# max_num_seqs 256, 4 LoRA slots of rank 32, vLLM 0.26.0, whose startup log said
#   "Actual usage is 15.69 GiB for weight, 1.13 GiB for peak activation, 0.22 GiB for
#    non-torch memory, and 0.91 GiB for CUDAGraph memory"; "Available KV cache memory:
#    108.77 GiB"; "GPU KV cache size: 891,040 tokens"
# (125.82 − 15.69 − 1.13 − 0.22 = 108.78: the CUDA graphs are not in the budget).
#
# The memory CUDA reports, as a share of the nominal size, where the catalog does not
# declare it (cluster.gpu.cuda_memory_gib): H200 "141 GB": CUDA 139.80 GiB (NVML 140.4);
# H100 80GB HBM3: CUDA 79.19 GiB.  Products sold in decimal GB (L4 "24 GB": CUDA 22.03
# GiB) need cuda_memory_gib.
CUDA_VISIBLE_FRACTION = 0.99
# Peak activation of vLLM's profiling pass over max_num_batched_tokens tokens, per token in
# units of (3 × intermediate + 4 × hidden) × dtype bytes (gate_up's output, the activated
# half, and the hidden, residual and attention streams of one layer): 1.13 GiB measured
# for 8192 tokens against 0.906 GiB of that unit.
ACTIVATION_FACTOR = 1.25
# Memory outside torch's allocator that vLLM counts in the budget (cuBLAS and attention
# workspaces): 0.22 GiB measured (0.16 with VLLM_BATCH_INVARIANT=1).
NON_TORCH_GIB = 0.22
# The CUDA caching allocator reserves more than the LoRA tensors' bytes: 4 slots took 0.702
# GiB of "Model loading" beyond the weights and rotary cache (tensors: 0.688), 5 slots
# 0.892 (0.860); the fifth slot alone 0.19 ± 0.01 GiB (tensors: 0.172).
LORA_ALLOCATION_FACTOR = 1.04
# CUDA graphs, captured after the KV cache is allocated and outside the budget (vLLM 0.26's
# V2 model runner makes no estimate of them): a function of what vLLM captures
# (``cuda_graphs``; docs/conformance.md, "CUDA graphs").  Measured "Graph capturing
# finished ..., took X GiB" for the Llama-3.1-8B shape with 4 LoRA slots (2 LoRA cases):
#   max_num_seqs 128 (H100): 35 sizes up to 256, 70 piecewise + 38 full captures: 0.63 GiB
#   max_num_seqs 256 (H200): 51 sizes up to 512, 102 piecewise + 70 full captures: 0.91 GiB
#   max_num_seqs 512 (H100): 51 sizes up to 512, 102 piecewise + 102 full captures: 1.34 GiB
# 256 and 512 differ only by the full graphs of 272..512 tokens: each full capture keeps
# about 4.5 hidden vectors per token of its batch (0.43 GiB for 12,544 tokens); the rest is
# 64 KiB per piecewise graph (a piecewise capture is one graph per layer and one more) and
# 0.41 GiB whatever is captured, scaled by layers × hidden (three terms, three points:
# an exact fit, docs/conformance.md).  0.73 GiB with batch invariance at 256 (not modelled).
CUDA_GRAPH_FIXED_GIB = 0.41
CUDA_GRAPH_REFERENCE = 32 * 4096
CUDA_GRAPH_PIECE_BYTES = 64 << 10
CUDA_GRAPH_FULL_TOKEN_HIDDEN = 4.5
# The CUDA contexts of vLLM's processes, also outside the budget: nvidia-smi showed 126.66
# GiB used while serving, vLLM held 125.59 (weights + non-torch + KV cache + graphs).
CUDA_CONTEXT_GIB = 1.07
# vLLM's default --max-num-batched-tokens for the OpenAI server (arg_utils.get_batch_defaults):
# 8192 on GPUs of at least 70 GiB (not A100), else 2048; the H200's log: "Chunked prefill is
# enabled with max_num_batched_tokens=8192".
DEFAULT_BATCHED_TOKENS = ((70.0, 8192), (0.0, 2048))
# vLLM's KV cache block (tokens); the cache holds whole blocks (891,040 = 55,690 × 16).
KV_BLOCK_TOKENS = 16

# vLLM's --gpu-memory-utilization where neither the environment nor a release table says
FALLBACK_MEMORY_UTILIZATION = 0.9


def memory_utilization(env: Environment) -> float:
    """``--gpu-memory-utilization``: the environment's, else the declared release's default."""
    declared = env.serving.vllm.gpu_memory_utilization
    if declared is not None:
        return declared
    release = vllm_release.release(env.images.vllm_version)
    default = release.default("gpu_memory_utilization") if release is not None else None
    return float(default) if isinstance(default, int | float) else FALLBACK_MEMORY_UTILIZATION



@dataclass(frozen=True)
class MemoryEstimate:
    """One replica's GPU memory (all its GPUs together), as vLLM divides it."""

    gpu_memory_gib: float  # what CUDA reports
    usable_gib: float  # × gpu_memory_utilization: vLLM's budget
    weights_gib: float
    lora_gib: float
    lora_slot_gib: float
    activation_gib: float
    non_torch_gib: float
    cuda_graph_gib: float
    kv_cache_gib: float
    kv_bytes_per_token: int
    kv_tokens: int
    max_model_len: int
    max_num_batched_tokens: int
    cuda_context_gib: float
    gpus: int = 1  # the replica's (--tensor-parallel-size): every total above is divided evenly
    graphs: CudaGraphs | None = None

    def per_gpu(self, gib: float) -> float:
        """One GPU's share of a total above (each GPU of a replica holds the same)."""
        return gib / self.gpus

    @property
    def overhead_gib(self) -> float:
        """Inside the budget, besides weights, LoRA slots and the KV cache."""
        return self.activation_gib + self.non_torch_gib

    @property
    def serving_gib(self) -> float:
        """Used while serving: the budget without the activation peak (freed after vLLM's
        profiling pass), plus the CUDA graphs and contexts outside it."""
        return self.usable_gib - self.activation_gib + self.cuda_graph_gib + self.cuda_context_gib

    @property
    def fits(self) -> bool:
        return self.kv_tokens >= self.max_model_len and self.serving_gib <= self.gpu_memory_gib

    @property
    def full_length_sequences(self) -> float:
        return self.kv_tokens / self.max_model_len if self.max_model_len else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gpu_memory_gib": round(self.gpu_memory_gib, 2),
            "usable_gib": round(self.usable_gib, 2),
            "weights_gib": round(self.weights_gib, 2),
            "lora_gib": round(self.lora_gib, 3),
            "lora_slot_gib": round(self.lora_slot_gib, 4),
            "activation_gib": round(self.activation_gib, 2),
            "non_torch_gib": round(self.non_torch_gib, 2),
            "cuda_graph_gib": round(self.cuda_graph_gib, 2),
            "overhead_gib": round(self.overhead_gib, 2),
            "kv_cache_gib": round(self.kv_cache_gib, 2),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_tokens": self.kv_tokens,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "cuda_context_gib": round(self.cuda_context_gib, 2),
            "serving_gib": round(self.serving_gib, 2),
            "full_length_sequences": round(self.full_length_sequences, 2),
            "fits": self.fits,
        }


def lora_slot_bytes(arch: Architecture, rank: int, dtype_bytes: int, tp: int = 1) -> int:
    """What one LoRA slot costs on each GPU of a replica in vLLM, which preallocates every slot
    at ``--max-lora-rank`` (a smaller adapter is zero-padded into it) for every module it can
    wrap, whatever the adapters target (lora/model_manager.py ``_create_lora_modules``,
    lora/layers/):

    - each layer's 7 projections: A (rank × in) and B (out × rank) per q, k, v, o, gate, up,
      down (the merged qkv and gate_up keep one A and B per slice).  Under tensor
      parallelism a column-parallel projection (q, k, v, gate, up) keeps all of A and its
      share of B's rows, a row-parallel one (o, down) its share of A's columns and all of B;
    - the embeddings (``VocabParallelEmbeddingWithLoRA``: A vocab × rank, B hidden × rank) and
      the LM head (``LogitsProcessorWithLoRA``: A rank × hidden, B vocab × rank), whole on
      every GPU — the part an earlier plan missed (0.016 GiB of the 0.172 per
      rank-32 slot of a Llama-3.1-8B shape).

    These are the tensors' bytes; ``estimate_memory`` adds what the allocator reserves
    beyond them (``LORA_ALLOCATION_FACTOR``).
    """
    h, kv = arch.hidden_size, arch.num_key_value_heads * arch.head_dim
    q = arch.num_attention_heads * arch.head_dim
    inter = arch.intermediate_size
    column = [(h, q), (h, kv), (h, kv), (h, inter), (h, inter)]
    row = [(q, h), (inter, h)]
    per_layer = sum(i + o / tp for i, o in column) + sum(i / tp + o for i, o in row)
    layers = arch.num_hidden_layers * rank * per_layer
    embeddings = 2 * rank * (arch.vocab_size + h)  # embed_tokens and lm_head
    return round(layers + embeddings) * dtype_bytes


def kv_heads_per_gpu(arch: Architecture, tp: int) -> int:
    """The KV heads each GPU of a replica holds: vLLM splits them across the ranks, and gives
    every rank one (replicated) where there are fewer heads than ranks."""
    return max(1, arch.num_key_value_heads // tp)


@dataclass(frozen=True)
class CudaGraphs:
    """The CUDA graphs vLLM 0.26 captures on each GPU (V2 model runner):

    - the capture sizes (``VllmConfig._set_cudagraph_sizes``): 1, 2, 4, then every 8 below
      256, then every 16, up to ``min(2 × max_num_seqs, 512)`` capped by
      ``max_num_batched_tokens`` (which is added where it is under that cap and off the
      stride); or the sizes the compilation configuration names;
    - each size captured once per LoRA case (``lora_utils.get_lora_capture_cases``): without
      LoRA one; with it two (no adapter active, and all of them), or, with
      ``--specialize-active-lora``, no adapter, each power of two up to ``--max-loras`` and
      ``--max-loras`` + 1;
    - in ``FULL_AND_PIECEWISE`` mode (the default): a piecewise capture of every size (one
      graph per layer and one more), and a full graph of every size a batch of decodes can
      take (``cudagraph_utils.CudaGraphManager._init_candidates``: at most ``max_num_seqs``
      tokens); ``PIECEWISE`` only the first, ``FULL_DECODE_ONLY`` only the second, ``FULL``
      a full graph of every size; ``NONE`` (``--enforce-eager``, ``-O0``) nothing.
    """

    mode: str
    sizes: tuple[int, ...]
    lora_cases: int
    piecewise_sizes: tuple[int, ...]
    full_sizes: tuple[int, ...]

    @property
    def piecewise_captures(self) -> int:
        return len(self.piecewise_sizes) * self.lora_cases

    @property
    def full_captures(self) -> int:
        return len(self.full_sizes) * self.lora_cases

    @property
    def full_tokens(self) -> int:
        """The tokens of every full capture together."""
        return sum(self.full_sizes) * self.lora_cases

    def gib(self, arch: Architecture, dtype_bytes: int) -> float:
        """What the capture takes on one GPU (the constants' comment says how it was measured)."""
        if not self.sizes:
            return 0.0
        shape = arch.num_hidden_layers * arch.hidden_size / CUDA_GRAPH_REFERENCE
        pieces = self.piecewise_captures * (arch.num_hidden_layers + 1) * CUDA_GRAPH_PIECE_BYTES
        full = self.full_tokens * CUDA_GRAPH_FULL_TOKEN_HIDDEN * arch.hidden_size * dtype_bytes
        return CUDA_GRAPH_FIXED_GIB * shape + (pieces + full) / GIB


GRAPH_MODES = ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")
# --optimization-level's cudagraph_mode (config/vllm.py OPTIMIZATION_LEVEL_0x; default 2)
OPTIMIZATION_GRAPH_MODES = {"0": "NONE", "1": "PIECEWISE", "2": "FULL_AND_PIECEWISE", "3": "FULL_AND_PIECEWISE"}


def _flag_text(value: ArgValue) -> str | None:
    return " ".join(value) if isinstance(value, tuple) else value


def _int_list(value: Any) -> list[int] | None:
    """Sizes as vLLM reads them: several values (``--flag 1 2 8``), ``[1, 2, 8]`` or ``1,2,8``."""
    if isinstance(value, tuple | str):
        parts = [p for p in re.split(r"[\s,\[\]]+", " ".join(value) if isinstance(value, tuple) else value) if p]
        value = [int(p) for p in parts] if parts and all(p.isdigit() for p in parts) else None
    if isinstance(value, list) and value and all(isinstance(v, int) and v > 0 for v in value):
        return value
    return None


def _compilation_config(flags: dict[str, ArgValue]) -> dict[str, Any]:
    text = _flag_text(flags.get("--compilation-config", flags.get("-cc")))
    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def cuda_graphs(extra_args: tuple[str, ...] | list[str], max_num_seqs: int, max_num_batched_tokens: int,
                max_loras: int, tp: int = 1) -> CudaGraphs:
    """What vLLM 0.26 captures (``CudaGraphs``), read from the options that decide it in the
    environment's ``extra_args``: ``--enforce-eager``, ``--optimization-level``/``-O<n>``,
    ``--compilation-config``/``-cc`` (its ``cudagraph_mode``, ``cudagraph_capture_sizes``,
    ``max_cudagraph_capture_size``, ``cudagraph_specialize_lora``, ``pass_config.enable_sp``),
    ``--cudagraph-capture-sizes``, ``--max-cudagraph-capture-size``,
    ``--specialize-active-lora`` and ``--performance-mode``.  ``max_loras`` 0: no LoRA."""
    flags = VllmArgs((), tuple(extra_args)).flags()
    config = _compilation_config(flags)
    level = next((f[2:] for f in flags if f.startswith("-O") and f[2:].isdigit()), None)
    level = _flag_text(flags.get("--optimization-level")) or level
    mode = OPTIMIZATION_GRAPH_MODES.get(level or "2", "FULL_AND_PIECEWISE")
    declared = config.get("cudagraph_mode")
    if isinstance(declared, str) and declared.upper() in GRAPH_MODES:
        mode = declared.upper()
    if "--enforce-eager" in flags:
        mode = "NONE"
    if mode == "NONE":
        return CudaGraphs(mode, (), 0, (), ())
    tokens = max_num_batched_tokens
    declared_ceiling = _flag_text(flags.get("--max-cudagraph-capture-size")) or ""
    ceiling = int(declared_ceiling) if declared_ceiling.isdigit() else config.get("max_cudagraph_capture_size")
    ceiling = min(tokens, ceiling if isinstance(ceiling, int) and ceiling > 0 else min(2 * max_num_seqs, 512))
    named = _int_list(flags.get("--cudagraph-capture-sizes")) or _int_list(config.get("cudagraph_capture_sizes"))
    if named is not None:
        sizes = sorted({s for s in named if s <= tokens})
    else:
        if _flag_text(flags.get("--performance-mode")) == "interactivity":
            sizes = list(range(1, min(ceiling, 32) + 1))
        else:
            sizes = [s for s in (1, 2, 4) if s <= ceiling]
        sizes += range(8, min(ceiling + 1, 256), 8)
        sizes += range(256, ceiling + 1, 16)
        if tokens <= ceiling:
            sizes.append(tokens)
        sizes = sorted(set(sizes))
    passes = config.get("pass_config")
    if tp > 1 and isinstance(passes, dict) and passes.get("enable_sp") is True:
        sizes = [s for s in sizes if s % tp == 0]
    largest = sizes[-1] if sizes else 0
    if max_loras <= 0:
        cases = 1
    elif config.get("cudagraph_specialize_lora", True) is not False and "--specialize-active-lora" in flags \
            and _flag_text(flags["--specialize-active-lora"]) not in ("false", "False", "0"):
        cases = 1 + len([n for n in range(1, max_loras + 2) if n & (n - 1) == 0 or n == max_loras + 1])
    else:
        cases = 2
    piecewise = tuple(sizes) if mode in ("PIECEWISE", "FULL_AND_PIECEWISE") else ()
    if mode == "FULL":
        full = tuple(sizes)
    elif mode in ("FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"):
        full = tuple(s for s in sizes if s <= min(max_num_seqs, largest))
    else:
        full = ()
    return CudaGraphs(mode, tuple(sizes), cases, piecewise, full)


def cuda_memory_gib(gpu: Gpu) -> float:
    """The memory CUDA reports for one GPU: declared, else estimated from the nominal size."""
    return gpu.cuda_memory_gib or gpu.memory_gib * CUDA_VISIBLE_FRACTION


def default_batched_tokens(gpu_gib: float) -> int:
    return next(tokens for floor, tokens in DEFAULT_BATCHED_TOKENS if gpu_gib >= floor)


def estimate_memory(base: Base, env: Environment, tp: int, max_loras: int, max_rank: int,
                    max_model_len: int) -> MemoryEstimate:
    """One replica of ``tp`` GPUs: each GPU's share as vLLM divides it (the weights, the
    activations' intermediate and the KV heads split across the ranks; the rotary cache,
    the whole halves of the LoRA tensors, the runtime and the CUDA graphs on every GPU),
    times ``tp``.  The KV cache's tokens are one GPU's, as vLLM counts them (each rank holds
    its share of the heads of every token)."""
    arch = base.architecture
    nbytes = DTYPE_BYTES[arch.torch_dtype]
    vllm = env.serving.vllm
    per_gpu = cuda_memory_gib(env.cluster.gpu)
    usable = per_gpu * memory_utilization(env)
    rope = arch.max_position_embeddings * arch.head_dim * nbytes
    weights = (arch.parameters_billions * 1e9 * nbytes / tp + rope) / GIB
    slot = LORA_ALLOCATION_FACTOR * lora_slot_bytes(arch, max_rank, nbytes, tp) / GIB
    lora = max_loras * slot
    batched = vllm.max_num_batched_tokens or default_batched_tokens(per_gpu)
    per_token = (3 * arch.intermediate_size / tp + 4 * arch.hidden_size) * nbytes
    activation = ACTIVATION_FACTOR * batched * per_token / GIB
    captured = cuda_graphs(vllm.extra_args, vllm.max_num_seqs, batched, max_loras, tp)
    graphs = captured.gib(arch, nbytes)
    kv_cache = max(usable - weights - lora - activation - NON_TORCH_GIB, 0.0)
    kv_per_token = 2 * arch.num_hidden_layers * kv_heads_per_gpu(arch, tp) * arch.head_dim * nbytes
    blocks = int(kv_cache * GIB // (kv_per_token * KV_BLOCK_TOKENS))
    return MemoryEstimate(per_gpu * tp, usable * tp, weights * tp, lora * tp, slot * tp, activation * tp,
                          NON_TORCH_GIB * tp, graphs * tp, kv_cache * tp, kv_per_token * tp,
                          blocks * KV_BLOCK_TOKENS, max_model_len, batched, CUDA_CONTEXT_GIB * tp, tp, captured)
