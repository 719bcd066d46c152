"""The one writer's guarantee: all files of one command appear whole, or none change.

Each case runs once to count the renames it makes, then once per rename with that rename
failing (``os.replace`` raising on its n-th call), and the tree must be byte for byte,
mode for mode and link for link what it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kitchen_gitops import write
from kitchen_gitops.artifacts.lock import write_files
from kitchen_gitops.commands import publish
from kitchen_gitops.errors import ConfigError
from kitchen_gitops.findings import Result
from kitchen_gitops.render import RenderedFile
from kitchen_gitops.write import WriteFailed, replace_files, write_outputs


def snapshot(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    out: dict[str, tuple[str, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = ("link", 0, os.readlink(path))
        elif path.is_file():
            out[rel] = ("file", path.stat().st_mode & 0o7777, path.read_bytes())
        else:
            out[rel] = ("dir", 0, b"")
    return out


def renames(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> int:
    calls = 0
    real = os.replace

    def counting(src: object, dst: object) -> None:
        nonlocal calls
        calls += 1
        real(src, dst)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(os, "replace", counting)
        action()
    return calls


def fail_nth(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    calls = 0
    real = os.replace

    def failing(src: object, dst: object) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)


def each_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: Callable[[Path], None],
                 action: Callable[[Path], object], errors: tuple[type[BaseException], ...]) -> int:
    """Run ``action`` once to count its renames, then fail each rename in turn."""
    probe = tmp_path / "probe"
    setup(probe)
    total = renames(monkeypatch, lambda: action(probe))
    assert total > 0
    for n in range(1, total + 1):
        root = tmp_path / f"n{n}"
        setup(root)
        before = snapshot(root)
        with monkeypatch.context() as m:
            fail_nth(m, n)
            with pytest.raises(errors):
                action(root)
        assert snapshot(root) == before, f"rename {n} of {total} failed and the tree changed"
    return total


def _files(root: Path) -> None:
    root.mkdir()
    (root / "a.yaml").write_text("a: 1\n")
    (root / "b.yaml").write_text("b: 1\n")
    (root / "b.yaml").chmod(0o600)
    (root / "target.yaml").write_text("t: 1\n")
    (root / "link.yaml").symlink_to("target.yaml")


def test_replace_files_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def action(root: Path) -> None:
        replace_files({root / "a.yaml": b"a: 2\n", root / "b.yaml": b"b: 2\n", root / "new.yaml": b"n: 1\n",
                       root / "link.yaml": b"l: 2\n"})

    assert each_failure(tmp_path, monkeypatch, _files, action, (WriteFailed,)) == 4
    after = snapshot(tmp_path / "probe")
    assert after["b.yaml"] == ("file", 0o600, b"b: 2\n")  # its permissions kept
    assert after["link.yaml"] == ("file", 0o644, b"l: 2\n")  # a link replaced, never written through
    assert after["target.yaml"][2] == b"t: 1\n"
    assert sorted(after) == ["a.yaml", "b.yaml", "link.yaml", "new.yaml", "target.yaml"]  # nothing left over


def test_a_failing_verify_puts_every_file_back_and_sees_no_stray_file(tmp_path: Path) -> None:
    _files(tmp_path / "r")
    before = snapshot(tmp_path / "r")

    def refuse() -> None:
        # what verify reads (a catalog's folders) holds the new files and nothing else
        assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
            "a.yaml", "b.yaml", "link.yaml", "new.yaml", "target.yaml"]
        raise ConfigError("does not plan")

    with pytest.raises(ConfigError, match="does not plan"):
        replace_files({tmp_path / "r" / "a.yaml": b"x\n", tmp_path / "r" / "new.yaml": b"y\n"}, verify=refuse)
    assert snapshot(tmp_path / "r") == before


def test_artifacts_lock_writes_all_pins_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def action(root: Path) -> None:
        write_files({root / "a.yaml": b"sha256: new\n", root / "b.yaml": b"sha256: new\n"}, root=root)

    each_failure(tmp_path, monkeypatch, _files, action, (ConfigError,))


def test_a_report_and_its_copies_are_written_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def setup(root: Path) -> None:
        root.mkdir()
        (root / "report.txt").write_text("old\n")

    def action(root: Path) -> int:
        return publish(Result("validate"), "text", output=root / "report.txt",
                       also=[(root / "r.json", "json"), (root / "r.xml", "junit")])

    assert each_failure(tmp_path, monkeypatch, setup, action, (ConfigError,)) == 3


def test_a_rendered_tree_is_swapped_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def setup(root: Path) -> None:
        for env in ("dev", "prod"):
            (root / env).mkdir(parents=True)
            (root / env / "kustomization.yaml").write_text(f"{write.MARKER}\nold: {env}\n")

    def action(root: Path) -> list[str]:
        rendered = {env: [RenderedFile("kustomization.yaml", f"{write.MARKER}\nnew: {env}\n")]
                    for env in ("dev", "prod", "test")}
        return write_outputs(root, rendered, prune_environments=True)

    each_failure(tmp_path, monkeypatch, setup, action, (ConfigError,))


def test_a_folder_is_swapped_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``kitchen bundle`` puts its folder in place."""
    def setup(root: Path) -> None:
        (root / "bundle").mkdir(parents=True)
        (root / "bundle" / "SHA256SUMS").write_text("old\n")

    def action(root: Path) -> None:
        staging = root / ".bundle.new"
        staging.mkdir(exist_ok=True)
        (staging / "SHA256SUMS").write_text("new\n")
        try:
            write.swap_folder(staging, root / "bundle")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    assert each_failure(tmp_path, monkeypatch, setup, action, (OSError,)) == 2
    assert (tmp_path / "probe" / "bundle" / "SHA256SUMS").read_text() == "new\n"
