"""Streamed sha256 of files and objects, keeping the first bytes a later check needs.

Nothing is held whole in memory: data passes through in chunks, and only the
*head* is kept — a whole small JSON file, or the header of a safetensors file — so
that one read serves both the checksum and the coherence checks.  ``hashlib``
releases the GIL while it hashes, so files hashed on a thread pool run in parallel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .safetensors import SafetensorsError, header_length

CHUNK_BYTES = 1 << 20
# adapter_config.json, config.json and shard indexes are far smaller than this
MAX_JSON_BYTES = 64 << 20


class Head(StrEnum):
    """Which leading bytes to keep while hashing."""

    NONE = "none"
    JSON = "json"  # the whole file, up to MAX_JSON_BYTES
    SAFETENSORS = "safetensors"  # 8 + N header bytes


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int
    head: bytes = b""
    head_complete: bool = True  # False when the file was larger than what was kept


class _HeadKeeper:
    def __init__(self, policy: Head) -> None:
        self.policy = policy
        self.buf = bytearray()
        self.limit = {Head.NONE: 0, Head.JSON: MAX_JSON_BYTES + 1,
                      Head.SAFETENSORS: 8}[policy]
        self.sized = False

    def feed(self, chunk: memoryview) -> None:
        pos = 0
        while len(self.buf) < self.limit and pos < len(chunk):
            take = min(self.limit - len(self.buf), len(chunk) - pos)
            self.buf += chunk[pos : pos + take]
            pos += take
            if self.policy is Head.SAFETENSORS and not self.sized and len(self.buf) >= 8:
                self.sized = True
                try:
                    self.limit = 8 + header_length(bytes(self.buf[:8]))
                except SafetensorsError:
                    return  # keep the 8 bytes: the parser says later why they are wrong

    def result(self) -> tuple[bytes, bool]:
        if self.policy is Head.JSON and len(self.buf) > MAX_JSON_BYTES:
            return bytes(self.buf[:MAX_JSON_BYTES]), False
        return bytes(self.buf), True


def digest_chunks(chunks: Iterable[bytes | bytearray | memoryview], head: Head = Head.NONE) -> Digest:
    h = hashlib.sha256()
    keeper = _HeadKeeper(head) if head is not Head.NONE else None
    size = 0
    for chunk in chunks:
        view = memoryview(chunk)
        h.update(view)
        size += len(view)
        if keeper is not None:
            keeper.feed(view)
    kept, complete = keeper.result() if keeper is not None else (b"", True)
    return Digest(h.hexdigest(), size, kept, complete)


def read_file_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterable[memoryview]:
    """Chunks of a local file read into one reused buffer (no per-chunk allocation)."""
    buf = bytearray(chunk_bytes)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                return
            yield view[:n]


def digest_file(path: Path, head: Head = Head.NONE) -> Digest:
    return digest_chunks(read_file_chunks(path), head)
