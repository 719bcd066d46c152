"""The closed input side: the files load.unread-file reports are exactly those that the
stages reading each folder leave alone, so an allowed name is never dead and a reported
name is never read behind the report's back."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest

from kitchen_gitops.errors import ConfigError
from kitchen_gitops.load import READ_FILES, discover, reads
from kitchen_gitops.policy.library import load_library
from kitchen_gitops.sandbox import compile_templates, sandbox_for
from tests.conftest import REPO, copy_catalog

TEMPLATE_NAMES = ("a.j2", ".hidden.j2", "b.J2", "c.j2.orig", "c.j2~", "notes.txt", "sub/d.j2", "sub/sub/e.j2")
POLICY_NAMES = ("a.rego", "lib/b.rego", ".c.rego", "d.REGO", "e.rego.bak", "lib/deep/f.rego", "README.md",
                "lib/data.yaml")


def _unread(root: Path) -> set[str]:
    _, problems = discover(root)
    return {p.location.file for p in problems if p.rule_id == "load.unread-file"}


def test_the_example_repository_has_no_unread_file() -> None:
    _, problems = discover(REPO)
    assert problems == []


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_a_template_name_is_compiled_exactly_when_it_is_not_reported(name: str, tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("{% if %}\n")  # a syntax error: compiling it fails
    try:
        compile_templates(folder)
        compiled = False
    except ConfigError:
        compiled = True
    assert compiled == reads("templates", f"templates/{name}")
    assert (f"templates/{name}" in _unread(tmp_path)) == (not compiled)


def test_a_template_cannot_import_one_from_a_subfolder(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "m.j2").write_text("{% macro x() %}x{% endmacro %}\n")
    (folder / "m.j2").write_text("{% macro x() %}x{% endmacro %}\n")
    jinja = sandbox_for(folder)
    assert jinja.from_string('{% import "m.j2" as m %}{{ m.x() }}').render() == "x"
    with pytest.raises(jinja2.TemplateNotFound):
        jinja.from_string('{% import "sub/m.j2" as m %}{{ m.x() }}').render()
    assert _unread(tmp_path) == {"templates/sub/m.j2"}


def test_a_policy_name_is_loaded_exactly_when_it_is_not_reported(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    for i, name in enumerate(POLICY_NAMES):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"package kitchen.lib.m{i}\n")
    loaded = {m.display for m in load_library(folder, tmp_path).modules}
    expected_rego = {f"policies/{n}" for n in POLICY_NAMES if n.endswith(".rego")}
    assert loaded == expected_rego
    assert _unread(tmp_path) == {f"policies/{n}" for n in POLICY_NAMES} - loaded


def test_policy_files_are_read_only_directly_in_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    (folder / "rules").mkdir(parents=True)
    for name in ("data.yaml", "waivers.yaml", "evidence-keys.yaml", "rules/data.yaml", "data.yml", "WAIVERS.yaml"):
        (folder / name).write_text("{}\n")
    assert _unread(tmp_path) == {"policies/rules/data.yaml", "policies/data.yml", "policies/WAIVERS.yaml"}


def test_every_file_of_every_read_folder_is_read_or_reported(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    extra = [f"{top}/.gitkeep" for top in READ_FILES] + ["catalog/bases/x.json", "environments/a/b/c.txt"]
    for rel in extra:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    assert _unread(root) == set(extra)
    problems = discover(root)[1]
    assert {(p.location.line, p.location.col) for p in problems} == {(1, 1)}
    assert all(p.expected.startswith("only ") for p in problems)


def test_a_linked_templates_folder_is_listed_when_it_stays_in_the_repository(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    shutil.move(root / "templates", root / "tmpl")
    (root / "templates").symlink_to("tmpl")
    (root / "tmpl" / "notes.txt").write_text("x\n")
    assert _unread(root) == {"templates/notes.txt"}
    (root / "templates").unlink()
    (root / "templates").symlink_to(tmp_path)  # outside the repository: not listed
    assert _unread(root) == set()


def test_files_not_read_are_listed_up_to_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kitchen_gitops.load as load

    monkeypatch.setattr(load, "MAX_FILES", 3)
    (tmp_path / "templates").mkdir()
    for i in range(6):
        (tmp_path / "templates" / f"n{i}.txt").write_text("")
    problems = discover(tmp_path)[1]
    assert [p.rule_id for p in problems] == ["load.unread-file"] * 3 + ["load.too-many-files"]
    assert problems[-1].location.file == "templates/n3.txt"
