"""The Git history of a catalog repository, read with the ``git`` CLI.

The first-parent commits of a branch that touched some paths (newest first, as ``git log
--first-parent`` lists them: the states the branch was in, one per merge or direct
commit), the files of a folder at a commit (only regular files, each at most a given size,
read by blob id once however many commits hold it), and revisions resolved to commit ids.
Nothing here trusts what a commit holds: callers parse and verify it as they would the
working tree's files.  The catalog may be a folder of the repository (``--root``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, UsageError
from .escape import visible

REGULAR_MODES = ("100644", "100755")


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    email: str
    time: str  # committer time (when it landed on the branch), ISO 8601 as Git writes it
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:12]

    def as_dict(self) -> dict[str, str]:
        return {"commit": self.sha, "author": visible(self.author), "email": visible(self.email),
                "time": self.time, "subject": visible(self.subject)[:200]}


@dataclass(frozen=True)
class Blob:
    path: str  # relative to the catalog root
    sha: str
    size: int


@dataclass
class Repository:
    """A catalog root inside a Git repository."""

    root: Path
    top: Path
    prefix: str  # the catalog root's path inside the repository ("" or ending with "/")
    _blobs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> Repository:
        try:
            top = _run(["git", "-C", str(root), "rev-parse", "--show-toplevel"]).strip()
            prefix = _run(["git", "-C", str(root), "rev-parse", "--show-prefix"]).strip()
        except (OSError, subprocess.CalledProcessError):
            raise ConfigError(f"{root}: not a Git checkout; the history of an environment is read from "
                              "its Git repository") from None
        return cls(root, Path(top), prefix)

    def git(self, *args: str, data: bytes | None = None) -> bytes:
        try:
            return subprocess.run(["git", "-C", str(self.top), *args], input=data, capture_output=True,
                                  check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            raise ConfigError(f"git {args[0]} failed in {self.top}: "
                              f"{visible(err.decode('utf-8', 'replace').strip())[:300] or exc}") from None

    def resolve(self, revision: str, option: str = "--to") -> str:
        """The commit id of ``revision``; UsageError when the repository has none such."""
        if not revision or revision.startswith("-") or any(c in revision for c in "\0\n\r"):
            raise UsageError(f"{option} '{visible(revision)}' is not a Git revision")
        proc = subprocess.run(["git", "-C", str(self.top), "rev-parse", "--verify", "--quiet",
                               f"{revision}^{{commit}}"], capture_output=True, text=True, check=False)
        if proc.returncode:
            raise UsageError(f"{option} '{visible(revision)}' is not a commit of {self.top}")
        return proc.stdout.strip()

    def head(self) -> str | None:
        proc = subprocess.run(["git", "-C", str(self.top), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                              capture_output=True, text=True, check=False)
        return proc.stdout.strip() or None

    def log(self, paths: Sequence[str], until: str | None = None) -> list[Commit]:
        """The first-parent commits up to ``until`` (default HEAD) that touched ``paths``
        (relative to the catalog root), newest first; none before the first commit."""
        start = until or self.head()
        if start is None:
            return []
        raw = self.git("log", "--first-parent", "-z", "--format=%H%x1f%an%x1f%ae%x1f%cI%x1f%s", start, "--",
                       *(self.prefix + p for p in paths))
        out = []
        for entry in raw.decode("utf-8", "replace").split("\0"):
            parts = entry.strip("\n").split("\x1f")
            if len(parts) == 5:
                out.append(Commit(*parts))
        return out

    def commit(self, sha: str) -> Commit:
        raw = self.git("log", "-1", "-z", "--format=%H%x1f%an%x1f%ae%x1f%cI%x1f%s", sha, "--")
        parts = raw.decode("utf-8", "replace").strip("\0\n").split("\x1f")
        if len(parts) != 5:
            raise ConfigError(f"git log cannot read commit {sha}")
        return Commit(*parts)

    def files(self, commit: str, folder: str) -> list[Blob]:
        """The regular files below ``folder`` at ``commit`` (links and submodules left out)."""
        raw = self.git("ls-tree", "-r", "-l", "-z", commit, "--", self.prefix + folder)
        out = []
        for entry in raw.decode("utf-8", "replace").split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if len(parts) == 4 and parts[0] in REGULAR_MODES and parts[3].isdigit():
                out.append(Blob(path[len(self.prefix):], parts[2], int(parts[3])))
        return sorted(out, key=lambda b: b.path)

    def read(self, blobs: Sequence[Blob], limit: int) -> dict[str, bytes]:
        """The bytes of each blob no larger than ``limit`` (by blob id); larger ones are absent."""
        wanted = sorted({b.sha for b in blobs if b.size <= limit and b.sha not in self._blobs})
        if wanted:
            raw = self.git("cat-file", "--batch", data="".join(f"{s}\n" for s in wanted).encode("ascii"))
            at = 0
            for sha in wanted:
                header_end = raw.index(b"\n", at)
                size = int(raw[at:header_end].split()[2])
                self._blobs[sha] = raw[header_end + 1:header_end + 1 + size]
                at = header_end + 1 + size + 1
        return {b.sha: self._blobs[b.sha] for b in blobs if b.sha in self._blobs}

    def changed(self, paths: Sequence[str]) -> bool:
        """Whether the working tree differs from HEAD under ``paths``."""
        if self.head() is None:
            return True
        raw = self.git("status", "--porcelain", "-z", "--", *(self.prefix + p for p in paths))
        return bool(raw.strip(b"\0"))


def _run(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout
