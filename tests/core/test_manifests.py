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
