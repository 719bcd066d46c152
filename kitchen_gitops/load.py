"""Load catalog YAML files with the source position of every key and item.

Every problem in a file (encoding, tabs, syntax, duplicate keys, several documents,
empty file, wrong top level) becomes a finding with ``file:line:col``; the run goes on
with the other files.  Composing uses ruamel.yaml's C parser where it is installed:
the node tree keeps marks, from which both the data and the position index are built.

The catalog comes from pull requests written by anyone, so reading it is bounded and
strict (docs/security.md): a file is at most :data:`MAX_FILE_BYTES`, nests at most
:data:`MAX_DEPTH` collections, expands (aliases included) to at most :data:`MAX_NODES`
nodes; explicit tags, merge keys, recursive aliases, non-finite or out-of-range numbers,
impossible dates and invisible control characters are findings at their position.
Every file under ``catalog/`` and ``environments/`` whose name ends in ``.yaml`` or
``.yml`` (any case, any depth) is read or reported; symbolic links are read only when
they stay inside the repository, and only regular files are opened.

The input side is closed: in each folder kitchen reads (:data:`READ_FILES`), a file that
kitchen does not read — any name, any depth, dotfiles included — is a ``load.unread-file``
finding, never skipped in silence.  Finding them only lists folders; nothing new is opened.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

from . import rules, settings
from .escape import visible
from .findings import Finding, Location, Severity

PathKey = tuple[str | int, ...]

# Where each kind lives, relative to the catalog root.
CATALOG_DIRS: dict[str, str] = {
    "Base": "catalog/bases",
    "Flavor": "catalog/flavors",
    "Tenant": "catalog/tenants",
    "Environment": "environments",
}
# The folders searched for YAML files; a YAML file in one but outside the kind folders
# above is reported, not ignored.
SEARCHED_DIRS: tuple[str, ...] = ("catalog", "environments")

# Bounds on what one catalog file may cost (docs/security.md).  The example catalog's
# largest file is about 2 KiB with 80 nodes at depth 5.
MAX_FILE_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 32  # nested mappings and sequences
MAX_NODES = 100_000  # scalars and collections after alias expansion
MAX_FILES = 20_000  # YAML files below catalog/ and environments/
MAX_DIR_DEPTH = 8  # folders below a kind folder, templates/ or policies/
# Integers must fit in a Kubernetes int64; floats must be finite.
MAX_INT = 2**63 - 1

YAML_NAME = re.compile(r".+\.ya?ml", re.IGNORECASE | re.DOTALL)
# Characters a catalog value or key may not hold: they change how a line is shown or
# parsed by the tools that read kitchen's output (terminals, CI logs, YAML and XML
# parsers).  Tab and newline are fine in text; everything else invisible is refused.
FORBIDDEN_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ufeff\ufffe\uffff\ud800-\udfff]"
)
# A file or folder name may hold none of them (nor a tab or newline).
FORBIDDEN_IN_NAMES = re.compile(FORBIDDEN_CHARACTERS.pattern[:-1] + "\\t\\n]")

# What kitchen reads in each folder of the repository, as the finding's "expected" says it.
# Every other file there is reported (load.unread-file): an allow-list, no exception for
# dotfiles, .gitkeep or backups.  evaluations/ and evidence/ are read by name (the sets
# flavors name, evidence/<env>/index.json), not by pattern, so they are not listed here.
POLICY_FILES: tuple[str, ...] = ("data.yaml", "waivers.yaml", "evidence-keys.yaml")
READ_FILES: dict[str, str] = {
    "catalog": "YAML files (.yaml or .yml, any case) in catalog/bases/, catalog/flavors/ or "
               "catalog/tenants/, at any depth",
    "environments": "YAML files (.yaml or .yml, any case), at any depth",
    "templates": "Jinja templates named *.j2 directly in templates/",
    "policies": f"Rego modules named *.rego at any depth, and {', '.join(POLICY_FILES)} directly "
                "in policies/",
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
    # the gate's cache key of the file's shown path and the bytes parsed ("" where the
    # run has no cache): what the document is a function of
    digest: str = ""

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


def _shown(text: str, limit: int = 60) -> str:
    """A value quoted in a message: control characters visible, long values cut."""
    text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Builder:
    """Turns a composed node tree into plain Python data and a span index."""

    def __init__(self, yaml: YAML, display_path: str) -> None:
        self.constructor = yaml.constructor
        self.display_path = display_path
        self.spans: dict[PathKey, Span] = {}
        self.problems: list[Finding] = []

    def _problem(self, node: Node, message: str, rule: str, expected: str = "") -> None:
        self.problems.append(_finding(self.display_path, node.start_mark.line + 1,
                                      node.start_mark.column + 1, message, rule, expected))

    def build(self, node: Node, path: PathKey, key_mark: tuple[int, int] | None) -> Any:
        vl, vc = node.start_mark.line + 1, node.start_mark.column + 1
        kl, kc = key_mark if key_mark else (vl, vc)
        self.spans[path] = Span(kl, kc, vl, vc)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, ScalarNode):
                    self._problem(knode, "mapping keys must be plain strings", rules.LOAD_KEY_TYPE,
                                  "a string key")
                    continue
                if str(knode.tag or "").endswith(":merge"):
                    self._problem(knode, "merge keys (<<) are not supported: their keys would have "
                                  "no position of their own", rules.LOAD_MERGE_KEY,
                                  "the keys written out in this mapping")
                    continue
                key = str(knode.value)
                if not self._text_ok(knode, key, "key"):
                    continue
                kmark = (knode.start_mark.line + 1, knode.start_mark.column + 1)
                if key in out:
                    first = self.spans[(*path, key)]
                    self.problems.append(_finding(
                        self.display_path, kmark[0], kmark[1],
                        f"duplicate key '{_shown(key)}' (first defined at line {first.key_line}, "
                        f"column {first.key_col})",
                        rules.LOAD_DUPLICATE_KEY, "each key once per mapping"))
                    continue
                out[key] = self.build(vnode, (*path, key), kmark)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), None) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def _text_ok(self, node: Node, text: str, what: str) -> bool:
        bad = FORBIDDEN_CHARACTERS.search(text)
        if bad is None:
            return True
        self._problem(node, f"{what} '{_shown(text)}' holds the invisible character "
                      f"{visible(bad.group(0))}, which changes how output that quotes it is shown "
                      "or parsed", rules.LOAD_CONTROL_CHARACTER, "printable text (tab and newline allowed)")
        return False

    def scalar(self, node: Node) -> Any:
        raw = str(node.value)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (YAMLError, ValueError, OverflowError, TypeError) as exc:
            tag = str(node.tag or "")
            if tag.endswith(":timestamp"):
                self._problem(node, f"'{_shown(raw)}' is not a valid date: {_reason(exc)}", rules.LOAD_DATE,
                              "a real calendar date YYYY-MM-DD")
            elif tag.endswith((":int", ":float")):
                self._problem(node, f"number '{_shown(raw)}' is out of range", rules.LOAD_NUMBER,
                              f"an integer of at most {len(str(MAX_INT))} digits or a finite number")
            else:
                self._problem(node, f"invalid scalar '{_shown(raw)}': {_reason(exc)}", rules.LOAD_SYNTAX)
            return None
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int) and abs(value) > MAX_INT:
            self._problem(node, f"integer '{_shown(raw)}' is out of range", rules.LOAD_NUMBER,
                          f"an integer between {-MAX_INT} and {MAX_INT}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self._problem(node, f"'{_shown(raw)}' is not a finite number", rules.LOAD_NUMBER,
                          "a finite number (not .inf, .nan or an exponent beyond 1e308)")
            return None
        if isinstance(value, dt.datetime | dt.date) and not 1 <= value.year <= 9999:
            self._problem(node, f"'{_shown(raw)}' is not a valid date", rules.LOAD_DATE, "a date YYYY-MM-DD")
            return None
        if isinstance(value, str) and not self._text_ok(node, value, "value"):
            return None
        if not isinstance(value, str | int | float | dt.date):
            # bytes, sets and the like cannot come from an implicit tag; refuse, don't guess
            self._problem(node, f"unsupported value '{_shown(raw)}'", rules.LOAD_TAG, "a string, number, "
                          "boolean, date or null")
            return None
        return value


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    return _shown(str(text).splitlines()[0] if str(text) else type(exc).__name__, 120)


class _Resolver(VersionedResolver):
    """ruamel's resolver, with the YAML version of the document looked up without raising
    and catching two exceptions for every scalar (the C parser has no scanner to ask):
    the same version, a third of the loader's time less on a large catalog."""

    @property
    def processing_version(self) -> Any:
        scanner = getattr(self.loadumper, "_scanner", None)
        version = getattr(scanner, "yaml_version", None) if scanner is not None else None
        if version is None:
            version = getattr(self.loadumper, "version", None)
        if version is None:
            version = self._loader_version if self._loader_version is not None else (1, 2)
        return version

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a node; a plain scalar's is remembered per YAML version and text (it
        depends on nothing else: kitchen's loader adds no path resolvers), for the same
        keys and values repeat in every file of a catalog."""
        if kind is not ScalarNode or not implicit[0] or len(value) > _RESOLVED_MAX_TEXT:
            return super().resolve(kind, value, implicit)
        key = (self.processing_version, value)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[key] = tag
        return tag


# plain scalars' tags by (YAML version, text): bounded in entries and in the length of a text
_RESOLVED: dict[tuple[Any, str], Any] = {}
_RESOLVED_MAX = 1 << 16
_RESOLVED_MAX_TEXT = 128


_YAML: YAML | None = None


def _yaml() -> YAML:
    """One loader per process: building one looks its plug-ins up on disk every time.  It
    is used by one parse at a time; ruamel resets its parser after each."""
    global _YAML
    if _YAML is None:
        try:
            _YAML = YAML(typ="safe", pure=False)
        except Exception:  # pragma: no cover - clib missing: fall back to the pure parser
            _YAML = YAML(typ="safe", pure=True)
        _YAML.Resolver = _Resolver
    return _YAML


def _tab_problems(text: str, display: str) -> list[Finding]:
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped) + 1
            problems.append(_finding(display, lineno, col,
                                     "tab character in indentation; YAML indents with spaces",
                                     rules.LOAD_TAB, "spaces"))
    return problems


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def _bound_problems(yaml: YAML, text: str, display: str) -> list[Finding]:
    """Check the event stream, before anything is composed, against the loader's bounds.

    Composing builds a node tree recursively and shares aliased nodes, so a deep file
    would exhaust the stack, a recursive alias would never end and an alias bomb (a
    few lines whose aliases double at every level) would take forever.  The parser's
    events are a flat stream: depth, tags and the expanded size of every anchor are
    counted on it, and the first bound crossed is reported at its position.
    """
    # each open collection: [anchor, expanded node count so far]
    stack: list[list[Any]] = [[None, 0]]
    sizes: dict[str, int] = {}
    for event in yaml.parse(io.StringIO(text)):
        if isinstance(event, NodeEvent) and not isinstance(event, AliasEvent):
            tag = getattr(event, "tag", None)
            if tag is not None:
                line, col = _mark(event)
                return [_finding(display, line, col, f"explicit tag '{_shown(str(tag))}' is not "
                                 "supported", rules.LOAD_TAG, "a plain or quoted value (no ! or !! tags)")]
        if isinstance(event, ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            stack[-1][1] += 1
        elif isinstance(event, CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) - 1 > MAX_DEPTH:
                line, col = _mark(event)
                return [_finding(display, line, col, f"nesting deeper than {MAX_DEPTH} levels",
                                 rules.LOAD_TOO_DEEP, f"at most {MAX_DEPTH} nested mappings or lists")]
        elif isinstance(event, CollectionEndEvent):
            anchor, count = stack.pop()
            if anchor:
                sizes[anchor] = count
            stack[-1][1] += count
        elif isinstance(event, AliasEvent):
            line, col = _mark(event)
            if any(frame[0] == event.anchor for frame in stack):
                return [_finding(display, line, col, f"alias *{_shown(str(event.anchor))} refers to a "
                                 "node that contains it (a recursive alias)", rules.LOAD_ALIAS,
                                 "an alias to a complete node defined before it")]
            stack[-1][1] += sizes.get(event.anchor, 1)  # undefined: the composer reports it
        else:
            continue
        if stack[-1][1] > MAX_NODES or sum(frame[1] for frame in stack) > MAX_NODES:
            line, col = _mark(event)
            return [_finding(display, line, col, f"the document expands to more than {MAX_NODES} "
                             "values (aliases counted at every use)", rules.LOAD_ALIAS,
                             f"at most {MAX_NODES} values after alias expansion")]
    return []


def _clamp(text: str, line: int, col: int) -> tuple[int, int]:
    """A parser's end-of-input mark moved onto the file's last line when the file has no
    final newline: every reported position exists in the file."""
    lines = text.split("\n")
    if line <= len(lines):
        return line, col
    return len(lines), len(lines[-1]) + 1


def _error_position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def parse_text(raw: bytes, path: Path, display_path: str) -> tuple[Document | None, list[Finding]]:
    """Parse one file's bytes into a :class:`Document`, or findings that say why not."""
    text, problems = _decode(raw, display_path)
    if text is None:
        return None, problems
    tabs = _tab_problems(text, display_path)
    if tabs:
        return None, tabs
    yaml = _yaml()
    nodes, problems = _compose(yaml, text, display_path)
    if nodes is None:
        return None, problems
    root, problems = _single_mapping(nodes, display_path)
    if root is None:
        return None, problems
    builder = _Builder(yaml, display_path)
    data = builder.build(root, (), None)
    if builder.problems:
        return None, builder.problems
    return Document(path, display_path, data, builder.spans), []


def _decode(raw: bytes, display_path: str) -> tuple[str | None, list[Finding]]:
    """The file's text (UTF-8 within the size limit, without a byte-order mark), or why not."""
    if len(raw) > MAX_FILE_BYTES:
        return None, [_finding(display_path, 1, 1, f"file is larger than {MAX_FILE_BYTES} bytes, "
                               "the limit for one catalog file", rules.LOAD_TOO_LARGE,
                               f"a catalog file of at most {MAX_FILE_BYTES // 1024} KiB")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [_finding(display_path, line, col,
                               f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                               rules.LOAD_ENCODING, "UTF-8 text")]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def _compose(yaml: YAML, text: str, display_path: str) -> tuple[list[Node] | None, list[Finding]]:
    """The YAML documents of the text as nodes (within the size bounds), or the syntax problem."""
    try:
        bounds = _bound_problems(yaml, text, display_path)
        if bounds:
            return None, bounds
        nodes = list(yaml.compose_all(io.StringIO(text)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _clamp(text, mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        return None, [_finding(display_path, line, col,
                               f"YAML syntax error: {_shown(problem + context, 200)}",
                               rules.LOAD_SYNTAX, "well-formed YAML")]
    except ReaderError as exc:
        line, col = _error_position(text, exc.position) if isinstance(exc.position, int) else (1, 1)
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else visible(str(char))
        return None, [_finding(display_path, line, col,
                               f"character {shown} is not allowed in YAML", rules.LOAD_CONTROL_CHARACTER,
                               "printable text")]
    except YAMLError as exc:
        return None, [_finding(display_path, 1, 1, f"YAML error: {_reason(exc)}", rules.LOAD_SYNTAX)]
    return nodes, []


def _single_mapping(nodes: list[Node], display_path: str) -> tuple[MappingNode | None, list[Finding]]:
    """The file's one document, a mapping; or why the file holds none, several or another value."""
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None, [_finding(display_path, 1, 1, "file is empty", rules.LOAD_EMPTY,
                               "one catalog object (a mapping with kind and name)")]
    if len(nodes) > 1:
        second = nodes[1].start_mark
        return None, [_finding(display_path, second.line + 1, second.column + 1,
                               f"file holds {len(nodes)} YAML documents",
                               rules.LOAD_MULTIPLE_DOCUMENTS, "exactly one object per file")]
    root = nodes[0]
    if not isinstance(root, MappingNode):
        return None, [_finding(display_path, root.start_mark.line + 1, root.start_mark.column + 1,
                               "top level is not a mapping", rules.LOAD_NOT_MAPPING,
                               "a mapping with kind and name")]
    return root, []


def read_regular_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most ``limit + 1`` bytes of ``path``, which must be a regular file.

    Opened without blocking, so a FIFO that replaced the file cannot hang the run;
    ``OSError`` (``errno`` set) when it is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(21, "not a regular file") if stat.S_ISDIR(os.fstat(fd).st_mode) \
                else OSError(0, "not a regular file")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_file(path: Path, root: Path, display: str | None = None,
              within: str = "the repository") -> tuple[Document | None, list[Finding]]:
    """One YAML file, below ``root`` (``within`` names it): a link is followed only where
    it stays inside (the policy data, the waivers and the evidence keys are read through
    this, as the catalog's files are found: a link to the CI machine's files is not)."""
    display = display if display is not None else _display(path, root)
    if links_out(path, root):
        return None, [_finding(display, 1, 1, f"symbolic link to a path outside {within}; it is not followed",
                               rules.LOAD_SYMLINK, f"a file inside {within}")]
    try:
        raw = read_regular_file(path)
    except OSError as exc:
        return None, [_finding(display, 1, 1, f"cannot read file: {exc.strerror or exc}", rules.LOAD_IO,
                               "a readable regular file")]
    return parse_text(raw, path, display)


def _display(path: Path, root: Path) -> str:
    return visible(relative_display(path, root))


def relative_display(path: Path, root: Path) -> str:
    """``path`` relative to ``root``: as written (a link is named by its own path), else
    as resolved, else whole."""
    for shown, base in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve())):
        try:
            return shown.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def links_out(path: Path, root: Path) -> bool:
    """Whether ``path`` is a symbolic link to something outside ``root`` (a dangling link
    is not: whoever reads it finds nothing)."""
    if not path.is_symlink():
        return False
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return not _inside(root.resolve(), target)


@dataclass
class _Walk:
    root: Path
    real_root: Path
    files: list[tuple[str, Path, str]] = field(default_factory=list)  # (kind or "", path, display)
    problems: list[Finding] = field(default_factory=list)
    full: bool = False  # a bound was reached: nothing more is listed


def _kind_of(rel: str) -> str:
    """The kind whose folder holds ``rel`` (posix, relative to the root), or ""."""
    for kind, folder in CATALOG_DIRS.items():
        if rel.startswith(folder + "/"):
            return kind
    return ""


def _inside(real_root: Path, target: Path) -> bool:
    return target == real_root or real_root in target.parents


def reads(top: str, rel: str) -> bool:
    """Whether kitchen reads the file at ``rel`` (posix, relative to the root) below the
    folder ``top`` of :data:`READ_FILES`: the same names the stages that read it look for.

    Below ``catalog/`` and ``environments/`` a YAML name is read (outside the kind folders,
    to report it as misplaced); render compiles ``templates/*.j2``; the policy library reads
    ``policies/**/*.rego`` and the files of :data:`POLICY_FILES`.
    """
    name = rel.rsplit("/", 1)[-1]
    inner = rel[len(top) + 1:] if rel.startswith(top + "/") else ""
    if top in SEARCHED_DIRS:
        return YAML_NAME.fullmatch(name) is not None
    if top == "templates":
        return bool(inner) and "/" not in inner and name.endswith(".j2")
    if top == "policies":
        return bool(inner) and (name.endswith(".rego") or inner in POLICY_FILES)
    return False


def _unread(walk: _Walk, top: str, rel: str) -> None:
    walk.problems.append(_finding(visible(rel), 1, 1, "kitchen does not read this file: nothing in it is "
                                  "checked, rendered or applied", rules.LOAD_UNREAD_FILE,
                                  f"only {READ_FILES[top]}"))


def _bounded(walk: _Walk, display: str) -> bool:
    """Whether a bound on the walk is reached (reported once): no more is listed."""
    if walk.full:
        return True
    if len(walk.files) >= MAX_FILES:
        walk.problems.append(_finding(display, 1, 1, f"more than {MAX_FILES} YAML files under "
                                      f"{', '.join(SEARCHED_DIRS)}; the rest are not read",
                                      rules.LOAD_TOO_MANY_FILES, f"at most {MAX_FILES} catalog files"))
    elif len(walk.problems) >= MAX_FILES:
        walk.problems.append(_finding(display, 1, 1, f"more than {MAX_FILES} files refused or not read; "
                                      "the rest are not listed", rules.LOAD_TOO_MANY_FILES,
                                      f"at most {MAX_FILES} catalog files"))
    else:
        return False
    walk.full = True
    return True


def _walk(walk: _Walk, folder: Path, rel: str, depth: int, top: str) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        walk.problems.append(_finding(visible(rel), 1, 1, f"cannot list folder: {exc.strerror or exc}",
                                      rules.LOAD_IO, "a readable folder"))
        return
    for entry in entries:
        child_rel = f"{rel}/{entry.name}"
        display = visible(child_rel)
        if _bounded(walk, display):
            return
        read = reads(top, child_rel)
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:  # pragma: no cover - vanished while listing
            continue
        if FORBIDDEN_IN_NAMES.search(entry.name):
            walk.problems.append(_finding(
                display, 1, 1, f"the name {'of this folder ' if is_dir else ''}holds a control or "
                "invisible character, which would reach rendered files, annotations and logs; "
                "it is not read", rules.LOAD_FILE_NAME,
                "a file name of printable characters (no newline, tab or escape)"))
            continue
        if is_link:
            _link(walk, Path(entry.path), child_rel, top)
        elif is_dir:
            if depth >= MAX_DIR_DEPTH:
                walk.problems.append(_finding(display, 1, 1, f"folder nested deeper than "
                                              f"{MAX_DIR_DEPTH} levels is not read", rules.LOAD_TOO_DEEP,
                                              f"files at most {MAX_DIR_DEPTH} folders deep"))
                continue
            _walk(walk, Path(entry.path), child_rel, depth + 1, top)
        elif not read:
            _unread(walk, top, child_rel)
        elif top not in SEARCHED_DIRS:
            continue  # read by the render or policy stage, which checks it as it reads it
        elif is_file:
            walk.files.append((_kind_of(child_rel), Path(entry.path), display))
        else:
            walk.problems.append(_finding(display, 1, 1, "not a regular file (a FIFO, socket or "
                                          "device); it is not opened", rules.LOAD_NOT_REGULAR_FILE,
                                          "a regular file"))


def _link(walk: _Walk, path: Path, rel: str, top: str) -> None:
    display = visible(rel)
    read = reads(top, rel)
    if top not in SEARCHED_DIRS:
        # a link kitchen reads is checked by the stage that reads it; links to folders
        # are not followed there either
        if not read:
            _unread(walk, top, rel)
        return
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop of links
        if read:
            walk.problems.append(_finding(display, 1, 1, f"symbolic link to "
                                          f"'{_shown(os.readlink(path) if path.is_symlink() else '?')}',"
                                          " which does not exist", rules.LOAD_SYMLINK,
                                          "a regular file, or a link to one inside the repository"))
        else:
            _unread(walk, top, rel)
        return
    if not _inside(walk.real_root, target):
        if read or target.is_dir():
            walk.problems.append(_finding(display, 1, 1, "symbolic link to a path outside the "
                                          "repository; it is not followed", rules.LOAD_SYMLINK,
                                          "a file inside the repository"))
        else:
            _unread(walk, top, rel)
        return
    if target.is_dir():
        walk.problems.append(_finding(display, 1, 1, "symbolic link to a folder; catalog folders are "
                                      "not followed through links", rules.LOAD_SYMLINK,
                                      "a real folder"))
        return
    if not read:
        _unread(walk, top, rel)
    elif target.is_file():
        walk.files.append((_kind_of(rel), path, display))
    else:
        walk.problems.append(_finding(display, 1, 1, "symbolic link to something that is not a "
                                      "regular file", rules.LOAD_NOT_REGULAR_FILE, "a regular file"))


def discover(root: Path) -> tuple[list[tuple[str, Path, str]], list[Finding]]:
    """Every YAML file below the searched folders: (kind, path, display) and what is refused,
    the files of every folder of :data:`READ_FILES` that kitchen does not read included.

    The kind is that of the kind folder holding the file, "" for a file outside them.
    """
    real_root = root.resolve()
    walk = _Walk(root, real_root)
    for top in READ_FILES:
        folder = root / top
        if folder.is_symlink():
            if top in SEARCHED_DIRS:
                _link(walk, folder, top, top)
                continue
            # render and the policy library read templates/ and policies/ through a link:
            # listed when it leads to a folder of the repository
            try:
                target = folder.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if not (_inside(real_root, target) and target.is_dir()):
                continue
        if folder.is_dir():
            _walk(walk, folder, top, 0, top)
    return walk.files, walk.problems


def catalog_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every catalog file under ``root`` with the kind its folder holds, in a stable order."""
    files, _ = discover(root)
    for kind, path, _display_path in files:
        if kind:
            yield kind, path


# From this many files on, a second process parses half of them (a large organisation's
# catalog is thousands of files; forking costs more than it saves below this).
PARALLEL_LOAD_MIN_FILES = 512


Job = tuple[str, Path, str, bytes | None]  # kind, path, shown path, the bytes when read already
Loaded = tuple[str, Document | None, list[Finding]]


def _load_files(root: Path, jobs: list[Job]) -> list[Loaded]:
    """Each file parsed (from its bytes where the job has them), in the order given."""
    out: list[Loaded] = []
    for kind, path, display, raw in jobs:
        if not kind:
            out.append((kind, None, [_finding(
                display, 1, 1, "a YAML file outside the kind folders is not part of the catalog",
                rules.LOAD_MISPLACED_FILE, f"one of {', '.join(f + '/' for f in CATALOG_DIRS.values())}")]))
            continue
        doc, problems = parse_text(raw, path, display) if raw is not None else load_file(path, root, display)
        out.append((kind, doc, problems))
    return out


def _parallel(files: int) -> bool:
    """Whether to parse in two processes: many files, ``fork`` there, not in a daemon
    worker, and not told to stay in one process (``KITCHEN_JOBS=1``)."""
    import multiprocessing

    return (files >= PARALLEL_LOAD_MIN_FILES and hasattr(os, "fork")
            and not multiprocessing.current_process().daemon
            and settings.JOBS.raw() != "1")


def load_documents(root: Path) -> tuple[list[tuple[str, Document]], list[Finding]]:
    """Load every catalog file below ``root``; returns (folder kind, document) pairs, in
    the order of discovery whether one process parsed them or two."""
    files, findings = discover(root)
    loaded = parse_files(root, [(kind, path, display, None) for kind, path, display in files])
    docs = [(kind, doc) for kind, doc, _ in loaded if doc is not None]
    return docs, findings + [f for _, _, problems in loaded for f in problems]


def parse_files(root: Path, jobs: list[Job]) -> list[Loaded]:
    """``_load_files`` of every job, by two processes (each half in order) when there are
    many."""
    if not _parallel(len(jobs)):
        return _load_files(root, jobs)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    half = len(jobs) // 2
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        second = pool.submit(_load_files, root, jobs[half:])
        first = _load_files(root, jobs[:half])
        try:
            rest = second.result()
        except BrokenProcessPool:  # the second process died (memory): parse its half here
            rest = _load_files(root, jobs[half:])
    return first + rest
