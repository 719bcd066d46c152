"""Session fixtures for artifact tests: the tiny model kit and a real S3 server."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts.artifact_case import OTHER_BUCKET_READER, ArtifactRepo, ensure_bucket
from tests.conftest import REPO
from tests.support.s3_server import SeaweedS3


@pytest.fixture(scope="session")
def model_kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.support.tiny_model import build_kit

    return build_kit(tmp_path_factory.mktemp("artifact-kit"))


# hub ids the stock PEFT adapters record, one per base of the kit
HUB_IDS = {"base": "KitchenTest/Tiny-Llama-Instruct", "small_base": "KitchenTest/Tiny-Llama-Small-Instruct"}


@pytest.fixture(scope="session")
def stock_adapters(model_kit: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One adapter per base of the kit as PEFT saves it after loading the base by its hub
    id: built in a child process with HF_HUB_OFFLINE=1, which the hub client reads once at
    import (PEFT asks the hub for the base's config while saving)."""
    root = tmp_path_factory.mktemp("stock-peft")
    script = (
        "import sys; from pathlib import Path\n"
        "from tests.support.tiny_model import build_stock_peft_adapter\n"
        "base, out, hub_id, cache = sys.argv[1:]\n"
        "build_stock_peft_adapter(Path(base), Path(out), hub_id=hub_id or None, cache_dir=Path(cache))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    # "local": the base loaded from a folder named as on the hub (PEFT records the path)
    local = root / "models" / HUB_IDS["base"].split("/")[1]
    shutil.copytree(model_kit["base"], local)
    out = {}
    for key, base, hub_id in [*((k, model_kit[k], h) for k, h in HUB_IDS.items()), ("local", local, "")]:
        out[key] = root / key
        subprocess.run([sys.executable, "-c", script, str(base), str(out[key]), hub_id, str(root / "hub-cache")],
                       check=True, env=env, cwd=REPO, capture_output=True)
    return out


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(tmp_path_factory.mktemp("artifact-s3"),
                   extra_identities={OTHER_BUCKET_READER: ["Read:other", "List:other"]}) as server:
        ensure_bucket(server, "lora")
        ensure_bucket(server, "other")
        yield server


@pytest.fixture
def s3_credentials(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    for var in ("AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "KITCHEN_S3_ENDPOINT", "KITCHEN_PVC_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    return s3_server


@pytest.fixture
def repo(tmp_path: Path, s3_credentials: SeaweedS3, model_kit: dict[str, Any],
         request: pytest.FixtureRequest) -> ArtifactRepo:
    """A repository with the tiny base on the PVC mirror; flavors are added by the test."""
    prefix = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40]
    r = ArtifactRepo(tmp_path / "repo", s3=s3_credentials, endpoint=s3_credentials.endpoint,
                     prefix=f"{prefix}-{secrets.token_hex(3)}")
    r.add_base("tiny-llama", "1", model_kit["base"])
    return r
