"""The gate's cache: the results of work ``kitchen check`` would otherwise repeat, stored
under ``.kitchen-cache/`` and found again by the digest of everything that work reads.

An optimisation, never a source of truth:

- **Keys are content digests.**  A key is the SHA-256 of kitchen's own code and the
  versions of the libraries it runs on (:func:`code_digest`), the kind of work, and the
  bytes that work reads.  Nothing else — no timestamps, no file names of the cache — can
  make an entry be found.
- **Entries prove themselves.**  Each file starts with a header line naming the format,
  the kind, the key and the SHA-256 and length of its payload; an entry whose header is
  not exactly that (another version's, another key's, a truncated or edited file) is
  ignored, counted and named in ``--verbose``, and the work is done again.
- **No code in the cache.**  Payloads are JSON read into plain values and checked again by
  the reader of each kind; nothing is unpickled.
- **The cache must not come from the pull request.**  A cache folder that Git tracks, or
  that is a link, is not used (a hostile change could commit entries that hide its
  findings); the run says so and works without it.
- **Bounded.**  After a run that wrote entries, the least recently used ones are removed
  until the folder is under ``$KITCHEN_CACHE_MAX_MIB``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import re
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache as memoized
from pathlib import Path
from typing import Any, TypeVar

from . import settings

T = TypeVar("T")
FOLDER = ".kitchen-cache"
FORMAT = b"kitchen-cache/1"
# the libraries whose behaviour decides what kitchen finds; their versions are in every key
LIBRARIES = ("ruamel.yaml", "ruamel.yaml.clib", "jinja2", "pydantic", "pydantic-core", "orjson",
             "gordon-to-regorus", "opa-golib-python-bindings", "cel-expr-python")
_HEADER_MAX = 512


@memoized
def code_digest() -> str:
    """The digest of kitchen itself: every file of the package (code, policies it ships,
    templates, schemas), the Python version and the versions of :data:`LIBRARIES`."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    for name in LIBRARIES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(f"\0{name}={version}".encode())
    package = Path(__file__).resolve().parent
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(b"\0" + path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


class Digest:
    """A key under construction: length-prefixed parts, so that no two part lists give the
    same bytes."""

    def __init__(self, kind: str) -> None:
        self._h = _started(code_digest(), kind).copy()

    def add(self, *parts: bytes) -> Digest:
        update = self._h.update
        for part in parts:
            update(len(part).to_bytes(8, "big") + part)
        return self

    def text(self, *parts: str) -> Digest:
        return self.add(*(p.encode("utf-8", "surrogateescape") for p in parts))

    def hexdigest(self) -> str:
        return str(self._h.hexdigest())


@functools.lru_cache(maxsize=64)
def _started(code: str, kind: str) -> Any:
    """The hash of a key's first parts (the format, kitchen's code and the key's kind), which
    every key of the kind copies: a run makes tens of thousands of keys."""
    h = hashlib.sha256()
    for part in (FORMAT, code.encode(), kind.encode()):
        h.update(len(part).to_bytes(8, "big") + part)
    return h


Signature = tuple[str, int, int, int, int]  # real path, inode, size, mtime and ctime in ns
ABSENT = -1  # the inode of a signature of nothing


class Signatures:
    """The inode, size and times of every file and folder a digest read, so that a run can
    tell whether any changed while it worked (then nothing it found is stored: its work may
    have read other bytes than its key)."""

    def __init__(self) -> None:
        self.seen: list[Signature] = []

    def add(self, real: str, st: os.stat_result) -> None:
        self.seen.append((real, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))

    def unchanged(self) -> bool:
        for real, ino, size, mtime, ctime in self.seen:
            try:
                st = os.stat(real)
            except OSError:
                if ino == ABSENT:
                    continue
                return False
            if ino == ABSENT:
                return False
            if (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (ino, size, mtime, ctime):
                return False
        return True


# What a digest reads at most (every reader of the gate reads far less and refuses more):
# beyond either bound the run digests nothing and stores nothing (``DigestTooLarge``).
DIGEST_MAX_ENTRIES = 100_000  # files, folders and links below the folders of one run
DIGEST_MAX_BYTES = 1 << 30  # bytes read from them
# Of a longer file only that it is longer counts: every reader of the gate reads at most
# 16 MiB of a file and refuses one that has more (load.read_regular_file's callers).
DIGEST_FILE_MAX = 64 << 20


class DigestTooLarge(Exception):
    """More below the folders than a digest reads (:data:`DIGEST_MAX_ENTRIES`,
    :data:`DIGEST_MAX_BYTES`): the run works without stored results."""


@dataclass
class DigestBudget:
    """What the digests of one run may still read."""

    entries: int = field(default_factory=lambda: DIGEST_MAX_ENTRIES)
    bytes: int = field(default_factory=lambda: DIGEST_MAX_BYTES)

    def entry(self) -> None:
        self.entries -= 1
        if self.entries < 0:
            raise DigestTooLarge(f"more than {DIGEST_MAX_ENTRIES:,} files and folders")

    def read(self, n: int) -> None:
        self.bytes -= n
        if self.bytes < 0:
            raise DigestTooLarge(f"more than {DIGEST_MAX_BYTES >> 20:,} MiB")


def folder_digest(folder: Path, into: Digest, signatures: Signatures, inside: Iterable[Path] = (),
                  budget: DigestBudget | None = None, follow: bool = True) -> None:
    """Every file below ``folder`` as kitchen reads it, links followed (its path, the
    link's text, then what it leads to), in path order, added to ``into``; what each
    looked like, to ``signatures``.

    A link is followed only where it leads inside one of ``inside`` (the repository: no
    reader of the gate reads through a link that leaves it), or by default inside
    ``folder`` (a folder named on the command line, followed wherever it leads), and not at
    all without ``follow``; another link is its text alone — ``folder`` itself included.
    A folder met twice (a loop) is named, not entered again.  At most ``budget`` is read,
    and folders at most 40 deep (:class:`DigestTooLarge`: what is below would not count)."""
    budget = budget if budget is not None else DigestBudget()
    top = os.path.realpath(folder)
    bounds = tuple(os.path.realpath(p) for p in inside) or (top,)
    walk = _DigestWalk(into, signatures, budget, bounds, follow)
    if folder.is_symlink():
        real = walk.link(folder, "")
        if real is not None:
            walk.entry(folder, "", set(), 0, real)
        return
    walk.entry(folder, "", set(), 0, top)


_MAX_LINK_DEPTH = 40  # folders below the top, links followed included; deeper is DigestTooLarge


@dataclass
class _DigestWalk:
    into: Digest
    signatures: Signatures
    budget: DigestBudget
    inside: tuple[str, ...]  # real paths a link may lead into
    follow: bool

    def link(self, path: Path, rel: str) -> str | None:
        """A link's text, added; the real path it leads to where it is followed."""
        self.budget.entry()
        try:
            text = os.readlink(path)
        except OSError as exc:
            self.into.text(rel, f"unreadable link:{exc.errno}")
            return None
        self.into.text(rel, "link", text)
        real = os.path.realpath(path)
        if self.follow and any(real == p or real.startswith(p.rstrip("/") + "/") for p in self.inside):
            return real
        self.into.text(rel, "not followed")
        return None

    def entry(self, path: Path, rel: str, seen: set[str], depth: int, real: str | None = None) -> None:
        """``real``: the entry's resolved path, where the caller knows it (an entry that is
        not a link, in a folder already resolved)."""
        if real is None:
            real = self.link(path, rel)
            if real is None:
                return
        else:
            self.budget.entry()
        try:
            st = os.stat(real)
        except OSError:
            self.into.text(rel, "absent")
            self.signatures.seen.append((real, ABSENT, 0, 0, 0))  # that it appears is a change
            return
        self.signatures.add(real, st)
        if stat.S_ISDIR(st.st_mode):
            self.folder(real, rel, seen, depth)
        elif stat.S_ISREG(st.st_mode):
            self.file(real, rel)
        else:
            self.into.text(rel, "special")

    def folder(self, real: str, rel: str, seen: set[str], depth: int) -> None:
        if real in seen:
            self.into.text(rel, "folder met again")
            return
        if depth > _MAX_LINK_DEPTH:  # what is below would count for nothing: no digest at all
            raise DigestTooLarge(f"folders nested more than {_MAX_LINK_DEPTH} deep")
        self.into.text(rel, "folder")
        try:
            with os.scandir(real) as listing:
                entries = sorted((e.name, e.is_symlink()) for e in listing)
        except OSError as exc:
            self.into.text(rel, f"unreadable:{exc.errno}")
            return
        inner = seen | {real}
        for name, link in entries:
            inside = os.path.join(real, name)
            self.entry(Path(inside), f"{rel}/{name}" if rel else name, inner, depth + 1, None if link else inside)

    def file(self, real: str, rel: str) -> None:
        h = hashlib.sha256()
        size = 0
        try:  # without blocking, as the readers open a file (a FIFO put in its place, /proc/kmsg)
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
            try:
                while size <= DIGEST_FILE_MAX:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        break
                    self.budget.read(len(chunk))
                    h.update(chunk)
                    size += len(chunk)
            finally:
                os.close(fd)
        except OSError as exc:
            self.into.text(rel, f"unreadable:{exc.errno}")
            return
        if size > DIGEST_FILE_MAX:
            self.into.text(rel, "longer than", str(DIGEST_FILE_MAX))
        else:
            self.into.text(rel, "file").add(h.digest())


def _files(folder: Path, rel: str) -> Iterable[tuple[str, Path]]:
    """The entries below the cache folder (links are not followed: kitchen writes none)."""
    with os.scandir(folder) as entries:
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            if e.is_dir(follow_symlinks=False):
                yield from _files(Path(e.path), child)
            else:
                yield child, Path(e.path)


@dataclass
class Stats:
    """What one run did with the cache: counted per kind, and why entries were ignored."""

    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    ignored: list[str] = field(default_factory=list)
    removed: int = 0

    def merge(self, other: Stats) -> None:
        """What a worker process did, added to this run's account."""
        self.hits.update(other.hits)
        self.misses.update(other.misses)
        self.writes.update(other.writes)
        self.ignored.extend(other.ignored)

    def lines(self) -> list[str]:
        kinds = sorted(set(self.hits) | set(self.misses))
        out = [f"cache {k}: {self.hits[k]} found, {self.misses[k]} computed, {self.writes[k]} stored"
               for k in kinds]
        out += [f"cache: ignored {why}" for why in self.ignored]
        if self.removed:
            out.append(f"cache: removed {self.removed} least recently used entries (size bound)")
        return out


class Cache:
    """The cache of one repository, or none (``folder`` None: every lookup misses and
    nothing is written)."""

    def __init__(self, folder: Path | None, max_bytes: int = 0) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.stats = Stats()
        self._ready: set[Path] = set()  # entry folders made and found free of links
        self._packs: dict[tuple[str, str], Pack] = {}

    @classmethod
    def disabled(cls, why: str = "") -> Cache:
        c = cls(None)
        if why:
            c.stats.ignored.append(why)
        return c

    @classmethod
    def of(cls, root: Path) -> Cache:
        """``<root>/.kitchen-cache``, unless ``$KITCHEN_CACHE`` is ``off``, or the folder is
        a link or tracked by Git (then the run uses no cache and says why)."""
        if settings.CACHE.raw().lower() in ("off", "0", "false", "no"):
            return cls.disabled()
        folder = root / FOLDER
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            return cls.disabled(f"{FOLDER}: not a plain folder (a link or a file); not used")
        tracked = _tracked(root)
        if tracked is None:
            return cls.disabled(f"{FOLDER}: Git could not say whether it tracks files in it; not used")
        if tracked:
            return cls.disabled(f"{FOLDER}: Git tracks files in it (the cache never comes from a "
                                "commit); not used")
        return cls(folder, settings.cache_max_bytes())

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def _path(self, kind: str, key: str) -> Path:
        assert self.folder is not None
        return self.folder / kind / key[:2] / key

    def get(self, kind: str, key: str) -> bytes | None:
        """The payload stored for ``key``, or None (a miss, or an entry that does not prove
        itself: ignored and reported)."""
        return self.read(kind, key, bytes, "")

    def _fetch(self, kind: str, key: str) -> bytes | None:
        """The payload of the entry, uncounted; an entry that does not prove itself is
        reported and None."""
        found = self._fetch_at(kind, key)
        return found[0][found[1]:] if found is not None else None

    def _fetch_at(self, kind: str, key: str) -> tuple[bytes, int] | None:
        """:meth:`_fetch` as the entry's whole bytes and where its payload starts (a pack's
        records are cut from them without copying the payload first)."""
        if self.folder is None:
            return None
        path = self._path(kind, key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            self._report(path, f"unreadable ({exc.strerror or exc})")
            return None
        end = raw.find(b"\n", 0, _HEADER_MAX + 1)
        if end < 0:
            self._report(path, "no header")
            return None
        header, payload = raw[:end], memoryview(raw)[end + 1:]
        want = b" ".join((FORMAT, kind.encode(), key.encode(), hashlib.sha256(payload).hexdigest().encode(),
                          str(len(payload)).encode()))
        if header != want:
            self._report(path, _mismatch(header, want))
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the size bound removes the oldest first
        return raw, end + 1

    def _report(self, path: Path, why: str) -> None:
        self.stats.ignored.append(f"{self._shown(path)}: {why}")

    def pack(self, kind: str, name: str = "") -> Pack:
        """The pack ``name`` of ``kind``'s small entries, read once per run."""
        if (kind, name) not in self._packs:
            self._packs[(kind, name)] = Pack(self, kind, name)
        return self._packs[(kind, name)]

    def touch_pack(self, kind: str, name: str = "") -> None:
        """Mark the pack ``name`` of ``kind`` recently used without reading it (the size
        bound removes the least recently used first)."""
        if self.folder is None:
            return
        with contextlib.suppress(OSError, NotImplementedError):
            os.utime(self._path(*_pack_slot(kind, name)), follow_symlinks=False)

    def read(self, kind: str, key: str, decode: Callable[[bytes], T | None], refused: str) -> T | None:
        """What ``decode`` makes of the payload stored for ``key``, or None: a miss, an entry
        that does not prove itself, or a payload ``decode`` refuses (None), which is counted
        as a miss, reported as ``refused``, and replaced by the next ``put``."""
        payload = self._fetch(kind, key)
        value = decode(payload) if payload is not None else None
        self._count(kind, payload, value, self._path(kind, key) if self.folder is not None else None, refused)
        return value

    def _count(self, kind: str, payload: bytes | None, value: object, path: Path | None, refused: str) -> None:
        """A lookup of ``kind`` in the account: found where ``value`` came of it, else a
        miss; a payload its reader refused (``value`` None) is reported as ``refused``."""
        if value is not None:
            self.stats.hits[kind] += 1
            return
        self.stats.misses[kind] += 1
        if payload is not None and path is not None:
            self._report(path, refused)

    def _shown(self, path: Path) -> str:
        assert self.folder is not None
        return f"{FOLDER}/{path.relative_to(self.folder).as_posix()}"

    def put(self, kind: str, key: str, payload: bytes) -> None:
        """Store ``payload`` whole (a temporary file renamed into place) or not at all; a
        cache that cannot be written is reported, never an error."""
        if self.folder is None:
            return
        path = self._path(kind, key)
        header = b" ".join((FORMAT, kind.encode(), key.encode(), hashlib.sha256(payload).hexdigest().encode(),
                            str(len(payload)).encode()))
        tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
        try:
            if path.parent not in self._ready:  # made and checked once per run
                if not self.folder.is_dir():
                    _make_folder(self.folder)
                path.parent.mkdir(parents=True, exist_ok=True)
                if _has_link(self.folder, path.parent):
                    raise OSError(0, "a link inside the cache folder")
                self._ready.add(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(header + b"\n" + payload)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not any(w.startswith("not writable") for w in self.stats.ignored):
                self.stats.ignored.append(f"not writable: {exc.strerror or exc}; results not stored")
            return
        self.stats.writes[kind] += 1

    def trim(self) -> None:
        """Remove the least recently used entries until the folder is below its bound (to
        ¾ of it, so that the next runs do not trim again at once)."""
        if self.folder is None or not sum(self.stats.writes.values()) or not self.folder.is_dir():
            return
        entries: list[tuple[float, int, Path]] = []
        for rel, path in _files(self.folder, ""):
            if rel.count("/") != 2:  # not an entry (<kind>/<xx>/<key>): .gitignore, CACHEDIR.TAG
                continue
            try:
                st = path.lstat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return
        target = self.max_bytes * 3 // 4
        for _, size, path in sorted(entries):
            if total <= target:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            self.stats.removed += 1


PACK_AGE = 8  # writes of a pack that one of its entries may stay unused before it is dropped
_RECORD = re.compile(rb"([0-9a-f]{64}) ([0-9]{1,12}) ([0-9]{1,3})\n")


class Pack:
    """Many small entries of one kind (a catalog's parsed files) kept in one entry of the
    cache, ``<kind>-pack``, read and written whole: a first run writes one file, not
    thousands, and a later one reads one.

    Each entry in it is still found only under its own content key, exactly as an entry of
    its own would be, and its payload is checked by its reader; the pack's header proves
    the whole (a damaged pack is ignored, reported, and written again).  An entry a run
    did not use is kept for :data:`PACK_AGE` more writes (another branch's files), then
    dropped."""

    def __init__(self, cache: Cache, kind: str, name: str = "") -> None:
        self.cache, self.kind = cache, kind
        self.outer, self.slot = _pack_slot(kind, name)
        self.path = cache._path(self.outer, self.slot) if cache.folder is not None else None
        self.records: dict[str, tuple[bytes, int]] = {}  # key: (payload, writes since last used)
        self.used: set[str] = set()
        self.changed = False
        found = cache._fetch_at(self.outer, self.slot)
        if found is not None:
            records = _records(*found)
            if records is None:
                cache._report(cache._path(self.outer, self.slot), "not a pack of entries")
            else:
                self.records = records

    def read(self, key: str, decode: Callable[[bytes], T | None], refused: str) -> T | None:
        """As :meth:`Cache.read`, for an entry of the pack."""
        record = self.records.get(key)
        payload = record[0] if record is not None else None
        value = decode(payload) if payload is not None else None
        self.cache._count(self.kind, payload, value, self.path, f"entry {key}: {refused}")
        if value is not None:
            self.used.add(key)
        elif record is not None:  # refused: dropped, and the pack written again
            del self.records[key]
            self.changed = True
        return value

    def put(self, key: str, payload: bytes) -> None:
        if self.cache.folder is None:
            return
        self.records[key] = (payload, 0)
        self.used.add(key)
        self.changed = True
        self.cache.stats.writes[self.kind] += 1

    def flush(self) -> None:
        """Write the pack where this run added or refused entries; entries in key order."""
        if not self.changed:
            return
        parts: list[bytes] = []
        for key in sorted(self.records):
            payload, age = self.records[key]
            age = 0 if key in self.used else age + 1
            if age <= PACK_AGE:
                parts += (b"%s %d %d\n" % (key.encode(), len(payload), age), payload)
        self.cache.put(self.outer, self.slot, b"".join(parts))
        self.changed = False


def _pack_slot(kind: str, name: str) -> tuple[str, str]:
    """The kind and key of the entry that holds the pack ``name`` of ``kind``."""
    outer = f"{kind}-pack"
    return outer, Digest(outer).text(name).hexdigest()


def _records(payload: bytes, at: int = 0) -> dict[str, tuple[bytes, int]] | None:
    """The entries of a pack: ``<key> <length> <age>\\n<payload>`` after one another (from
    ``at`` on), or None where the payload is not exactly that."""
    out: dict[str, tuple[bytes, int]] = {}
    end = len(payload)
    while at < end:
        m = _RECORD.match(payload, at)
        if m is None:
            return None
        start = m.end()
        stop = start + int(m[2])
        if stop > end:
            return None
        out[m[1].decode()] = (payload[start:stop], int(m[3]))
        at = stop
    return out


def _make_folder(folder: Path) -> None:
    """The cache folder, with what keeps it out of commits and backups (as pytest's is):
    a ``.gitignore`` that ignores everything in it and a ``CACHEDIR.TAG``."""
    folder.mkdir(exist_ok=True)
    (folder / ".gitignore").write_text("# written by kitchen check: the cache is never committed\n*\n")
    (folder / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n"
                                         "# This file is a cache directory tag created by kitchen check.\n")


def _mismatch(header: bytes, want: bytes) -> str:
    got = header.split(b" ")
    parts = want.split(b" ")
    if not got or got[0] != parts[0]:
        return "another format or version of the cache"
    if len(got) != len(parts) or got[1:3] != parts[1:3]:
        return "an entry for another key"
    return "its payload does not match its digest (truncated or edited)"


def _has_link(folder: Path, inner: Path) -> bool:
    """Whether a folder between ``folder`` (included) and ``inner`` is a link."""
    p = inner
    while True:
        if p.is_symlink():
            return True
        if p == folder or p.parent == p:
            return False
        p = p.parent


def _tracked(root: Path) -> bool | None:
    """Whether Git tracks anything under the cache folder of ``root``: False outside a
    repository (nothing is tracked there), None where the repository's Git cannot say."""
    if not any((p / ".git").exists() for p in (root.resolve(), *root.resolve().parents)):
        return False
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", FOLDER],
                             capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return bool(out.stdout)
