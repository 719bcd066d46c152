"""Benchmark validate + plan + render + write against a YAML C-bindings baseline.

    python -m bench.pipeline_bench [--bases 20 --flavors 2000 --tenants 500 --envs 3]

Each measurement runs in its own process so that peak memory (ru_maxrss) belongs to
that measurement alone.  The baseline does the least any tool must do: parse every
input file and dump every output document with PyYAML's C bindings (libyaml).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import add_org_arguments, generate_from_args


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_kitchen(root: Path, out: Path) -> dict[str, float]:
    from kitchen_gitops import pipeline
    from kitchen_gitops.write import write_outputs

    t0 = time.perf_counter()
    outcome = pipeline.render(root)
    t1 = time.perf_counter()
    if not outcome.ok:
        raise SystemExit("synthetic catalog has findings: " + "; ".join(
            f.format_text() for f in outcome.findings[:5]))
    write_outputs(out, outcome.rendered, prune_environments=True)
    t2 = time.perf_counter()
    files = sum(len(v) for v in outcome.rendered.values())
    return {"seconds": t2 - t0, "render_seconds": t1 - t0, "write_seconds": t2 - t1,
            "files": files, "peak_mib": _peak_mib()}


def child_baseline(root: Path, out: Path) -> dict[str, float]:
    import yaml

    docs = []
    for p in sorted(out.rglob("*.yaml")):
        docs.extend(d for d in yaml.load_all(p.read_text(), Loader=yaml.CSafeLoader) if d)
    inputs = sorted(p for sub in ("catalog", "environments") for p in (root / sub).rglob("*.yaml"))
    t0 = time.perf_counter()
    for p in inputs:
        yaml.load(p.read_text(), Loader=yaml.CSafeLoader)
    for d in docs:
        yaml.dump(d, Dumper=yaml.CSafeDumper, sort_keys=False)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "inputs": len(inputs), "documents": len(docs), "peak_mib": _peak_mib()}


def _run_child(kind: str, root: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "bench.pipeline_bench", "--child", kind,
                           str(root), str(out)], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_org_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "ROOT", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, root, out = a.child
        fn = child_kitchen if kind == "kitchen" else child_baseline
        print(json.dumps(fn(Path(root), Path(out))))
        return

    with tempfile.TemporaryDirectory(prefix="kitchen-bench-") as tmp:
        root = generate_from_args(Path(tmp) / "org", a)
        out = Path(tmp) / "rendered"
        kitchen = min((_run_child("kitchen", root, out) for _ in range(a.repeat)),
                      key=lambda r: r["seconds"])
        baseline = min((_run_child("baseline", root, out) for _ in range(a.repeat)),
                       key=lambda r: r["seconds"])
    ratio = kitchen["seconds"] / baseline["seconds"]
    print(f"organisation: {a.bases} bases x {a.flavors} flavors x {a.tenants} tenants x {a.envs} environments")
    print(f"{'':34}{'wall s':>9}{'peak MiB':>10}")
    print(f"{'baseline (libyaml parse + dump)':34}{baseline['seconds']:9.2f}{baseline['peak_mib']:10.0f}"
          f"   {int(baseline['inputs'])} inputs, {int(baseline['documents'])} documents")
    print(f"{'kitchen validate+plan+render+write':34}{kitchen['seconds']:9.2f}{kitchen['peak_mib']:10.0f}"
          f"   {int(kitchen['files'])} files (render {kitchen['render_seconds']:.2f} s, "
          f"write {kitchen['write_seconds']:.2f} s)")
    print(f"ratio to baseline: {ratio:.2f}x (target <= 3x); peak memory "
          f"{kitchen['peak_mib'] / 1024:.2f} GiB (target < 2 GiB)")


if __name__ == "__main__":
    main()
