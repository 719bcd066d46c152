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
            out[_build(knode)] = _build(vnode)
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
        return yaml.load(text, Loader=_Base)
