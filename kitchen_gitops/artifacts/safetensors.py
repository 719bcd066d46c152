"""Read a safetensors header without loading any tensor.

The format is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON
(``{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``)
and the tensor bytes.  A file is whole when its size is exactly ``8 + N + end`` of the
last tensor, and its tensors tile the data area; the same checks the ``safetensors``
library makes before it maps a file, so what passes here loads in vLLM.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

# The safetensors library refuses headers above 100 MB.
MAX_HEADER_BYTES = 100_000_000

# Bits per element of every dtype the format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class SafetensorsError(ValueError):
    """The bytes are not a (whole) safetensors file; the message says why."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    header_size: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_size(self) -> int:
        return max((t.end for t in self.tensors.values()), default=0)

    @property
    def file_size(self) -> int:
        """The exact size of the whole file this header describes."""
        return 8 + self.header_size + self.data_size

    @property
    def numel(self) -> int:
        return sum(t.numel for t in self.tensors.values())


def header_length(prefix: bytes) -> int:
    """``N`` from the first 8 bytes; raises when they cannot start a safetensors file."""
    if len(prefix) < 8:
        raise SafetensorsError(f"file has {len(prefix)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n == 0 or n > MAX_HEADER_BYTES:
        raise SafetensorsError(
            f"header length {n} is not plausible (1..{MAX_HEADER_BYTES} bytes): "
            "not a safetensors file")
    return int(n)


def _tensor(name: str, raw: object) -> TensorInfo:
    if not isinstance(raw, dict):
        raise SafetensorsError(f"tensor '{name}': entry is not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise SafetensorsError(f"tensor '{name}': unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SafetensorsError(f"tensor '{name}': shape {shape!r} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise SafetensorsError(f"tensor '{name}': data_offsets {offsets!r} are not [begin, end]")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or offsets[1] - offsets[0] != bits // 8:
        raise SafetensorsError(
            f"tensor '{name}': {dtype} {shape} needs {bits / 8:g} bytes, data_offsets give "
            f"{offsets[1] - offsets[0]}")
    return TensorInfo(name, dtype, tuple(shape), offsets[0], offsets[1])


def parse_header(prefix: bytes, file_size: int | None = None) -> SafetensorsHeader:
    """Parse the header from the first ``8 + N`` bytes of a file (more is fine).

    With ``file_size`` the file is also checked to be whole: a truncated download or a
    file with trailing bytes is an error, as it is for the loader.
    """
    n = header_length(prefix)
    if file_size is not None and file_size < 8 + n:
        raise SafetensorsError(
            f"truncated: the header says {n} bytes of JSON follow, the file has only "
            f"{file_size} bytes")
    if len(prefix) < 8 + n:
        raise SafetensorsError(f"truncated: {len(prefix)} bytes read, the header needs {8 + n}")
    raw = prefix[8:8 + n]
    if raw[:1] != b"{":
        raise SafetensorsError("header does not start with '{': not a safetensors file")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"header is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata_raw = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict):
        raise SafetensorsError("__metadata__ is not an object")
    metadata = {str(k): str(v) for k, v in metadata_raw.items()}
    tensors = {name: _tensor(name, raw_t) for name, raw_t in doc.items()}
    # tensors must tile the data area without gaps or overlaps, as the loader requires
    spans = sorted((t.begin, t.end, t.name) for t in tensors.values())
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            raise SafetensorsError(
                f"tensor '{name}': data starts at {begin}, expected {cursor} "
                "(gap or overlap in data_offsets)")
        cursor = end
    header = SafetensorsHeader(n, tensors, metadata)
    if file_size is not None and file_size != header.file_size:
        if file_size < header.file_size:
            raise SafetensorsError(
                f"truncated: {file_size} bytes, the header describes {header.file_size} "
                f"({header.file_size - file_size} missing)")
        raise SafetensorsError(
            f"{file_size - header.file_size} unexpected bytes after the last tensor "
            f"(header describes {header.file_size} bytes)")
    return header


def read_header(path: Path) -> SafetensorsHeader:
    """The header of a local file, reading only its first ``8 + N`` bytes."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        first = fh.read(8)
        n = header_length(first)
        return parse_header(first + fh.read(n), size)
