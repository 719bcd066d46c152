"""Shared fixtures. Servers (vLLM, S3) are started by fixtures in the folders that need them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "cases"

# kitchen check's cache stays off unless a test turns it on (tests/core/test_cache*.py):
# a test that replaces a function of kitchen must not find results the real one stored.
os.environ["KITCHEN_CACHE"] = "off"


def shared_path(*parts: str) -> Path:
    """A path in the workspace's shared folder (CRD schemas, real status samples), which the
    project reads but does not copy: ``$KITCHEN_SHARED``, ``../shared`` beside the checkout,
    or the workspace's ``/work/shared`` for a clone made elsewhere."""
    for base in (os.environ.get("KITCHEN_SHARED"), REPO.parent / "shared", "/work/shared"):
        if base and Path(base, *parts).exists():
            return Path(base, *parts)
    return REPO.parent.joinpath("shared", *parts)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files and expected outputs instead of comparing")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def copy_catalog(src: Path, dst: Path) -> Path:
    """Copy a catalog repository (catalog/, environments/, evaluations/, templates/, …) to ``dst``."""
    for sub in ("catalog", "environments", "evaluations", "templates", "rendered", "policies", "evidence"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dst / sub)
    if not (dst / "templates").exists():
        shutil.copytree(REPO / "templates", dst / "templates")
    return dst


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of the repository's example catalog and its committed rendered output."""
    return copy_catalog(REPO, tmp_path / "repo")


@pytest.fixture
def minimal_repo(tmp_path: Path) -> Path:
    return copy_catalog(CASES / "minimal", tmp_path / "minimal")


def git(root: Path, *args: str) -> None:
    """Run ``git`` in ``root`` as a fixed author, quietly; a failure fails the test."""
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                   cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The example repository as the first commit of a Git repository (``kitchen diff``'s base)."""
    git(example_repo, "init", "-q")
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-qm", "base")
    return example_repo


def edit_once(path: Path, old: str, new: str) -> None:
    """Replace ``old``, which must occur exactly once in the file, by ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
