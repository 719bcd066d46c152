"""The vLLM releases kitchen renders for, each with the command line its own parser accepts.

The tables under ``data/vllm/<release>.json`` are written by
``scripts/vllm_release_table.py`` from each release's ``make_arg_parser`` (and its
``LoRAConfig`` for the LoRA ranks); nothing here is typed in by hand.  An environment
declares its image's release (``images.vllm_version``); the plan writes the arguments that
release reads (its LoRA ranks, its ``--gpu-memory-utilization`` default written out) and
:meth:`VllmRelease.check` reads a whole command line as that parser would, so a flag the
release lacks, a value it refuses or an abbreviation is a finding before anything renders.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

# Flags the parser accepts that kitchen refuses: what they would set is out of sight of the
# checks and policies that read the command line.
UNCHECKABLE = {
    "--config": "--config reads more arguments from a file in the image, which kitchen cannot check: "
                "write them in extra_args",
}

# vLLM's human_readable_int: 1k = 1000, 1K = 1024, also M, G, T and decimals ("25.6k").
_HUMAN_INT = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]$")


@dataclass(frozen=True)
class VllmOption:
    """One option of a release's parser."""

    dest: str
    flags: tuple[str, ...]
    nargs: int | str | None
    choices: tuple[Any, ...] | None
    value: str  # none, integer, human-integer, number, json, boolean, string, other
    default: Any

    @property
    def takes_value(self) -> bool:
        return self.nargs != 0

    @property
    def flag(self) -> str:
        """The long spelling that sets the option: the one named after it, if any."""
        named = "--" + self.dest.replace("_", "-")
        if named in self.flags:
            return named
        long = [f for f in self.flags if f.startswith("--") and not f.startswith("--no-")]
        return (long or list(self.flags))[0]

    def refusal(self, value: str) -> str | None:
        """Why the release's parser would refuse ``value``, or None."""
        kind = self.value
        parsed: Any = value
        if kind in ("integer", "human-integer"):
            try:
                parsed = int(value)
            except ValueError:
                if not (kind == "human-integer" and _HUMAN_INT.match(value)):
                    return "an integer" + (" (or 1k, 2M … as vLLM reads them)" if kind == "human-integer" else "")
        elif kind == "number":
            try:
                parsed = float(value)
            except ValueError:
                return "a number"
            if not math.isfinite(parsed):
                return "a finite number"
        elif kind == "json":
            try:
                json.loads(value)
            except ValueError:
                return "JSON"
        elif kind == "boolean" and value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            return "true or false"
        if self.choices is not None and parsed not in self.choices and value not in map(str, self.choices):
            return "one of " + ", ".join(map(str, self.choices))
        return None


@dataclass(frozen=True)
class ArgProblem:
    """A token of a command line that the release's parser would refuse."""

    index: int  # of the token in the argv
    flag: str
    message: str
    expected: str


_CHECKED_MAX = 1 << 16  # command lines a release remembers


@dataclass(frozen=True)
class VllmRelease:
    release: str
    parser: str
    lora_ranks: tuple[int, ...]
    options: Mapping[str, VllmOption]
    by_flag: Mapping[str, VllmOption]
    # each flag's answer of option(), as asked (a plan asks the same few thousands of times)
    _read: dict[str, VllmOption | None] = field(default_factory=dict, init=False, compare=False, repr=False)
    # each command line's problems, as checked (environments that share settings give their
    # tenants the same command lines)
    _checked: dict[tuple[tuple[str, ...], int | None], tuple[ArgProblem, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    def option(self, flag: str) -> VllmOption | None:
        """The option a flag sets, read as vLLM's parser reads it (``_`` as ``-``)."""
        if flag in self._read:
            return self._read[flag]
        name = flag.split("=", 1)[0]
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        found = self._read[flag] = self.by_flag.get(name)
        return found

    def options_set(self, argv: Sequence[str]) -> list[tuple[int, VllmOption]]:
        """The option each flag of ``argv`` sets, with the flag's index (values skipped;
        a short flag with its value attached, ``-tp2``, read as the parser reads it)."""
        out = []
        for i, token in enumerate(argv):
            if not _is_flag(token):
                continue
            option = self.option(token)
            if option is None and not token.startswith("--") and len(token) > 2:
                option = self.by_flag.get(token[:2])
            if option is not None:
                out.append((i, option))
        return out

    def has(self, flag: str) -> bool:
        return self.option(flag) is not None

    def default(self, dest: str) -> Any:
        option = self.options.get(dest)
        return None if option is None else option.default

    def check(self, argv: Sequence[str], boundary: int | None = None) -> list[ArgProblem]:
        """Read ``argv`` as the release's parser does; what it would refuse (argparse's
        abbreviations are refused too: a policy reads flags by their full name).  Tokens
        from ``boundary`` on come from elsewhere (the environment's extra_args): one of them
        that the parser would read as a value of an earlier flag is a problem too."""
        asked = (tuple(argv), boundary)
        if asked in self._checked:
            return list(self._checked[asked])
        problems: list[ArgProblem] = []
        split = len(argv) if boundary is None else boundary
        i = 0
        while i < len(argv):
            i = self._check_at(argv, i, split, problems)
        if len(self._checked) >= _CHECKED_MAX:
            self._checked.clear()
        self._checked[asked] = tuple(problems)
        return problems

    def _check_at(self, argv: Sequence[str], i: int, split: int, problems: list[ArgProblem]) -> int:
        """Read the token at ``i`` and the values its flag takes, adding what the parser would
        refuse to ``problems``; the index of the next token to read."""
        token = argv[i]
        if not _is_flag(token):
            problems.append(ArgProblem(i, token, f"unexpected value {token!r}: no flag takes it",
                                       "a --flag before each value"))
            return i + 1
        name, eq, inline = token.partition("=")
        if name == "--":
            problems.append(ArgProblem(i, name, "'--' ends the options: vLLM would read what follows as the model",
                                       "flags only"))
            return i + 1
        option = self.option(name)
        if option is not None and option.flag in UNCHECKABLE:
            problems.append(ArgProblem(i, name, UNCHECKABLE[option.flag], "flags kitchen can read"))
        if option is None and not name.startswith("--") and len(name) > 2:  # -O3: a short flag and its value
            option = self.by_flag.get(name[:2])
            if option is not None and option.takes_value:
                name, eq, inline = name[:2], "=", token[2:]
            else:
                option = None
        if option is None:
            base = self.option(name.split(".", 1)[0]) if "." in name else None
            if base is not None and base.value in ("json", "other"):  # --compilation-config.mode=3
                return i + (1 if eq else 2)
            problems.append(ArgProblem(i, name, self._unknown(name), f"a flag of vLLM {self.release}"))
            return i + 1
        if not option.takes_value:
            if eq:
                problems.append(ArgProblem(i, name, f"{name} takes no value", f"{name} alone"))
            return i + 1
        return self._check_values(argv, i + 1, split, option, name, inline if eq else None, problems)

    def _check_values(self, argv: Sequence[str], i: int, split: int, option: VllmOption, name: str,
                      inline: str | None, problems: list[ArgProblem]) -> int:
        """The values of the flag ``name`` before ``i``: ``inline`` (``--flag=value``), else the
        tokens from ``i`` on (one, or as many as a ``+``/``*`` option takes); the index after them."""
        values: list[str] = []
        if inline is not None:
            values.append(inline)
        else:
            many = option.nargs in ("+", "*")
            while i < len(argv) and not _is_flag(argv[i]) and (many or not values):
                values.append(argv[i])
                i += 1
        start = i - len(values)
        if inline is None and start < split <= i - 1 and values:
            problems.append(ArgProblem(split, argv[split],
                                       f"{argv[split]!r} would be read as a value of {name}",
                                       "a --flag first"))
        if not values and option.nargs not in ("?", "*"):
            problems.append(ArgProblem(i - 1, name, f"{name} expects a value", _expect(option)))
        for value in values:
            why = self._refusal(option, value)
            if why is not None:
                problems.append(ArgProblem(i - 1, name, f"{name}: invalid value {value!r}", why))
        return i

    def _refusal(self, option: VllmOption, value: str) -> str | None:
        """Why the release refuses ``value`` for ``option`` (None: it accepts it)."""
        why = option.refusal(value)
        if why is None and option.dest == "max_lora_rank" and value.isdigit() \
                and int(value) not in self.lora_ranks:  # 0.11 checks it in LoRAConfig, not the parser
            why = "one of " + ", ".join(map(str, self.lora_ranks))
        return why

    def _unknown(self, name: str) -> str:
        long = "--" + name[2:].replace("_", "-") if name.startswith("--") else name
        matches = sorted(f for f in self.by_flag if f.startswith(long)) if long.startswith("--") else []
        if matches:
            return (f"{name} is an abbreviation of {matches[0]}"
                    + (f" (or {len(matches) - 1} other flag(s))" if len(matches) > 1 else "")
                    + "; write the flag in full")
        if not name.startswith("--"):
            return (f"vLLM {self.release} has no flag {name} (kitchen reads short forms only as the parser "
                    "lists them: write the long flag)")
        return f"vLLM {self.release} has no flag {name}"


def _expect(option: VllmOption) -> str:
    return {"integer": "an integer", "human-integer": "an integer", "number": "a number",
            "json": "JSON"}.get(option.value, "a value")


@lru_cache(maxsize=1 << 16)
def _is_flag(token: str) -> bool:
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False  # a negative number is a value


def _load(text: str) -> VllmRelease:
    data = json.loads(text)
    options: dict[str, VllmOption] = {}
    by_flag: dict[str, VllmOption] = {}
    for dest, raw in data["options"].items():
        opt = VllmOption(dest, tuple(raw["flags"]), raw["nargs"],
                         None if raw["choices"] is None else tuple(raw["choices"]), raw["value"], raw["default"])
        options[dest] = opt
        for flag in opt.flags:
            by_flag[flag] = opt
    return VllmRelease(data["release"], data["parser"], tuple(data["lora_ranks"]), options, by_flag)


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", release))


@cache
def releases() -> dict[str, VllmRelease]:
    """Every supported release, oldest first."""
    folder = resources.files("kitchen_gitops") / "data" / "vllm"
    found = [_load(entry.read_text(encoding="utf-8")) for entry in folder.iterdir() if entry.name.endswith(".json")]
    return {r.release: r for r in sorted(found, key=lambda r: _version_key(r.release))}


def release(version: str) -> VllmRelease | None:
    return releases().get(version)


def supported() -> tuple[str, ...]:
    return tuple(releases())
