"""Confinement: the PVC mirror, the bundle and ``lock`` never read or write outside their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitchen_gitops.artifacts.lock import write_files
from kitchen_gitops.artifacts.storage import MirrorStore, ObjectMissing, SourceUri
from kitchen_gitops.errors import ConfigError


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.safetensors"
    secret.parent.mkdir()
    secret.write_bytes(b"not for the bundle")
    folder = tmp_path / "mirror" / "models-base" / "base" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "leak.safetensors").symlink_to(secret)
    (tmp_path / "mirror" / "escape").symlink_to(tmp_path / "outside")
    return tmp_path / "mirror"


def _read(store: MirrorStore, source: SourceUri, name: str) -> bytes:
    return b"".join(bytes(c) for c in store.chunks(source, name))


def test_a_link_out_of_the_mirror_is_not_there(mirror: Path) -> None:
    store = MirrorStore(mirror)
    source = SourceUri.parse("pvc://models-base/base/m/")
    assert store.listing(source) == {"config.json": 2}
    assert _read(store, source, "config.json") == b"{}"
    with pytest.raises(ObjectMissing):
        _read(store, source, "leak.safetensors")
    with pytest.raises(ObjectMissing):
        _read(store, source, "../../../outside/secret.safetensors")


def test_a_claim_that_links_out_of_the_mirror_is_not_listed(mirror: Path) -> None:
    from kitchen_gitops.artifacts.storage import ContainerProblem

    with pytest.raises(ContainerProblem) as info:
        MirrorStore(mirror).listing(SourceUri.parse("pvc://escape/x/"))
    assert info.value.rule == "artifacts.outside-mirror"


@pytest.mark.parametrize("uri", ["pvc://claim/../x", "pvc://../x/y", "s3://b//x", "s3://b/./x",
                                 "pvc:///x", "s3://b\\x/y"])
def test_source_uris_that_could_leave_their_container_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        SourceUri.parse(uri)


def test_lock_writes_only_inside_the_repository_and_never_through_a_link(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "catalog").mkdir(parents=True)
    outside = tmp_path / "outside.yaml"
    outside.write_text("sha256: old\n")
    with pytest.raises(ConfigError):
        write_files({outside: b"sha256: new\n"}, root=repo)
    assert outside.read_text() == "sha256: old\n"
    link = repo / "catalog" / "linked.yaml"
    link.symlink_to(outside)
    write_files({link: b"sha256: new\n"}, root=repo)
    assert outside.read_text() == "sha256: old\n"  # the link was replaced, not written through
    assert not link.is_symlink() and link.read_text() == "sha256: new\n"
