"""Builders for artifact tests: a small catalog repository whose files live in real storage.

``ArtifactRepo`` writes ``catalog/``, ``environments/`` and a PVC mirror; flavors are
uploaded to the SeaweedFS S3 server under a prefix of their own, so tests never see
each other's objects.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kitchen_gitops.artifacts.safetensors import read_header

DIGEST_A = "a" * 64
# an identity of the session S3 server with valid credentials that may read (and list)
# only the bucket "other", not "lora"
OTHER_BUCKET_READER = "other-bucket-reader"
ENV_TEMPLATE = """\
kind: Environment
name: {name}
cluster:
  name: test-cluster
  gpu:
    product: NVIDIA-L40S
    memory_gib: 48
    per_node: 1
    nodes: 1
registry:
  internal: registry.test:5000
  allowed: ["registry.test:5000"]
images:
  vllm: registry.test:5000/vllm/vllm-openai@sha256:{vllm}
  vllm_version: 0.11.0
  kitchen: registry.test:5000/platform/kitchen@sha256:{kitchen}
storage:
  s3:
    endpoint: {endpoint}
    use_https: {use_https}
    region: us-east-1
    secret: kitchen-s3-credentials
serving:
  vllm:
    max_model_len: 1024
slo:
  ttft_p95_ms: 2000
  tpot_p95_ms: 120
gates:
  allowed_licenses: [apache-2.0]
argocd:
  repo_url: https://git.test/catalog.git
"""


def ensure_bucket(server: Any, bucket: str) -> None:
    """Create ``bucket`` unless it is there (``weed mini -bucket=`` creates it late)."""
    client = server.client()
    if not client.bucket_exists(bucket):
        from minio.error import S3Error

        try:
            client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def architecture_yaml(base_dir: Path) -> str:
    cfg = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    numel = 0
    for f in sorted(base_dir.glob("*.safetensors")):
        numel += read_header(f).numel
    heads = cfg["num_attention_heads"]
    return "\n".join([
        "architecture:",
        f"  model_type: {cfg['model_type']}",
        f"  architectures: [{', '.join(cfg['architectures'])}]",
        f"  num_hidden_layers: {cfg['num_hidden_layers']}",
        f"  hidden_size: {cfg['hidden_size']}",
        f"  intermediate_size: {cfg['intermediate_size']}",
        f"  num_attention_heads: {heads}",
        f"  num_key_value_heads: {cfg.get('num_key_value_heads', heads)}",
        f"  head_dim: {cfg.get('head_dim') or cfg['hidden_size'] // heads}",
        f"  vocab_size: {cfg['vocab_size']}",
        f"  max_position_embeddings: {cfg['max_position_embeddings']}",
        f"  torch_dtype: {cfg.get('torch_dtype') or cfg.get('dtype')}",
        f"  parameters_billions: {numel / 1e9:.6f}",
    ])


@dataclass
class FlavorSpec:
    name: str
    adapter: Path  # local folder with adapter_config.json + adapter_model.safetensors
    base: str = "tiny-llama@1"
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    pins: dict[str, str] = field(default_factory=dict)  # override a pin
    source: str = ""  # override the source URI
    upload: bool = True


@dataclass
class ArtifactRepo:
    root: Path
    s3: Any = None  # SeaweedS3
    bucket: str = "lora"
    prefix: str = "case"
    endpoint: str = ""
    use_https: bool = False
    bases: dict[str, Path] = field(default_factory=dict)  # "name@version" -> local folder
    flavors: list[FlavorSpec] = field(default_factory=list)

    @property
    def mirror(self) -> Path:
        return self.root / "mirror"

    def add_base(self, name: str, version: str, local: Path, aliases: tuple[str, ...] = ()) -> None:
        target = self.mirror / "models" / name / version
        shutil.copytree(local, target)
        self.bases[f"{name}@{version}"] = target
        files = sorted(p.name for p in target.iterdir() if p.is_file())
        lines = [
            f"# base {name}, pinned by the test",
            "kind: Base",
            f"name: {name}",
            f'version: "{version}"',
            f"source: pvc://models/{name}/{version}/",
            *([f"aliases: [{', '.join(aliases)}]"] if aliases else []),
            "license:",
            "  id: apache-2.0",
            architecture_yaml(target),
            "files:",
        ]
        for f in files:
            lines += [f"  - path: {f}", f"    sha256: {sha256_file(target / f)}"]
        self._write(f"catalog/bases/{name}.yaml", "\n".join(lines) + "\n")

    def flavor_source(self, spec: FlavorSpec) -> str:
        return spec.source or f"s3://{self.bucket}/{self.prefix}/{spec.name}/v1/"

    def add_flavor(self, spec: FlavorSpec) -> None:
        self.flavors.append(spec)
        pins = {n: sha256_file(spec.adapter / n)
                for n in ("adapter_config.json", "adapter_model.safetensors")}
        pins.update(spec.pins)
        base_name, _, base_version = spec.base.partition("@")
        text = "\n".join([
            "kind: Flavor",
            f"name: {spec.name}",
            "version: v1",
            "base:",
            f"  name: {base_name}",
            f'  version: "{base_version}"',
            f"source: {self.flavor_source(spec)}",
            f"rank: {spec.rank}",
            f"alpha: {spec.alpha}",
            f"target_modules: [{', '.join(spec.target_modules)}]",
            "owner:",
            "  team: test",
            "  contact: test@example.com",
            "files:",
            f"  adapter_config.json: {pins['adapter_config.json']}",
            f"  adapter_model.safetensors: {pins['adapter_model.safetensors']}",
        ]) + "\n"
        self._write(f"catalog/flavors/{spec.name}.yaml", text)
        if spec.upload and self.s3 is not None and not spec.source:
            self.upload_dir(spec.adapter, f"{self.prefix}/{spec.name}/v1/")

    def upload_dir(self, folder: Path, prefix: str) -> None:
        client = self.s3.client()
        for p in sorted(folder.iterdir()):
            if p.is_file():
                data = p.read_bytes()
                client.put_object(self.bucket, prefix + p.name, io.BytesIO(data), len(data))

    def put(self, key: str, data: bytes) -> None:
        self.s3.client().put_object(self.bucket, key, io.BytesIO(data), len(data))

    def finish(self, envs: tuple[str, ...] = ("dev",)) -> ArtifactRepo:
        flavors = "".join(f"        - {f.name}@v1\n" for f in self.flavors)
        env_block = "".join(
            f"  {e}:\n    gpu_quota: 1\n" + (f"    flavors:\n{flavors}" if flavors else "")
            for e in envs)
        self._write("catalog/tenants/team.yaml",
                    "kind: Tenant\nname: team\nowner:\n  team: test\n  contact: t@example.com\n"
                    f"environments:\n{env_block}".replace("        - ", "      - "))
        for e in envs:
            self._write(f"environments/{e}.yaml", ENV_TEMPLATE.format(
                name=e, endpoint=self.endpoint or "127.0.0.1:1",
                use_https=str(self.use_https).lower(), vllm="1" * 64, kitchen="2" * 64))
        return self

    def _write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def args(self, *extra: str) -> list[str]:
        return ["--root", str(self.root), "--pvc-mirror", str(self.mirror), *extra]
