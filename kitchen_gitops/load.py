"""Load catalog YAML files with the source position of every key and item.

Every problem in a file (encoding, tabs, syntax, duplicate keys, several documents,
empty file, wrong top level) becomes a finding with ``file:line:col``; the run goes on
with the other files.  Composing uses ruamel.yaml's C parser where it is installed:
the node tree keeps marks, from which both the data and the position index are built.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .findings import Finding, Location, Severity

PathKey = tuple[str | int, ...]

# Where each kind lives, relative to the catalog root.
CATALOG_DIRS: dict[str, str] = {
    "Base": "catalog/bases",
    "Flavor": "catalog/flavors",
    "Tenant": "catalog/tenants",
    "Environment": "environments",
}


@dataclass(frozen=True)
class Span:
    """Where a key and its value start (1-based)."""

    key_line: int
    key_col: int
    value_line: int
    value_col: int


@dataclass
class Document:
    """One catalog object as loaded: plain data plus the position of every node."""

    path: Path
    display_path: str
    data: Any
    spans: dict[PathKey, Span] = field(default_factory=dict)

    def location(self, path: Iterable[str | int] = (), *, value: bool = False) -> Location:
        """The position of ``path`` or, if absent, of its closest present ancestor."""
        key = tuple(path)
        while key and key not in self.spans:
            key = key[:-1]
        span = self.spans.get(key)
        if span is None:
            return Location(self.display_path, 1, 1)
        if value or not key:
            return Location(self.display_path, span.value_line, span.value_col)
        return Location(self.display_path, span.key_line, span.key_col)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    @property
    def name(self) -> str:
        return str(self.data.get("name", "")) if isinstance(self.data, dict) else ""


def _finding(path: str, line: int, col: int, message: str, rule: str, expected: str = "") -> Finding:
    return Finding(rule, Severity.ERROR, message, Location(path, line, col), expected=expected)


class _Builder:
    """Turns a composed node tree into plain Python data and a span index."""

    def __init__(self, yaml: YAML, display_path: str) -> None:
        self.constructor = yaml.constructor
        self.display_path = display_path
        self.spans: dict[PathKey, Span] = {}
        self.problems: list[Finding] = []

    def build(self, node: Node, path: PathKey, key_mark: tuple[int, int] | None) -> Any:
        vl, vc = node.start_mark.line + 1, node.start_mark.column + 1
        kl, kc = key_mark if key_mark else (vl, vc)
        self.spans[path] = Span(kl, kc, vl, vc)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, ScalarNode):
                    self.problems.append(_finding(
                        self.display_path, knode.start_mark.line + 1, knode.start_mark.column + 1,
                        "mapping keys must be plain strings", "load.key-type", "a string key"))
                    continue
                key = str(knode.value)
                kmark = (knode.start_mark.line + 1, knode.start_mark.column + 1)
                if key in out:
                    first = self.spans[(*path, key)]
                    self.problems.append(_finding(
                        self.display_path, kmark[0], kmark[1],
                        f"duplicate key '{key}' (first defined at line {first.key_line}, "
                        f"column {first.key_col})",
                        "load.duplicate-key", "each key once per mapping"))
                    continue
                out[key] = self.build(vnode, (*path, key), kmark)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), None) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except YAMLError as exc:  # e.g. an invalid timestamp
            self.problems.append(_finding(self.display_path, vl, vc, f"invalid scalar: {exc}",
                                          "load.syntax"))
            return None


def _yaml() -> YAML:
    try:
        return YAML(typ="safe", pure=False)
    except Exception:  # pragma: no cover - clib missing: fall back to the pure parser
        return YAML(typ="safe", pure=True)


def _tab_problems(text: str, display: str) -> list[Finding]:
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped) + 1
            problems.append(_finding(display, lineno, col,
                                     "tab character in indentation; YAML indents with spaces",
                                     "load.tab", "spaces"))
    return problems


def parse_text(raw: bytes, path: Path, display_path: str) -> tuple[Document | None, list[Finding]]:
    """Parse one file's bytes into a :class:`Document`, or findings that say why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [_finding(display_path, line, col,
                               f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                               "load.encoding", "UTF-8 text")]
    if text.startswith("\ufeff"):
        text = text[1:]
    tabs = _tab_problems(text, display_path)
    if tabs:
        return None, tabs
    yaml = _yaml()
    try:
        nodes = list(yaml.compose_all(io.StringIO(text)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        return None, [_finding(display_path, line, col, f"YAML syntax error: {problem}{context}",
                               "load.syntax", "well-formed YAML")]
    except YAMLError as exc:
        return None, [_finding(display_path, 1, 1, f"YAML error: {exc}", "load.syntax")]
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None, [_finding(display_path, 1, 1, "file is empty", "load.empty",
                               "one catalog object (a mapping with kind and name)")]
    if len(nodes) > 1:
        second = nodes[1].start_mark
        return None, [_finding(display_path, second.line + 1, second.column + 1,
                               f"file holds {len(nodes)} YAML documents",
                               "load.multiple-documents", "exactly one object per file")]
    root = nodes[0]
    if not isinstance(root, MappingNode):
        return None, [_finding(display_path, root.start_mark.line + 1, root.start_mark.column + 1,
                               "top level is not a mapping", "load.not-mapping",
                               "a mapping with kind and name")]
    builder = _Builder(yaml, display_path)
    data = builder.build(root, (), None)
    if builder.problems:
        return None, builder.problems
    return Document(path, display_path, data, builder.spans), []


def load_file(path: Path, root: Path) -> tuple[Document | None, list[Finding]]:
    display = _display(path, root)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [_finding(display, 0, 0, f"cannot read file: {exc.strerror}", "load.io")]
    return parse_text(raw, path, display)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def catalog_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every catalog file under ``root`` with the kind its folder holds, in a stable order."""
    for kind, rel in CATALOG_DIRS.items():
        folder = root / rel
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                yield kind, path


def load_documents(root: Path) -> tuple[list[tuple[str, Document]], list[Finding]]:
    """Load every catalog file below ``root``; returns (folder kind, document) pairs."""
    docs: list[tuple[str, Document]] = []
    findings: list[Finding] = []
    for kind, path in catalog_files(root):
        doc, problems = load_file(path, root)
        findings.extend(problems)
        if doc is not None:
            docs.append((kind, doc))
    return docs, findings
