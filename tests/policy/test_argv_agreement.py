"""kitchen reads each vLLM container's argv once, in Python (``argv.py``), and hands the
flags to the policy library; the library reads an argv itself (``lib.vllm_flags``) when an
input comes without them.  The two readings must be one: the same flags for every argv,
on both engines, including the argvs a careless or hostile template writes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.argv import vllm_flags
from kitchen_gitops.policy.engines import Engine, OpaLibEngine, RegorusEngine
from kitchen_gitops.policy.library import Module, load_library
from tests.policy.policy_cases import REPO

TOKENS: tuple[Any, ...] = (
    "vllm", "serve", "--model=/mnt/models", "--max-lora-rank", "--max_lora_rank=64", "64", "16",
    "--trust-remote-code", "--trust_remote_code", "--trust-remote-code=false", "True",
    "-1", "-1.5", "-.5", "-1e5", "-x", "-tp", "--", "-", "", "=", "--a=b=c", "--x=", "--X_Y",
    "--enable-lora", "--lora-modules", "a=s3://b/c", "b=/mnt/lora/b", 5, None, True, "--seed",
    "--max-loras", "--max_loras", "8", "--=x", "---triple", "--ünïcode", "--tab\tflag",
)
COUNT = 400  # argvs, drawn once from a fixed seed


def _corpus() -> list[list[Any]]:
    rng = random.Random(20261202)
    argvs: list[list[Any]] = [[], ["--trust_remote_code"], ["--seed", "-1"], ["--max-lora-rank", "--max-loras", "4"]]
    while len(argvs) < COUNT:
        argvs.append([rng.choice(TOKENS) for _ in range(rng.randint(1, 12))])
    return argvs


PROBE = """package argv_probe

flags := {i: f |
	some i, argv in input.argvs
	f := data.kitchen.lib.vllm_flags({"command": [], "args": argv})
}
"""


@pytest.mark.parametrize("engine_name", ["regorus", "opa"])
def test_python_and_rego_read_every_argv_alike(engine_name: str) -> None:
    library = load_library(REPO / "policies", REPO)
    engine: Engine = RegorusEngine() if engine_name == "regorus" else OpaLibEngine()
    lib = [m for m in library.policy_modules() if m.package == "kitchen.lib"]
    assert lib
    engine.load([*lib, Module(Path("argv_probe.rego"), "argv_probe.rego", PROBE, "argv_probe")], library.data)
    argvs = _corpus()
    got = engine.evaluate("argv_probe.flags", {"argvs": argvs}) or {}
    mismatches = []
    for i, argv in enumerate(argvs):
        rego = got.get(str(i), got.get(i))  # type: ignore[call-overload]
        python = vllm_flags(argv)
        if rego != python:
            mismatches.append(f"{argv!r}: rego {rego!r}, python {python!r}")
    assert mismatches == [], "\n".join(mismatches[:20])


def test_reading_follows_vllms_parser() -> None:
    flags = vllm_flags(["vllm", "serve", "--max_lora_rank", "16", "--enable-lora", "--max-lora-rank=64",
                        "--seed", "-1", "--trust_remote_code", "--x=a=b", "-tp", "2"])
    assert flags == {"--max-lora-rank": "64", "--enable-lora": True, "--seed": "-1",
                     "--trust-remote-code": True, "--x": "a=b"}
