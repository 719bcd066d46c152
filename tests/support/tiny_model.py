"""Tiny Llama base models and real PEFT LoRA adapters, built locally (no downloads).

Everything is deterministic for fixed arguments: the tokenizer is trained on a built-in
corpus, weights come from a seeded generator, and files are written with stable content.

    base = build_tiny_base(tmp / "base")
    faq = build_lora_adapter(base, tmp / "faq", rank=8, seed=1, base_name_or_path="tiny-llama")
    kit = build_kit(tmp / "kit")   # base + 4 adapters + a second, smaller base and its adapter

The heavy imports (torch, transformers, peft, tokenizers) happen inside the functions so
that importing this module is cheap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "KIT_VERSION",
    "build_kit",
    "build_lora_adapter",
    "build_stock_peft_adapter",
    "build_tiny_base",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

CORPUS = """\
The kitchen serves many flavors from one base model.
Each flavor is a small LoRA adapter trained for one task: answering questions,
summarising documents, classifying tickets, or translating short notes.
A tenant may use the flavors it was granted, in the environments it runs in.
The platform team owns the environments, the templates and the runtime images.
Security owns the policies and the approvals; every change goes through a pull request.
Question: what is the capital of France? Answer: Paris is the capital of France.
Question: how many days are in a week? Answer: there are seven days in a week.
Summarise: the meeting moved the release to Friday because the tests were red.
Summary: release moved to Friday.
Classify: my invoice is wrong and I was charged twice. Label: billing.
Classify: the app crashes when I open settings. Label: bug.
Hello, how can I help you today? I would like to order a pizza with tomatoes and basil.
Once upon a time a cook made soup with carrots, onions, salt and pepper.
The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } < > : ; , . ! ?
Sovereign AI keeps data and models inside the walls of the enterprise.
GPUs, nodes, namespaces, quotas, images, digests, checksums, buckets and prompts.
"""

KIT_VERSION = 1


def _canon_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _train_tokenizer(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[BOS, EOS, PAD, UNK, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in CORPUS.splitlines() if line.strip()]
    # repeat so that merge frequencies are well separated; training is deterministic
    tok.train_from_iterator(lines * 4, trainer=trainer)
    return tok


def _save_tokenizer(out: Path, vocab_size: int, max_len: int) -> int:
    from transformers import PreTrainedTokenizerFast

    tok = _train_tokenizer(vocab_size)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=max_len,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    # make the files self-describing and stable whatever transformers version wrote them
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.update(
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": PAD,
            "unk_token": UNK,
            "model_max_length": max_len,
            "chat_template": CHAT_TEMPLATE,
            "add_bos_token": False,
            "add_eos_token": False,
        }
    )
    _canon_json(cfg_path, cfg)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    _canon_json(
        out / "special_tokens_map.json",
        {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK},
    )
    return int(tok.get_vocab_size())


def _save_state_dict(out: Path, state: dict[str, Any], shards: int) -> list[str]:
    from safetensors.torch import save_file

    names = sorted(state)
    meta = {"format": "pt"}
    if shards <= 1:
        save_file({n: state[n].contiguous() for n in names}, str(out / "model.safetensors"), meta)
        return ["model.safetensors"]
    # split in `shards` groups of similar size, keeping sorted order
    sizes = {n: state[n].numel() * state[n].element_size() for n in names}
    total = sum(sizes.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc = 0
    for n in names:
        idx = min(shards - 1, acc * shards // max(total, 1))
        groups[idx].append(n)
        acc += sizes[n]
    groups = [g for g in groups if g]
    files = []
    weight_map = {}
    for i, group in enumerate(groups, start=1):
        fname = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: state[n].contiguous() for n in group}, str(out / fname), meta)
        files.append(fname)
        weight_map.update(dict.fromkeys(group, fname))
    _canon_json(
        out / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )
    return files


def build_tiny_base(
    dir: str | Path,
    *,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 512,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    name: str = "tiny-llama",
    seed: int = 0,
    shards: int = 1,
    dtype: str = "bfloat16",
    init_std: float = 0.08,
) -> Path:
    """Write a random tiny Llama model (config, safetensors, tokenizer) into ``dir``.

    ``hidden_size // heads`` is the head dim; keep it 32/64/80/... for the vLLM CPU
    backend. ``shards > 1`` writes ``model-0000X-of-0000N.safetensors`` plus
    ``model.safetensors.index.json``. ``init_std`` is larger than the usual 0.02 so that
    greedy outputs vary from token to token. Returns the directory.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    head_dim = hidden_size // heads
    if head_dim * heads != hidden_size:
        raise ValueError(f"hidden_size {hidden_size} not divisible by heads {heads}")

    vocab_size = _save_tokenizer(out, vocab, max_position_embeddings)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        initializer_range=init_std,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    gen = torch.Generator().manual_seed(seed)
    torch_dtype = getattr(torch, dtype)
    state: dict[str, Any] = {}
    with torch.no_grad():
        for pname, p in sorted(model.state_dict().items()):
            if pname.endswith("norm.weight"):
                t = torch.ones_like(p)
            else:
                t = torch.randn(p.shape, generator=gen) * init_std
            state[pname] = t.to(torch_dtype)
    _save_state_dict(out, state, shards)

    cfg = config.to_dict()
    cfg.update(
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "torch_dtype": dtype,
            "dtype": dtype,
            "_name_or_path": name,
        }
    )
    cfg.pop("transformers_version", None)
    _canon_json(out / "config.json", cfg)
    gcfg = GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2).to_dict()
    gcfg.pop("transformers_version", None)
    _canon_json(out / "generation_config.json", gcfg)
    return out


def build_lora_adapter(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    rank: int = 8,
    alpha: int = 16,
    target_modules: tuple[str, ...] | list[str] = ("q_proj", "v_proj"),
    seed: int = 1,
    zero: bool = False,
    base_name_or_path: str,
    delta_scale: float = 3.0,
) -> Path:
    """Save a real PEFT LoRA adapter for the base in ``base_dir`` into ``out_dir``.

    Writes ``adapter_config.json`` and ``adapter_model.safetensors`` with
    ``peft.get_peft_model(...).save_pretrained``. The LoRA A and B matrices get random
    weights (PEFT would init B to zero) so that ``(alpha / rank) * B @ A`` has about
    ``delta_scale`` times the spread of the base weights: greedy outputs then differ
    from the base. ``zero=True`` writes all-zero LoRA weights (the adapter is a no-op).
    ``base_name_or_path`` is recorded in ``adapter_config.json``. Returns ``out_dir``.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    base = Path(base_dir)
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    cfg_dict = json.loads((base / "config.json").read_text(encoding="utf-8"))
    config = LlamaConfig.from_pretrained(str(base))
    init_std = float(cfg_dict.get("initializer_range", 0.02))
    torch.manual_seed(seed)
    # the base weights are irrelevant for saving an adapter: a fresh model of the same
    # shape is enough and avoids loading the checkpoint
    model = LlamaForCausalLM(config)
    # a local path: PEFT then reads the base config from disk instead of asking the hub
    model.config._name_or_path = str(base)
    model.name_or_path = str(base)
    lcfg = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=list(target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lcfg)
    # per-entry std of (alpha/r) * B @ A is sA * sB * sqrt(r) * alpha / r
    target = delta_scale * init_std
    s = (target * rank / (alpha * rank**0.5)) ** 0.5
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in sorted(peft_model.named_parameters()):
            if "lora_A" in pname or "lora_B" in pname:
                if zero:
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * s)
    peft_model.save_pretrained(str(out), safe_serialization=True)

    acfg_path = out / "adapter_config.json"
    acfg = json.loads(acfg_path.read_text(encoding="utf-8"))
    acfg["base_model_name_or_path"] = base_name_or_path
    acfg.pop("revision", None)
    # PEFT stores target_modules from a set: sort it so the file is byte-stable
    if isinstance(acfg.get("target_modules"), list):
        acfg["target_modules"] = sorted(acfg["target_modules"])
    _canon_json(acfg_path, acfg)
    (out / "README.md").unlink(missing_ok=True)
    return out


def hub_cache(base_dir: str | Path, cache_dir: str | Path, hub_id: str) -> Path:
    """Lay the base out as the hub client's cache holds a downloaded model
    (``models--org--name/snapshots/<commit>/`` and ``refs/main``), so that
    ``from_pretrained(hub_id, cache_dir=…, local_files_only=True)`` loads it by its hub id
    without a network."""
    commit = "0" * 40
    repo = Path(cache_dir) / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(base_dir, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def build_stock_peft_adapter(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    hub_id: str | None = None,
    cache_dir: str | Path | None = None,
    rank: int = 8,
    alpha: int = 16,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    seed: int = 1,
) -> Path:
    """An adapter exactly as a team gets it from PEFT: the base loaded by its hub id (from
    a hub cache laid out locally in ``cache_dir``) or, without ``hub_id``, from the folder
    ``base_dir``; ``get_peft_model`` with PEFT's own initialisation, and ``save_pretrained``
    — ``adapter_config.json`` untouched, so ``base_model_name_or_path`` is the hub id or the
    local path PEFT recorded."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    torch.manual_seed(seed)
    if hub_id is not None:
        assert cache_dir is not None, "a hub id is resolved from a hub cache"
        hub_cache(base_dir, cache_dir, hub_id)
        model = AutoModelForCausalLM.from_pretrained(hub_id, cache_dir=str(cache_dir), local_files_only=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=0.0,
                        task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(out))
    return out


# name -> (rank, alpha, seed, zero)
_KIT_ADAPTERS: dict[str, tuple[int, int, int, bool]] = {
    "faq": (8, 16, 11, False),
    "summarise": (16, 32, 12, False),
    "classify": (32, 32, 13, False),
    "noop": (8, 16, 14, True),
}


def build_kit(root: str | Path) -> dict[str, Any]:
    """Build (or reuse) a set of models under ``root`` and describe it.

    Returns::

        {
          "base": Path,            # tiny-llama: hidden 128, 2 layers, 4 heads, 2 KV heads
          "base_name": "tiny-llama",
          "adapters": {"faq": Path, "summarise": Path, "classify": Path, "noop": Path},
          "ranks": {"faq": 8, "summarise": 16, "classify": 32, "noop": 8},
          "zero": "noop",          # all-zero adapter: same outputs as the base
          "small_base": Path,      # tiny-llama-small: hidden 64, 2 heads, 1 KV head
          "small_base_name": "tiny-llama-small",
          "small_adapters": {"small-faq": Path},   # rank 8, trained on small_base
        }

    The result is cached in ``root/kit.json``: a second call with the same root
    returns at once.
    """
    root = Path(root)
    marker = root / "kit.json"
    if marker.exists():
        data = json.loads(marker.read_text(encoding="utf-8"))
        if data.get("version") == KIT_VERSION:
            return _kit_from_json(root, data)
    root.mkdir(parents=True, exist_ok=True)
    build_tiny_base(root / "tiny-llama", name="tiny-llama", seed=0)
    for name, (rank, alpha, seed, zero) in _KIT_ADAPTERS.items():
        build_lora_adapter(
            root / "tiny-llama",
            root / "adapters" / name,
            rank=rank,
            alpha=alpha,
            seed=seed,
            zero=zero,
            base_name_or_path="tiny-llama",
        )
    build_tiny_base(
        root / "tiny-llama-small",
        hidden_size=64,
        heads=2,
        kv_heads=1,
        name="tiny-llama-small",
        seed=100,
    )
    build_lora_adapter(
        root / "tiny-llama-small",
        root / "adapters-small" / "small-faq",
        rank=8,
        alpha=16,
        seed=101,
        base_name_or_path="tiny-llama-small",
    )
    data = {
        "version": KIT_VERSION,
        "base": "tiny-llama",
        "adapters": {n: f"adapters/{n}" for n in _KIT_ADAPTERS},
        "ranks": {n: v[0] for n, v in _KIT_ADAPTERS.items()},
        "zero": "noop",
        "small_base": "tiny-llama-small",
        "small_adapters": {"small-faq": "adapters-small/small-faq"},
    }
    _canon_json(marker, data)
    return _kit_from_json(root, data)


def _kit_from_json(root: Path, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "base": root / data["base"],
        "base_name": data["base"],
        "adapters": {n: root / p for n, p in data["adapters"].items()},
        "ranks": dict(data["ranks"]),
        "zero": data["zero"],
        "small_base": root / data["small_base"],
        "small_base_name": data["small_base"],
        "small_adapters": {n: root / p for n, p in data["small_adapters"].items()},
    }
