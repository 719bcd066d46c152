"""Rendering: golden files, determinism, atomic replacement and the --check gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kitchen_gitops import pipeline
from kitchen_gitops.cli import main
from tests.conftest import CASES, REPO, copy_catalog

GOLDEN = REPO / "tests" / "golden"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# one case per supported vLLM release: rank-1 adapters (0.11 has no rank 1: rounded to 8),
# --gpu-memory-utilization at the release's default, extra_args of that release
RELEASE_CASES = sorted(p.name for p in CASES.glob("vllm-*"))


@pytest.mark.parametrize("case", ["minimal", "edge", "versions", "llmisvc", *RELEASE_CASES])
def test_golden(case: str, tmp_path: Path, update_golden: bool) -> None:
    """``minimal``: Serverless on Kubernetes, one tenant, one base.  ``edge``: a tenant on two
    bases, one with trust_remote_code and a shorter context, a rank rounded to 320, a
    tenant with nothing served, an external TLS S3 endpoint, quotes and colons in names.
    ``versions``: two versions of a flavor side by side and an alias, as InferenceService;
    ``llmisvc``: the same served as an LLMInferenceService (KServe v1alpha2) on OpenShift;
    ``vllm-<release>``: the arguments as that release reads them."""
    root = copy_catalog(CASES / case, tmp_path / case)
    out = root / "rendered"
    assert main(["render", "--root", str(root)]) == 0
    expected = GOLDEN / case
    if update_golden:
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(out, expected)
    assert _tree(out) == _tree(expected)


def test_example_rendered_output_is_committed_and_current(example_repo: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--root", str(example_repo), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_rerender_is_byte_identical(example_repo: Path) -> None:
    out_a, out_b = example_repo / "a", example_repo / "b"
    assert main(["render", "--root", str(example_repo), "--out", str(out_a)]) == 0
    first = _tree(out_a)
    assert main(["render", "--root", str(example_repo), "--out", str(out_a)]) == 0
    assert main(["render", "--root", str(example_repo), "--out", str(out_b)]) == 0
    assert _tree(out_a) == first == _tree(out_b)
    assert sorted({k.split("/")[0] for k in first}) == ["admission", "dev", "prod", "staging"]


def test_check_fails_after_catalog_edit_and_passes_after_render(
        example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flavor = example_repo / "catalog/flavors/ticket-router@v1-2.yaml"
    flavor.write_text(flavor.read_text().replace("rank: 8\n", "rank: 48\n"))
    capsys.readouterr()
    assert main(["render", "--root", str(example_repo), "--check"]) == 1
    out = capsys.readouterr().out
    changed = sorted(line.split(": ")[0].split("rendered/")[1] for line in out.splitlines()
                     if line.endswith("(render.stale)"))
    # ticket-router is served to customer-support in every environment; the conformance
    # expectations carry the serving digest of the InferenceService, whose vLLM arguments change
    assert changed == sorted(f"{env}/{path}" for env in ("dev", "prod", "staging") for path in (
        "cs-llm/inferenceservice-llama-3-1-8b-instruct.yaml",
        "kitchen-conformance/configmap-kitchen-conformance-expectations.yaml"))
    assert main(["render", "--root", str(example_repo)]) == 0
    assert main(["render", "--root", str(example_repo), "--check"]) == 0
    isvc = (example_repo / "rendered/prod/cs-llm/inferenceservice-llama-3-1-8b-instruct.yaml").read_text()
    assert '"--max-lora-rank=64"' in isvc  # 48 rounded up to a rank vLLM accepts


def test_a_committed_link_to_the_output_folder_is_neither_written_nor_read_through(
        example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pull request that commits ``rendered`` as a link to a folder out of the repository
    would send the next ``kitchen render`` there, and the staleness check would read
    there: render refuses, check and ``render --check`` report the link once."""
    outside = tmp_path / "outside"
    shutil.copytree(example_repo / "rendered", outside)
    before = _tree(outside)
    shutil.rmtree(example_repo / "rendered")
    (example_repo / "rendered").symlink_to(outside)
    capsys.readouterr()
    assert main(["render", "--root", str(example_repo)]) == 2
    assert "rendered: a symbolic link on the way to the rendered output" in capsys.readouterr().err
    assert _tree(outside) == before
    for args in (["check"], ["render", "--check"]):
        assert main([*args, "--root", str(example_repo)]) == 1
        stale = [line for line in capsys.readouterr().out.splitlines() if line.endswith("(render.stale)")]
        assert stale == ["rendered: [error] the rendered output is reached through a symbolic link; kitchen render "
                         "writes only into folders of the repository; expected a real folder: remove the link, "
                         "run `kitchen render` and commit (render.stale)"]
    (example_repo / "rendered").unlink()
    shutil.copytree(outside, example_repo / "rendered")
    assert main(["check", "--root", str(example_repo)]) == 0


def test_removed_tenant_files_are_removed(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example_repo / "catalog/tenants/marketing-analytics.yaml").unlink()
    assert main(["render", "--root", str(example_repo), "--check"]) == 1
    assert ("rendered/prod/mkt-sentiment/namespace.yaml: [error] committed rendered output is no longer rendered"
            in capsys.readouterr().out)
    assert main(["render", "--root", str(example_repo)]) == 0
    assert not (example_repo / "rendered/prod/mkt-sentiment").exists()
    kustomization = (example_repo / "rendered/prod/kustomization.yaml").read_text()
    assert "mkt-sentiment" not in kustomization


def test_removed_environment_folder_is_pruned(example_repo: Path) -> None:
    shutil.copytree(example_repo / "rendered/dev", example_repo / "rendered/qa")
    (example_repo / "rendered/notes").mkdir()
    assert main(["render", "--root", str(example_repo), "--check"]) == 1
    assert main(["render", "--root", str(example_repo)]) == 0
    assert not (example_repo / "rendered/qa").exists()
    assert (example_repo / "rendered/notes").is_dir()  # not ours: left alone


def test_failed_render_leaves_previous_output_untouched(example_repo: Path) -> None:
    before = _tree(example_repo / "rendered")
    (example_repo / "templates/inferenceservice.yaml.j2").write_text("{{ no_such_value }}\n")
    code = main(["render", "--root", str(example_repo)])
    assert code == 2
    assert _tree(example_repo / "rendered") == before
    assert not [p for p in (example_repo / "rendered").iterdir() if p.name.startswith(".kitchen-")]


def test_every_object_traces_back_to_its_catalog_sources(example_repo: Path) -> None:
    import yaml

    outcome = pipeline.render(example_repo)
    assert outcome.ok
    for env, files in outcome.rendered.items():
        for f in files:
            if f.path == "kustomization.yaml":
                continue
            doc = yaml.safe_load(f.content)
            meta = doc["metadata"]
            sources = meta["annotations"]["kitchen-gitops.io/sources"].split(",")
            assert f"environments/{env}.yaml" in sources
            assert all((example_repo / s).is_file() for s in sources)
            assert meta["labels"]["kitchen-gitops.io/environment"] == env
            if doc["kind"] == "InferenceService":
                ann = meta["annotations"]
                assert "@" in ann["kitchen-gitops.io/base"]
                for ref in ann["kitchen-gitops.io/flavors"].split(","):
                    assert f"catalog/flavors/{ref}.yaml" in sources


def test_a_failed_swap_puts_every_environment_back(example_repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """All or nothing: when the last environment cannot be swapped in, the ones already
    swapped are restored, and no temporary folder is left behind."""
    import os

    from kitchen_gitops import write

    flavor = example_repo / "catalog/flavors/ticket-router@v1-2.yaml"
    flavor.write_text(flavor.read_text().replace("rank: 8\n", "rank: 48\n"))  # changes every env
    before = _tree(example_repo / "rendered")
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "staging" and ".kitchen-new-" in str(src):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    assert main(["render", "--root", str(example_repo)]) == 2
    assert "nothing changed: [Errno 28] No space left on device" in capsys.readouterr().err
    assert _tree(example_repo / "rendered") == before
    assert not [p for p in (example_repo / "rendered").iterdir() if p.name.startswith(".kitchen-")]


def test_the_sandbox_remembers_its_answers_per_type_and_attribute(tmp_path: Path) -> None:
    """The sandbox answers every attribute as Jinja does, whatever was read before: a safe
    read of one attribute does not open another attribute of the same type, nor the same
    attribute of another type."""
    import jinja2

    from kitchen_gitops.sandbox import sandbox_for

    (tmp_path / "safe.j2").write_text("{{ d.keys() | list }} {{ s.upper() }} {{ d.get('a') }}")
    (tmp_path / "mutate.j2").write_text("{{ d.keys() | list }}{{ d.clear() }}")
    (tmp_path / "private.j2").write_text("{{ s.upper() }}{{ s.__class__ }}")
    (tmp_path / "internal.j2").write_text("{{ f.__name__ }}{{ f.__globals__ }}")
    (tmp_path / "list.j2").write_text("{{ d.get('a') }}{{ l.append(1) }}")
    env = sandbox_for(tmp_path)
    for _ in range(2):  # the second time from what the first remembered
        d = {"a": 1}
        assert env.get_template("safe.j2").render(d=d, s="x") == "['a'] X 1"
        with pytest.raises(jinja2.exceptions.SecurityError):
            env.get_template("mutate.j2").render(d=d)
        assert d == {"a": 1}
        for name, ctx in (("private.j2", {"s": "x"}), ("internal.j2", {"f": test_golden}),
                          ("list.j2", {"d": d, "l": []})):
            with pytest.raises(jinja2.exceptions.SecurityError):
                env.get_template(name).render(**ctx)
