"""Plan each environment: which InferenceService serves which base with which flavors.

Every vLLM argument is computed from the catalog (ranks, adapter counts, architecture
facts, the environment's GPUs and defaults); the plan also estimates whether the model,
the LoRA slots and a full-length KV cache fit in the GPU memory of one replica.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import vllm_release
from .findings import Finding, Location, ResourceRef, Severity
from .model import (
    LLMISVC_CONTROLLER_FLAGS,
    VLLM_LORA_RANKS,
    Architecture,
    Base,
    Catalog,
    Environment,
    Flavor,
    Gpu,
    Tenant,
)
from .rules import (
    PLAN_CLUSTER_GPU_CAPACITY,
    PLAN_EVALUATION_SETS_SIZE,
    PLAN_GPU_MEMORY,
    PLAN_VLLM_ARGS,
    PLAN_VLLM_OWNED_FLAG,
)
from .scaling import Scaling, resolve
from .vllm_release import VllmRelease

# The port vLLM serves on inside the predictor (probes, scrape target, network policies).
PREDICTOR_PORT = 8080
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

BASE_MOUNT = "/mnt/models/base"
ADAPTER_MOUNT = "/mnt/models/adapters"
ISVC_API_VERSION = "serving.kserve.io/v1beta1"
LLMISVC_API_VERSION = "serving.kserve.io/v1alpha2"
API_VERSIONS = {"InferenceService": ISVC_API_VERSION, "LLMInferenceService": LLMISVC_API_VERSION}
# The port vLLM serves on in an LLMInferenceService's workload (KServe's LLMInferenceServiceConfig).
LLMISVC_PORT = 8000
OFFLINE_ENV = (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("VLLM_NO_USAGE_STATS", "1"))
# Every vLLM option kitchen itself writes (plan_service, runtime_args), as the admission
# policies allow them on a serving container beside the allow-list of extra_args.
KITCHEN_FLAGS = ("--model", "--served-model-name", "--dtype", "--max-model-len", "--tensor-parallel-size",
                 "--gpu-memory-utilization", "--max-num-seqs", "--max-num-batched-tokens", "--trust-remote-code",
                 "--enable-lora", "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--lora-modules", "--port")


# vLLM's --gpu-memory-utilization where neither the environment nor a release table says
FALLBACK_MEMORY_UTILIZATION = 0.9


def round_lora_rank(rank: int, ranks: tuple[int, ...] = VLLM_LORA_RANKS) -> int:
    """The smallest rank vLLM (the release that reads ``ranks``) accepts that is at least ``rank``."""
    for allowed in ranks:
        if allowed >= rank:
            return allowed
    raise ValueError(f"rank {rank} exceeds vLLM's largest --max-lora-rank {ranks[-1]}")


def environment_release(env: Environment) -> VllmRelease | None:
    """The release the environment's image runs (None: one kitchen has no table for, which
    validation reports)."""
    return vllm_release.release(env.images.vllm_version)


def memory_utilization(env: Environment) -> float:
    """``--gpu-memory-utilization``: the environment's, else the declared release's default."""
    declared = env.serving.vllm.gpu_memory_utilization
    if declared is not None:
        return declared
    release = environment_release(env)
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


@dataclass(frozen=True)
class LoraModule:
    """One adapter name vLLM serves: a flavor version under its served name, or an alias
    (``alias=True``) that serves the same files under a stable name."""

    name: str
    path: str
    uri: str
    flavor: Flavor
    alias: bool = False

    def as_arg(self, base_model_name: str) -> str:
        return json.dumps({"name": self.name, "path": self.path, "base_model_name": base_model_name},
                          separators=(",", ":"))


ArgValue = str | tuple[str, ...] | None


def _normalise_flag(flag: str) -> str:
    """vLLM's parser reads ``--max_loras`` as ``--max-loras``."""
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


@dataclass(frozen=True)
class VllmArgs:
    """vLLM's command line, structured: the computed options (flag → value; None for a
    switch, a tuple for a flag that takes several values) and the environment's
    ``extra_args`` as written.  :meth:`argv` writes it at the edge (templates, the
    conformance job); :meth:`flags` reads it as vLLM's parser does (``_`` as ``-``,
    ``--flag=value`` and ``--flag value``, the last one wins)."""

    options: tuple[tuple[str, ArgValue], ...]
    extra: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        out: list[str] = []
        for flag, value in self.options:
            if value is None:
                out.append(flag)
            elif isinstance(value, tuple):
                out += [flag, *value]
            else:
                out.append(f"{flag}={value}")
        return out + list(self.extra)

    def flags(self) -> dict[str, ArgValue]:
        out: dict[str, ArgValue] = {}
        for flag, value in self.options:
            out[_normalise_flag(flag)] = value
        last: str | None = None
        for token in self.extra:
            if token.startswith("-") and len(token) > 1 and not _is_number(token):
                flag, eq, value = token.partition("=")
                last = _normalise_flag(flag)
                out[last] = value if eq else None
                if eq:
                    last = None
            elif last is not None:  # the value of `--flag value`
                previous = out[last]
                out[last] = token if previous is None else (
                    (*previous, token) if isinstance(previous, tuple) else (previous, token))
        return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ServicePlan:
    """One InferenceService: a tenant's base model with that tenant's flavors of it."""

    environment: Environment
    tenant: Tenant
    base: Base
    flavors: tuple[Flavor, ...]
    name: str
    namespace: str
    served_model_name: str
    max_loras: int
    max_lora_rank: int
    max_cpu_loras: int
    max_model_len: int
    tensor_parallel_size: int
    replicas: int
    memory: MemoryEstimate
    lora_modules: tuple[LoraModule, ...]
    vllm: VllmArgs
    env_vars: tuple[tuple[str, str], ...]
    aliases: tuple[LoraModule, ...] = ()
    scaling: Scaling | None = None  # None: a fixed `replicas`

    @property
    def adapters(self) -> tuple[LoraModule, ...]:
        """Every adapter name served: the flavor versions, then the aliases."""
        return self.lora_modules + self.aliases

    @property
    def args(self) -> tuple[str, ...]:
        """The command line as the template writes it."""
        return tuple(self.vllm.argv())

    @property
    def kind(self) -> str:
        return self.environment.serving.api

    @property
    def api_version(self) -> str:
        return API_VERSIONS[self.kind]

    @property
    def workload_args(self) -> tuple[str, ...]:
        """The arguments an LLMInferenceService's workload container adds to what the
        controller sets (``LLMISVC_CONTROLLER_FLAGS``): the computed options the spec does not
        carry, and the environment's ``extra_args`` as written."""
        kept = VllmArgs(tuple((f, v) for f, v in self.vllm.options
                              if _normalise_flag(f) not in LLMISVC_CONTROLLER_FLAGS), self.vllm.extra)
        return tuple(kept.argv())

    @property
    def gpus(self) -> int:
        """GPUs at the replicas always running (``min`` when it autoscales)."""
        return self.tensor_parallel_size * self.replicas

    @property
    def max_replicas(self) -> int:
        return self.scaling.max if self.scaling is not None else self.replicas

    @property
    def gpus_max(self) -> int:
        """GPUs at full scale: what quotas and the cluster must hold."""
        return self.tensor_parallel_size * self.max_replicas

    @property
    def runtime_name(self) -> str:
        return f"vllm-{self.name}"

    @property
    def storage_uris(self) -> list[dict[str, str]]:
        out = [{"uri": self.base.source, "mountPath": BASE_MOUNT}]
        out += [{"uri": m.uri, "mountPath": m.path} for m in self.lora_modules]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment.name,
            "tenant": self.tenant.name,
            "namespace": self.namespace,
            "inference_service": self.name,
            "kind": self.kind,
            "api_version": self.api_version,
            "runtime": self.runtime_name,
            "base": self.base.ref,
            "served_model_name": self.served_model_name,
            "flavors": [f.ref for f in self.flavors],
            "adapters": [{"name": m.name, "flavor": m.flavor.ref, "alias": m.alias} for m in self.adapters],
            "max_adapter_rank": max((f.rank for f in self.flavors), default=0),
            "max_lora_rank": self.max_lora_rank,
            "max_loras": self.max_loras,
            "max_cpu_loras": self.max_cpu_loras,
            "max_model_len": self.max_model_len,
            "tensor_parallel_size": self.tensor_parallel_size,
            "replicas": self.replicas,
            "gpus": self.gpus,
            "max_replicas": self.max_replicas,
            "gpus_max": self.gpus_max,
            "autoscaling": self.scaling.as_dict() if self.scaling is not None else None,
            "memory": self.memory.as_dict(),
            "args": list(self.args),
            "vllm_args": {flag: list(v) if isinstance(v, tuple) else v for flag, v in self.vllm.flags().items()},
            "env": dict(self.env_vars),
            "storage_uris": self.storage_uris,
        }


@dataclass
class TenantPlan:
    tenant: Tenant
    namespace: str
    gpu_quota: int
    services: list[ServicePlan] = field(default_factory=list)


@dataclass
class EnvironmentPlan:
    environment: Environment
    tenants: list[TenantPlan] = field(default_factory=list)

    @property
    def services(self) -> list[ServicePlan]:
        return [s for t in self.tenants for s in t.services]

    def as_dict(self) -> dict[str, Any]:
        env = self.environment
        return {
            "environment": env.name,
            "vllm_release": env.images.vllm_version,  # the arguments are written for it
            "gpu": {"product": env.cluster.gpu.product, "memory_gib": env.cluster.gpu.memory_gib,
                    "total": env.cluster.gpu.total},
            "gpus_planned": sum(s.gpus for s in self.services),
            "gpus_planned_max": sum(s.gpus_max for s in self.services),
            "gpu_quota_total": sum(t.gpu_quota for t in self.tenants),
            "tenants": [{"tenant": t.tenant.name, "namespace": t.namespace, "gpu_quota": t.gpu_quota,
                         "services": [s.as_dict() for s in t.services]} for t in self.tenants],
        }


def _choose_tp(base: Base, env: Environment, max_loras: int, max_rank: int,
               max_model_len: int) -> tuple[int, MemoryEstimate]:
    """Smallest power-of-two GPU count per replica that fits, divides the heads, fits a node."""
    gpu = env.cluster.gpu
    heads = base.architecture.num_attention_heads
    tp = 1
    while tp < env.serving.min_gpus_per_replica:
        tp *= 2
    candidates = []
    while tp <= gpu.per_node:
        if heads % tp == 0:
            candidates.append(tp)
        tp *= 2
    if not candidates:
        candidates = [max(1, env.serving.min_gpus_per_replica)]
    for tp in candidates:
        est = estimate_memory(base, env, tp, max_loras, max_rank, max_model_len)
        if est.fits:
            return tp, est
    tp = candidates[-1]
    return tp, estimate_memory(base, env, tp, max_loras, max_rank, max_model_len)


def release_options(options: list[tuple[str, ArgValue]], release: VllmRelease | None) -> list[tuple[str, ArgValue]]:
    """The options the declared release reads: each under the spelling that release's parser
    knows it by (vLLM renames keep the old spelling as an alias or drop it), an option the
    release lacks left out — vLLM's own behaviour then applies."""
    if release is None:
        return options
    out: list[tuple[str, ArgValue]] = []
    for flag, value in options:
        # a renamed flag keeps its destination (the config field it sets)
        option = release.option(flag) or release.options.get(flag.lstrip("-").replace("-", "_"))
        if option is not None:
            out.append((flag if flag in option.flags else option.flag, value))
    return out


def plan_service(env: Environment, tenant: Tenant, base: Base, flavors: list[Flavor],
                 replicas: int, aliases: dict[str, str] | None = None,
                 scaling: Scaling | None = None) -> ServicePlan:
    """``aliases``: alias name → the ``name@version`` of one of ``flavors`` it serves."""
    vllm = env.serving.vllm
    release = environment_release(env)
    flavors = sorted(flavors, key=lambda f: (f.name, f.version))
    modules = tuple(LoraModule(f.served_name, f"{ADAPTER_MOUNT}/{f.served_name}", f.source, f)
                    for f in flavors)
    by_ref = {m.flavor.ref: m for m in modules}
    alias_modules = tuple(LoraModule(a, by_ref[ref].path, by_ref[ref].uri, by_ref[ref].flavor, alias=True)
                          for a, ref in sorted((aliases or {}).items()) if ref in by_ref)
    # vLLM loads an alias as an adapter of its own (its own id, slot and cache entries)
    names = len(modules) + len(alias_modules)
    max_rank = round_lora_rank(max((f.rank for f in flavors), default=1),
                               release.lora_ranks if release is not None else VLLM_LORA_RANKS)
    max_loras = max(1, min(names, vllm.max_loras))
    max_cpu_loras = max(max_loras, names, vllm.max_cpu_loras or 0)
    max_model_len = min(vllm.max_model_len, base.architecture.max_position_embeddings)
    tp, memory = _choose_tp(base, env, max_loras, max_rank, max_model_len)
    served = base.serve_name
    options: list[tuple[str, ArgValue]] = [
        ("--model", BASE_MOUNT),
        ("--served-model-name", served),
        ("--dtype", base.architecture.torch_dtype),
        ("--max-model-len", str(max_model_len)),
        ("--tensor-parallel-size", str(tp)),
        ("--gpu-memory-utilization", str(memory_utilization(env))),
        ("--max-num-seqs", str(vllm.max_num_seqs)),
    ]
    if vllm.max_num_batched_tokens is not None:
        options.append(("--max-num-batched-tokens", str(vllm.max_num_batched_tokens)))
    if base.trust_remote_code:
        options.append(("--trust-remote-code", None))
    if modules:
        # --max-loras and --max-lora-rank always written: KServe passes neither unless the
        # spec sets it, and the release's defaults (1 and 16) would apply
        options += [
            ("--enable-lora", None),
            ("--max-loras", str(max_loras)),
            ("--max-lora-rank", str(max_rank)),
            ("--max-cpu-loras", str(max_cpu_loras)),
            ("--lora-modules", tuple(m.as_arg(served) for m in modules + alias_modules)),
        ]
    return ServicePlan(
        environment=env, tenant=tenant, base=base, flavors=tuple(flavors), name=base.name,
        namespace=tenant.ns, served_model_name=served, max_loras=max_loras, max_lora_rank=max_rank,
        max_cpu_loras=max_cpu_loras, max_model_len=max_model_len, tensor_parallel_size=tp,
        replicas=replicas, memory=memory, lora_modules=modules,
        vllm=VllmArgs(tuple(release_options(options, release)), tuple(vllm.extra_args)),
        env_vars=OFFLINE_ENV, aliases=alias_modules, scaling=scaling,
    )


def plan_environment(catalog: Catalog, env_name: str) -> EnvironmentPlan:
    """Plan one environment of a catalog that validated without errors."""
    env = catalog.environments[env_name]
    plan = EnvironmentPlan(env)
    for tenant_name in sorted(catalog.tenants):
        tenant = catalog.tenants[tenant_name]
        tenv = tenant.environments.get(env_name)
        if tenv is None:
            continue
        tplan = TenantPlan(tenant, tenant.ns, tenv.gpu_quota)
        by_base: dict[str, list[Flavor]] = {}
        for ref in tenv.flavors:
            flavor = catalog.flavors[str(ref)]
            by_base.setdefault(str(flavor.base), []).append(flavor)
        scaling = resolve(env.name, env.serving.autoscaling, tenv.autoscaling, tenv.replicas, env.serving.replicas)
        replicas = env.serving.replicas if tenv.replicas is None else tenv.replicas
        if scaling is not None:
            replicas = scaling.min
        aliases = {a: str(ref) for a, ref in tenv.aliases.items()}
        for base_ref in sorted(by_base):
            base = catalog.bases[base_ref]
            tplan.services.append(plan_service(env, tenant, base, by_base[base_ref], replicas, aliases, scaling))
        plan.tenants.append(tplan)
    return plan


def plan_findings(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    """What the plan itself can tell: a command line the declared vLLM would refuse, a
    replica that does not fit its GPUs."""
    out = vllm_args_findings(catalog, plan)
    env = plan.environment
    for svc in plan.services:
        if not svc.memory.fits:
            m = svc.memory
            out.append(Finding(
                PLAN_GPU_MEMORY, Severity.ERROR,
                f"{svc.base.ref} for tenant {svc.tenant.name} in {env.name} does not fit "
                f"{svc.tensor_parallel_size}× {env.cluster.gpu.product}: weights {m.weights_gib:.1f} GiB "
                f"+ LoRA slots {m.lora_gib:.2f} GiB + activations and runtime "
                f"{m.overhead_gib:.1f} GiB leave room for {m.kv_tokens} KV tokens"
                + ("" if m.serving_gib <= m.gpu_memory_gib else
                   f"; serving would use {m.serving_gib:.1f} GiB with CUDA graphs and contexts"
                   f" of {m.gpu_memory_gib:.1f}"),
                _tenant_env_location(catalog, svc.tenant, env.name),
                resource=ResourceRef(svc.kind, svc.name, svc.namespace, svc.api_version),
                expected=f"KV cache for at least --max-model-len={svc.max_model_len} tokens",
                actual=f"{m.kv_tokens} KV tokens", environment=env.name, subject=f"Base/{svc.base.ref}",
            ))
    out += _evaluation_sets_size(catalog, plan)
    return out


def max_location(catalog: Catalog, svc: ServicePlan) -> Location:
    """The catalog line that sets a service's full scale: its ``max`` (the tenant's or its
    environment's), else the tenant's fixed replicas (or where it would write them)."""
    if svc.scaling is not None:
        key = svc.tenant.name if svc.scaling.max_from == "Tenant" else svc.environment.name
        return catalog.location(svc.scaling.max_from, key, tuple(svc.scaling.max_field.split(".")))
    return catalog.location("Tenant", svc.tenant.name, ("environments", svc.environment.name, "replicas"))


def cluster_findings(catalog: Catalog, plans: dict[str, EnvironmentPlan]) -> list[Finding]:
    """Environments that name one cluster share its GPUs: at full scale (every tenant at
    ``max``) they fit it together.  One environment alone is the policy's (policy.gpu-capacity)."""
    clusters: dict[str, list[str]] = {}
    for name, env in sorted(catalog.environments.items()):
        clusters.setdefault(env.cluster.name, []).append(name)
    out: list[Finding] = []
    for cluster, names in sorted(clusters.items()):
        if len(names) < 2 or not any(n in plans for n in names):
            continue
        services = [s for n in names for s in (plans.get(n) or plan_environment(catalog, n)).services]
        total = min(catalog.environments[n].cluster.gpu.total for n in names)
        planned = sum(s.gpus_max for s in services)
        if planned <= total or not services:
            continue
        top = max(services, key=lambda s: (s.gpus_max, s.scaling is not None, s.environment.name, s.namespace))
        shares = ", ".join(f"{n} {sum(s.gpus_max for s in services if s.environment.name == n)}" for n in names)
        out.append(Finding(
            PLAN_CLUSTER_GPU_CAPACITY, Severity.ERROR,
            f"environments {', '.join(names)} share cluster {cluster} ({total} GPUs) and plan {planned} GPUs "
            f"at full scale ({shares}); the largest, {top.namespace}/{top.name} in {top.environment.name}, "
            f"at {top.max_replicas} replica(s) × {top.tensor_parallel_size} GPU(s)",
            max_location(catalog, top), resource=ResourceRef(top.kind, top.name, top.namespace, top.api_version),
            expected=f"at most {total} GPUs at max replicas over every environment of cluster {cluster}",
            actual=f"{planned} GPUs", environment=top.environment.name, subject=f"Tenant/{top.tenant.name}"))
    return out


# The evaluation sets of the repository travel in the conformance ConfigMap, which
# Kubernetes holds to 1 MiB with everything else; JSON escaping adds a fifth or so.
MAX_CONFIGMAP_SETS_BYTES = 640 << 10


def _evaluation_sets_size(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    sizes: dict[str, tuple[int, str]] = {}  # path -> (bytes, flavor)
    for svc in plan.services:
        for f in svc.flavors:
            ds = f.evaluation.dataset if f.evaluation is not None else None
            if ds is not None and ds.path is not None and ds.path not in sizes:
                try:
                    sizes[ds.path] = ((catalog.root / ds.path).stat().st_size, f.ref)
                except OSError:
                    continue  # validate reports it
    total = sum(n for n, _ in sizes.values())
    if total <= MAX_CONFIGMAP_SETS_BYTES:
        return []
    biggest, (size, ref) = max(sizes.items(), key=lambda kv: (kv[1][0], kv[0]))
    return [Finding(
        PLAN_EVALUATION_SETS_SIZE, Severity.ERROR,
        f"the evaluation sets of the repository served in {plan.environment.name} hold {total >> 10} KiB; "
        f"they travel in the conformance ConfigMap (1 MiB with everything else); the largest is {biggest} "
        f"({size >> 10} KiB, flavor {ref})",
        catalog.location("Flavor", ref, ("evaluation", "dataset", "path"), value=True),
        expected=f"at most {MAX_CONFIGMAP_SETS_BYTES >> 10} KiB of sets in the repository per environment; "
                 "move large sets to S3 (evaluation.dataset.uri)",
        environment=plan.environment.name, subject=f"Flavor/{ref}")]


# The serving runtime's entrypoint: vLLM's OpenAI server, which KServe's InferenceService
# arguments follow.
RUNTIME_COMMAND = ("python", "-m", "vllm.entrypoints.openai.api_server")


def runtime_args() -> tuple[str, ...]:
    """What the ServingRuntime's container passes before the InferenceService's arguments."""
    return (f"--port={PREDICTOR_PORT}",)


def vllm_args_findings(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    """Each InferenceService's whole command line (the runtime's, the computed arguments,
    the environment's ``extra_args``) read by the declared release's parser: a problem in
    ``extra_args`` is reported at its entry, once per environment; one in the computed
    arguments at the environment's vllm_version (kitchen computed them for that release)."""
    env = plan.environment
    release = environment_release(env)
    if release is None:
        return []
    out: dict[tuple[str, str], Finding] = {}
    for svc in plan.services:
        argv = [*runtime_args(), *svc.args]
        boundary = len(argv) - len(svc.vllm.extra)
        for problem in release.check(argv, boundary):
            if problem.index >= boundary:
                location = catalog.location("Environment", env.name,
                                            ("serving", "vllm", "extra_args", problem.index - boundary), value=True)
                what = f"the extra_args of {env.name}"
            else:
                location = catalog.location("Environment", env.name, ("images", "vllm_version"), value=True)
                what = f"the arguments of {svc.namespace}/{svc.name} in {env.name}"
            finding = Finding(
                PLAN_VLLM_ARGS, Severity.ERROR,
                f"vLLM {release.release} would refuse {what}: {problem.message}",
                location, resource=ResourceRef("InferenceService", svc.name, svc.namespace, ISVC_API_VERSION),
                expected=problem.expected, actual=problem.flag, environment=env.name,
                subject=f"Environment/{env.name}")
            out.setdefault((str(location), problem.message), finding)
        owned = {option.dest: i for i, option in release.options_set(argv[:boundary])}
        for i, option in release.options_set(argv[boundary:]):
            if option.dest not in owned and option.dest not in OWNED_DESTS:
                continue
            location = catalog.location("Environment", env.name,
                                        ("serving", "vllm", "extra_args", i), value=True)
            if any(where == str(location) for where, _ in out):
                continue  # refused by the parser already: one finding per entry
            field = OWNED_DESTS.get(option.dest, "")
            message = (f"extra_args of {env.name} set {option.flag}, which kitchen writes itself"
                       + (f" from {field}" if field else "")
                       + (f" ({argv[owned[option.dest]]} for {svc.namespace}/{svc.name})"
                          if option.dest in owned else "")
                       + ": vLLM would read the later one, the checks the one kitchen wrote")
            finding = Finding(
                PLAN_VLLM_OWNED_FLAG, Severity.ERROR, message, location,
                resource=ResourceRef("InferenceService", svc.name, svc.namespace, ISVC_API_VERSION),
                expected=(f"{field}, not {option.flag} in extra_args" if field
                          else f"extra_args without {option.flag}"),
                actual=argv[boundary + i], environment=env.name, subject=f"Environment/{env.name}")
            out.setdefault((str(location), "owned"), finding)
    return list(out.values())


# vLLM options kitchen writes from the catalog, whether or not a given InferenceService
# needs them (an adapter list where it serves none is as much a smuggled adapter), with
# the field that sets each; extra_args cannot set them a second time.
OWNED_DESTS: dict[str, str] = {
    "model": "the base's source",
    "served_model_name": "the base's name",
    "lora_modules": "the tenants' flavors",
    "enable_lora": "the tenants' flavors",
    "max_loras": "serving.vllm.max_loras",
    "max_lora_rank": "serving.vllm.max_lora_rank",
    "max_cpu_loras": "serving.vllm.max_loras",
    "port": "the serving runtime",
    "host": "the serving runtime (every address: where the probes and the router reach it)",
    "tensor_parallel_size": "the base's GPUs",
    "gpu_memory_utilization": "serving.vllm.gpu_memory_utilization",
    "max_model_len": "serving.vllm.max_model_len",
    "max_num_seqs": "serving.vllm.max_num_seqs",
    "max_num_batched_tokens": "serving.vllm.max_num_batched_tokens",
    "dtype": "the base's dtype",
}


def _tenant_env_location(catalog: Catalog, tenant: Tenant, env_name: str) -> Location:
    return catalog.location("Tenant", tenant.name, ("environments", env_name))
