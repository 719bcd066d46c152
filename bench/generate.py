"""Generate a synthetic organisation: N bases, M flavors, T tenants, E environments.

    python -m bench.generate OUT --bases 20 --flavors 2000 --tenants 500 --envs 3

The tree has the layout of a real catalog repository (catalog/, environments/,
templates/ and policies/ copied from this repository) and validates, plans and renders cleanly.
Everything is derived from the indices, so the same arguments give the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ARCHS = [
    # model_type, architectures, layers, hidden, intermediate, heads, kv, head_dim, vocab, ctx, params
    ("llama", "LlamaForCausalLM", 32, 4096, 14336, 32, 8, 128, 128256, 131072, 8.03),
    ("qwen2", "Qwen2ForCausalLM", 28, 3584, 18944, 28, 4, 128, 152064, 32768, 7.62),
    ("gemma2", "Gemma2ForCausalLM", 42, 3584, 14336, 16, 8, 256, 256000, 8192, 9.24),
    ("mistral", "MistralForCausalLM", 32, 4096, 14336, 32, 8, 128, 32768, 32768, 7.25),
]
GPUS = [("NVIDIA-L40S", 48), ("NVIDIA-A100-SXM4-80GB", 80), ("NVIDIA-H100-80GB-HBM3", 80),
        ("NVIDIA-H200", 141)]
RANKS = (8, 16, 32, 64)


def _sha(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _base(i: int) -> str:
    mt, arch, layers, hidden, inter, heads, kv, hd, vocab, ctx, params = ARCHS[i % len(ARCHS)]
    name = f"base-{i:03d}"
    files = "".join(f"  - path: {f}\n    sha256: {_sha(name, f)}\n" for f in (
        "config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"))
    return f"""kind: Base
name: {name}
version: "1.{i % 3}"
display_name: Synthetic base {i}
source: pvc://models-base/base/{name}/1.{i % 3}/
license:
  id: apache-2.0
  approval:
    approved: true
    approver: security-board@example.com
    date: 2026-01-01
architecture:
  model_type: {mt}
  architectures: [{arch}]
  num_hidden_layers: {layers}
  hidden_size: {hidden}
  intermediate_size: {inter}
  num_attention_heads: {heads}
  num_key_value_heads: {kv}
  head_dim: {hd}
  vocab_size: {vocab}
  max_position_embeddings: {ctx}
  torch_dtype: bfloat16
  parameters_billions: {params}
files:
{files}"""


def _flavor(j: int, bases: int, tenants: int) -> str:
    b = (j + (j // tenants) // 2) % bases  # each tenant gets flavors of two bases
    name = f"flavor-{j:05d}"
    return f"""kind: Flavor
name: {name}
version: v{1 + j % 4}
description: Synthetic adapter {j}
base:
  name: base-{b:03d}
  version: "1.{b % 3}"
source: s3://lora/{name}/v{1 + j % 4}/
rank: {RANKS[j % len(RANKS)]}
alpha: {2 * RANKS[j % len(RANKS)]}
target_modules: [q_proj, k_proj, v_proj, o_proj]
owner:
  team: team-{j % 50:02d}
  contact: team-{j % 50:02d}@example.com
files:
  adapter_config.json: {_sha(name, 'cfg')}
  adapter_model.safetensors: {_sha(name, 'model')}
evaluation:
  suite: {name}-eval
  metric: accuracy
  score: 0.9
  threshold: 0.8
smoke:
  - prompt: "Synthetic smoke prompt {j}"
    expect:
      regex: "."
probes: ["Synthetic probe {j}"]
"""


def _flavor_ref(j: int) -> str:
    return f"flavor-{j:05d}@v{1 + j % 4}"


def _tenant(t: int, flavors: int, tenants: int, envs: list[str]) -> str:
    # Flavors are dealt round-robin so that each tenant gets flavors of a few bases.
    mine = [j for j in range(t, flavors, tenants)]
    refs = ", ".join(_flavor_ref(j) for j in mine)
    # two bases, up to two GPUs a replica: the quota covers what the plan asks for
    env_block = "".join(f"  {e}:\n    gpu_quota: 8\n    flavors: [{refs}]\n" for e in envs)
    return f"""kind: Tenant
name: tenant-{t:04d}
display_name: Tenant {t}
owner:
  team: team-{t % 50:02d}
  contact: team-{t % 50:02d}@example.com
access_groups:
  admin: [tenant-{t:04d}-admins]
  view: [tenant-{t:04d}-users]
allowed_clients: [client-{t:04d}]
environments:
{env_block}"""


def _cluster(k: int, tenants: int) -> tuple[str, int, int]:
    """The GPU product, its memory and the nodes (8 GPUs each) of environment ``k``'s cluster."""
    product, mem = GPUS[k % len(GPUS)]
    return product, mem, max(1, (tenants * 2 * 4 + 7) // 8)


def _environment(k: int, name: str, previous: str | None, tenants: int) -> str:
    product, mem, nodes = _cluster(k, tenants)
    promotes = f"promotes_from: {previous}\n" if previous else ""
    reg = f"registry.{name}.example.internal:5000"
    return f"""kind: Environment
name: {name}
display_name: Synthetic {name}
{promotes}cluster:
  name: cluster-{name}
  platform: openshift
  gpu:
    product: {product}
    memory_gib: {mem}
    per_node: 8
    nodes: {nodes}
  node_selector:
    nvidia.com/gpu.product: {product}
  tolerations:
    - key: nvidia.com/gpu
      operator: Exists
      effect: NoSchedule
registry:
  internal: "{reg}"
  allowed: ["{reg}"]
images:
  vllm: {reg}/vllm/vllm-openai@sha256:{_sha('vllm', name)}
  vllm_version: 0.11.0
  kitchen: {reg}/platform/kitchen@sha256:{_sha('kitchen', name)}
storage:
  s3:
    endpoint: minio.minio-{'stg' if name == 'staging' else name}.svc:9000
    use_https: true
    secret: kitchen-s3-credentials
    ca_bundle_configmap: kitchen-internal-ca
serving:
  replicas: {2 if name == "prod" else 1 + k % 2}
  auth: true
  vllm:
    max_model_len: 8192
    max_loras: 8
    max_lora_rank: 64
{_objectives(name)}
gates:
  strictness: {"strict" if name == "prod" else "standard"}
  fail_on_warn: {"true" if name == "prod" else "false"}
  allowed_licenses: [apache-2.0]
  require_approved_base: true
  require_evaluation: true
argocd:
  repo_url: https://git.example.internal/platform/catalog.git
  auto_sync: {"false" if name == "prod" else "true"}
"""


# What each environment asks of its serving: at least the floor policies/data.yaml sets
# for it (the organisation copies the example's floors).
_OBJECTIVES = {
    "prod": ("ttft_p95_ms: 500\n  tpot_p95_ms: 40\n  e2e_p95_ms: 6000\n  min_output_tokens_per_s: 800\n"
             "  goodput_min_ratio: 0.95", "requests: 128\n  concurrency: 16\n  output_tokens: 128"),
    "staging": ("ttft_p95_ms: 800\n  tpot_p95_ms: 60\n  e2e_p95_ms: 8000\n  min_output_tokens_per_s: 200\n"
                "  goodput_min_ratio: 0.9", "requests: 64\n  concurrency: 8\n  output_tokens: 128"),
}


def _objectives(name: str) -> str:
    slo, load = _OBJECTIVES.get(name, ("ttft_p95_ms: 800\n  tpot_p95_ms: 60", ""))
    return f"slo:\n  {slo}" + (f"\nconformance:\n  {load}" if load else "")


def generate_org(out: Path, *, bases: int = 20, flavors: int = 2000, tenants: int = 500,
                 envs: int = 3) -> Path:
    """Write a synthetic catalog repository under ``out`` (replacing it) and return it."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("catalog/bases", "catalog/flavors", "catalog/tenants", "environments"):
        (out / sub).mkdir(parents=True)
    shutil.copytree(REPO / "templates", out / "templates")
    shutil.copytree(REPO / "policies", out / "policies")
    # the organisation's own security floors: its registries in place of the example's
    data = out / "policies" / "data.yaml"
    data.write_text(data.read_text(encoding="utf-8")
                    .replace("registry.stg.kitchen.internal:5000", "registry.staging.example.internal:5000")
                    .replace("registry.prod.kitchen.internal:5000", "registry.prod.example.internal:5000")
                    .replace("https://git.kitchen.internal/platform/kitchen-catalog.git",
                             "https://git.example.internal/platform/catalog.git")
                    .replace("projects: [kitchen]", "projects: [default]")
                    .replace("https://git.kitchen.internal/platform/kitchen-catalog/-/blob/main/docs/operations.md",
                             "docs/operations.md"),
                    encoding="utf-8")
    env_names = [("dev", "staging", "prod")[k] if envs <= 3 else f"env-{k:02d}" for k in range(envs)]
    _own_clusters(data, {name: _cluster(k, tenants) for k, name in enumerate(env_names)})
    for i in range(bases):
        (out / f"catalog/bases/base-{i:03d}.yaml").write_text(_base(i))
    for j in range(flavors):
        (out / f"catalog/flavors/flavor-{j:05d}.yaml").write_text(_flavor(j, bases, tenants))
    for t in range(tenants):
        (out / f"catalog/tenants/tenant-{t:04d}.yaml").write_text(_tenant(t, flavors, tenants, env_names))
    for k, name in enumerate(env_names):
        prev = env_names[k - 1] if k else None
        (out / f"environments/{name}.yaml").write_text(_environment(k, name, prev, tenants))
    _approved_bases(data, bases)
    _evidence_baselines(out)
    return out


def _approved_bases(data: Path, bases: int) -> None:
    """The organisation's bases in place of the example's, in every floor that lists the
    bases security approved."""
    lines = "".join(f"        base-{i:03d}@1.{i % 3}: pvc://models-base/base/base-{i:03d}/1.{i % 3}/\n"
                    for i in range(bases))
    text = re.sub(r"^      approved_bases:.*\n(?: {8}.*\n)*", f"      approved_bases:\n{lines}",
                  data.read_text(encoding="utf-8"), flags=re.MULTILINE)
    data.write_text(text, encoding="utf-8")


def _own_clusters(data: Path, clusters: dict[str, tuple[str, int, int]]) -> None:
    """The floors of the organisation's clusters (their GPUs and the node label that keeps
    servers on them) in place of the example's, in each floor named after one of its
    environments (the floors' lines as policies/data.yaml writes them)."""
    text = data.read_text(encoding="utf-8")
    for name, (product, mem, nodes) in clusters.items():
        block = re.search(rf"^    {re.escape(name)}:\n(?:(?: {{6}}.*)?\n)*", text, re.MULTILINE)
        if block is None:
            continue
        floor = re.sub(r"^      gpu: \{.*\}$",
                       f"      gpu: {{products: [{product}], resources: [nvidia.com/gpu], memory_gib: {mem}, "
                       f"per_node: 8, nodes: {nodes}}}",
                       block[0], flags=re.MULTILINE)
        floor = re.sub(r"^      scheduling: \{node_selector: \{[^}]*\}",
                       f"      scheduling: {{node_selector: {{nvidia.com/gpu.product: {product}}}",
                       floor, flags=re.MULTILINE)
        text = text[:block.start()] + floor + text[block.end():]
    data.write_text(text, encoding="utf-8")


def _evidence_baselines(root: Path) -> None:
    """The evidence index of every environment whose floor requires promotion evidence,
    as an organisation adopting it starts: each flavor version it serves recorded as the
    baseline, by the digest kitchen computes (what `policy.promotion-evidence` verifies), and
    pinned in the floors that require the evidence, as security accepts it."""
    from kitchen_gitops.model import load_catalog
    from kitchen_gitops.policy.library import load_library
    from kitchen_gitops.promotion import BaselinePins, Index, digest_of, index_folder, requires_evidence, served_in

    catalog, _ = load_catalog(root)
    path = root / "policies" / "data.yaml"
    data = load_library(root / "policies", root).data
    pins: dict[str, dict[str, str]] = {}  # what security accepts as each floor's baseline
    for name, env in sorted(catalog.environments.items()):
        if not requires_evidence(data, env):
            continue
        index = Index(name, index_folder(root, name), "")
        for served in served_in(catalog, name):
            index.entries[served.ref] = {"baseline": "served before promotion evidence was required",
                                         "digest": digest_of(catalog, served.ref), "recorded": "2026-01-01"}
        index.folder.mkdir(parents=True, exist_ok=True)
        (index.folder / "index.json").write_bytes(index.to_bytes())
        for floor, _ in BaselinePins.of(data, env).floors:
            pins.setdefault(floor, {}).update({ref: str(e["digest"]) for ref, e in index.entries.items()})
    text = path.read_text(encoding="utf-8")
    for floor, pinned in pins.items():
        block = re.search(rf"^    {re.escape(floor)}:\n(?:(?: {{6}}.*)?\n)*", text, re.MULTILINE)
        assert block is not None, floor
        lines = "".join(f'        {ref}: "{digest}"\n' for ref, digest in sorted(pinned.items()))
        head = re.search(r"^      promotion_baseline:.*\n(?: {8}.*\n)*", block[0], flags=re.MULTILINE)
        assert head is not None, floor
        replaced = block[0][:head.start()] + f"      promotion_baseline:\n{lines}" + block[0][head.end():]
        text = text[:block.start()] + replaced + text[block.end():]
    path.write_text(text, encoding="utf-8")


def add_org_arguments(ap: argparse.ArgumentParser) -> None:
    """The organisation's size, as every benchmark takes it."""
    ap.add_argument("--bases", type=int, default=20)
    ap.add_argument("--flavors", type=int, default=2000)
    ap.add_argument("--tenants", type=int, default=500)
    ap.add_argument("--envs", type=int, default=3)


def generate_from_args(out: Path, a: argparse.Namespace) -> Path:
    return generate_org(out, bases=a.bases, flavors=a.flavors, tenants=a.tenants, envs=a.envs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    add_org_arguments(ap)
    a = ap.parse_args()
    generate_from_args(a.out, a)
    print(f"wrote {a.out}: {a.bases} bases, {a.flavors} flavors, {a.tenants} tenants, {a.envs} environments")


if __name__ == "__main__":
    main()
