"""The vLLM release an environment declares decides its command line.

The tables under kitchen_gitops/data/vllm are each release's own parser, written by
scripts/vllm_release_table.py (tests/core/test_vllm_args.py and
tests/core/test_vllm_release_parsers.py compare them with the parsers themselves)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kitchen_gitops import pipeline, vllm_release
from kitchen_gitops.cli import main
from kitchen_gitops.plan import release_options, round_lora_rank
from tests.conftest import CASES, copy_catalog

OLD, NEW = vllm_release.release("0.11.0"), vllm_release.release("0.32.0")


def _problems(release: vllm_release.VllmRelease | None, argv: list[str],
              boundary: int | None = None) -> list[str]:
    assert release is not None
    return [p.message for p in release.check(argv, boundary)]


def test_supported_releases_span_the_declared_line_to_the_installed_one() -> None:
    releases = vllm_release.supported()
    assert releases[0] == "0.11.0" and releases[-1] == "0.32.0"
    assert list(releases) == sorted(releases, key=lambda r: tuple(map(int, r.split("."))))


def test_every_supported_release_has_a_golden_case() -> None:
    assert {p.name for p in CASES.glob("vllm-*")} == {f"vllm-{r}" for r in vllm_release.supported()}


def test_tables_hold_what_changed_between_releases() -> None:
    """What the parsers say (not typed in): --lora-extra-vocab-size gone in 0.12,
    --lora-target-modules new in 0.19, --gpu-memory-utilization's default 0.92 from 0.20,
    rank 1 accepted from 0.12."""
    r = vllm_release.releases()
    assert r["0.11.0"].has("--lora-extra-vocab-size") and not r["0.12.0"].has("--lora-extra-vocab-size")
    assert not r["0.18.0"].has("--lora-target-modules") and r["0.19.0"].has("--lora-target-modules")
    assert r["0.12.0"].has("--swap-space") and not r["0.18.0"].has("--swap-space")
    assert [r[v].default("gpu_memory_utilization") for v in ("0.11.0", "0.19.0", "0.20.0", "0.32.0")] == [
        0.9, 0.9, 0.92, 0.92]
    assert r["0.11.0"].lora_ranks == (8, 16, 32, 64, 128, 256, 320, 512)
    assert r["0.12.0"].lora_ranks[0] == 1
    for release in r.values():  # KServe passes neither unless set: vLLM's own defaults
        assert (release.default("max_loras"), release.default("max_lora_rank")) == (1, 16)


def test_ranks_round_to_what_the_release_accepts() -> None:
    assert OLD is not None and NEW is not None
    assert round_lora_rank(1, OLD.lora_ranks) == 8
    assert round_lora_rank(1, NEW.lora_ranks) == 1
    assert round_lora_rank(300, OLD.lora_ranks) == 320


@pytest.mark.parametrize(("argv", "message"), [
    (["--lora-extra-vocab-size=256"], "vLLM 0.32.0 has no flag --lora-extra-vocab-size"),
    (["--trust-remote"], "--trust-remote is an abbreviation of --trust-remote-code; write the flag in full"),
    (["--max-num-seqs=abc"], "--max-num-seqs: invalid value 'abc'"),
    (["--max-num-seqs"], "--max-num-seqs expects a value"),
    (["--dtype", "int3"], "--dtype: invalid value 'int3'"),
    (["--enforce-eager=1"], "--enforce-eager takes no value"),
    (["--gpu-memory-utilization=nan"], "--gpu-memory-utilization: invalid value 'nan'"),
    (["--max-lora-rank=24"], "--max-lora-rank: invalid value '24'"),
    (["stray"], "unexpected value 'stray': no flag takes it"),
    (["-O3"], "vLLM 0.32.0 has no flag -O3"),
    (["--config", "/etc/more.yaml"], "--config reads more arguments from a file in the image"),
    (["--"], "'--' ends the options"),
])
def test_check_refuses_what_the_parser_would(argv: list[str], message: str) -> None:
    found = _problems(NEW, argv)
    assert len(found) == 1 and found[0].startswith(message), found


@pytest.mark.parametrize("argv", [
    ["--max_num_seqs", "8"], ["--seed", "-1"], ["--max-model-len=1k"], ["--compilation-config.mode=3"],
    ["--lora-modules", '{"name":"a","path":"/a"}', "b=/b"], ["-tp", "2"], ["--no-enable-prefix-caching"],
    ["--device-memory-utilization=0.5"], ["--lora-target-modules", "q_proj", "v_proj"],
])
def test_check_accepts_what_the_parser_accepts(argv: list[str]) -> None:
    assert _problems(NEW, argv) == []


def test_check_reads_each_release_with_its_own_parser() -> None:
    assert _problems(OLD, ["--lora-extra-vocab-size=256", "--swap-space", "4"]) == []
    assert _problems(OLD, ["--max-lora-rank=1"]) == ["--max-lora-rank: invalid value '1'"]  # LoRAConfig's rule
    assert _problems(OLD, ["--lora-target-modules", "q_proj"])[0] == "vLLM 0.11.0 has no flag --lora-target-modules"
    assert _problems(NEW, ["--max-lora-rank=1"]) == []


def test_extra_value_swallowed_by_a_computed_flag() -> None:
    """An extra_args value after the computed --lora-modules would become a module."""
    argv = ["--lora-modules", '{"name":"a","path":"/a"}', "oops"]
    assert _problems(NEW, argv, boundary=2) == ["'oops' would be read as a value of --lora-modules"]
    assert _problems(NEW, argv) == []  # one command line of one origin: vLLM reads three modules


def test_options_the_release_lacks_are_left_out_and_renamed_ones_spelled_its_way() -> None:
    assert NEW is not None
    options = {k: v for k, v in NEW.options.items() if k != "max_cpu_loras"}
    renamed = dataclasses.replace(NEW.options["gpu_memory_utilization"], flags=("--device-memory-utilization",))
    options["gpu_memory_utilization"] = renamed
    by_flag = {f: o for o in options.values() for f in o.flags}
    older = dataclasses.replace(NEW, options=options, by_flag=by_flag)
    got = release_options([("--max-cpu-loras", "4"), ("--gpu-memory-utilization", "0.9"), ("--enable-lora", None)],
                          older)
    assert got == [("--device-memory-utilization", "0.9"), ("--enable-lora", None)]


def _release_repo(tmp_path: Path, release: str) -> Path:
    return copy_catalog(CASES / f"vllm-{release}", tmp_path / "repo")


def test_memory_utilization_defaults_to_the_release_and_the_environment_wins(tmp_path: Path) -> None:
    root = _release_repo(tmp_path, "0.32.0")
    svc = pipeline.plan(root).plans["dev"].services[0]
    assert "--gpu-memory-utilization=0.92" in svc.args
    env = root / "environments/dev.yaml"
    env.write_text(env.read_text().replace("  vllm:\n", "  vllm:\n    gpu_memory_utilization: 0.85\n"))
    svc = pipeline.plan(root).plans["dev"].services[0]
    assert "--gpu-memory-utilization=0.85" in svc.args and svc.memory.usable_gib == pytest.approx(
        24 * 0.99 * 0.85, abs=0.01)


def test_render_refuses_extra_args_the_release_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Moving the 0.11 environment to 0.32 without touching its extra_args: the finding is at
    the extra_args entry, nothing is written."""
    root = _release_repo(tmp_path, "0.11.0")
    env = root / "environments/dev.yaml"
    env.write_text(env.read_text().replace("vllm_version: 0.11.0", "vllm_version: 0.32.0"))
    assert main(["render", "--root", str(root), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    (f,) = json.loads(out)["findings"]
    line = next(i for i, text in enumerate(env.read_text().splitlines(), 1) if "extra_args" in text)
    col = env.read_text().splitlines()[line - 1].index("--lora-extra-vocab-size") + 1
    assert f["rule_id"] == "plan.vllm-args" and f["severity"] == "error"
    assert f["location"] == {"file": "environments/dev.yaml", "line": line, "col": col}
    assert "vLLM 0.32.0 has no flag --lora-extra-vocab-size" in f["message"]
    assert not (root / "rendered").exists()


def test_smuggled_flags_are_refused_at_their_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An abbreviation that a policy reading full flag names would miss, and a value that
    vLLM would read as one more adapter."""
    root = _release_repo(tmp_path, "0.32.0")
    env = root / "environments/dev.yaml"
    env.write_text(env.read_text().replace("extra_args: [--enable-prefix-caching, --lora-dtype, bfloat16]",
                                           'extra_args: ["x=/mnt/evil", --trust-remote]'))
    assert main(["render", "--root", str(root), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert sorted(f["message"].split(": ", 1)[1] for f in found) == [
        "'x=/mnt/evil' would be read as a value of --lora-modules",
        "--trust-remote is an abbreviation of --trust-remote-code; write the flag in full",
    ]
    assert {f["rule_id"] for f in found} == {"plan.vllm-args"}


def test_a_command_line_checked_again_gives_the_same_problems() -> None:
    """A release remembers the command lines it checked (environments sharing settings give
    their tenants the same ones): asked again, by the same or another boundary, it answers
    what a release that never saw them answers, whatever the caller did with the list."""
    assert NEW is not None
    argv = ["--port=8080", "--model", "/mnt/models/base", "--max-loras", "x", "--max-lora-rank", "8", "--bogus"]
    first = NEW.check(argv, 7)
    fresh = dataclasses.replace(NEW)  # a copy made afresh remembers nothing
    assert first == fresh.check(argv, 7) and len(first) == 2
    first.clear()
    assert NEW.check(argv, 7) == fresh.check(argv, 7) and len(NEW.check(argv, 7)) == 2
    modules = ["--lora-modules", "a=/x", "b=/y"]  # the boundary inside the values is a problem
    assert len(NEW.check(modules, 2)) == 1 and NEW.check(modules, 2) == fresh.check(modules, 2)
    assert NEW.check(modules) == fresh.check(modules) == []
    assert NEW.check(argv) == fresh.check(argv)
