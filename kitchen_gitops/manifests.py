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

from typing import Any, ClassVar

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


class _Loader(_Base):  # type: ignore[misc]
    """libyaml's composer with the implicit tag of each distinct scalar resolved once."""

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
            if len(self._tags) >= _CACHE_LIMIT:
                self._tags.clear()
            self._tags[key] = tag
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
    """Raise :class:`DuplicateKey` for a mapping of ``node``'s tree that holds a key twice."""
    stack = [node]
    seen_nodes: set[int] = set()  # an alias reaches a node again, or even one it is inside
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
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
    finally:
        loader.dispose()
    if node is None:
        return None
    try:
        return _build(node)
    except (_Unsupported, TypeError, RecursionError):
        check_duplicates(node)
        return yaml.load(text, Loader=_Base)


_TOKEN = "__kitchen_namespace__"  # no DNS-1123 namespace contains "_"
_SPEC = "\nspec:\n"
_QUOTED_OR_BLOCK = ('"', "'", "|", ">")


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
            if _TOKEN in n.value and n.style not in _QUOTED_OR_BLOCK:
                return False
        elif isinstance(n, MappingNode):
            for k, v in n.value:
                stack += [k, v]
        elif isinstance(n, SequenceNode):
            stack += list(n.value)
    return True


class ManifestReader:
    """Reads the manifests of one render.  The ``spec:`` of an object whose text differs
    from another's only by its namespace (a PrometheusRule per tenant namespace) is read
    once and the namespace put back into its strings: the same object as reading the
    text, for the cost of a copy.  Anything that could make the two differ — a document
    marker, an escape sequence, the namespace in a plain scalar, an alias across the
    split — reads the whole text instead."""

    def __init__(self, min_bytes: int = 4096) -> None:
        self.min_bytes = min_bytes
        self._specs: dict[str, Any] = {}  # spec text with the namespace as a token → its object, or None

    def read(self, text: str, namespace: str = "") -> Any:
        if not namespace or len(text) < self.min_bytes or _TOKEN in text:
            return load_manifest(text)
        head, sep, tail = text.partition(_SPEC)
        if not sep or "\\" in tail or "\n---" in text or "\n..." in text or text.startswith(("---", "...")):
            return load_manifest(text)
        key = tail.replace(namespace, _TOKEN)
        if key not in self._specs:
            self._specs[key] = self._read_spec(key)
        spec = self._specs[key]
        if spec is None:
            return load_manifest(text)
        top = load_manifest(head + "\n")
        if not isinstance(top, dict) or any(k in top for k in spec):
            return load_manifest(text)
        top.update(substitute(spec, _TOKEN, namespace))
        return top

    @staticmethod
    def _read_spec(key: str) -> Any:
        loader = _Loader("spec:\n" + key)
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
        except (_Unsupported, TypeError, RecursionError, DuplicateKey):
            return None
        return built if isinstance(built, dict) else None
