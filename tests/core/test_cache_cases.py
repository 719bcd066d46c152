"""The cache never changes what the gate finds: every acceptance folder is checked with no
cache, then with an empty one (cold), then again (warm), and the three results are the
same findings, summary and exit code; the warm run computed nothing.

The policy cases share one cache, as the pull requests of one repository do, and so do the
bad-input cases and the full catalogs, so that an entry (a parsed file, a rendered object)
another case stored under a wrong key would show here.  The folders are those of
tests/cases/: the policy cases (edits of the example repository), the hostile and bad-input
cases (overlays, links, FIFOs), and every full catalog (edge, minimal, LLMInferenceService,
the vLLM releases).  The dataset cases are about ``kitchen artifacts verify`` on S3 and have
their own test.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cache import FOLDER
from kitchen_gitops.findings import Result
from kitchen_gitops.pipeline import CheckOptions, check
from tests.conftest import CASES, copy_catalog
from tests.core.test_hostile_cases import HOSTILE_CASES, _prepare
from tests.core.test_load_cases import LOAD_CASES, _overlay
from tests.policy.policy_cases import Case, build_repo, cases

POLICY_CASES = cases()
CATALOGS = sorted(p for p in CASES.iterdir() if (p / "catalog").is_dir() and (p / "environments").is_dir())


def _seen(result: Result) -> tuple[Any, ...]:
    return ([(f.identity(), f.waived_by) for f in result.findings], result.summary, result.exit_code,
            result.environments)


def _three(root: Path, monkeypatch: pytest.MonkeyPatch, *, environments: tuple[str, ...] = (),
           render_check: bool = True, cache_dir: Path | None = None) -> None:
    """No cache, cold, warm: the same result; the warm run found every environment."""
    monkeypatch.setenv("KITCHEN_CACHE", "off")
    off = check(CheckOptions(root, environments, render_check=render_check, cache=True, verbose=True))
    monkeypatch.delenv("KITCHEN_CACHE")
    if cache_dir is not None and cache_dir.exists():  # shared between cases: the repository's own
        shutil.copytree(cache_dir, root / FOLDER)
    cold = check(CheckOptions(root, environments, render_check=render_check, cache=True, verbose=True))
    warm = check(CheckOptions(root, environments, render_check=render_check, cache=True, verbose=True))
    assert _seen(cold) == _seen(off)
    assert _seen(warm) == _seen(off)
    assert not [n for n in warm.notes if "ignored" in n], warm.notes
    if any(n.startswith("cache environment:") for n in cold.notes):
        assert any(n.startswith("cache environment:") and ", 0 computed" in n for n in warm.notes), warm.notes
    assert not [n for n in warm.notes if n.startswith("cache document:") and ", 0 computed" not in n
                and "0 found" in n], warm.notes
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
        shutil.copytree(root / FOLDER, cache_dir)


def _outcome(root: Path) -> tuple[Any, ...]:
    """What the check found, or the error it stopped with (a broken policy or template)."""
    try:
        return _seen(check(CheckOptions(root, render_check=False, cache=True)))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("case", POLICY_CASES, ids=[c.name for c in POLICY_CASES])
def test_policy_case_cold_and_warm(case: Case, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_repo(case, tmp_path / "repo")
    shared = tmp_path_factory.getbasetemp() / "policy-cases-cache"
    _three(root, monkeypatch, environments=tuple(case.environments or ()), render_check=False,
           cache_dir=shared)


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[p.name for p in HOSTILE_CASES])
def test_hostile_case_cold_and_warm(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, spec = _prepare(case, tmp_path)
    for key, value in (spec.get("env") or {}).items():
        monkeypatch.setenv(key, str(value))
    try:
        _three(root, monkeypatch)
    except Exception as exc:  # a usage or configuration error: the same one every time
        with pytest.raises(type(exc)) as again:
            check(CheckOptions(root, cache=True))
        assert str(again.value) == str(exc)


@pytest.mark.parametrize("case", LOAD_CASES, ids=[p.name for p in LOAD_CASES])
def test_load_case_cold_and_warm(case: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The bad-input cases share one cache too: each is an overlay of the same catalog and
    templates, so most of the rendered objects one case stored are found by the next."""
    root = copy_catalog(CASES / "minimal", tmp_path / "repo")
    _overlay(case, root)
    _three(root, monkeypatch, cache_dir=tmp_path_factory.getbasetemp() / "load-cases-cache")


@pytest.mark.parametrize("catalog", CATALOGS, ids=[p.name for p in CATALOGS])
def test_catalog_cold_and_warm(catalog: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_catalog(catalog, tmp_path / "repo")
    if not (root / "policies").exists():
        shutil.copytree(CASES.parent.parent / "policies", root / "policies")
    _three(root, monkeypatch, cache_dir=tmp_path_factory.getbasetemp() / "catalogs-cache")


def test_a_series_of_random_single_file_edits_finds_what_no_cache_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small synthetic organisation, then single-file edits one after another (seeded):
    a digit changed, a comment added, an earlier version put back; after each, the cached
    check finds exactly what a check without the cache finds."""
    from bench.generate import generate_org

    root = generate_org(tmp_path / "org", bases=2, flavors=10, tenants=4, envs=3)
    rng = random.Random(22)
    files = sorted(p for top in ("catalog", "environments", "templates", "policies") for p in (root / top).rglob("*")
                   if p.is_file() and not p.name.endswith("_test.rego"))
    history: list[tuple[Path, bytes]] = []
    kinds: set[str] = set()
    for _ in range(16):
        action = rng.choice(("digit", "digit", "comment", "back")) if history else "digit"
        if action == "back":
            path, before = history.pop(rng.randrange(len(history)))
            path.write_bytes(before)
        else:
            path = rng.choice(files)
            text = path.read_bytes()
            history.append((path, text))
            if action == "digit":
                spots = [i for i, c in enumerate(text) if 48 <= c <= 57]
                i = rng.choice(spots) if spots else len(text)
                text = text[:i] + str(rng.randrange(10)).encode() + text[i + 1:]
            else:
                text += b"{# an edit #}\n" if path.suffix == ".j2" else b"# an edit\n"
            path.write_bytes(text)
        kinds.add(path.relative_to(root).parts[0])
        monkeypatch.setenv("KITCHEN_CACHE", "off")
        off = _outcome(root)
        monkeypatch.delenv("KITCHEN_CACHE")
        assert _outcome(root) == off, (path, action)
    assert kinds >= {"catalog", "templates", "policies"}
