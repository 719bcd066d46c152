"""The semantic comparison of rendered objects behind ``kitchen diff``: what names an
object, how values compare, and the bounds on what a hostile template can make it do."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kitchen_gitops import object_diff
from kitchen_gitops.findings import Location
from kitchen_gitops.manifest_reader import load_manifest
from kitchen_gitops.object_diff import MAX_FIELDS, VALUE_CHARS, ObjectChange, diff_rendered
from kitchen_gitops.render import RenderedFile, RenderedObject
from kitchen_gitops.value_diff import Walk


def _file(path: str, text: str, kind: str = "ConfigMap") -> RenderedFile:
    manifest = None if kind == "Kustomization" else load_manifest(text)
    obj = RenderedObject("v1", kind, path, "ns", Location("environments/dev.yaml", 1, 1), (), manifest)
    return RenderedFile(path, text, [obj])


def _cm(name: str = "a", **data: Any) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"},
                           "data": data})


def _diff(old: list[RenderedFile], new: list[RenderedFile]) -> list[ObjectChange]:
    return diff_rendered({"dev": old}, {"dev": new})


def _fields(change: ObjectChange) -> list[tuple[str, str | None, str | None]]:
    return [(f.path, f.old, f.new) for f in change.fields]


def test_values_compare_with_their_types() -> None:
    old = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\nspec: {a: 1, b: 1, c: 1, d: 1.0}\n"
    new = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\nspec: {a: 1, b: '1', c: true, d: 1}\n"
    [change] = _diff([_file("a.yaml", old)], [_file("a.yaml", new)])
    assert change.obj.label() == "ConfigMap ns/a (v1)"
    assert _fields(change) == [("spec.b", "1", '"1"'), ("spec.c", "1", "true"), ("spec.d", "1.0", "1")]


def test_an_inserted_list_element_is_one_change() -> None:
    old = "kind: Kustomization\nresources: [a.yaml, b.yaml, c.yaml, d.yaml]\n"
    new = "kind: Kustomization\nresources: [a.yaml, extra.yaml, b.yaml, c.yaml, d.yaml]\n"
    [change] = _diff([_file("kustomization.yaml", old, "Kustomization")],
                     [_file("kustomization.yaml", new, "Kustomization")])
    assert change.obj.label() == "kustomization.yaml"
    assert _fields(change) == [("resources[1]", None, '"extra.yaml"')]


def test_fields_are_bounded_and_counted() -> None:
    many = {f"k{i:02}": "x" for i in range(MAX_FIELDS + 5)}
    [change] = _diff([_file("a.yaml", _cm())], [_file("a.yaml", _cm(**many))])
    assert [f.path for f in change.fields] == [f'data.k{i:02}' for i in range(MAX_FIELDS)]
    assert change.more_fields == 5


def test_long_values_are_shortened_where_they_differ() -> None:
    before, after = "x" * 500 + "old" + "y" * 500, "x" * 500 + "new" + "y" * 500
    [change] = _diff([_file("a.yaml", _cm(v=before))], [_file("a.yaml", _cm(v=after))])
    [(path, old, new)] = _fields(change)
    assert path == "data.v" and old is not None and new is not None
    assert len(old) == len(new) == VALUE_CHARS
    assert old.startswith("…xxx") and "xold" in old and "xnew" in new and old.endswith("…")


def test_added_removed_and_the_same_name_twice() -> None:
    old = [_file("a.yaml", _cm("a")), _file("b.yaml", _cm("b"))]
    new = [_file("a.yaml", _cm("a")), _file("c.yaml", _cm("c")), _file("d.yaml", _cm("c", k="v"))]
    changes = _diff(old, new)
    assert [(c.obj.label(), c.change) for c in changes] == [
        ("ConfigMap ns/b (v1)", "removed"),
        ("ConfigMap ns/c (v1)", "added"),
        ("ConfigMap ns/c (v1) in d.yaml", "added"),
    ]


def test_a_list_stands_for_its_items() -> None:
    item = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "ns"}}
    extra = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "root"}, "roleRef": {"name": "cluster-admin"}}
    listed = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [item, extra]})
    changes = _diff([_file("sa.yaml", yaml.safe_dump(item))], [_file("sa.yaml", listed)])
    assert [(c.obj.label(), c.change) for c in changes] == [
        ("ClusterRoleBinding root (rbac.authorization.k8s.io/v1)", "added")]


def test_an_environment_only_on_one_side() -> None:
    changes = diff_rendered({}, {"new": [_file("a.yaml", _cm())]})
    assert [(c.environment, c.change) for c in changes] == [("new", "added")]


def test_a_node_inside_itself_is_compared_without_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """YAML aliases let a template render an object that contains itself."""
    old = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\nspec: &s {a: 1, self: *s}\n"
    new = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\nspec: &s {a: 2, self: *s}\n"
    walks: list[Walk] = []

    class CountedWalk(Walk):
        def __init__(self, limit: int = 1_000_000) -> None:
            super().__init__(limit)
            walks.append(self)

    monkeypatch.setattr(object_diff, "Walk", CountedWalk)
    [change] = _diff([_file("a.yaml", old)], [_file("a.yaml", new)])
    assert [f.path for f in change.fields][:1] == ["spec.a"]
    # the values visited, counted: a walk into the node again would run to MAX_VALUES
    assert [(w.visited <= 20, w.stopped) for w in walks] == [(True, False)], [w.visited for w in walks]


def test_the_walk_stops_at_its_bound_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(object_diff, "MAX_VALUES", 1000)
    [change] = _diff([_file("a.yaml", _cm(v=list(range(5000))))],
                     [_file("a.yaml", _cm(v=[*range(4999), -1]))])
    assert change.change == "changed" and change.incomplete and not change.fields
    [full] = _diff([_file("a.yaml", _cm(v=list(range(500))))], [_file("a.yaml", _cm(v=[*range(499), -1]))])
    assert not full.incomplete and _fields(full) == [("data.v[499]", "499", "-1")]


def test_text_and_markdown_list_a_bounded_number_of_objects() -> None:
    from kitchen_gitops.diff import MAX_OBJECTS_SHOWN, Diff, format_json, format_markdown, format_text

    added = [_file(f"cm-{i:03}.yaml", _cm(f"cm-{i:03}")) for i in range(MAX_OBJECTS_SHOWN + 5)]
    diff = Diff("HEAD", object_changes=_diff([], added))
    text = format_text(diff).splitlines()
    assert text[0] == "no serving changes against HEAD"
    assert text[1] == "dev: ConfigMap ns/cm-000 (v1) added"
    assert text[-2:] == ["dev: … and 5 more changed object(s) (--format json lists them all)",
                         f"{MAX_OBJECTS_SHOWN + 5} rendered object(s) change against HEAD in dev"]
    assert len(text) == MAX_OBJECTS_SHOWN + 3
    markdown = format_markdown(diff)
    assert markdown.count("| added |") == MAX_OBJECTS_SHOWN
    assert "| … and 5 more | | `--format json` lists them all |" in markdown
    assert format_json(diff).count('"change": "added"') == MAX_OBJECTS_SHOWN + 5
