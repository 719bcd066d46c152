"""Throughput of ``kitchen artifacts verify`` against ``sha256sum`` over the same files.

    .venv/bin/python -m bench.verify_bench                 # 2 GB in 8 adapters, local + S3
    .venv/bin/python -m bench.verify_bench --total-gb 8 --files 16 --no-s3

Generates ``--files`` LoRA adapters of a Llama-8B-shaped base (valid PEFT safetensors
files whose rank is chosen to reach ``--total-gb`` in all; bf16 data is random), so the
verify run is clean (exit 0) and does all its work: listing, streamed parallel sha256,
header parsing and shape checks.  In the same run, on the same files:

- ``sha256sum`` over every file (one process, files one after another): the baseline;
- ``openssl dgst -sha256`` likewise, for reference (OpenSSL uses the CPU's SHA
  extensions where it has them; coreutils ``sha256sum`` may not);
- ``kitchen artifacts verify`` reading them from a PVC mirror (local files);
- ``kitchen artifacts verify`` reading them from SeaweedFS S3 on loopback (``weed mini``,
  started here; skip with ``--no-s3``).

Files are read once before timing, so all runs read from the page cache; each run is
repeated ``--repeat`` times, interleaved, and the best and median are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kitchen_gitops.cli import main as kitchen  # noqa: E402

# Llama-3.1-8B shapes: q_proj 4096 -> 4096, v_proj 4096 -> 1024, 32 layers
HIDDEN, KV_OUT, LAYERS = 4096, 1024, 32
BYTES_PER_RANK = LAYERS * ((HIDDEN + HIDDEN) + (HIDDEN + KV_OUT)) * 2  # bf16
ENVIRONMENT = """\
kind: Environment
name: bench
cluster:
  name: bench
  gpu: {{product: NVIDIA-H100-80GB-HBM3, memory_gib: 80, per_node: 8, nodes: 1}}
registry: {{internal: "registry.bench:5000", allowed: ["registry.bench:5000"]}}
images:
  vllm: registry.bench:5000/vllm@sha256:{z}
  vllm_version: 0.11.0
  kitchen: registry.bench:5000/kitchen@sha256:{z}
storage:
  s3: {{endpoint: "{endpoint}", use_https: false, secret: bench-s3}}
serving:
  vllm: {{max_model_len: 8192, max_lora_rank: 512, max_loras: 16}}
slo: {{ttft_p95_ms: 2000, tpot_p95_ms: 120}}
gates: {{allowed_licenses: [llama3.1]}}
argocd: {{repo_url: "https://git.bench/catalog.git"}}
"""
BASE = """\
kind: Base
name: bench-llama
version: "1"
source: pvc://models/bench-llama/1/
license: {id: llama3.1}
architecture:
  model_type: llama
  architectures: [LlamaForCausalLM]
  num_hidden_layers: 32
  hidden_size: 4096
  intermediate_size: 14336
  num_attention_heads: 32
  num_key_value_heads: 8
  head_dim: 128
  vocab_size: 128256
  max_position_embeddings: 131072
  torch_dtype: bfloat16
  parameters_billions: 8.03
files:
  - {path: config.json, sha256: "%s"}
""" % ("0" * 63 + "1")


def write_adapter(folder: Path, rank: int, seed: int) -> None:
    """A PEFT LoRA adapter file: header built by hand, random bf16 data streamed out."""
    folder.mkdir(parents=True, exist_ok=True)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for layer in range(LAYERS):
        for module, out in (("q_proj", HIDDEN), ("v_proj", KV_OUT)):
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            for part, shape in (("lora_A", [rank, HIDDEN]), ("lora_B", [out, rank])):
                n = shape[0] * shape[1] * 2
                header[f"{stem}.{part}.weight"] = {"dtype": "BF16", "shape": shape,
                                                   "data_offsets": [offset, offset + n]}
                offset += n
    raw = json.dumps(header, sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)
    block = os.urandom(8 << 20)
    with open(folder / "adapter_model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        left, i = offset, seed
        while left:
            n = min(left, len(block))
            start = (i * 4099) % (len(block) - n + 1)
            fh.write(block[start:start + n])
            left -= n
            i += 1
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank,
           "base_model_name_or_path": "bench-llama", "target_modules": ["q_proj", "v_proj"],
           "task_type": "CAUSAL_LM"}
    (folder / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def sha256_of(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


def write_repo(root: Path, adapters: list[Path], rank: int, source: Callable[[int], str],
               endpoint: str) -> None:
    (root / "catalog/bases").mkdir(parents=True, exist_ok=True)
    (root / "catalog/flavors").mkdir(parents=True, exist_ok=True)
    (root / "catalog/tenants").mkdir(parents=True, exist_ok=True)
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "catalog/bases/bench-llama.yaml").write_text(BASE)
    refs = []
    for i, folder in enumerate(adapters):
        name = f"flavor-{i:03d}"
        refs.append(f"{name}@v1")
        (root / f"catalog/flavors/{name}.yaml").write_text(
            f"kind: Flavor\nname: {name}\nversion: v1\nbase: bench-llama@1\n"
            f"source: {source(i)}\nrank: {rank}\nalpha: {2 * rank}\n"
            "target_modules: [q_proj, v_proj]\nowner: {team: bench, contact: b@example.com}\n"
            "files:\n"
            f"  adapter_config.json: {sha256_of(folder / 'adapter_config.json')}\n"
            f"  adapter_model.safetensors: {sha256_of(folder / 'adapter_model.safetensors')}\n")
    (root / "catalog/tenants/bench.yaml").write_text(
        "kind: Tenant\nname: bench\nowner: {team: bench, contact: b@example.com}\n"
        f"environments:\n  bench:\n    gpu_quota: 8\n    flavors: [{', '.join(refs)}]\n")
    (root / "environments/bench.yaml").write_text(ENVIRONMENT.format(z="0" * 63 + "1",
                                                                     endpoint=endpoint))


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_kitchen(args: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = kitchen(args)
    if rc != 0:
        raise SystemExit(f"kitchen {' '.join(args)} exited {rc}:\n{out.getvalue()}")


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[object]:
    from tests.support.s3_server import SeaweedS3

    with SeaweedS3(workdir / "s3") as server:
        client = server.client()
        if not client.bucket_exists("bench"):
            client.make_bucket("bench")
        yield server


def rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:8.0f} MB/s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--total-gb", type=float, default=2.0, help="data in all (GB, 1e9 bytes)")
    p.add_argument("--files", type=int, default=8, help="number of adapter files")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--jobs", type=int, default=None, help="kitchen --jobs (default: its own)")
    p.add_argument("--no-s3", action="store_true", help="skip the S3 figure")
    p.add_argument("--workdir", type=Path, default=None, help="keep files here (default: tmp)")
    a = p.parse_args(argv)

    rank = max(1, min(512, round(a.total_gb * 1e9 / a.files / BYTES_PER_RANK)))
    work = a.workdir or Path(tempfile.mkdtemp(prefix="kitchen-verify-bench-"))
    try:
        mirror = work / "mirror"
        adapters = [mirror / "adapters" / f"flavor-{i:03d}" / "v1" for i in range(a.files)]
        t = timed(lambda: [write_adapter(f, rank, i) for i, f in enumerate(adapters)])
        files = [f / n for f in adapters for n in ("adapter_config.json",
                                                   "adapter_model.safetensors")]
        total = sum(f.stat().st_size for f in files)
        print(f"generated {a.files} adapters of rank {rank}: {total / 1e9:.2f} GB "
              f"in {t:.1f}s ({os.cpu_count()} CPUs)")
        jobs = ["--jobs", str(a.jobs)] if a.jobs else []
        local = work / "repo-local"
        write_repo(local, adapters, rank, lambda i: f"pvc://adapters/flavor-{i:03d}/v1/",
                   "127.0.0.1:1")
        local_args = ["artifacts", "verify", "--root", str(local), "--flavors-only",
                      "--pvc-mirror", str(mirror), *jobs]
        for f in files:  # into the page cache
            with open(f, "rb") as fh:
                while fh.read(8 << 20):
                    pass

        def sha256sum() -> None:
            subprocess.run(["sha256sum", *map(str, files)], check=True,
                           stdout=subprocess.DEVNULL)

        def openssl() -> None:
            subprocess.run(["openssl", "dgst", "-sha256", *map(str, files)], check=True,
                           stdout=subprocess.DEVNULL)

        one_job = [*local_args[: -len(jobs) or None], "--jobs", "1"]
        times: dict[str, list[float]] = {"sha256sum": [], "kitchen (local)": [],
                                         "kitchen --jobs 1": []}
        for _ in range(a.repeat):
            times["sha256sum"].append(timed(sha256sum))
            times["kitchen (local)"].append(timed(lambda: run_kitchen(local_args)))
            times["kitchen --jobs 1"].append(timed(lambda: run_kitchen(one_job)))
            if shutil.which("openssl"):
                times.setdefault("openssl dgst", []).append(timed(openssl))

        if not a.no_s3:
            with s3_server(work) as server:
                client = server.client()  # type: ignore[attr-defined]
                t = timed(lambda: [client.fput_object(
                    "bench", f"adapters/flavor-{i:03d}/v1/{n}", str(adapters[i] / n))
                    for i in range(a.files)
                    for n in ("adapter_config.json", "adapter_model.safetensors")])
                print(f"uploaded to SeaweedFS S3 in {t:.1f}s")
                remote = work / "repo-s3"
                write_repo(remote, adapters, rank, lambda i: f"s3://bench/adapters/flavor-{i:03d}/v1/",
                           server.endpoint)  # type: ignore[attr-defined]
                os.environ["AWS_ACCESS_KEY_ID"] = server.access_key  # type: ignore[attr-defined]
                os.environ["AWS_SECRET_ACCESS_KEY"] = server.secret_key  # type: ignore[attr-defined]
                s3_args = ["artifacts", "verify", "--root", str(remote), "--flavors-only", *jobs]
                times["kitchen (S3)"] = [timed(lambda: run_kitchen(s3_args))
                                         for _ in range(a.repeat)]

        base = min(times["sha256sum"])
        print(f"\n{'run':<18}{'best':>10}{'median':>10}   throughput (best)   vs sha256sum")
        for name, ts in times.items():
            best = min(ts)
            print(f"{name:<18}{best:>9.2f}s{statistics.median(ts):>9.2f}s   {rate(total, best)}"
                  f"         {base / best * 100:5.0f} %")
        return 0
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
