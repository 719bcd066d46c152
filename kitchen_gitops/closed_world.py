"""The closed world: what the templates render is exactly what kitchen meant.

Templates come from pull requests.  Every object a template renders is compared,
parsed, with the object :mod:`kitchen_gitops.intended` builds from the same values: an
object kitchen does not render (a second document), a changed kind, name or namespace, and
any field added, dropped or changed is a difference, reported at the template line that
produced it.  The only fields a template may add are the **customisation points** that
security lists in ``policies/data.yaml`` (``customisation_points``): extra labels and
annotations whose keys the organisation owns, or a field such as a priority class with
the values allowed.  Keys under a reserved prefix (:data:`RESERVED_PREFIXES`: what
Kubernetes, KServe, Argo CD, Pod Security admission, Istio, Knative, OpenShift and kitchen
read) are never a customisation, whatever the data says.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jinja2
import orjson
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .escape import visible
from .findings import Finding, Location, ResourceRef, Severity
from .manifest_reader import check_duplicates
from .rules import RENDER_UNINTENDED_FIELD, RENDER_UNINTENDED_OBJECT
from .value_diff import ABSENT, Walk, json_text, path_text, same_scalar

OBJECT_RULE = RENDER_UNINTENDED_OBJECT
FIELD_RULE = RENDER_UNINTENDED_FIELD
MAX_DIFFERENCES = 20  # per object; the rest are counted
MAX_SHOWN = 120  # characters of a value in a message

Change = Literal["added", "missing", "changed", "extra-object", "no-object"]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Difference:
    """One way a rendered object differs from the intended one."""

    change: Change
    path: Path
    rendered: Any
    intended: Any
    location: Location


# ---------------------------------------------------------------- comparing


_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=True, default=repr).encode


def same(rendered: Any, intended: Any) -> bool:
    """Equal as data, types included (``true`` is not ``1``, ``1`` is not ``1.0``)."""
    if rendered != intended:
        return False
    try:  # orjson writes each type its own way, ten times faster than the standard library
        return bool(orjson.dumps(rendered, option=orjson.OPT_SORT_KEYS)
                    == orjson.dumps(intended, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # a key that is not a string, an integer beyond 64 bits, bytes: the slow path
        pass
    try:
        return _ENCODE(rendered) == _ENCODE(intended)
    except (TypeError, ValueError, RecursionError):  # keys of mixed types: walk instead
        return not diff_paths(rendered, intended)


def diff_paths(rendered: Any, intended: Any, limit: int = 10_000) -> list[tuple[Change, Path, Any, Any]]:
    """Where ``rendered`` differs from ``intended``, at most ``limit`` places:
    (change, path, rendered value, intended value), None for the side a field is absent."""
    out: list[tuple[Change, Path, Any, Any]] = []
    for path, want, got in Walk().changes(intended, rendered):
        change: Change = "added" if want is ABSENT else "missing" if got is ABSENT else "changed"
        out.append((change, path, None if got is ABSENT else got, None if want is ABSENT else want))
        if len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------- template lines


def _line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def output_template_lines(template: jinja2.Template, source: str, ctx: Mapping[str, Any]) -> list[int]:
    """For each line of what ``template`` renders from ``ctx``, the line of the template
    file that wrote its first visible character (0 where unknown).

    Rendering is stepped chunk by chunk: a chunk of literal template text is found in the
    template's source (the occurrence nearest to the line Jinja's debug information gives),
    an expression's output belongs to the line of the expression."""
    gen: Any = template.root_render_func(template.new_context(dict(ctx)))
    lines: list[int] = [0]
    assigned = False
    for chunk in gen:
        frame = gen.gi_frame
        hint = template.get_corresponding_lineno(frame.f_lineno) if frame is not None else 0
        start, literal = hint, False
        if chunk.strip() and chunk in source:
            best: tuple[int, int] | None = None
            pos = source.find(chunk)
            while pos >= 0:
                line = _line_of(source, pos)
                score = (abs(line - hint), line)
                if best is None or score < best:
                    best = score
                pos = source.find(chunk, pos + 1)
            if best is not None:
                start, literal = best[1], True
        for i, segment in enumerate(chunk.split("\n")):
            if i:
                lines.append(0)
                assigned = False
            if not assigned and segment.strip():
                lines[-1] = start + i if literal else start
                assigned = True
    return lines


def _node_at(node: Node | None, path: Path) -> tuple[Node | None, Node | None]:
    """The deepest node along ``path`` (and, for a mapping entry, its key node)."""
    key_node: Node | None = None
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value == step:
                    key_node, node = k, v
                    break
            else:
                return node, key_node
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            key_node, node = None, node.value[step]
        else:
            return node, key_node
    return node, key_node


def _composed(text: str) -> list[Node]:
    """The node trees of the documents of ``text``, with their positions (none if not YAML)."""
    try:
        return [d for d in yaml.compose_all(text, Loader=yaml.SafeLoader) if d is not None]
    except (yaml.YAMLError, RecursionError):
        return []


def _output_line(docs: Sequence[Node], document: int, path: Path, change: Change) -> int:
    """The 0-based line where the node at ``path`` of the ``document``-th document starts
    (its key, for a mapping entry)."""
    if document >= len(docs):
        return 0
    node, key = _node_at(docs[document], path if change != "missing" else path[:-1])
    target = key if key is not None and change in ("added", "missing") else node
    if target is None:
        target = node
    return target.start_mark.line if target is not None else 0


# ---------------------------------------------------------------- the render stage's side


class Comparison:
    """Compares one rendered file with the intended object; locations only when they differ."""

    def __init__(self, template: jinja2.Template, source: str, shown: str, ctx: Mapping[str, Any],
                 text: str) -> None:
        self.template, self.source, self.shown, self.ctx, self.text = template, source, shown, ctx, text
        self._lines: list[int] | None = None
        self._nodes: list[Node] | None = None

    def location(self, document: int, path: Path, change: Change) -> Location:
        if self._lines is None:
            try:
                self._lines = output_template_lines(self.template, self.source, self.ctx)
            except Exception:  # the template rendered once already; a second run may still fail
                self._lines = []
        if self._nodes is None:
            self._nodes = _composed(self.text)
        line = _output_line(self._nodes, document, path, change)
        tline = self._lines[line] if line < len(self._lines) else 0
        if not tline:  # a line of its own output with no visible character: the nearest above
            tline = next((t for t in reversed(self._lines[:line]) if t), 0)
        return Location(self.shown, tline or 1, 1)

    def differences(self, documents: Sequence[Any], intended: Any) -> tuple[Difference, ...]:
        out: list[Difference] = []
        first = documents[0] if documents else None
        if first is None:
            out.append(Difference("no-object", (), None, intended, Location(self.shown, 1, 1)))
        else:
            for change, path, got, want in diff_paths(first, intended, limit=MAX_DIFFERENCES + 1):
                out.append(Difference(change, path, got, want, self.location(0, path, change)))
        for i, extra in enumerate(documents[1:], start=1):
            out.append(Difference("extra-object", (), extra, None, self.location(i, (), "changed")))
        return tuple(out)


def read_documents(text: str) -> list[Any]:
    """Every non-empty YAML document of ``text`` (YAML errors, a key twice in a mapping
    included, propagate)."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for node in yaml.compose_all(text, Loader=loader):
        if node is not None:
            check_duplicates(node)
    return [d for d in yaml.load_all(text, Loader=loader) if d is not None]


# ---------------------------------------------------------------- customisation points

# Key prefixes that others read, so never a customisation: a label or annotation there
# changes what a controller or admission does (KServe copies an InferenceService's
# annotations to its pods; Argo CD reads its own; Pod Security admission reads namespace
# labels; a NetworkPolicy's namespaceSelector reads namespace labels).
RESERVED_PREFIXES = ("kitchen-gitops.io/", "serving.kserve.io/", "argocd.argoproj.io/",
                     "pod-security.kubernetes.io/", "kubernetes.io/", "k8s.io/", "istio.io/",
                     "knative.dev/", "openshift.io/", "opendatahub.io/", "kserve.io/", "prometheus.io/",
                     "security.openshift.io/", "app.kubernetes.io/")
_RESERVED_DOMAINS = ("kubernetes.io", "k8s.io", "istio.io", "knative.dev", "openshift.io", "opendatahub.io",
                     "kserve.io", "argoproj.io", "kitchen-gitops.io", "x-k8s.io")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_QUALIFIED_NAME = re.compile(r"(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}"
                             r"[A-Za-z0-9])?")
_TEXT = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]{0,256}")
VALUE_KINDS = {"label": "a label value (63 characters at most: letters, digits, '-', '_', '.')",
               "text": "one line of at most 256 characters"}
_POINT_KEYS = {"kinds", "path", "keys", "value", "values", "description"}


def reserved(key: str) -> bool:
    """A label or annotation key that kitchen or another controller reads."""
    if key.startswith(RESERVED_PREFIXES):
        return True
    prefix = key.split("/", 1)[0] if "/" in key else ""
    return any(prefix == d or prefix.endswith("." + d) for d in _RESERVED_DOMAINS)


@dataclass(frozen=True)
class Point:
    """One customisation point: where a template may add to what kitchen renders."""

    kinds: tuple[str, ...]
    path: tuple[str, ...]
    keys: tuple[str, ...] = ()  # globs of the keys that may be added under the mapping at path
    value: str = ""  # the kind of value of those keys
    values: tuple[Any, ...] = ()  # the values the field at path may take

    def applies(self, kind: str) -> bool:
        return "*" in self.kinds or kind in self.kinds

    def allows_key(self, key: Any, value: Any) -> bool:
        if not isinstance(key, str) or not _QUALIFIED_NAME.fullmatch(key) or reserved(key):
            return False
        if not any(fnmatch.fnmatchcase(key, g) for g in self.keys):
            return False
        if self.value == "label":
            return isinstance(value, str) and bool(_LABEL_VALUE.fullmatch(value))
        return isinstance(value, str) and bool(_TEXT.fullmatch(value))

    def allows(self, path: Path, value: Any) -> bool:
        if self.keys:
            if len(path) == len(self.path) + 1 and tuple(path[:-1]) == self.path:
                return self.allows_key(path[-1], value)
            if tuple(path) == self.path:  # the whole mapping added
                return isinstance(value, dict) and bool(value) and \
                    all(self.allows_key(k, v) for k, v in value.items())
            return False
        return tuple(path) == self.path and any(same_scalar(value, v) for v in self.values)


def points(data: Mapping[str, Any]) -> tuple[Point, ...]:
    """The customisation points of the policy data (checked by :func:`check_points`)."""
    out = []
    for item in data.get("customisation_points") or ():
        out.append(Point(tuple(item.get("kinds") or ("*",)), tuple(str(item["path"]).split(".")),
                         tuple(item.get("keys") or ()), str(item.get("value") or "text"),
                         tuple(item.get("values") or ())))
    return tuple(out)


def check_points(value: Any) -> tuple[tuple[Any, ...], str] | None:
    """What is wrong with ``customisation_points`` in the policy data: (path below the key,
    what was expected), or None."""
    if not isinstance(value, list):
        return (), "a list of customisation points"
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            return (i,), "a mapping with path and either keys (with value) or values"
        for k in item:
            if k not in _POINT_KEYS:
                return (i, k), f"one of {', '.join(sorted(_POINT_KEYS))}"
        path = item.get("path")
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*", path):
            return (i, "path"), "a field path such as metadata.labels or spec.predictor.priorityClassName"
        kinds = item.get("kinds", ["*"])
        if not isinstance(kinds, list) or not kinds or \
                not all(isinstance(k, str) and re.fullmatch(r"\*|[A-Z][A-Za-z0-9]{0,62}", k) for k in kinds):
            return (i, "kinds"), "a list of kinds (InferenceService) or [\"*\"]"
        keys, values = item.get("keys"), item.get("values")
        if (keys is None) == (values is None):
            return (i,), "either keys (the keys that may be added under path) or values (what path may be)"
        if keys is not None:
            if not isinstance(keys, list) or not keys or not all(
                    isinstance(k, str) and k and k.strip() == k and not reserved(k.rstrip("*")) for k in keys):
                return (i, "keys"), "a list of key patterns (kitchen.example.com/*), none under a reserved prefix"
            if item.get("value", "text") not in VALUE_KINDS:
                return (i, "value"), f"one of {', '.join(VALUE_KINDS)}"
        else:
            if "value" in item:
                return (i, "value"), "no value kind beside values"
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, str | int | bool) and not isinstance(v, float) for v in values):
                return (i, "values"), "a list of the strings, numbers or booleans allowed"
    return None


# ---------------------------------------------------------------- findings


def _dotted(path: Path) -> str:
    return visible(path_text(path)) or "the object"


def _shown(value: Any) -> str:
    text = visible(json_text(value))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _identity(obj: Any) -> str:
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    meta = obj.get("metadata")
    ns, name = (meta.get("namespace"), meta.get("name")) if isinstance(meta, dict) else (None, None)
    where = f"{ns}/{name}" if ns else str(name)
    return visible(f"{obj.get('kind')} {where}")


_IDENTITY_PATHS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


@dataclass(frozen=True)
class RenderedRef:
    """What a closed-world finding names: the object kitchen meant, in its environment."""

    kind: str
    name: str
    namespace: str
    api_version: str
    file: str


def findings(environment: str, objects: Iterable[tuple[RenderedRef, Sequence[Difference]]],
             allowed: Sequence[Point]) -> list[Finding]:
    """The differences no customisation point allows, one finding each (at most
    :data:`MAX_DIFFERENCES` per object, and one that counts the rest)."""
    out: list[Finding] = []
    for ref, diffs in objects:
        resource = ResourceRef(ref.kind, ref.name, ref.namespace, ref.api_version)
        what = f"{ref.kind} {ref.namespace + '/' if ref.namespace else ''}{ref.name}"
        shown = 0
        left = 0
        for d in diffs:
            if d.change == "added" and any(p.applies(ref.kind) and p.allows(d.path, d.rendered) for p in allowed):
                continue
            if shown >= MAX_DIFFERENCES:
                left += 1
                continue
            shown += 1
            out.append(_finding(environment, ref, what, resource, d))
        if left:
            last = out[-1]
            out.append(Finding(FIELD_RULE, Severity.ERROR,
                               f"{what}: the template renders {left} more difference(s) from what kitchen intends",
                               last.location, resource=resource, expected="exactly what kitchen intends",
                               actual=f"{left} more", environment=environment))
    return out


def _finding(environment: str, ref: RenderedRef, what: str, resource: ResourceRef, d: Difference) -> Finding:
    rule, where = FIELD_RULE, _dotted(d.path)
    points_doc = "docs/security.md#customisation-points"
    if d.change == "extra-object":
        rule = OBJECT_RULE
        message = (f"{what}: the template renders a second object, {_identity(d.rendered)}, "
                   "which kitchen does not intend")
        expected, actual = f"one object: {what}", _identity(d.rendered)
    elif d.change == "no-object":
        rule = OBJECT_RULE
        message = f"{what}: the template renders no object where kitchen intends {what}"
        expected, actual = what, "nothing"
    elif tuple(d.path) in _IDENTITY_PATHS:
        rule = OBJECT_RULE
        message = (f"{what}: the template renders {where} {_shown(d.rendered)} where kitchen intends "
                   f"{_shown(d.intended)}: another object than kitchen means")
        expected, actual = f"{where}: {_shown(d.intended)}", _shown(d.rendered)
    elif d.change == "added":
        message = (f"{what}: the template adds {where} = {_shown(d.rendered)}, which kitchen does not "
                   f"render and no customisation point allows")
        expected, actual = f"no {where} (customisation points: {points_doc})", _shown(d.rendered)
    elif d.change == "missing":
        message = f"{what}: the template drops {where}, which kitchen renders as {_shown(d.intended)}"
        expected, actual = f"{where}: {_shown(d.intended)}", "absent"
    else:
        message = (f"{what}: the template renders {where} as {_shown(d.rendered)} where kitchen intends "
                   f"{_shown(d.intended)}")
        expected, actual = f"{where}: {_shown(d.intended)}", _shown(d.rendered)
    return Finding(rule, Severity.ERROR, message, d.location, resource=resource, expected=expected,
                   actual=actual, environment=environment)
