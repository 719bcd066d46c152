#!/usr/bin/env python3
"""Build a Llama-3.1-8B-shaped model with random weights and four PEFT-format LoRA adapters.

    python3 build_model.py OUT KITCHEN_ROOT [--no-weights]

OUT/base: config.json (the real Llama-3.1-8B config: hidden 4096, 32 layers, 32 heads,
8 KV heads, intermediate 14336, vocab 128256, bf16, llama3 RoPE), 4 safetensors shards of
random bf16 weights (std 0.02, norms 1) generated on the GPU, generation_config.json and a
tokenizer.  The tokenizer is the project's offline one (tests/support/tiny_model.py:
a byte-level BPE trained on a built-in corpus) padded with plain tokens " zq<i>" to
128256 entries, so that every id the model can emit decodes to text; no merge produces a
padding token, so encoding is unchanged.

OUT/adapters/{faq,summarise,classify,noop}: adapter_config.json written by peft's
LoraConfig.save_pretrained and adapter_model.safetensors with peft's key names
(base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, ...), ranks 8/16/32/8 on
q,k,v,o,gate,up,down.  A and B are random (PEFT would start B at zero) so that
(alpha/r)·B·A has the spread of the base weights; noop is all zeros.
No downloads; deterministic for fixed seeds.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(sys.argv[1])
KITCHEN = Path(sys.argv[2])
WEIGHTS = "--no-weights" not in sys.argv
sys.path.insert(0, str(KITCHEN))
from tests.support import tiny_model as tm  # noqa: E402

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
# name -> (rank, alpha, seed, zero)
ADAPTERS = {"faq": (8, 16, 11, False), "summarise": (16, 32, 12, False), "classify": (32, 32, 13, False),
            "noop": (8, 16, 14, True)}


def padded_tokenizer(size: int):
    from tokenizers import Tokenizer

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


def build_base(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    padded = padded_tokenizer(CONFIG["vocab_size"])
    tm._train_tokenizer = lambda _size: padded  # reuse the project's save (config, special tokens)
    n = tm._save_tokenizer(out, CONFIG["vocab_size"], CONFIG["max_position_embeddings"])
    assert n == CONFIG["vocab_size"], n
    canon(out / "config.json", CONFIG)
    canon(out / "generation_config.json", {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})
    if not WEIGHTS:
        return
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen, device="cuda", dtype=torch.float32).mul_(INIT_STD).to(torch.bfloat16)

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n, device="cuda", dtype=torch.bfloat16)

    per_shard = math.ceil(L / SHARDS)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(SHARDS):
        t0 = time.perf_counter()
        state: dict[str, torch.Tensor] = {}
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


def build_adapter(out: Path, rank: int, alpha: int, seed: int, zero: bool) -> None:
    from peft import LoraConfig

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    LoraConfig(r=rank, lora_alpha=alpha, target_modules=sorted(MODULES), lora_dropout=0.0, bias="none",
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
    print(f"adapter {out.name}: rank {rank}, alpha {alpha}, {'zero' if zero else 'random'}, "
          f"{size / 2**20:.1f} MiB", flush=True)


def main() -> None:
    t0 = time.perf_counter()
    build_base(OUT / "base")
    for name, (rank, alpha, seed, zero) in ADAPTERS.items():
        build_adapter(OUT / "adapters" / name, rank, alpha, seed, zero)
    print(f"built in {time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
