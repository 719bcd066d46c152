"""``kitchen artifacts lock``: digests written in place, every other byte kept."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.artifacts.lock import splice_values
from kitchen_gitops.cli import main
from tests.artifacts.artifact_case import ArtifactRepo, FlavorSpec
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "lock"

# what the PVC mirror holds for the golden case
MIRROR_FILES = {
    "models/tiny/1/config.json": b'{"model_type": "llama"}\n',
    "models/tiny/1/tokenizer.json": b'{"version": "1.0"}\n',
    "models/tiny/1/tokenizer_config.json": b'{"model_max_length": 1024}\n',
    "models/tiny/1/model.safetensors": b"weights for the lock golden test\n",
    "adapters/faq/v1/adapter_config.json": b'{"peft_type": "LORA", "r": 8}\n',
    "adapters/faq/v1/adapter_model.safetensors": b"adapter weights for the lock golden test\n",
}
HEX64 = re.compile(r"[0-9a-f]{64}")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _mirror(tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    for rel, data in MIRROR_FILES.items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).write_bytes(data)
    return mirror


@pytest.mark.parametrize("case", ["odd-formatting"])
def test_lock_golden(case: str, tmp_path: Path, update_golden: bool,
                     capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(GOLDEN / case / "input", repo)
    mirror = _mirror(tmp_path)
    args = ["--root", str(repo), "--pvc-mirror", str(mirror)]

    assert main(["artifacts", "lock", "--check", *args]) == 1
    out = capsys.readouterr().out
    assert "(artifacts.lock-stale)" in out
    assert "6 error(s)" in out  # 3 base digests (1 is right already), 1 size, 2 adapter
    assert _tree(repo) == _tree(GOLDEN / case / "input"), "--check wrote something"

    assert main(["artifacts", "lock", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "locked 6 pin(s) in 2 file(s)"
    locked = repo / "catalog"
    expected = GOLDEN / case / "expected"
    if update_golden:
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(locked, expected)
    assert _tree(locked) == _tree(expected)

    # the only differences are digests (and the stale size): mask them and compare
    def mask(data: bytes) -> str:
        return HEX64.sub("#", data.decode()).replace("size: 1\n", "size: 24\n")

    for rel, before in _tree(GOLDEN / case / "input" / "catalog").items():
        assert mask(before) == mask((locked / rel).read_bytes()), rel
    assert b"\r\n" in (locked / "tenants" / "team.yaml").read_bytes()

    # idempotent, and verify now agrees on every checksum
    assert main(["artifacts", "lock", *args]) == 0
    assert capsys.readouterr().out == "catalog pins already match storage\n"
    assert main(["artifacts", "lock", "--check", *args]) == 0
    capsys.readouterr()


def test_lock_refuses_to_write_when_a_file_is_missing(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(GOLDEN / "odd-formatting" / "input", repo)
    mirror = _mirror(tmp_path)
    (mirror / "models/tiny/1/tokenizer.json").unlink()
    before = _tree(repo)
    rc = main(["artifacts", "lock", "--root", str(repo), "--pvc-mirror", str(mirror)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "pvc://models/tiny/1/tokenizer.json is not in storage" in out
    assert err == "nothing written: fix the findings above\n"
    assert _tree(repo) == before


@pytest.mark.parametrize("text, path, new, want", [
    ("a: abc\n", ("a",), "def", "a: def\n"),
    ("a: 'abc'  # c\n", ("a",), "def", "a: 'def'  # c\n"),
    ('a: "sha256:abc"\n', ("a",), "def", 'a: "sha256:def"\n'),
    ("\ufeffl:\n  - {p: x, s: abc}\n", ("l", 0, "s"), "def", "\ufeffl:\n  - {p: x, s: def}\n"),
    ("a:\r\n  b: abc\r\n  c: 1\r\n", ("a", "c"), "22", "a:\r\n  b: abc\r\n  c: 22\r\n"),
])
def test_splice_keeps_style(text: str, path: tuple[str | int, ...], new: str, want: str) -> None:
    assert splice_values(text, {path: new}) == want


@pytest.mark.slow
def test_lock_from_s3_then_verify(repo: ArtifactRepo, model_kit: dict[str, Any],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"],
                               pins={"adapter_config.json": "c" * 64,
                                     "adapter_model.safetensors": "d" * 64}))
    repo.finish()
    flavor = repo.root / "catalog/flavors/faq.yaml"
    assert main(["artifacts", "verify", *repo.args()]) == 1
    assert main(["artifacts", "lock", "--check", *repo.args()]) == 1
    capsys.readouterr()
    assert main(["artifacts", "lock", *repo.args()]) == 0
    out = capsys.readouterr().out
    want = hashlib.sha256(
        (model_kit["adapters"]["faq"] / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert f"adapter_model.safetensors: {want}\n" in flavor.read_text()
    assert f"sha256 of s3://lora/{repo.prefix}/faq/v1/adapter_model.safetensors: {'d' * 64} -> " \
           f"{want}" in out
    assert main(["artifacts", "verify", *repo.args()]) == 0
    capsys.readouterr()
