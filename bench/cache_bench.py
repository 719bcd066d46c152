"""Benchmark ``kitchen check`` with its cache: cold and warm, side by side with the baseline.

    python -m bench.cache_bench [--bases 20 --flavors 2000 --tenants 500 --envs 3] [--repeat 3]

On the synthetic organisation, each measurement in its own process, best of ``--repeat``:

- **baseline**: libyaml parse of every input and dump of every output document (the same
  baseline as bench/check_bench.py);
- **no cache**: ``kitchen check --no-render-check --no-cache``;
- **cold**: the same with an empty ``.kitchen-cache/`` (what a first run pays to fill it);
- **warm, no change**: the run after the cold one;
- **warm, one flavor / one tenant / one template / one policy edited**: one file changed
  after a warm run (another text each round, so that no round finds an earlier round's
  edit), measured, then put back.

Each row gives the check's own time (``check`` called in the process) and the whole
command's (interpreter start and imports included: what a pre-commit hook waits for), peak
memory of the largest process, and what the cache found and computed (its counters).
After the timed rounds, a cold run and a one-flavor run are made once more with the
memory of all their processes summed every 20 ms (workers and engine children together;
apart, so that the sampling does not slow the timed runs).

Targets (issue "a gate whose cost follows the change"): warm one-flavor at most 1 s; cold at
most 1.5x the baseline; peak memory at most 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.check_bench import _child as baseline_child
from bench.check_bench import _peak_mib, _TotalMemory
from bench.generate import add_org_arguments, generate_from_args

TARGET_WARM_S = 1.0
TARGET_COLD_RATIO = 1.5


def child_check(root: Path, cache: bool, sample: bool = False) -> dict[str, object]:
    from kitchen_gitops.pipeline import CheckOptions, check

    sampler = _TotalMemory() if sample else None
    if sampler is not None:
        sampler.start()
    t0 = time.perf_counter()
    result = check(CheckOptions(root, render_check=False, cache=cache, verbose=True))
    seconds = time.perf_counter() - t0
    if sampler is not None:
        sampler.done.set()
        sampler.join()
    if result.exit_code:
        raise SystemExit("synthetic organisation has findings: " + "; ".join(
            f.format_text() for f in result.all_findings()[:5]))
    return {"seconds": seconds, "peak_mib": _peak_mib(), "notes": result.notes,
            "total_mib": sampler.peak_kib / 1024 if sampler is not None else 0.0}


@dataclass(frozen=True)
class Run:
    seconds: float  # check() in the process
    wall: float  # the whole command, interpreter start and imports included
    peak_mib: float
    notes: list[str]
    total_mib: float = 0.0  # every process of the run together, where sampled

    def row(self, name: str, baseline: float) -> str:
        cache = "; ".join(n.removeprefix("cache ") for n in self.notes if n.startswith("cache "))
        return (f"{name:28}{self.seconds:8.2f}{self.wall:8.2f}{self.seconds / baseline:7.2f}x"
                f"{self.peak_mib:8.0f}   {cache}")


def _check(root: Path, cache: bool = True, sample: bool = False) -> Run:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.cache_bench", "--child", str(root), str(cache),
                           *(["--sample"] if sample else [])],
                          capture_output=True, text=True, check=False,
                          env={k: v for k, v in os.environ.items() if k != "KITCHEN_CACHE"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"check failed:\n{proc.stderr}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return Run(float(got["seconds"]), wall, float(got["peak_mib"]), [str(n) for n in got["notes"]],
               float(got["total_mib"]))


def _edit(path: Path, old: str, new: str) -> Callable[[], None]:
    """Replace ``old`` (once) in ``path``; returns what puts the file back."""
    before = path.read_bytes()
    text = before.decode()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))

    def put_back() -> None:
        path.write_bytes(before)

    return put_back


def _edits(root: Path, round_: int) -> dict[str, Callable[[], Callable[[], None]]]:
    mark = f"(edit {round_})"
    return {
        "one flavor": lambda: _edit(root / "catalog/flavors/flavor-00001.yaml",
                                    "description: Synthetic adapter 1", f"description: Synthetic adapter 1 {mark}"),
        "one tenant": lambda: _edit(root / "catalog/tenants/tenant-0001.yaml",
                                    "display_name: Tenant 1", f"display_name: Tenant 1 {mark}"),
        "one template": lambda: _edit(root / "templates/namespace.yaml.j2", "{", f"{{# {mark} #}}{{"),
        "one policy": lambda: _edit(root / "policies/rules/lora_rank.rego", "\nimport ", f"\n# {mark}\nimport "),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_org_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best of each row is reported")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--sample", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child_check(Path(a.child[0]), a.child[1] == "True", a.sample)))
        return

    rows: dict[str, list[Run]] = {}
    baselines = []
    with tempfile.TemporaryDirectory(prefix="kitchen-cache-bench-") as tmp:
        root = generate_from_args(Path(tmp) / "org", a)
        out = Path(tmp) / "rendered"
        from kitchen_gitops.commands.render import Options as RenderOptions
        from kitchen_gitops.commands.render import execute as execute_render

        if execute_render(RenderOptions(root, out=out)).exit_code:
            raise SystemExit("the synthetic organisation does not render")
        for round_ in range(a.repeat):
            baselines.append(baseline_child("baseline", str(root), str(out)))
            rows.setdefault("no cache", []).append(_check(root, cache=False))
            shutil.rmtree(root / ".kitchen-cache", ignore_errors=True)
            rows.setdefault("cold", []).append(_check(root))
            rows.setdefault("warm, no change", []).append(_check(root))
            for name, edit in _edits(root, round_).items():
                put_back = edit()
                rows.setdefault(f"warm, {name} edited", []).append(_check(root))
                put_back()
        size = sum(p.stat().st_size for p in (root / ".kitchen-cache").rglob("*") if p.is_file())
        shutil.rmtree(root / ".kitchen-cache", ignore_errors=True)
        summed = {"cold": _check(root, sample=True).total_mib}
        put_back = _edits(root, a.repeat)["one flavor"]()
        summed["warm, one flavor edited"] = _check(root, sample=True).total_mib
        put_back()
    baseline = min(b["seconds"] for b in baselines)
    print(f"organisation: {a.bases} bases x {a.flavors} flavors x {a.tenants} tenants x {a.envs} environments; "
          f"best of {a.repeat}")
    print(f"{'':28}{'check s':>8}{'wall s':>8}{'ratio':>8}{'MiB':>8}   cache")
    print(f"{'baseline (libyaml)':28}{baseline:8.2f}{'':8}{1:7.2f}x{max(b['peak_mib'] for b in baselines):8.0f}")
    for name, runs in rows.items():
        print(min(runs, key=lambda r: r.seconds).row(name, baseline))
    cold = min(r.seconds for r in rows["cold"])
    flavor = min(r.seconds for r in rows["warm, one flavor edited"])
    peak = max(r.peak_mib for runs in rows.values() for r in runs)
    print(f"cache folder after the runs: {size / 2**20:.0f} MiB")
    print("all processes together (sampled): "
          + "; ".join(f"{name} {mib / 1024:.2f} GiB" for name, mib in summed.items()))
    print(f"targets: warm one flavor {flavor:.2f} s (<= {TARGET_WARM_S:g} s); cold {cold / baseline:.2f}x the "
          f"baseline (<= {TARGET_COLD_RATIO:g}x); peak {peak / 1024:.2f} GiB in the largest process")


if __name__ == "__main__":
    main()
