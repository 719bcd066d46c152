"""Rendered manifests are read exactly as libyaml's SafeLoader reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kitchen_gitops.manifest_reader import load_manifest

REPO = Path(__file__).resolve().parents[2]


def test_every_committed_manifest_reads_as_safeloader_reads_it() -> None:
    files = sorted((REPO / "rendered").rglob("*.yaml"))
    assert len(files) > 100
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert load_manifest(text) == yaml.load(text, Loader=yaml.CSafeLoader), path


@pytest.mark.parametrize("text", [
    "a: 1\nb: 2.5\nc: true\nd: null\ne: '2026-12-01'\nf: '1'\ng: 'yes'\nh: 0x1f\ni: .inf\nj: 07\n",
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


@pytest.mark.parametrize(("text", "line"), [
    ("a: 1\ng: yes\n", 2),  # a boolean to YAML 1.1, a string to YAML 1.2
    ("metadata:\n  labels:\n    on: 'x'\n", 3),  # a key as well
    ("replicas: 010\n", 1),  # eight, or ten
    ("x: 1e3\n", 1),  # a string, or a thousand
    ("x: 0o17\n", 1),
    ("x: 1_000\n", 1),
    ("x: 1:20\n", 1),  # sexagesimal: eighty
    ("e: 2026-12-01\n", 1),  # a date, or a string
    ("base: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  y: 3\n", 3),  # a merge, or a key named <<
    ("a: [1, 2, off]\n", 1),
])
def test_a_scalar_yaml_readers_read_differently_is_refused(text: str, line: int) -> None:
    """Kubernetes' reader (YAML 1.1) and kustomize's (YAML 1.2) would apply different
    objects: the gate could pass one while the cluster gets the other."""
    from kitchen_gitops.closed_world import read_documents
    from kitchen_gitops.manifest_reader import AmbiguousScalar, ManifestReader

    for read in (load_manifest, read_documents, lambda t: ManifestReader().read(t, "cs-llm", "x.yaml.j2")):
        with pytest.raises(AmbiguousScalar, match=rf"YAML 1.1 readers .* YAML 1.2 readers \(line {line} of"):
            read(text)


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
    """As libyaml reads the text, or refused as it refuses it (a plain ``yes``, which YAML
    1.2 readers read as a string, refused too)."""
    from kitchen_gitops.manifest_reader import ManifestReader

    reader = ManifestReader()
    for ns in ("other-one", namespace, "third"):  # the second and third reuse the first's spec
        text = _ruled(ns, spec.replace("NS", ns))
        try:
            want = yaml.load(text, Loader=yaml.CSafeLoader)
            if ns == "yes":  # the namespace is a plain scalar in the header
                raise yaml.YAMLError("read differently by YAML 1.2 readers")
        except yaml.YAMLError:
            with pytest.raises(yaml.YAMLError):
                reader.read(text, ns)
            continue
        assert reader.read(text, ns) == want, (ns, spec)


@pytest.mark.parametrize("spec", [
    '  a: "NS"\n  b: ["x-NS", \'NS\']\n  "NS-key": 1\n',
    "  a: !!bool \"NS\"\n",  # an explicit tag on the namespace: its type is not a string's
    "  a: !!int 'NS'\n",
    "  a: &NS-anchor \"v\"\n  b: *NS-anchor\n",
    "  NS: 1\n",  # a plain key
    "  a: !NS \"v\"\n",  # the namespace in a tag
    "  a: |\n    NS\n    NS: x\n",
    "  a: \"~kitchen_namespace_\"\n",  # the token's start in the text
    '  a: "NS"\n  a: "b"\n',  # a duplicate key
    '  a: "NS"\n  b: .nan\n  c: 2026-01-02\n  d: 123456789012345678901234567890\n  e: 1.0\n',  # not JSON
    # escape sequences: beside the namespace, and taking its first characters
    '  a: "[\\"NS\\"]"\n  b: "\\\\NS\\t\\u00e9NS\\x41"\n  c: "x\\\n    NS"\n',
    '  a: "\\NS"\n', '  a: "\\x4NS"\n', '  a: "\\u00NS"\n', '  a: "\\U0001f60NS"\n', '  a: "\\\\\\NS"\n',
])
@pytest.mark.parametrize("namespace", ["cs-llm", "yes", "null", "a", "x" * 63, "e9", "0", "n", "t-1"])
def test_reader_reads_every_object_as_the_text_says(spec: str, namespace: str) -> None:
    """Objects that differ only by their quoted namespace are read once; what comes back
    is what reading each text alone gives (libyaml's reading, a duplicate key refused),
    or its error."""
    from kitchen_gitops.manifest_reader import ManifestReader

    reader = ManifestReader()
    for ns in ("other-one", namespace, "third", namespace):
        text = (f'# from catalog/tenants/{ns}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n'
                f'  name: "{ns}-x"\n  namespace: "{ns}"\nspec:\n' + spec.replace("NS", ns))
        try:
            want = load_manifest(text)
        except (yaml.YAMLError, ValueError, KeyError) as exc:
            with pytest.raises(type(exc)):
                reader.read(text, ns, "configmap.yaml.j2")
            continue
        got = reader.read(text, ns, "configmap.yaml.j2")
        assert json.dumps(got, sort_keys=True, default=repr) == json.dumps(want, sort_keys=True, default=repr), \
            (ns, spec)


def test_reader_shares_the_reading_of_texts_that_differ_by_namespace() -> None:
    """Counted, not timed: a second tenant's NetworkPolicy is not parsed again."""
    from kitchen_gitops import manifest_reader as manifests

    calls = []
    real = manifests._Loader

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, text: str) -> None:
            calls.append(text)
            super().__init__(text)

    reader = manifests.ManifestReader()
    texts = [f'kind: NetworkPolicy\nmetadata:\n  name: "deny"\n  namespace: "{ns}"\n'
             f'  labels: {{"kitchen-gitops.io/tenant": "{ns}"}}\n'
             f'  annotations: {{"accelerators": "[\\"nvidia.com/gpu\\"]", "of": "\\"{ns}\\""}}\n'
             f'spec: {{"podSelector": {{}}}}\n'
             for ns in ("t-1", "t-2", "t-3")]
    manifests._Loader = Counting
    try:
        got = [reader.read(t, ns, "np.j2") for t, ns in zip(texts, ("t-1", "t-2", "t-3"), strict=True)]
    finally:
        manifests._Loader = real
    assert [g["metadata"]["namespace"] for g in got] == ["t-1", "t-2", "t-3"]
    assert got == [yaml.safe_load(t) for t in texts]
    assert len(calls) == 1


def test_reader_reads_random_escapes_around_the_namespace_as_the_text_says() -> None:
    """Double-quoted scalars of random escapes, namespace characters and backslashes, the
    namespace anywhere among them (bounded by count, seeded): the shared reading is the
    text's own, or the same error."""
    import random

    from kitchen_gitops.manifest_reader import ManifestReader

    rng = random.Random(20261206)
    pieces = ["\\", "\\\\", "\\x4", "\\x41", "\\u00", "\\u00e9", "\\U0001F60", "\\n", "\\t", "\\0", "\\e",
              "\\ ", "\\/", '\\"', "a", "e9", "0", "-", ".", "x", " ", "NS", "NS", "NS"]
    namespaces = ["a", "e", "n", "t", "x", "0", "e9", "ab-0", "u00e9", "x" * 63]
    shared = 0
    for _ in range(600):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        reader = ManifestReader()  # a template tried afresh: the shared reading is not given up
        for ns in rng.sample(namespaces, 3):
            text = f'kind: ConfigMap\nmetadata:\n  namespace: "{ns}"\ndata:\n  a: "{body.replace("NS", ns)}"\n'
            try:
                want = load_manifest(text)
            except yaml.YAMLError as exc:
                with pytest.raises(type(exc)):
                    reader.read(text, ns, "cm.j2")
                continue
            assert reader.read(text, ns, "cm.j2") == want, (body, ns)
        shared += sum(1 for read in reader._read.values() if read is not None)
    assert shared > 200  # bodies whose texts were read through one shared, tokenised reading


def test_a_render_frees_its_reader_when_it_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader of one environment's render holds a reading of every object texts share
    (tens of megabytes on a large organisation): nothing of the render keeps it, or the
    renderer, in a cycle that only a collection would free, so it is gone when the render
    returns (and is not carried into the evaluation beside it)."""
    import gc
    import weakref

    from kitchen_gitops import manifest_reader, render
    from kitchen_gitops.pipeline import _planned, contributions
    from kitchen_gitops.sandbox import template_dir

    made: list[weakref.ref[manifest_reader.ManifestReader]] = []
    original = manifest_reader.ManifestReader.__init__

    def recorded(self: manifest_reader.ManifestReader) -> None:
        original(self)
        made.append(weakref.ref(self))

    monkeypatch.setattr(manifest_reader.ManifestReader, "__init__", recorded)
    outcome = _planned(REPO, None)
    gc.collect()
    gc.disable()
    try:
        for env in sorted(outcome.plans):
            files = render.render_environment(outcome.catalog, outcome.plans[env], template_dir(REPO), contributions())
            assert files and made and made[-1]() is None, env
    finally:
        gc.enable()
    assert len(made) == len(outcome.plans)
