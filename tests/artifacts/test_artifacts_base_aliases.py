"""Acceptance: adapters as PEFT saves them name their base by its hub id.

A base declares the names it is known by upstream (``aliases``); ``artifacts verify``
then takes a stock PEFT adapter (``adapter_config.json`` as PEFT wrote it) against real
S3 (SeaweedFS).  A name that is not the base's is a warning when the tensors fit and an
error when they do not."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from tests.artifacts.artifact_case import ArtifactRepo, FlavorSpec
from tests.artifacts.conftest import HUB_IDS
from tests.support.s3_server import SeaweedS3

pytestmark = pytest.mark.slow


def _repo(tmp_path: Path, s3: SeaweedS3, model_kit: dict[str, Any], request: pytest.FixtureRequest,
          aliases: tuple[str, ...]) -> ArtifactRepo:
    prefix = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40]
    repo = ArtifactRepo(tmp_path / "repo", s3=s3, endpoint=s3.endpoint, prefix=f"{prefix}-{secrets.token_hex(3)}")
    repo.add_base("tiny-llama", "1", model_kit["base"], aliases=aliases)
    return repo


def _verify(repo: ArtifactRepo, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    rc = main(["artifacts", "verify", *repo.args("-f", "json")])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, list(json.loads(out)["findings"])


def test_stock_adapter_config_is_as_peft_wrote_it(stock_adapters: dict[str, Path]) -> None:
    cfg = json.loads((stock_adapters["base"] / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == HUB_IDS["base"]
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 8


def test_stock_adapter_passes_with_alias(tmp_path: Path, s3_credentials: SeaweedS3, model_kit: dict[str, Any],
                                         stock_adapters: dict[str, Path], request: pytest.FixtureRequest,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path, s3_credentials, model_kit, request, aliases=(HUB_IDS["base"],))
    repo.add_flavor(FlavorSpec("faq", stock_adapters["base"]))
    repo.finish()
    rc, found = _verify(repo, capsys)
    assert (rc, found) == (0, [])


def test_adapter_saved_from_a_local_folder_passes_with_alias(
        tmp_path: Path, s3_credentials: SeaweedS3, model_kit: dict[str, Any], stock_adapters: dict[str, Path],
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """PEFT records the folder the base was loaded from; its last component is the alias's."""
    named = json.loads((stock_adapters["local"] / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert named.startswith("/") and named.endswith("/" + HUB_IDS["base"].split("/")[1])
    repo = _repo(tmp_path, s3_credentials, model_kit, request, aliases=(HUB_IDS["base"],))
    repo.add_flavor(FlavorSpec("faq", stock_adapters["local"]))
    repo.finish()
    rc, found = _verify(repo, capsys)
    assert (rc, found) == (0, [])


def test_stock_adapter_without_alias_warns(tmp_path: Path, s3_credentials: SeaweedS3, model_kit: dict[str, Any],
                                           stock_adapters: dict[str, Path], request: pytest.FixtureRequest,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The shapes prove it fits: a warning that says which alias to declare, not an error."""
    repo = _repo(tmp_path, s3_credentials, model_kit, request, aliases=())
    repo.add_flavor(FlavorSpec("faq", stock_adapters["base"]))
    repo.finish()
    rc, found = _verify(repo, capsys)
    assert rc == 0
    (f,) = found
    assert (f["rule_id"], f["severity"]) == ("artifacts.base-mismatch", "warning")
    assert f"names base '{HUB_IDS['base']}'" in f["message"] and "tensor shapes fit tiny-llama@1" in f["message"]
    assert f["expected"] == f"base_model_name_or_path naming tiny-llama, or '{HUB_IDS['base']}' among the " \
                            "aliases of tiny-llama@1"
    assert f["location"]["file"] == "catalog/flavors/faq.yaml"


def test_adapter_for_another_base_fails_on_shapes(tmp_path: Path, s3_credentials: SeaweedS3,
                                                  model_kit: dict[str, Any], stock_adapters: dict[str, Path],
                                                  request: pytest.FixtureRequest,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A stock adapter of the smaller base, paired with tiny-llama (alias declared): its
    hub id is not tiny-llama's, and its tensors do not fit — both errors."""
    repo = _repo(tmp_path, s3_credentials, model_kit, request, aliases=(HUB_IDS["base"],))
    repo.add_flavor(FlavorSpec("faq", stock_adapters["small_base"]))
    repo.finish()
    rc, found = _verify(repo, capsys)
    assert rc == 1
    by_rule = {f["rule_id"]: f for f in found}
    assert set(by_rule) == {"artifacts.base-mismatch", "artifacts.adapter-shape"}
    assert by_rule["artifacts.base-mismatch"]["severity"] == "error"
    assert f"trained on '{HUB_IDS['small_base']}'" in by_rule["artifacts.base-mismatch"]["message"]
    assert by_rule["artifacts.adapter-shape"]["severity"] == "error"


def test_adapter_for_another_base_claiming_the_alias_fails_on_shapes(
        tmp_path: Path, s3_credentials: SeaweedS3, model_kit: dict[str, Any], stock_adapters: dict[str, Path],
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """The small base's adapter whose config names tiny-llama's hub id: the name passes,
    the shapes do not."""
    forged = tmp_path / "forged"
    forged.mkdir()
    src = stock_adapters["small_base"]
    (forged / "adapter_model.safetensors").write_bytes((src / "adapter_model.safetensors").read_bytes())
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = HUB_IDS["base"]
    (forged / "adapter_config.json").write_text(json.dumps(cfg))
    repo = _repo(tmp_path, s3_credentials, model_kit, request, aliases=(HUB_IDS["base"],))
    repo.add_flavor(FlavorSpec("faq", forged))
    repo.finish()
    rc, found = _verify(repo, capsys)
    assert rc == 1
    assert [f["rule_id"] for f in found] == ["artifacts.adapter-shape"]
