"""What a conformance run adds to its report: the measurements as text lines.

The report itself is written by the one report layer (:mod:`kitchen_gitops.report`);
this module turns the performance and GPU measurements of the records into the lines
the text and JUnit reports show, once the run is over (:func:`describe_measurements`).
"""

from __future__ import annotations

from typing import Any

from .results import ConformReport


def _dist(d: dict[str, float]) -> str:
    return f"p50 {d['median']:.1f}  p95 {d['p95']:.1f}  p99 {d['p99']:.1f}  mean {d['mean']:.1f}"


def perf_lines(details: dict[str, Any]) -> list[str]:
    m = details.get("metrics")
    if not m:
        return []
    load = details["load"]
    lines = [
        f"      load: {load['requests']} streaming requests at concurrency {load['concurrency']}, "
        f"{load['output_tokens']} output tokens each, models {', '.join(load['models'])}"
        + (f"; prompts: {load['prompt_tokens']} {load['prompts']}, seed {load['seed']}"
           if "seed" in load else ""),
        f"      TTFT ms  {_dist(m['ttft_ms'])}",
        f"      TPOT ms  {_dist(m['tpot_ms'])}",
        f"      ITL  ms  {_dist(m['itl_ms'])}",
        f"      E2E  ms  {_dist(m['e2e_ms'])}",
        f"      throughput {m['request_throughput_per_s']:.2f} req/s, "
        f"{m['output_token_throughput_per_s']:.1f} output tok/s, "
        f"{m['total_token_throughput_per_s']:.1f} total tok/s; goodput "
        f"{m['goodput_requests_per_s']:.2f} req/s ({m['goodput_ratio']:.0%}); "
        f"{m['completed']} ok, {m['failed']} failed in {m['duration_s']:.1f}s",
    ]
    if pc := details.get("prefix_cache"):
        lines.append(f"      /metrics prefix cache: {pc['hit_rate']:.1%} of "
                     f"{pc['queried_tokens']:g} prompt tokens found")
    for key, c in sorted((details.get("server_metrics") or {}).items()):
        lines.append(f"      /metrics {key.upper():4} mean: client {c['client_mean_ms']:.1f} ms, "
                     f"server {c['server_mean_ms']:.1f} ms (server p50 {c['server_p50_ms']:.1f}, "
                     f"p95 {c['server_p95_ms']:.1f}; {c['observations']:g} obs) "
                     f"{'agree' if c['agrees'] else 'DISAGREE'}")
        if c.get("recording_rules"):
            lines.append(f"           Prometheus records the same after the sync: {', '.join(c['recording_rules'])}")
    return lines


def gpu_lines(report: ConformReport) -> list[str]:
    gpus = report.info.get("gpus") or []
    if not gpus:
        return []
    lines = [f"  node {report.info.get('node', '?')}: driver {report.info.get('driver_version')}, "
             f"{len(gpus)} GPU(s)"]
    for g in gpus:
        lines.append(
            f"    GPU {g['index']}: {g['name']}, {g['memory_total_gib']:.1f} GiB "
            f"({g['memory_used_gib']:.1f} used), ECC uncorrected volatile "
            f"{_na(g['ecc_uncorrected_volatile'])} / aggregate {_na(g['ecc_uncorrected_aggregate'])}, "
            f"row remap pending {_na(g['row_remap_pending'])}, MIG {_onoff(g['mig_mode'])}")
    return lines


def _na(v: Any) -> str:
    return "n/a" if v is None else str(v).lower()


def _onoff(v: Any) -> str:
    return "n/a" if v is None else ("on" if v else "off")




def _cuda_lines(details: dict[str, Any]) -> list[str]:
    lines = []
    for key, v in sorted(details.items()):
        if isinstance(v, dict):
            lines.append(f"{key}: {v.get('framework')}: {v.get('tflops_fp32')} TFLOPS fp32 "
                         f"({v.get('size')}² matmul), relative error {v.get('max_relative_error'):.2e}")
    return lines


def describe_measurements(report: ConformReport) -> ConformReport:
    """Fill the text lines of the records that measured something, and the GPU summary;
    name the environment in every finding."""
    report.finish()
    report.summary = gpu_lines(report)
    for r in report.records:
        if r.check == "performance":
            r.lines = [line.strip() for line in perf_lines(r.details)]
        elif r.check == "gpu.cuda":
            r.lines = _cuda_lines(r.details)
    return report
