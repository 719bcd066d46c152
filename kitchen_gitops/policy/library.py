"""The policy library: Rego modules under ``policies/``, and the metadata of each rule.

A rule is a package under ``kitchen.rules`` with an OPA ``# METADATA`` block (title,
description, ``custom.id``, ``custom.severity``) and a partial set ``violation``.  The
metadata is read here, in Python, so that every engine (embedded, real OPA, an OPA
server) reports the same rule ids and severities, and so that the docs are generated
from it.  Test modules (``*_test.rego``) hold the ``test_`` rules of ``kitchen policy test``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..findings import Location, Severity
from .errors import PolicyError

RULES_PREFIX = "kitchen.rules."
GATE_PACKAGE = "kitchen.gate"
DATA_FILE = "data.yaml"

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*$", re.M)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.M)
_VIOLATION = re.compile(r"^violation\s+contains\b", re.M)
_RULE_ID = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")


@dataclass(frozen=True)
class Module:
    """One Rego file as loaded."""

    path: Path
    display: str  # relative to the repository root, posix
    text: str
    package: str

    @property
    def is_test(self) -> bool:
        return self.path.name.endswith("_test.rego")


@dataclass(frozen=True)
class Rule:
    """A rule's self-description, from its ``# METADATA`` block."""

    id: str
    title: str
    description: str
    severity: Severity
    package: str
    location: Location
    remediation: str = ""

    @property
    def name(self) -> str:
        return self.package.removeprefix(RULES_PREFIX)


@dataclass(frozen=True)
class TestRule:
    package: str
    name: str
    location: Location


@dataclass
class Library:
    folder: Path
    modules: list[Module] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)  # by package
    data: dict[str, Any] = field(default_factory=dict)

    def policy_modules(self) -> list[Module]:
        """Every module but the tests, libraries first (an OPA server compiles on each upload)."""
        mods = [m for m in self.modules if not m.is_test]
        return sorted(mods, key=lambda m: (m.package.startswith(RULES_PREFIX), m.display))

    def test_modules(self) -> list[Module]:
        return [m for m in self.modules if m.is_test]

    def tests(self) -> list[TestRule]:
        out = []
        for m in self.test_modules():
            for match in _TEST_RULE.finditer(m.text):
                line = m.text.count("\n", 0, match.start()) + 1
                out.append(TestRule(m.package, match.group(1), Location(m.display, line, 1)))
        # a test rule may have several bodies (incremental definitions): run it once
        unique = {(t.package, t.name): t for t in reversed(out)}
        return sorted(unique.values(), key=lambda t: (t.location.file, t.location.line))

    def rule_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules.values()}

    def gate_module(self) -> Module:
        """The query module: every rule's violations in one document, one evaluation."""
        entries = ",\n".join(f'\t"{pkg}": data.{pkg}.violation' for pkg in sorted(self.rules))
        text = f"package {GATE_PACKAGE}\n\nviolations := {{\n{entries},\n}}\n" if entries else (
            f"package {GATE_PACKAGE}\n\nviolations := {{}}\n")
        return Module(self.folder / "_gate.rego", "kitchen/gate.rego", text, GATE_PACKAGE)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _metadata_blocks(text: str) -> list[tuple[int, str, int]]:
    """(line of '# METADATA', YAML text, line of the statement it annotates)."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "# METADATA":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                raw = lines[i].lstrip()[1:]
                body.append(raw[1:] if raw.startswith(" ") else raw)
                i += 1
            out.append((start, "\n".join(body), i + 1))
            continue
        i += 1
    return out


def _rule_from_metadata(module: Module, line: int, yaml_text: str) -> Rule:
    where = Location(module.display, line, 1)
    try:
        meta = YAML(typ="safe", pure=True).load(yaml_text) or {}
    except YAMLError as exc:
        raise PolicyError(where, f"METADATA block is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise PolicyError(where, "METADATA block must be a YAML mapping")
    custom = meta.get("custom") or {}
    rule_id = str(custom.get("id", "")) if isinstance(custom, dict) else ""
    severity = str(custom.get("severity", "")) if isinstance(custom, dict) else ""
    if not rule_id or not _RULE_ID.match(rule_id):
        raise PolicyError(where, f"rule package {module.package} needs custom.id (like "
                          f"policy.image-pinned) in its METADATA, got '{rule_id}'")
    if severity not in {s.value for s in Severity}:
        raise PolicyError(where, f"rule {rule_id}: custom.severity must be error, warning or info, "
                          f"got '{severity}'")
    title = str(meta.get("title") or "").strip()
    if not title:
        raise PolicyError(where, f"rule {rule_id}: METADATA needs a title")
    return Rule(rule_id, title, str(meta.get("description") or "").strip(), Severity(severity),
                module.package, where, str(custom.get("remediation") or "").strip())


def load_library(folder: Path, root: Path | None = None) -> Library:
    """Read every ``*.rego`` below ``folder`` and the rules' metadata; :class:`PolicyError` if bad."""
    root = root if root is not None else folder.parent
    if not folder.is_dir():
        raise PolicyError(Location(_display(folder, root)), "no policy folder here")
    lib = Library(folder)
    for path in sorted(folder.rglob("*.rego")):
        display = _display(path, root)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(Location(display), f"cannot read policy: {exc}") from None
        match = _PACKAGE.search(text)
        if match is None:
            raise PolicyError(Location(display, 1, 1), "no package declaration")
        module = Module(path, display, text, match.group(1))
        lib.modules.append(module)
        if module.is_test or not module.package.startswith(RULES_PREFIX):
            continue
        blocks = [b for b in _metadata_blocks(text) if b[2] <= text.count("\n", 0, match.start()) + 1]
        pkg_line = text.count("\n", 0, match.start()) + 1
        if not blocks:
            raise PolicyError(Location(display, pkg_line, 1),
                              f"rule package {module.package} has no # METADATA block above it")
        if module.package in lib.rules:
            raise PolicyError(Location(display, pkg_line, 1),
                              f"package {module.package} is already declared in "
                              f"{lib.rules[module.package].location.file}; one file per rule")
        if not _VIOLATION.search(text):
            raise PolicyError(Location(display, pkg_line, 1),
                              f"rule package {module.package} defines no `violation contains …` rule")
        rule = _rule_from_metadata(module, blocks[-1][0], blocks[-1][1])
        lib.rules[module.package] = rule
    seen: dict[str, Rule] = {}
    for rule in lib.rules.values():
        if rule.id in seen:
            raise PolicyError(rule.location, f"rule id {rule.id} is already used by "
                              f"{seen[rule.id].location}")
        seen[rule.id] = rule
    data_file = folder / DATA_FILE
    if data_file.is_file():
        lib.data = _load_data(data_file, _display(data_file, root))
    return lib


def _load_data(path: Path, display: str) -> dict[str, Any]:
    from ..load import parse_text

    doc, problems = parse_text(path.read_bytes(), path, display)
    if problems:
        p = problems[0]
        raise PolicyError(p.location, p.message)
    assert doc is not None
    if not isinstance(doc.data, dict):
        raise PolicyError(Location(display, 1, 1), "policy data must be a mapping")
    return dict(doc.data)
