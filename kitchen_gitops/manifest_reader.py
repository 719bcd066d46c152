"""Read rendered manifests: what a template wrote, as the object Argo CD will apply.

libyaml (PyYAML's C bindings) reads YAML 1.1 as Kubernetes' own reader does.  Its C
composer builds the node tree; the objects are then built from the nodes by one tight
function rather than PyYAML's generic constructor, and scalar tags are resolved once per
distinct plain scalar (keys repeat in every manifest) — twice the speed of
``yaml.load(..., CSafeLoader)`` on rendered output, with the same result.  Anything
beyond plain mappings, sequences and the core scalar types (merge keys, sets, binary,
non-string keys) goes through PyYAML's SafeLoader in full.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import orjson
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SIMPLE_SCALARS = {
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp",
}
_CACHE_LIMIT = 200_000
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class AmbiguousScalar(yaml.YAMLError):
    """A plain scalar that YAML 1.1 readers (Kubernetes' own, PyYAML) and YAML 1.2 readers
    (kustomize's, go-yaml v3) read as different values — ``no`` a boolean or a string,
    ``010`` eight or ten, ``1e3`` a string or a number, ``<<`` a merge or a key: what the
    gate read might not be what is applied.  kitchen writes every value it means as JSON."""


# YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_CORE_NULL = re.compile(r"~|null|Null|NULL|")
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCT = re.compile(r"0o[0-7]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_CORE_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


# what YAML 1.1 resolves a plain scalar to and YAML 1.2's core schema has no type for
_NOT_CORE = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value", "tag:yaml.org,2002:timestamp"})


def core_value(text: str) -> Any:
    """What a YAML 1.2 reader of the core schema makes of the plain scalar ``text``."""
    if _CORE_NULL.fullmatch(text):
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.fullmatch(text):
        return int(text, 10)
    if _CORE_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _CORE_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    if _CORE_INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _CORE_NAN.fullmatch(text):
        return math.nan
    return text


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def readers_agree(tag: str, text: str) -> bool:
    """Whether YAML 1.1 (``tag``, as PyYAML resolved it) and YAML 1.2 read the plain scalar
    ``text`` as the same value."""
    core = core_value(text)
    if tag == _STR:
        return type(core) is str
    if tag in _NOT_CORE:
        return False  # a merge key, a value key, a date: strings to YAML 1.2
    if tag not in _SIMPLE_SCALARS:
        return True  # an explicit tag of its own (!!binary): no implicit reading to differ
    try:
        old = yaml.SafeLoader.yaml_constructors[tag](_constructor, ScalarNode(tag, text))
    except (ValueError, TypeError, yaml.YAMLError):
        return False
    return _same(old, core)


def _ambiguous(value: str, mark: Any) -> AmbiguousScalar:
    line = f" (line {mark.line + 1} of the rendered text)" if mark is not None else ""
    return AmbiguousScalar(f"the plain scalar {value!r} is read as {_as_read(value)}{line}; "
                           "expected a value every YAML reader reads alike (quoted, or written as JSON)")


def _as_read(value: str) -> str:
    old = "a merge of mappings" if value == "<<" else repr(yaml.safe_load(value))
    return f"{old} by YAML 1.1 readers and {core_value(value)!r} by YAML 1.2 readers"


_AMBIGUOUS = "ambiguous"  # the cached answer for a plain scalar the readers disagree on


class _Loader(_Base):  # type: ignore[misc]
    """libyaml's composer with the implicit tag of each distinct scalar resolved once, and
    a plain scalar that YAML 1.1 and 1.2 readers read differently refused
    (:class:`AmbiguousScalar`)."""

    _tags: ClassVar[dict[tuple[str, tuple[bool, bool]], str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is MappingNode:
            return _MAP
        if kind is SequenceNode:
            return _SEQ
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if implicit[0] and not readers_agree(tag, value):
                tag = _AMBIGUOUS
            if len(self._tags) >= _CACHE_LIMIT:
                self._tags.clear()
            self._tags[key] = tag
        if tag is _AMBIGUOUS:
            raise _ambiguous(value, None)
        return tag

    # SafeLoader has no path resolvers: nothing to track while descending
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class DuplicateKey(yaml.YAMLError):
    """A key twice in one mapping: YAML readers disagree on which copy wins (PyYAML keeps
    the last, others refuse the document), so what a check read might not be what is
    applied."""


def _duplicate(key: ScalarNode) -> DuplicateKey:
    return DuplicateKey(f"key '{key.value}' appears twice in one mapping "
                        f"(line {key.start_mark.line + 1} of the rendered text)")


def check_duplicates(node: Node) -> None:
    """Raise :class:`DuplicateKey` for a mapping of ``node``'s tree that holds a key twice,
    and :class:`AmbiguousScalar` for a plain scalar that YAML 1.1 and 1.2 readers read
    differently (a node composed by a loader other than this module's)."""
    stack = [node]
    seen_nodes: set[int] = set()  # an alias reaches a node again, or even one it is inside
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        if isinstance(n, ScalarNode) and not n.style and not readers_agree(n.tag, n.value):
            raise _ambiguous(n.value, n.start_mark)
        if isinstance(n, MappingNode):
            seen: set[str] = set()
            for k, v in n.value:
                if isinstance(k, ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    if k.value in seen:
                        raise _duplicate(k)
                    seen.add(k.value)
                stack += [k, v]
        elif isinstance(n, SequenceNode):
            stack += list(n.value)


class _Unsupported(Exception):
    """A node the tight builder leaves to PyYAML's full constructor."""


_constructor = yaml.SafeLoader("")


def _build(node: Node) -> Any:
    if isinstance(node, ScalarNode):
        if node.tag == _STR:
            return node.value
        if node.tag in _SIMPLE_SCALARS:
            return yaml.SafeLoader.yaml_constructors[node.tag](_constructor, node)
        raise _Unsupported(node.tag)
    if isinstance(node, MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise _Unsupported(node.tag)
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode) or knode.tag == "tag:yaml.org,2002:merge":
                raise _Unsupported("key")
            key = _build(knode)
            if key in out:
                raise _duplicate(knode)
            out[key] = _build(vnode)
        return out
    if isinstance(node, SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
        return [_build(v) for v in node.value]
    raise _Unsupported(node.tag)


def load_manifest(text: str) -> Any:
    """The single YAML document ``text`` as plain Python data (None when empty).

    Raises ``yaml.YAMLError`` for text that is not one YAML document."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except AmbiguousScalar:
        _locate_ambiguous(text)
        raise
    finally:
        loader.dispose()
    if node is None:
        return None
    try:
        return _build(node)
    except (_Unsupported, TypeError, RecursionError):
        check_duplicates(node)
        return yaml.load(text, Loader=_Base)


def _locate_ambiguous(text: str) -> None:
    """Raise the :class:`AmbiguousScalar` of ``text`` with its line (the composer that
    refused it does not say where it was)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Base))
    except yaml.YAMLError:
        return
    for node in nodes:
        if node is not None:
            check_duplicates(node)


# Stands for the namespace while a text is read.  No DNS-1123 name holds "~" or "_", and
# "~" starts the token only: no end of one occurrence can begin another, so replacing the
# namespace by the token and back gives the text again, exactly.  No escape sequence of a
# double-quoted scalar (\\ then one of its letters or hexadecimal digits) goes on with "~":
# where an escape would take characters of the namespace, the tokenised text is no YAML
# and the text is read itself; elsewhere an escape reads the same beside either.  It is longer than any
# namespace (63 characters at most), so no key of the tokenised text is shorter than in
# the text itself (YAML limits an implicit key to 1024 characters).
_TOKEN = "~kitchen_namespace_" + "x" * 45
_QUOTED_OR_BLOCK = ('"', "'", "|", ">")
_MAX_NAMESPACE = 63
_TOKEN_BYTES = _TOKEN.encode()


def substitute(value: Any, token: str, replacement: str) -> Any:
    """``value`` (plain data) with ``token`` replaced in every string, keys included."""
    if isinstance(value, str):
        return value.replace(token, replacement) if token in value else value
    if isinstance(value, dict):
        return {substitute(k, token, replacement): substitute(v, token, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, token, replacement) for v in value]
    return value


def _token_only_in_strings(node: Node) -> bool:
    """Every scalar that holds the token is quoted or a block scalar: its type is a string
    whatever namespace the token stands for."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ScalarNode):
            if _TOKEN in n.value and (n.style not in _QUOTED_OR_BLOCK or n.tag != _STR):
                return False
        elif isinstance(n, MappingNode):
            for k, v in n.value:
                stack += [k, v]
        elif isinstance(n, SequenceNode):
            stack += list(n.value)
    return True


class ManifestReader:
    """Reads the manifests of one render.  An object whose text differs from another's
    only by its namespace (a tenant's NetworkPolicies, RoleBindings and PrometheusRule,
    where the tenant's name is its namespace) is read once, with a token for the
    namespace, and the namespace put back into its strings: the same object as reading
    the text, for the cost of a copy.  Anything that could make the two differ — a
    document marker, an escape sequence that takes characters of the namespace, the
    namespace in a plain scalar (whose type it could change) or in a tag — reads the text
    itself.  A template whose objects never
    share a text (an InferenceService's flavors differ) stops being tried once it has missed
    often and hit seldom; one whose texts repeat after a while (a PrometheusRule names its
    tenant's InferenceServices, and tenants share a few bases) keeps being tried."""

    MISSES = 32  # a template is no longer tried past this many misses with fewer than one hit in four
    LIMIT = 4096  # distinct tokenised texts kept

    def __init__(self) -> None:
        # tokenised text → its object (and its JSON, where that reads back the same), or None
        # where reading the text once for every namespace is not safe
        self._read: dict[str, tuple[Any, bytes | None] | None] = {}
        self._tries: dict[str, list[int]] = {}  # template → [hits, misses]

    def _tried(self, template: str) -> bool:
        """Tried often enough, and seldom shared: its texts are read directly from now on."""
        hits, misses = self._tries.get(template, (0, 0))
        return misses >= self.MISSES and hits * 4 < misses

    def read(self, text: str, namespace: str = "", template: str = "") -> Any:
        if (not namespace or len(namespace) > _MAX_NAMESPACE or self._tried(template)
                or _TOKEN in text or "\n---" in text or "\n..." in text
                or text.startswith(("---", "..."))):
            return load_manifest(text)
        key = text.replace(namespace, _TOKEN)
        tries = self._tries.setdefault(template, [0, 0])
        if key in self._read:
            tries[0] += 1
            read = self._read[key]
        else:
            tries[1] += 1
            if len(self._read) >= self.LIMIT:
                self._read.clear()
            read = self._read[key] = self._read_tokenised(key)
        if read is None:
            return load_manifest(text)
        obj, as_json = read
        if as_json is not None:  # the copy through JSON: the same object, for a fraction of the walk
            return orjson.loads(as_json.replace(_TOKEN_BYTES, namespace.encode()))
        return substitute(obj, _TOKEN, namespace)

    @classmethod
    def _read_tokenised(cls, key: str) -> tuple[Any, bytes | None] | None:
        obj = cls._object(key)
        if obj is None:
            return None
        try:  # kept as JSON only where JSON gives back exactly this object (no NaN, no date)
            as_json = orjson.dumps(obj)
            back = orjson.loads(as_json)
        except (TypeError, ValueError):  # a key that is not a string, an integer beyond 64 bits
            return obj, None
        return obj, as_json if back == obj and orjson.dumps(back) == as_json else None

    @staticmethod
    def _object(key: str) -> Any:
        loader = _Loader(key)
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            return None
        finally:
            loader.dispose()
        if not isinstance(node, MappingNode) or not _token_only_in_strings(node):
            return None
        try:
            built = _build(node)
        except (Exception, RecursionError):  # read from the text itself, which says what is wrong
            return None
        return built if isinstance(built, dict) else None
