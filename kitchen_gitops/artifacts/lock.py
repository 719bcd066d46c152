"""``kitchen artifacts lock``: write the digests of what is in storage into the catalog.

The catalog file is changed only where a digest (or a recorded size) changes; every
other byte — comments, key order, quoting, flow style, indentation, line endings —
stays as it was.  ruamel.yaml composes the file with the exact character span of
every scalar, and the new value is spliced into that span in the scalar's own style
(plain, single or double quoted, with or without a ``sha256:`` prefix).  Files are
replaced atomically, and only when every digest could be computed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigError
from ..escape import visible
from ..findings import Finding, Location, Severity, sort_findings
from ..model import Catalog
from ..rules import ARTIFACTS_LOCK_CONFLICT, ARTIFACTS_LOCK_STALE
from ..write import WriteFailed, replace_files
from .scan import ArtifactScan, PathKey
from .verify import storage_findings


@dataclass(frozen=True)
class PinUpdate:
    path: Path  # the catalog file
    display: str
    value_path: PathKey
    old: str
    new: str
    location: Location
    what: str  # "sha256 of s3://…" or "size of …"
    environment: str = ""  # whose storage holds the new value
    subject: str = ""  # Base/name@version or Flavor/name@version


def _node_at(root: Node, path: PathKey) -> ScalarNode:
    node = root
    for part in path:
        if isinstance(node, MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value == part:
                    node = v
                    break
            else:
                raise KeyError(part)
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            node = node.value[part]
        else:
            raise KeyError(part)
    if not isinstance(node, ScalarNode):
        raise KeyError(path)
    return node


def _styled(node: ScalarNode, new_value: str) -> str:
    """``new_value`` written the way the old scalar was written."""
    style = node.style
    prefix = "sha256:" if node.value.startswith("sha256:") else ""
    value = prefix + new_value
    if style == "'":
        return f"'{value}'"
    if style == '"':
        return f'"{value}"'
    return value


def splice_values(text: str, changes: dict[PathKey, str]) -> str:
    """``text`` with the scalars at ``changes`` replaced; nothing else differs."""
    bom = text.startswith("\ufeff")
    body = text[1:] if bom else text
    yaml = YAML(typ="rt", pure=True)
    root = yaml.compose(io.StringIO(body))
    if root is None:
        raise KeyError("empty document")
    spans = []
    for path, value in changes.items():
        node = _node_at(root, path)
        start, end = node.start_mark.index, node.end_mark.index
        if "\n" in body[start:end] or node.style in ("|", ">"):
            raise KeyError(f"{path}: block scalar")
        spans.append((start, end, _styled(node, value)))
    spans.sort(reverse=True)
    for start, end, replacement in spans:
        body = body[:start] + replacement + body[end:]
    return ("\ufeff" if bom else "") + body


def lock_updates(catalog: Catalog, scans: Iterable[ArtifactScan]) -> tuple[list[PinUpdate], list[Finding]]:
    """The pin changes that would make the catalog match storage, and what stops them."""
    findings: list[Finding] = []
    chosen: dict[tuple[str, str, str], tuple[str, int, str]] = {}  # → (sha, size, env)
    updates: dict[tuple[str, PathKey], PinUpdate] = {}
    for scan in scans:
        art = scan.artifact
        subject = f"{art.kind}/{art.key}"
        findings += [replace(f, environment=scan.environment, subject=subject)
                     for f in storage_findings(catalog, scan)]
        doc = catalog.documents[(art.kind, art.key)]
        for pin in art.pins:
            d = scan.digests.get(pin.name)
            if d is None:
                continue
            k = (art.kind, art.key, f"{art.role}:{pin.name}")
            first = chosen.setdefault(k, (d.sha256, d.size, scan.environment))
            if first[:2] != (d.sha256, d.size):
                findings.append(Finding(
                    ARTIFACTS_LOCK_CONFLICT, Severity.ERROR,
                    f"{art.source.uri(pin.name)} differs between environments "
                    f"{first[2]} (sha256 {first[0]}) and {scan.environment} (sha256 {d.sha256})",
                    doc.location(pin.sha_path, value=True),
                    expected="the same file in every environment's storage", environment=scan.environment,
                    subject=subject))
                continue
            if d.sha256 != pin.sha256:
                updates[(art.kind + art.key, pin.sha_path)] = PinUpdate(
                    doc.path, doc.display_path, pin.sha_path, pin.sha256, d.sha256,
                    doc.location(pin.sha_path, value=True),
                    f"sha256 of {art.source.uri(pin.name)}", first[2], subject)
            if pin.size is not None and pin.size_path is not None and d.size != pin.size:
                updates[(art.kind + art.key, pin.size_path)] = PinUpdate(
                    doc.path, doc.display_path, pin.size_path, str(pin.size), str(d.size),
                    doc.location(pin.size_path, value=True),
                    f"size of {art.source.uri(pin.name)}", first[2], subject)
    ordered = sorted(updates.values(), key=lambda u: (u.display, u.location.line, u.location.col))
    return ordered, sort_findings(findings)


def stale_findings(updates: Sequence[PinUpdate]) -> list[Finding]:
    """``lock --check``: one finding per pin that a lock would change."""
    return [Finding(ARTIFACTS_LOCK_STALE, Severity.ERROR,
                    f"{u.what} is {u.new}, the catalog pins {u.old}", u.location,
                    expected=f"{u.new} (run `kitchen artifacts lock`)", environment=u.environment,
                    subject=u.subject)
            for u in updates]


def render_locked(updates: Sequence[PinUpdate]) -> dict[Path, bytes]:
    """The new content of every catalog file that changes."""
    by_file: dict[Path, dict[PathKey, str]] = {}
    for u in updates:
        by_file.setdefault(u.path, {})[u.value_path] = u.new
    out: dict[Path, bytes] = {}
    for path, changes in sorted(by_file.items()):
        from ..load import read_regular_file

        raw = read_regular_file(path)
        text = raw.decode("utf-8")
        try:
            new = splice_values(text, changes)
        except (KeyError, IndexError) as exc:  # pragma: no cover - the loader read the same file
            raise ConfigError(f"{path}: cannot locate a pin to update ({exc})") from exc
        out[path] = new.encode("utf-8")
    return out


def write_files(contents: dict[Path, bytes], root: Path | None = None) -> None:
    """Replace each file atomically, keeping its permissions.

    With ``root``, every file must be a regular file inside it (a link is replaced, never
    written through), or nothing is written.
    """
    if root is not None:
        real_root = root.resolve()
        for path in contents:
            parent = path.parent.resolve()
            if (parent != real_root and real_root not in parent.parents) or (
                    path.exists() and not path.is_symlink() and not path.is_file()):
                raise ConfigError(f"{visible(str(path))}: not a catalog file inside {root}; "
                                  "nothing written")
    try:
        replace_files(contents)
    except WriteFailed as exc:
        raise ConfigError(f"cannot write the catalog: {exc.error}") from exc
