"""Do the files fit together?  Adapter against its base, base against its catalog facts.

An adapter trained on another base loads in PEFT without complaint and fails in vLLM
only after the whole base model is on the GPUs.  Everything that decides it is in
``adapter_config.json`` and the safetensors *header*: the LoRA type and rank, the base
it names, the modules it targets, and the shape of every ``lora_A``/``lora_B`` matrix,
which must match the projections of the base architecture declared in the catalog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import rules
from ..escape import visible
from ..findings import Finding, Location, Severity
from ..model import Architecture, Base, Catalog, Flavor
from .digest import Digest
from .safetensors import SafetensorsError, SafetensorsHeader, parse_header

PathKey = tuple[str | int, ...]

# Projection modules of the Llama family (Llama, Mistral, Qwen2/3, Gemma, …).
LLAMA_LIKE = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2",
                        "gemma3_text", "granite", "olmo", "olmo2", "internlm2", "yi", "exaone"})
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EXTRA_MODULES = ("embed_tokens", "lm_head")

_LORA_PART = re.compile(r"\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[A-Za-z0-9_]+)?"
                        r"(?:\.weight)?$")
_LAYER = re.compile(r"\.layers\.(\d+)\.")
MAX_LISTED = 3


def module_dims(arch: Architecture, module: str) -> tuple[int, int] | None:
    """(in_features, out_features) of a module of the base, or None if unknown."""
    if arch.model_type not in LLAMA_LIKE and module not in EXTRA_MODULES:
        return None
    h, i = arch.hidden_size, arch.intermediate_size
    q = arch.num_attention_heads * arch.head_dim
    kv = arch.num_key_value_heads * arch.head_dim
    return {
        "q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
        "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        "embed_tokens": (arch.vocab_size, h), "lm_head": (h, arch.vocab_size),
    }.get(module)


def base_modules(arch: Architecture) -> frozenset[str] | None:
    if arch.model_type in LLAMA_LIKE:
        return frozenset(PROJECTIONS + EXTRA_MODULES)
    return None


@dataclass(frozen=True)
class LoraTensor:
    name: str
    module: str
    part: str  # lora_A, lora_B, lora_embedding_A, lora_embedding_B
    layer: int | None
    shape: tuple[int, ...]


def lora_tensors(header: SafetensorsHeader) -> list[LoraTensor]:
    out = []
    for name in sorted(header.tensors):
        m = _LORA_PART.search(name)
        if not m:
            continue
        module = name[: m.start()].rsplit(".", 1)[-1]
        layer = _LAYER.search(name)
        out.append(LoraTensor(name, module, m.group(1), int(layer.group(1)) if layer else None,
                              header.tensors[name].shape))
    return out


def shape_problems(tensors: Sequence[LoraTensor], arch: Architecture,
                   rank: int | None) -> list[str]:
    """Why each LoRA tensor cannot belong to an adapter of this base (and rank)."""
    problems = []
    for t in tensors:
        if t.layer is not None and t.layer >= arch.num_hidden_layers:
            problems.append(f"{t.name} is for layer {t.layer}, the base has "
                            f"{arch.num_hidden_layers} layers")
            continue
        dims = module_dims(arch, t.module)
        if dims is None:
            continue
        fan_in, fan_out = dims
        if len(t.shape) != 2:
            problems.append(f"{t.name} has shape {list(t.shape)}, not a matrix")
            continue
        is_a = t.part.endswith("A")
        r, features = (t.shape[0], t.shape[1]) if is_a else (t.shape[1], t.shape[0])
        want = fan_in if is_a else fan_out
        side = "inputs" if is_a else "outputs"
        if features != want:
            problems.append(f"{t.name} has shape {list(t.shape)}: {t.module} of the base has "
                            f"{want} {side}, the adapter {features}")
        elif rank is not None and r != rank:
            problems.append(f"{t.name} has shape {list(t.shape)}: rank {r}, "
                            f"adapter_config.json says r = {rank}")
    return problems


def _arch_summary(arch: Architecture) -> str:
    return (f"hidden_size {arch.hidden_size}, {arch.num_hidden_layers} layers, "
            f"{arch.num_attention_heads} heads, {arch.num_key_value_heads} KV heads of "
            f"{arch.head_dim}")


def _listed(problems: Sequence[str]) -> str:
    text = "; ".join(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        text += f"; and {len(problems) - MAX_LISTED} more"
    return text


class Checker:
    """Findings about one catalog object, located in its document."""

    def __init__(self, catalog: Catalog, kind: str, key: str, uri: str) -> None:
        self.catalog = catalog
        self.kind = kind
        self.key = key
        self.uri = uri  # the artifact's source, with a trailing slash
        self.findings: list[Finding] = []

    def loc(self, path: PathKey, *, value: bool = True) -> Location:
        doc = self.catalog.documents.get((self.kind, self.key))
        if doc is None:
            return Location("<catalog>")
        return doc.location(path, value=value)

    def add(self, rule: str, message: str, path: PathKey, expected: str = "", *,
            severity: Severity = Severity.ERROR, value: bool = True) -> None:
        self.findings.append(Finding(rule, severity, message, self.loc(path, value=value),
                                     expected=expected))

    def json_file(self, name: str, digest: Digest, path: PathKey, rule: str) -> Any:
        if not digest.head_complete:
            self.add(rule, f"{self.uri}{name} is {digest.size} bytes, too large for a JSON "
                     "configuration file", path, "a JSON object")
            return None
        try:
            data = json.loads(digest.head.decode("utf-8"))
        except UnicodeDecodeError:
            self.add(rule, f"{self.uri}{name} is not UTF-8 text", path, "a JSON object")
            return None
        except json.JSONDecodeError as exc:
            self.add(rule, f"{self.uri}{name} is not valid JSON: {exc.msg} at line {exc.lineno} "
                     f"column {exc.colno}", path, "a JSON object")
            return None
        if not isinstance(data, dict):
            self.add(rule, f"{self.uri}{name} holds a JSON {type(data).__name__}, not an object",
                     path, "a JSON object")
            return None
        return data

    def safetensors(self, name: str, digest: Digest, path: PathKey) -> SafetensorsHeader | None:
        try:
            return parse_header(digest.head, digest.size)
        except SafetensorsError as exc:
            self.add(rules.ARTIFACTS_SAFETENSORS_INVALID,
                     f"{self.uri}{name} is not a whole safetensors file: {exc}", path,
                     "a complete safetensors file (re-copy it; if the new file is approved, "
                     "re-lock)")
            return None


# ---------------------------------------------------------------- adapters


def check_adapter(catalog: Catalog, key: str, flavor: Flavor, base: Base | None,
                  config: Digest | None, model: Digest | None, uri: str) -> list[Finding]:
    c = Checker(catalog, "Flavor", key, uri)
    cfg_path: PathKey = ("files", "adapter_config.json")
    model_path: PathKey = ("files", "adapter_model.safetensors")
    rank: int | None = None
    other_base: str | None = None  # what base_model_name_or_path names, if not this base
    if config is not None:
        cfg = c.json_file("adapter_config.json", config, cfg_path,
                          rules.ARTIFACTS_ADAPTER_CONFIG_INVALID)
        if cfg is not None:
            rank, other_base = _check_adapter_config(c, cfg, flavor, base)
    fits: bool | None = None  # the tensors fit the base; None: not read
    if model is not None:
        header = c.safetensors("adapter_model.safetensors", model, model_path)
        if header is not None and base is not None:
            tensors = lora_tensors(header)
            if not tensors:
                c.add(rules.ARTIFACTS_ADAPTER_SHAPE,
                      f"{uri}adapter_model.safetensors holds no LoRA tensors "
                      f"({len(header.tensors)} tensors, none named *.lora_A/*.lora_B)",
                      model_path, "a PEFT LoRA adapter")
            problems = shape_problems(tensors, base.architecture, rank)
            fits = bool(tensors) and not problems
            if problems:
                arch = base.architecture
                c.add(rules.ARTIFACTS_ADAPTER_SHAPE,
                      f"adapter_model.safetensors does not fit base {base.ref} "
                      f"({_arch_summary(arch)}): {_listed(problems)} "
                      f"[{len(problems)} of {len(tensors)} LoRA tensors]; the adapter was "
                      "trained for another base",
                      ("base",), f"LoRA matrices shaped for {base.ref}", value=False)
    if base is not None and other_base is not None:
        _report_other_base(c, base, other_base, fits)
    return c.findings


def _is_local_path(named: str) -> bool:
    """A path on the machine that trained the adapter, not a hub id (org/name)."""
    return named.startswith(("/", ".", "~")) or "\\" in named or named.count("/") > 1


def _final_component(named: str) -> str:
    return named.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def names_base(named: str, base: Base) -> bool:
    """Does ``base_model_name_or_path`` name this base?  Its catalog name (or name@version,
    served name), a name it is known by upstream (``aliases``), or a local path whose last
    component is one of those (``/models/Llama-3.1-8B-Instruct``); a hub id of another
    organisation with the same last component is another model."""
    own = {base.name, base.serve_name, base.ref}
    if named in own or named in base.aliases:
        return True
    if _is_local_path(named):
        last = _final_component(named)
        return last in own or last in {_final_component(a) for a in base.aliases}
    return False


def _report_other_base(c: Checker, base: Base, named: str, fits: bool | None) -> None:
    """An adapter that names another base: a warning when its tensors fit this base (a
    name the catalog does not list, e.g. a mirror's), an error when they do not or could
    not be read."""
    known = ", ".join([base.name, *base.aliases])
    if fits:
        c.add(rules.ARTIFACTS_BASE_MISMATCH,
              f"{c.uri}adapter_config.json names base '{named}', which is neither {base.ref} nor one of its "
              f"aliases ({known}); its tensor shapes fit {base.ref}", ("base",),
              f"base_model_name_or_path naming {base.name}, or '{named}' among the aliases of {base.ref}",
              severity=Severity.WARNING, value=False)
    else:
        c.add(rules.ARTIFACTS_BASE_MISMATCH,
              f"{c.uri}adapter_config.json was trained on '{named}', the catalog pairs it with base {base.ref} "
              f"(known as {known})" + ("" if fits is False else "; its tensors could not be read to prove it fits"),
              ("base",), f"an adapter trained on {base.ref}", value=False)


ADAPTER_CONFIG_PATH: PathKey = ("files", "adapter_config.json")


def _check_adapter_config(c: Checker, cfg: dict[str, Any], flavor: Flavor,
                          base: Base | None) -> tuple[int | None, str | None]:
    """The adapter's rank (None: per-module ranks or unreadable) and the base it names
    where that is not ``base``."""
    name = f"{c.uri}adapter_config.json"
    _check_adapter_type(c, cfg, name)
    rank = _adapter_rank(c, cfg, flavor, name)
    _check_alpha(c, cfg, flavor, name)
    other_base = _other_base_named(c, cfg, base, name) if base is not None else None
    _check_target_modules(c, cfg, flavor, base, name)
    return rank, other_base


def _check_adapter_type(c: Checker, cfg: dict[str, Any], name: str) -> None:
    """vLLM serves plain LoRA adapters: not another PEFT type, not DoRA."""
    peft_type = cfg.get("peft_type")
    if peft_type != "LORA":
        c.add(rules.ARTIFACTS_ADAPTER_TYPE,
              f"{name} has peft_type {peft_type!r}; vLLM serves LoRA adapters only",
              ADAPTER_CONFIG_PATH, "peft_type: LORA")
    if cfg.get("use_dora"):
        c.add(rules.ARTIFACTS_ADAPTER_TYPE, f"{name} is a DoRA adapter (use_dora: true), which "
              "vLLM does not serve", ADAPTER_CONFIG_PATH, "a plain LoRA adapter")


def _adapter_rank(c: Checker, cfg: dict[str, Any], flavor: Flavor, name: str) -> int | None:
    """``r``, checked against the catalog's rank; None where it is not a positive integer or
    the adapter has per-module ranks (``rank_pattern``)."""
    r = cfg.get("r")
    rank: int | None = None
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        c.add(rules.ARTIFACTS_ADAPTER_CONFIG_INVALID, f"{name}: r is {r!r}, not a positive integer",
              ADAPTER_CONFIG_PATH, "r: the LoRA rank")
    else:
        rank = r
        if r != flavor.rank:
            c.add(rules.ARTIFACTS_RANK_MISMATCH,
                  f"the catalog declares rank {flavor.rank}, {name} has r = {r}; vLLM's "
                  "--max-lora-rank is planned from the catalog", ("rank",),
                  f"rank: {r}")
    if cfg.get("rank_pattern"):
        rank = None  # per-module ranks: the shapes are checked without one rank
    return rank


def _check_alpha(c: Checker, cfg: dict[str, Any], flavor: Flavor, name: str) -> None:
    alpha = cfg.get("lora_alpha")
    if flavor.alpha is not None and isinstance(alpha, int | float) and alpha != flavor.alpha:
        c.add(rules.ARTIFACTS_ALPHA_MISMATCH,
              f"the catalog declares alpha {flavor.alpha:g}, {name} has lora_alpha {alpha:g}",
              ("alpha",), f"alpha: {alpha:g}", severity=Severity.WARNING)


def _other_base_named(c: Checker, cfg: dict[str, Any], base: Base, name: str) -> str | None:
    """The base ``base_model_name_or_path`` names where it is not ``base`` (a warning where
    it names none)."""
    named = cfg.get("base_model_name_or_path")
    if not named:
        c.add(rules.ARTIFACTS_BASE_MISMATCH, f"{name} does not name the base it was trained on",
              ("base",), f"base_model_name_or_path: {base.name}", severity=Severity.WARNING,
              value=False)
    elif not names_base(str(named), base):
        return visible(str(named))
    return None


def _check_target_modules(c: Checker, cfg: dict[str, Any], flavor: Flavor, base: Base | None,
                          name: str) -> None:
    """The modules the adapter targets: those the catalog lists, and modules the base has."""
    targets = cfg.get("target_modules")
    if isinstance(targets, str):
        targets = None if targets == "all-linear" or not targets.isidentifier() else [targets]
    if not isinstance(targets, list):
        return
    found = sorted({str(t) for t in targets})
    declared = sorted(set(flavor.target_modules))
    if found != declared:
        c.add(rules.ARTIFACTS_TARGET_MODULES,
              f"the catalog lists target modules [{', '.join(declared)}], {name} targets "
              f"[{', '.join(found)}]", ("target_modules",),
              f"target_modules: [{', '.join(found)}]", value=False)
    known = base_modules(base.architecture) if base is not None else None
    if base is not None and known is not None:
        unknown = [t for t in found if t not in known]
        if unknown:
            c.add(rules.ARTIFACTS_TARGET_MODULES,
                  f"{name} targets {', '.join(unknown)}, which base {base.ref} "
                  f"({base.architecture.model_type}) does not have", ("target_modules",),
                  f"modules of {base.ref}: {', '.join(sorted(known))}", value=False)


# ---------------------------------------------------------------- bases

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def _config_value(cfg: dict[str, Any], field: str) -> Any:
    if field == "torch_dtype":
        return cfg.get("torch_dtype", cfg.get("dtype"))
    if field == "num_key_value_heads":
        return cfg.get("num_key_value_heads", cfg.get("num_attention_heads"))
    if field == "head_dim":
        if cfg.get("head_dim") is not None:
            return cfg["head_dim"]
        h, n = cfg.get("hidden_size"), cfg.get("num_attention_heads")
        return h // n if isinstance(h, int) and isinstance(n, int) and n else None
    return cfg.get(field)


ARCH_FIELDS = ("model_type", "architectures", "num_hidden_layers", "hidden_size",
               "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim",
               "vocab_size", "max_position_embeddings", "torch_dtype")


def check_base(catalog: Catalog, key: str, base: Base, digests: dict[str, Digest],
               uri: str) -> list[Finding]:
    c = Checker(catalog, "Base", key, uri)
    index_of = {f.path: i for i, f in enumerate(base.files)}
    pinned = set(index_of)

    def pin_path(name: str) -> PathKey:
        return ("files", index_of[name])

    _check_required_files(c, base, pinned)
    cfg_digest = digests.get("config.json")
    if cfg_digest is not None:
        _check_base_config(c, base, cfg_digest, pin_path("config.json"))
    headers = _read_headers(c, pinned, digests, pin_path)
    has_index = "model.safetensors.index.json" in pinned
    index_digest = digests.get("model.safetensors.index.json")
    if has_index and index_digest is not None:
        _check_index_file(c, base, index_digest, pinned, headers, pin_path)
    if headers and (not has_index or len(headers) == len(
            [n for n in pinned if n.endswith(".safetensors")])):
        _check_parameters(c, base, headers)
    return c.findings


def _check_required_files(c: Checker, base: Base, pinned: set[str]) -> None:
    """What must be pinned for vLLM to start offline."""
    for required in ("config.json", "tokenizer_config.json"):
        if required not in pinned:
            c.add(rules.ARTIFACTS_REQUIRED_FILE, f"base {base.ref} pins no {required}", ("files",),
                  f"a files entry for {required}", value=False)
    if not pinned & set(TOKENIZER_FILES):
        c.add(rules.ARTIFACTS_REQUIRED_FILE, f"base {base.ref} pins no tokenizer "
              "(tokenizer.json or tokenizer.model)", ("files",),
              "a files entry for tokenizer.json", value=False)
    if "model.safetensors.index.json" not in pinned and "model.safetensors" not in pinned:
        c.add(rules.ARTIFACTS_REQUIRED_FILE, f"base {base.ref} pins no safetensors weights "
              "(model.safetensors, or model.safetensors.index.json and its shards)",
              ("files",), "a files entry for the weights", value=False)


def _check_base_config(c: Checker, base: Base, digest: Digest, path: PathKey) -> None:
    """config.json against the architecture the catalog declares (a field the config does
    not write is not compared)."""
    cfg = c.json_file("config.json", digest, path, rules.ARTIFACTS_BASE_CONFIG_INVALID)
    if cfg is None:
        return
    arch = base.architecture
    for field in ARCH_FIELDS:
        declared, found = getattr(arch, field), _config_value(cfg, field)
        if found is None:
            continue  # not every config writes every field
        if found != declared:
            c.add(rules.ARTIFACTS_BASE_CONFIG,
                  f"{c.uri}config.json has {field} {json.dumps(found)}, the catalog "
                  f"declares {json.dumps(declared)}", ("architecture", field),
                  f"{field}: {json.dumps(found)} (the facts of config.json)")


def _read_headers(c: Checker, pinned: set[str], digests: dict[str, Digest],
                  pin_path: Callable[[str], PathKey]) -> dict[str, SafetensorsHeader]:
    """The header of every pinned safetensors file that was read."""
    headers: dict[str, SafetensorsHeader] = {}
    for name in sorted(pinned):
        d = digests.get(name)
        if name.endswith(".safetensors") and d is not None:
            h = c.safetensors(name, d, pin_path(name))
            if h is not None:
                headers[name] = h
    return headers


def _check_index_file(c: Checker, base: Base, digest: Digest, pinned: set[str],
                      headers: dict[str, SafetensorsHeader], pin_path: Callable[[str], PathKey]) -> None:
    """model.safetensors.index.json: readable, with a weight_map that fits the shards."""
    name = "model.safetensors.index.json"
    idx = c.json_file(name, digest, pin_path(name), rules.ARTIFACTS_INDEX_INVALID)
    weight_map = idx.get("weight_map") if idx is not None else None
    if idx is not None and not isinstance(weight_map, dict):
        c.add(rules.ARTIFACTS_INDEX_INVALID, f"{c.uri}model.safetensors.index.json has no "
              "weight_map", pin_path(name),
              "a weight_map from tensor name to shard file")
    elif isinstance(weight_map, dict):
        _check_index(c, base, weight_map, pinned, headers, pin_path)


def _check_parameters(c: Checker, base: Base, headers: dict[str, SafetensorsHeader]) -> None:
    """The parameters the safetensors files hold against the catalog's count (within 5 %)."""
    total = sum(h.numel for h in headers.values()) / 1e9
    declared_b = base.architecture.parameters_billions
    if abs(total - declared_b) > max(0.05 * total, 0.005):
        c.add(rules.ARTIFACTS_BASE_PARAMETERS,
              f"the safetensors files hold {total:.4g} billion parameters, the catalog "
              f"declares {declared_b:g}", ("architecture", "parameters_billions"),
              f"parameters_billions: {total:.3g}", severity=Severity.WARNING)


def _check_index(c: Checker, base: Base, weight_map: dict[str, Any], pinned: set[str],
                 headers: dict[str, SafetensorsHeader], pin_path: Any) -> None:
    shards = sorted({str(v) for v in weight_map.values()})
    for shard in shards:
        if shard not in pinned:
            c.add(rules.ARTIFACTS_REQUIRED_FILE,
                  f"model.safetensors.index.json of base {base.ref} names shard {shard}, "
                  "which the catalog does not pin", ("files",),
                  f"a files entry for {shard}", value=False)
    problems = []
    for tensor, shard in sorted(weight_map.items()):
        h = headers.get(str(shard))
        if h is not None and tensor not in h.tensors:
            problems.append(f"{tensor} is not in {shard}")
    if problems:
        c.add(rules.ARTIFACTS_INDEX_INVALID,
              f"model.safetensors.index.json does not match the shards: {_listed(problems)}",
              pin_path("model.safetensors.index.json"), "the index written with the shards")
