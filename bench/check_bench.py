"""Benchmark the whole gate, ``kitchen check --no-render-check``, against a libyaml baseline.

    python -m bench.check_bench [--bases 20 --flavors 2000 --tenants 500 --envs 3] [--repeat 3]

Measured side by side in one run, each in its own process (so that peak memory,
ru_maxrss, belongs to that measurement alone), best of ``--repeat``, alternating:

- **kitchen check**: validate, plan, render in memory, the policy library over every
  environment, waivers — what CI runs on every pull request (the staleness check of the
  committed output is left out: the synthetic organisation commits none);
- **baseline**: the least any tool must do with the same files — parse every input file
  and dump every output document with PyYAML's C bindings (libyaml).

Targets: at most 2x the baseline, peak memory below 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.generate import add_org_arguments, generate_from_args
from bench.pipeline_bench import child_baseline  # the same baseline as the pipeline benchmark's

TARGET_RATIO = 2.0
TARGET_PEAK_GIB = 1.0


def _peak_mib() -> float:
    """The largest process of the measurement: itself or any of its worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def _pss_kib(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their sharers)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the check's workers and their evaluation children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return out


class _TotalMemory(threading.Thread):
    """Samples the summed PSS of this process and all its descendants every 20 ms: the
    memory the whole check holds at once, workers together."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.done.wait(0.02):
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(p) for p in _tree(me)))


def child_check(root: Path) -> dict[str, float]:
    from kitchen_gitops.pipeline import CheckOptions, _jobs, check

    sampler = _TotalMemory()
    sampler.start()
    t0 = time.perf_counter()
    result = check(CheckOptions(root, render_check=False, cache=False))  # bench/cache_bench.py has the cache
    seconds = time.perf_counter() - t0
    sampler.done.set()
    sampler.join()
    if result.exit_code:
        raise SystemExit("synthetic organisation has findings: " + "; ".join(
            f.format_text() for f in result.all_findings()[:5]))
    return {"seconds": seconds, "peak_mib": _peak_mib(), "total_mib": sampler.peak_kib / 1024,
            "rules": len(result.rules_run),
            "workers": min(_jobs(CheckOptions(root)), len(result.environments))}


def _child(*args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "bench.check_bench", "--child", *args],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_org_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; the best is reported")
    ap.add_argument("--serial", action="store_true", help="one process (KITCHEN_JOBS=1) as well")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *paths = a.child
        if kind == "check":
            print(json.dumps(child_check(Path(paths[0]))))
        else:
            print(json.dumps(child_baseline(Path(paths[0]), Path(paths[1]))))
        return

    with tempfile.TemporaryDirectory(prefix="kitchen-check-bench-") as tmp:
        root = generate_from_args(Path(tmp) / "org", a)
        out = Path(tmp) / "rendered"
        from kitchen_gitops.commands.render import Options as RenderOptions
        from kitchen_gitops.commands.render import execute as execute_render

        if execute_render(RenderOptions(root, out=out)).exit_code:
            raise SystemExit("the synthetic organisation does not render")
        checks, serial, baselines = [], [], []
        for _ in range(a.repeat):
            checks.append(_child("check", str(root)))
            baselines.append(_child("baseline", str(root), str(out)))
            if a.serial:
                serial.append(_child("check", str(root), env={"KITCHEN_JOBS": "1"}))
    kitchen = min(checks, key=lambda r: r["seconds"])
    baseline = min(baselines, key=lambda r: r["seconds"])
    ratio = kitchen["seconds"] / baseline["seconds"]
    peak = max(r["peak_mib"] for r in checks)
    print(f"organisation: {a.bases} bases x {a.flavors} flavors x {a.tenants} tenants x {a.envs} environments")
    print(f"{'':40}{'wall s':>9}{'peak MiB':>10}")
    print(f"{'baseline (libyaml parse + dump)':40}{baseline['seconds']:9.2f}{baseline['peak_mib']:10.0f}"
          f"   {int(baseline['inputs'])} inputs, {int(baseline['documents'])} documents")
    print(f"{'kitchen check --no-render-check':40}{kitchen['seconds']:9.2f}{peak:10.0f}"
          f"   {int(kitchen['rules'])} rules, {int(kitchen['workers'])} worker process(es)")
    if serial:
        one = min(serial, key=lambda r: r["seconds"])
        print(f"{'  the same in one process':40}{one['seconds']:9.2f}{one['peak_mib']:10.0f}"
              f"   {one['seconds'] / baseline['seconds']:.2f}x the baseline")
    total = max(r["total_mib"] for r in checks)
    print(f"ratio to baseline: {ratio:.2f}x (target <= {TARGET_RATIO:g}x); peak memory "
          f"{peak / 1024:.2f} GiB in the largest process, {total / 1024:.2f} GiB summed over "
          f"all processes at once (PSS) (target < {TARGET_PEAK_GIB:g} GiB)")


if __name__ == "__main__":
    main()
