"""Rendered manifests are read exactly as libyaml's SafeLoader reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kitchen_gitops.manifests import load_manifest

REPO = Path(__file__).resolve().parents[2]


def test_every_committed_manifest_reads_as_safeloader_reads_it() -> None:
    files = sorted((REPO / "rendered").rglob("*.yaml"))
    assert len(files) > 100
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert load_manifest(text) == yaml.load(text, Loader=yaml.CSafeLoader), path


@pytest.mark.parametrize("text", [
    "a: 1\nb: 2.5\nc: true\nd: null\ne: 2026-12-01\nf: '1'\ng: yes\nh: 0x1f\ni: .inf\n",
    "base: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  y: 3\n",  # merge keys
    "s: !!set {a, b}\n",
    "bin: !!binary aGVsbG8=\n",
    "? [a, b]\n: complex key\n",
    "l: &x [1, 2]\nm: *x\n",
    "",
    "just a string\n",
    "- 1\n- two\n",
    "o: !!omap [a: 1, b: 2]\n",
])
def test_special_yaml_reads_the_same(text: str) -> None:
    try:
        want = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        with pytest.raises(yaml.YAMLError):
            load_manifest(text)
        return
    assert load_manifest(text) == want


def test_not_one_document_is_an_error() -> None:
    with pytest.raises(yaml.YAMLError):
        load_manifest("a: 1\n---\nb: 2\n")
    with pytest.raises(yaml.YAMLError):
        load_manifest("a: [1, 2\n")


def _ruled(namespace: str, spec: str) -> str:
    head = f"apiVersion: v1\nkind: PrometheusRule\nmetadata:\n  name: r\n  namespace: {namespace}\n"
    return head + "spec:\n" + spec + "#" * 5000 + "\n"


@pytest.mark.parametrize("spec", [
    '  groups:\n    - name: "a"\n      rules:\n        - expr: |-\n            up{namespace="NS"}\n',
    "  groups:\n    - name: NS\n",  # the namespace in a plain scalar: read whole
    "  a: 'NS'\n  b: \"x-NS-y\"\n  c: >-\n    NS\n",
    "  a: &x NS\n  b: *x\n",
    "  a: \"\\x41NS\"\n",  # an escape sequence: read whole
    "  a: NS\n---\nb: 2\n",  # a second document: an error either way
])
@pytest.mark.parametrize("namespace", ["cs-llm", "123", "yes", "x41", "null"])
def test_reader_reads_as_the_text_says(spec: str, namespace: str) -> None:
    from kitchen_gitops.manifests import ManifestReader

    reader = ManifestReader()
    for ns in ("other-one", namespace, "third"):  # the second and third reuse the first's spec
        text = _ruled(ns, spec.replace("NS", ns))
        try:
            want = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            with pytest.raises(yaml.YAMLError):
                reader.read(text, ns)
            continue
        assert reader.read(text, ns) == want, (ns, spec)
