#!/usr/bin/env python3
"""Build a Llama-3.1-8B-shaped model with random weights and four PEFT-format LoRA adapters,
where the rendered InferenceService of the `h200` environment mounts them.

    python3 build_model.py OUT KITCHEN_ROOT [--no-weights] [--catalog DIR] [--env NAME]
    python3 build_model.py --layout KITCHEN_ROOT [--catalog DIR] [--env NAME]   # print the paths, build nothing

OUT stands for KServe's model mount: the recipe links /mnt/models -> OUT (run_h200.sh), and
every path is the one `kitchen plan` gives the InferenceService of the catalog (default:
example-catalog/ beside this file), relative to that mount.  Nothing here spells a path:
`layout` asks kitchen's planner, so the recipe writes what `kitchen render` loads (each
adapter under its served name, `<flavor>-<version>`).

the base (`--model`): config.json (the real Llama-3.1-8B config: hidden 4096, 32 layers,
32 heads, 8 KV heads, intermediate 14336, vocab 128256, bf16, llama3 RoPE), 4 safetensors
shards of random bf16 weights (std 0.02, norms 1) generated on the GPU,
generation_config.json and a tokenizer.  The tokenizer is the project's offline one
(tests/support/tiny_model.py: a byte-level BPE trained on a built-in corpus) padded with
plain tokens " zq<i>" to 128256 entries, so that every id the model can emit decodes to
text; no merge produces a padding token, so encoding is unchanged.

each adapter (`--lora-modules`, one per flavor version): adapter_config.json written by
peft's LoraConfig.save_pretrained and adapter_model.safetensors with peft's key names
(base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, ...), the flavor's rank
and alpha (faq 8, summarise 16, classify 32, noop 8) on q,k,v,o,gate,up,down.  A and B are
random (PEFT would start B at zero) so that (alpha/r)·B·A has the spread of the base
weights; noop is all zeros.
No downloads; deterministic for fixed seeds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "example-catalog"
ENV = "h200"
CONFIG = {  # meta-llama/Llama-3.1-8B-Instruct's config.json, with the offline tokenizer's special ids
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 128256,
}
INIT_STD = 0.02
SHARDS = 4
H, I, L = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["num_hidden_layers"]  # noqa: E741
Q = CONFIG["num_attention_heads"] * CONFIG["head_dim"]
KV = CONFIG["num_key_value_heads"] * CONFIG["head_dim"]
# module -> (parent, in_features, out_features)
MODULES = {"q_proj": ("self_attn", H, Q), "k_proj": ("self_attn", H, KV), "v_proj": ("self_attn", H, KV),
           "o_proj": ("self_attn", Q, H), "gate_proj": ("mlp", H, I), "up_proj": ("mlp", H, I),
           "down_proj": ("mlp", I, H)}
# flavor name -> (seed, all zeros); rank and alpha are the catalog's
WEIGHTS_OF = {"faq": (11, False), "summarise": (12, False), "classify": (13, False), "noop": (14, True)}


@dataclass(frozen=True)
class Adapter:
    path: PurePosixPath  # where the rendered InferenceService mounts it
    flavor: str
    rank: int
    alpha: float


@dataclass(frozen=True)
class Layout:
    """What the rendered InferenceService reads, as the planner gives it."""

    mount: PurePosixPath  # the folder OUT stands for (/mnt/models)
    base: PurePosixPath
    adapters: tuple[Adapter, ...]

    def local(self, out: Path, path: PurePosixPath) -> Path:
        return out / path.relative_to(self.mount)


def layout(catalog: Path = CATALOG, env: str = ENV) -> Layout:
    from kitchen_gitops import pipeline
    from kitchen_gitops.plan import ADAPTER_MOUNT, BASE_MOUNT

    outcome = pipeline.plan(catalog, [env])
    if not outcome.ok:
        raise SystemExit(f"{catalog}: kitchen plan failed: " + "; ".join(f.message for f in outcome.findings))
    services = outcome.plans[env].services
    if len(services) != 1:
        raise SystemExit(f"{catalog}: expected one InferenceService in {env}, the plan has {len(services)}")
    svc = services[0]
    mount = PurePosixPath(os.path.commonpath([BASE_MOUNT, ADAPTER_MOUNT]))
    adapters = tuple(Adapter(PurePosixPath(m.path), m.flavor.name, m.flavor.rank, m.flavor.alpha)
                     for m in svc.lora_modules)  # aliases serve these same folders
    return Layout(mount, PurePosixPath(svc.vllm.flags()["--model"] or BASE_MOUNT), adapters)


def padded_tokenizer(size: int) -> Any:
    from tokenizers import Tokenizer

    from tests.support import tiny_model as tm

    tok = tm._train_tokenizer(512)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(len(vocab))), "trained ids are not contiguous"
    i = 0
    while len(vocab) < size:
        piece = f"\u0120zq{i}"  # byte-level for " zq<i>"
        if piece not in vocab:
            vocab[piece] = len(vocab)
        i += 1
    return Tokenizer.from_str(json.dumps(data))


def canon(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_base(out: Path, weights: bool) -> None:
    import torch
    from safetensors.torch import save_file

    from tests.support import tiny_model as tm

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    padded = padded_tokenizer(CONFIG["vocab_size"])
    tm._train_tokenizer = lambda _size: padded  # reuse the project's save (config, special tokens)
    n = tm._save_tokenizer(out, CONFIG["vocab_size"], CONFIG["max_position_embeddings"])
    assert n == CONFIG["vocab_size"], n
    canon(out / "config.json", CONFIG)
    canon(out / "generation_config.json", {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})
    if not weights:
        return
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape: int) -> Any:
        return torch.randn(shape, generator=gen, device="cuda", dtype=torch.float32).mul_(INIT_STD).to(torch.bfloat16)

    def ones(n: int) -> Any:
        return torch.ones(n, device="cuda", dtype=torch.bfloat16)

    per_shard = math.ceil(L / SHARDS)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(SHARDS):
        t0 = time.perf_counter()
        state: dict[str, Any] = {}
        if s == 0:
            state["model.embed_tokens.weight"] = rnd(CONFIG["vocab_size"], H)
        for layer in range(s * per_shard, min(L, (s + 1) * per_shard)):
            p = f"model.layers.{layer}"
            for m, (parent, fin, fout) in MODULES.items():
                state[f"{p}.{parent}.{m}.weight"] = rnd(fout, fin)
            state[f"{p}.input_layernorm.weight"] = ones(H)
            state[f"{p}.post_attention_layernorm.weight"] = ones(H)
        if s == SHARDS - 1:
            state["model.norm.weight"] = ones(H)
            state["lm_head.weight"] = rnd(CONFIG["vocab_size"], H)
        fname = f"model-{s + 1:05d}-of-{SHARDS:05d}.safetensors"
        cpu = {k: v.cpu() for k, v in state.items()}
        del state
        save_file(cpu, str(out / fname), {"format": "pt"})
        size = sum(v.numel() * v.element_size() for v in cpu.values())
        total += size
        weight_map.update(dict.fromkeys(cpu, fname))
        print(f"  {fname}: {len(cpu)} tensors, {size / 2**30:.2f} GiB in {time.perf_counter() - t0:.1f}s",
              flush=True)
        del cpu
    params = total // 2
    canon(out / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    print(f"base: {params / 1e9:.3f} B parameters, {total / 2**30:.2f} GiB", flush=True)


def build_adapter(out: Path, rank: int, alpha: float, seed: int, zero: bool) -> None:
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    whole = int(alpha) if alpha == int(alpha) else alpha  # 16, as PEFT writes an integer alpha
    LoraConfig(r=rank, lora_alpha=whole, target_modules=sorted(MODULES), lora_dropout=0.0, bias="none",
               task_type="CAUSAL_LM", base_model_name_or_path="llama-3-1-8b-instruct").save_pretrained(str(out))
    cfg = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    cfg["target_modules"] = sorted(cfg["target_modules"])
    canon(out / "adapter_config.json", cfg)
    # per-entry std of (alpha/r)·B·A is sA·sB·sqrt(r)·alpha/r; aim at the base weights' std
    s = (INIT_STD * rank / (alpha * rank**0.5)) ** 0.5
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(L):
        for m, (parent, fin, fout) in MODULES.items():
            p = f"base_model.model.model.layers.{layer}.{parent}.{m}"
            a = torch.zeros(rank, fin) if zero else torch.randn(rank, fin, generator=gen) * s
            b = torch.zeros(fout, rank) if zero else torch.randn(fout, rank, generator=gen) * s
            tensors[f"{p}.lora_A.weight"] = a.to(torch.bfloat16).contiguous()
            tensors[f"{p}.lora_B.weight"] = b.to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "adapter_model.safetensors"), {"format": "pt"})
    size = sum(v.numel() * 2 for v in tensors.values())
    print(f"adapter {out}: rank {rank}, alpha {alpha}, {'zero' if zero else 'random'}, "
          f"{size / 2**20:.1f} MiB", flush=True)


def option(args: list[str], name: str, default: str) -> str:
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return default


def main(argv: list[str]) -> None:
    args = list(argv)
    catalog = Path(option(args, "--catalog", str(CATALOG)))
    env = option(args, "--env", ENV)
    if args[0] == "--layout":
        sys.path.insert(0, str(Path(args[1])))
        plan = layout(catalog, env)
        print(json.dumps({"base": str(plan.base), "adapters": {str(a.path): a.flavor for a in plan.adapters}},
                         indent=1))
        return
    out, kitchen = Path(args[0]), Path(args[1])
    sys.path.insert(0, str(kitchen))
    plan = layout(catalog, env)
    t0 = time.perf_counter()
    build_base(plan.local(out, plan.base), weights="--no-weights" not in args)
    for a in plan.adapters:
        seed, zero = WEIGHTS_OF[a.flavor]
        build_adapter(plan.local(out, a.path), a.rank, a.alpha, seed, zero)
    print(f"built in {time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
