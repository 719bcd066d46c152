"""The GPU recipe (scripts/gpu/) writes the model and adapters where `kitchen render` mounts them.

vLLM on the GPU host is started from the rendered manifests (serve.py), with /mnt/models
linked to the folder build_model.py wrote; a path the two spell differently stops vLLM at
start-up, so the paths are compared here, on CPU.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml

from kitchen_gitops.cli import main
from tests.conftest import REPO, copy_catalog

GPU = REPO / "scripts/gpu"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gpu_recipe_{name}", GPU / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_recipe_writes_what_render_mounts(tmp_path: Path) -> None:
    build_model, serve = _script("build_model"), _script("serve")
    root = copy_catalog(GPU / "example-catalog", tmp_path / "catalog")
    assert main(["render", "--root", str(root), "--env", "h200"]) == 0
    # the command line the recipe starts vLLM with, read from the rendered objects
    command, _env = serve.rendered_command(root / "rendered/h200")
    model = next(a.split("=", 1)[1] for a in command if a.startswith("--model="))
    i = command.index("--lora-modules")
    modules = [json.loads(a) for a in command[i + 1:] if a.startswith("{")]
    isvc = yaml.safe_load(next((root / "rendered/h200").rglob("inferenceservice-*.yaml")).read_text())
    mounts = [u["mountPath"] for u in isvc["spec"]["predictor"]["storageUris"]]

    plan = build_model.layout(root, "h200")
    written = {str(a.path) for a in plan.adapters}
    assert str(plan.base) == model == "/mnt/models/base"
    assert written == {m["path"] for m in modules}
    assert mounts == [model, *sorted(written)]
    assert sorted(written) == [f"/mnt/models/adapters/{n}-v1" for n in ("classify", "faq", "noop", "summarise")]
    # on the host /mnt/models -> OUT: the folders the script writes under OUT
    out = tmp_path / "models"
    assert {plan.local(out, a.path) for a in plan.adapters} == {out / "adapters" / Path(p).name for p in written}
    assert plan.local(out, plan.base) == out / "base"
    # every flavor served has the recipe's weights, with the catalog's rank and alpha
    assert {a.flavor for a in plan.adapters} == set(build_model.WEIGHTS_OF)
    assert {(a.flavor, a.rank) for a in plan.adapters} == {("classify", 32), ("faq", 8), ("noop", 8),
                                                            ("summarise", 16)}


def test_recipe_layout_follows_the_served_names(tmp_path: Path) -> None:
    # a flavor version the catalog moves to moves the recipe's folder with it
    build_model = _script("build_model")
    root = copy_catalog(GPU / "example-catalog", tmp_path / "catalog")
    flavor = root / "catalog/flavors/faq@v1.yaml"
    flavor.rename(root / "catalog/flavors/faq@v2.yaml")
    (root / "catalog/flavors/faq@v2.yaml").write_text(flavor.with_name("faq@v2.yaml").read_text()
                                                      .replace("version: v1", "version: v2"))
    tenant = root / "catalog/tenants/gpu-eval.yaml"
    tenant.write_text(tenant.read_text().replace("faq@v1", "faq@v2"))
    paths = {str(a.path) for a in build_model.layout(root, "h200").adapters}
    assert "/mnt/models/adapters/faq-v2" in paths and "/mnt/models/adapters/faq-v1" not in paths
