"""Units: safetensors headers, streamed digests with heads, adapter shape rules."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kitchen_gitops.artifacts.coherence import LoraTensor, names_base, shape_problems
from kitchen_gitops.artifacts.digest import Head, digest_chunks, digest_file
from kitchen_gitops.artifacts.safetensors import SafetensorsError, parse_header, read_header
from kitchen_gitops.model import Architecture, Base


def st_bytes(tensors: dict[str, tuple[str, list[int]]], *, pad: int = 0,
             metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file built by hand: the format, not the library, is under test."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8}
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def test_header_of_a_real_safetensors_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({"a": torch.zeros(3, 5, dtype=torch.bfloat16), "b": torch.ones(7)}, str(path),
              {"format": "pt"})
    h = read_header(path)
    assert {n: (t.dtype, t.shape) for n, t in h.tensors.items()} == {
        "a": ("BF16", (3, 5)), "b": ("F32", (7,))}
    assert h.metadata == {"format": "pt"}
    assert h.file_size == path.stat().st_size
    assert h.numel == 22


def test_header_ok_with_padding_and_metadata() -> None:
    data = st_bytes({"x": ("F32", [2, 2])}, pad=5, metadata={"format": "pt"})
    h = parse_header(data, len(data))
    assert h.tensors["x"].shape == (2, 2) and h.data_size == 16


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[: len(d) - 3], "truncated: 157 bytes, the header describes 160 (3 missing)"),
    (lambda d: d + b"\0", "1 unexpected bytes after the last tensor"),
    (lambda d: d[:20], "truncated: the header says 128 bytes of JSON follow, the file has only 20"),
    (lambda d: b"\xff" * 8 + d[8:], "header length 18446744073709551615 is not plausible"),
    (lambda d: d[:4], "file has 4 bytes, fewer than the 8-byte header length"),
    (lambda d: d[:8] + b"[" + d[9:], "header does not start with '{'"),
    (lambda d: d[:9] + b"#" + d[10:], "header is not valid JSON"),
])
def test_header_errors(mutate: object, message: str) -> None:
    data = st_bytes({"x": ("F32", [2, 2]), "y": ("I64", [1])}, pad=0)
    assert len(data) == 160
    bad = mutate(data)  # type: ignore[operator]
    with pytest.raises(SafetensorsError) as exc:
        parse_header(bad, len(bad))
    assert message in str(exc.value)


def test_header_rejects_offsets_that_do_not_tile() -> None:
    raw = json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    data = struct.pack("<Q", len(raw)) + raw + bytes(12)
    with pytest.raises(SafetensorsError, match="gap or overlap"):
        parse_header(data, len(data))
    raw = json.dumps({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    with pytest.raises(SafetensorsError, match=r"needs 12 bytes, data_offsets give 8"):
        parse_header(struct.pack("<Q", len(raw)) + raw + bytes(8))


@pytest.mark.parametrize("chunk", [1, 3, 7, 8, 9, 4096])
def test_digest_keeps_the_safetensors_head_across_chunks(chunk: int) -> None:
    data = st_bytes({"x": ("F32", [64, 64])}, metadata={"k": "v"})
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    d = digest_chunks(chunks, Head.SAFETENSORS)
    assert d.sha256 == hashlib.sha256(data).hexdigest() and d.size == len(data)
    n = struct.unpack("<Q", data[:8])[0]
    assert d.head == data[: 8 + n]
    assert parse_header(d.head, d.size).tensors["x"].shape == (64, 64)


def test_digest_file_streams_and_keeps_json(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = bytes(range(256)) * 4096  # 1 MiB
    with open(big, "wb") as fh:
        for i in range(5):
            fh.write(block[i:] + block[:i])
    d = digest_file(big)
    assert d.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert d.size == 5 * len(block) and d.head == b""
    cfg = tmp_path / "config.json"
    cfg.write_text('{"a": 1}')
    assert digest_file(cfg, Head.JSON).head == b'{"a": 1}'


ARCH = Architecture(model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=2,
                    hidden_size=128, intermediate_size=256, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=32, vocab_size=512,
                    max_position_embeddings=2048, torch_dtype="bfloat16",
                    parameters_billions=0.0003)


def lora(module: str, part: str, shape: tuple[int, ...], layer: int = 0) -> LoraTensor:
    return LoraTensor(f"base_model.model.model.layers.{layer}.self_attn.{module}.{part}.weight",
                      module, part, layer, shape)


@pytest.mark.parametrize("tensor, problem", [
    (lora("q_proj", "lora_A", (8, 128)), None),
    (lora("q_proj", "lora_B", (128, 8)), None),
    (lora("k_proj", "lora_B", (64, 8)), None),  # 2 KV heads × 32
    (lora("o_proj", "lora_A", (8, 128)), None),
    (lora("q_proj", "lora_A", (8, 64)), "q_proj of the base has 128 inputs, the adapter 64"),
    (lora("v_proj", "lora_B", (128, 8)), "v_proj of the base has 64 outputs, the adapter 128"),
    (lora("q_proj", "lora_A", (16, 128)), "rank 16, adapter_config.json says r = 8"),
    (lora("q_proj", "lora_A", (8, 128), layer=2), "is for layer 2, the base has 2 layers"),
    (lora("mystery", "lora_A", (8, 7)), None),  # unknown modules are not judged
])
def test_shape_rules(tensor: LoraTensor, problem: str | None) -> None:
    problems = shape_problems([tensor], ARCH, 8)
    if problem is None:
        assert problems == []
    else:
        (p,) = problems
        assert problem in p


def _base(aliases: list[str]) -> Base:
    from tests.conftest import CASES

    data = yaml.safe_load((CASES / "minimal" / "catalog" / "bases" / "tiny-base.yaml").read_text())
    data["aliases"] = aliases
    return Base.model_validate(data)


@pytest.mark.parametrize(("named", "fits"), [
    ("tiny-base", True),  # the catalog's own names
    ("tiny-base@1.0", True),
    ("Org/Tiny-Base-Instruct", True),  # an alias
    ("Tiny-Base-Instruct", True),  # a bare alias
    ("/data/models/Tiny-Base-Instruct", True),  # a local path ending in an alias's last component
    ("/data/models/Tiny-Base-Instruct/", True),
    ("./tiny-base", True),  # ... or in the base's name
    ("~/checkpoints/tiny-base", True),
    ("C:\\models\\Tiny-Base-Instruct", True),
    ("cache/models/Tiny-Base-Instruct", True),  # more than one slash: not a hub id
    ("Someone/Tiny-Base-Instruct", False),  # another organisation's model of the same name
    ("org/tiny-base-instruct", False),  # case counts
    ("/data/models/Other-Base", False),
    ("/data/models/Tiny-Base-Instruct/checkpoint-500", False),
])
def test_names_base(named: str, fits: bool) -> None:
    assert names_base(named, _base(["Org/Tiny-Base-Instruct", "Tiny-Base-Instruct"])) is fits


@pytest.mark.parametrize(("aliases", "message"), [
    (["meta llama/x"], "is not a model name as a hub writes it"),
    (["a/b/c"], "is not a model name as a hub writes it"),
    (["/abs/path"], "is not a model name as a hub writes it"),
    (["org/x", "org/x"], "'org/x' is listed twice"),
    ([f"org/m{i}" for i in range(33)], "at most 32 items"),
])
def test_aliases_refused(aliases: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        _base(aliases)
