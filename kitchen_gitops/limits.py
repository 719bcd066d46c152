"""Run untrusted work (a template, a Rego rule from a pull request) within a time and
memory bound.

Python cannot interrupt native code (the embedded Rego engine) and a thread cannot be
stopped, so the work runs in a forked child that inherits everything it needs (compiled
templates or policies, the input) and sends back a pickled answer; the parent waits at
most ``seconds`` and kills the child past it.  Where there is no ``fork`` the work runs
inline, unbounded.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class TimeLimitExceeded(Exception):
    """The child did not answer within the time limit (it has been killed)."""


class ChildFailed(Exception):
    """The child ended without an answer: killed, out of memory, or an unpicklable result."""


def _limit_memory(extra_bytes: int) -> None:  # pragma: no cover - runs in the child
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return
    limit = size + extra_bytes
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_bounded(work: Callable[[], T], *, seconds: float, memory_bytes: int | None = None,
                passthrough: tuple[type[BaseException], ...] = (ConfigError,)) -> T:
    """``work()``'s result, computed in a child process within ``seconds``.

    An exception of a ``passthrough`` type raised by ``work`` is raised again here (it
    must be picklable by its ``args``); any other becomes :class:`ChildFailed`.
    """
    return start_bounded(work, seconds=seconds, memory_bytes=memory_bytes, passthrough=passthrough).result()


class Pending(Generic[T]):
    """A result being computed: :meth:`result` waits for it (at most once)."""

    def result(self) -> T:
        raise NotImplementedError


class Done(Pending[T]):
    """A result computed already."""

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


class _Child(Pending[T]):
    """A forked child computing the work; its time limit counts from the fork."""

    def __init__(self, pid: int, read_fd: int, deadline: float, seconds: float) -> None:
        self._pid, self._fd, self._deadline, self._seconds = pid, read_fd, deadline, seconds

    def result(self) -> T:
        try:
            payload = _collect(self._fd, self._pid, self._deadline, self._seconds)
        finally:
            os.close(self._fd)
        kind, value = pickle.loads(payload)  # our own child's answer
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if kind == "raise":
            raise value
        raise ChildFailed(str(value))


def start_bounded(work: Callable[[], T], *, seconds: float, memory_bytes: int | None = None,
                  passthrough: tuple[type[BaseException], ...] = (ConfigError,)) -> Pending[T]:
    """:func:`run_bounded` started: the child computes ``work()`` while the caller goes on,
    and ``result()`` waits for its answer, within ``seconds`` of the start."""
    if not hasattr(os, "fork"):  # pragma: no cover - not on Linux
        return Done(work())
    read_fd, write_fd = os.pipe()
    deadline = time.monotonic() + seconds
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its coverage is not collected
        os.close(read_fd)
        _answer(work, write_fd, memory_bytes, passthrough)
    os.close(write_fd)
    return _Child(pid, read_fd, deadline, seconds)


def _answer(work: Callable[[], Any], write_fd: int, memory_bytes: int | None,
            passthrough: tuple[type[BaseException], ...]) -> NoReturn:  # pragma: no cover - the child
    status = 0
    try:
        if memory_bytes:
            _limit_memory(memory_bytes)
        answer: tuple[Any, ...] = ("ok", work())
    except passthrough as exc:
        answer = ("raise", exc)
    except MemoryError:
        answer = ("error", "ran out of memory")
    except BaseException as exc:
        answer = ("error", f"{type(exc).__name__}: {exc}")
    try:
        payload = pickle.dumps(answer)
    except Exception as exc:
        payload = pickle.dumps(("error", f"unpicklable result: {type(exc).__name__}"))
    try:
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    except BaseException:
        status = 1
    os._exit(status)


def _collect(fd: int, pid: int, deadline: float, seconds: float) -> bytes:
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeLimitExceeded(f"did not finish within {seconds:g}s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise ChildFailed(f"ended without an answer (wait status {status})")
    return b"".join(chunks)


class _Alarm(BaseException):
    """Raised by the timer inside the work; a BaseException so no ``except Exception``
    in the work (Jinja's, ours) mistakes it for the work's own error."""


def run_inline_bounded(work: Callable[[], T], *, seconds: float, memory_bytes: int | None = None) -> T:
    """``work()`` in this process, stopped after ``seconds`` (an interval timer) and with
    the address space capped at what the process holds plus ``memory_bytes``.

    For pure-Python work (rendering templates): no fork, no copy of the catalog, no
    pickling of the result.  Both limits are restored afterwards.  Outside the main
    thread, where signals cannot be received, it falls back to :func:`run_bounded`.
    """
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return run_bounded(work, seconds=seconds, memory_bytes=memory_bytes)

    def alarm(signum: int, frame: Any) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, alarm)
    old_limit = _lower_memory(memory_bytes) if memory_bytes else None
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return work()
    except _Alarm:
        raise TimeLimitExceeded(f"did not finish within {seconds:g}s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_limit is not None:
            import resource

            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_AS, old_limit)


def _lower_memory(extra_bytes: int) -> tuple[int, int] | None:
    import resource

    try:
        old = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/status", encoding="ascii") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    soft = size + extra_bytes
    if old[0] != resource.RLIM_INFINITY and old[0] <= soft:
        return None  # already lower
    try:
        resource.setrlimit(resource.RLIMIT_AS, (soft, old[1]))
    except (ValueError, OSError):
        return None
    return old
