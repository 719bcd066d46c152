"""Process-group helpers shared by the test servers (``s3_server``, ``vllm_server``,
``prometheus_server``).

A server is started with ``subprocess.Popen(..., start_new_session=True)``, so its
leader's pid is the id of a process group that holds every child it spawns.
:func:`stop_process_group` ends that whole group; :func:`tail` reads the end of its log
for error messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = ["ServerProcess", "group_members", "stop_process_group", "tail"]


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or ``<no log>``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, rss bytes) of the live (non-zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # fields after the ")" closing the command name: state, ppid, pgrp, ...
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid or fields[0] in ("Z", "X"):
                continue
            rss = 0
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
            found.append((int(entry.name), rss))
        except (OSError, ValueError, IndexError):
            continue
    return found


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float, *, kill_wait: float = 5.0) -> None:
    """End the process group led by ``proc`` (started with ``start_new_session=True``).

    SIGTERM to the group, then wait up to ``timeout`` seconds until the leader is reaped
    and no live member is left (children may outlive the leader; zombies do not count).
    Whatever is still there then gets SIGKILL and up to ``kill_wait`` more seconds. The
    leader is always reaped, and a last SIGKILL to the group removes any straggler.
    """
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader
        if not group_members(pgid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + kill_wait
        while group_members(pgid) and time.monotonic() < deadline:
            proc.poll()
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=kill_wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class ServerProcess:
    """A server in its own process group, used as a context manager: ``start()`` on
    entry (defined by the subclass, which launches its command with :meth:`launch`), the
    whole group stopped on exit."""

    stop_timeout = 10.0
    startup_timeout = 60.0
    name = "server"  # in messages
    error: type[Exception] = RuntimeError
    poll_seconds = 0.3
    http_timeout = 2.0
    log_lines = 40  # of the log, in a message that the server did not come up
    log_path: Path

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def ready(self, client: httpx.Client) -> bool:
        """Whether the server answers as a started one does (an HTTP error counts as no)."""
        raise NotImplementedError

    def launch(self, command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
               since: float | None = None) -> None:
        """Start ``command`` in its own process group, its output appended to ``log_path``,
        and wait until :meth:`ready` — within ``startup_timeout`` of ``since`` (default
        now) — or raise ``error`` with the log's end; the group is stopped on any failure."""
        deadline = (time.monotonic() if since is None else since) + self.startup_timeout
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=None if env is None else dict(env),
                                            start_new_session=True)
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        with httpx.Client(timeout=self.http_timeout) as client:
            while True:
                rc = self.process.poll()
                if rc is not None:
                    raise self.error(f"{self.name} exited with code {rc} during startup; log {self.log_path}:\n"
                                     f"{tail(self.log_path, self.log_lines)}")
                with contextlib.suppress(httpx.HTTPError):
                    if self.ready(client):
                        return
                if time.monotonic() > deadline:
                    raise self.error(f"{self.name} not ready after {self.startup_timeout:.0f}s; log "
                                     f"{self.log_path}:\n{tail(self.log_path, self.log_lines)}")
                time.sleep(self.poll_seconds)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``. Idempotent."""
        proc = self.process
        if proc is None:
            return
        # children (vLLM's engine core) may outlive the leader: the group is waited for
        stop_process_group(proc, self.stop_timeout if timeout is None else timeout)
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
