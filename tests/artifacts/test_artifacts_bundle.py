"""``kitchen bundle``: the carry-in manifest, checked with ``sha256sum -c`` as the inside would."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops.cli import main
from tests.artifacts.artifact_case import ArtifactRepo, FlavorSpec

pytestmark = pytest.mark.slow


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _bundle(repo: ArtifactRepo, out: Path, *extra: str) -> int:
    return main(["bundle", "--env", "dev", "--out", str(out), *repo.args(*extra)])


def test_bundle_with_files_checks_out_with_sha256sum(
        repo: ArtifactRepo, model_kit: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.add_flavor(FlavorSpec("summarise", model_kit["adapters"]["summarise"], rank=16,
                               alpha=32))
    repo.finish()
    out = tmp_path / "bundle"
    assert _bundle(repo, out, "--with-files") == 0
    stdout = capsys.readouterr().out
    assert "bundle for dev: 2 images, 10 files" in stdout

    config = yaml.safe_load((out / "imageset-config.yaml").read_text())
    assert config == {
        "kind": "ImageSetConfiguration",
        "apiVersion": "mirror.openshift.io/v2alpha1",
        "mirror": {"additionalImages": [
            {"name": "registry.test:5000/platform/kitchen@sha256:" + "2" * 64},
            {"name": "registry.test:5000/vllm/vllm-openai@sha256:" + "1" * 64},
        ]},
    }
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 10
    adapter = model_kit["adapters"]["faq"] / "adapter_model.safetensors"
    want = hashlib.sha256(adapter.read_bytes()).hexdigest()
    assert f"{want}  models/s3/lora/{repo.prefix}/faq/v1/adapter_model.safetensors" in sums
    assert any(s.endswith("  models/pvc/models/tiny-llama/1/model.safetensors") for s in sums)
    assert sums == sorted(sums, key=lambda s: s.split("  ", 1)[1])

    rows = (out / "models.tsv").read_text().splitlines()
    assert rows[1] == "path\tsize\tsha256\tartifact\tsource"
    row = next(r.split("\t") for r in rows if "faq/v1/adapter_model" in r)
    assert row == [f"models/s3/lora/{repo.prefix}/faq/v1/adapter_model.safetensors",
                   str(adapter.stat().st_size), want, "Flavor faq@v1",
                   f"s3://lora/{repo.prefix}/faq/v1/adapter_model.safetensors"]

    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=out,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 10

    # deterministic: a second run writes the same bytes; without files, the same manifests
    first = _tree(out)
    assert _bundle(repo, out, "--with-files") == 0
    assert _tree(out) == first
    manifests = tmp_path / "manifests"
    assert _bundle(repo, manifests) == 0
    assert _tree(manifests) == {k: v for k, v in first.items() if not k.startswith("models/")}
    capsys.readouterr()


def test_bundle_refuses_a_changed_file(repo: ArtifactRepo, model_kit: dict[str, Any],
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"],
                               pins={"adapter_config.json": "e" * 64}))
    repo.finish()
    out = tmp_path / "bundle"
    assert _bundle(repo, out) == 0  # the manifest alone trusts the pins
    before = _tree(out)
    assert _bundle(repo, out, "--with-files") == 1
    stdout, err = capsys.readouterr()
    assert "adapter_config.json is" in stdout and "not bundled" in stdout
    assert "(artifacts.checksum-mismatch)" in stdout
    assert err.endswith("nothing written: fix the findings above\n")
    assert _tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]


def test_bundle_will_not_replace_another_folder(repo: ArtifactRepo, model_kit: dict[str, Any],
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _bundle(repo, out) == 2
    assert "exists and is not a kitchen bundle" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    shutil.rmtree(out)
