"""``kitchen conform gpu``: the node's GPUs, through NVML, against what the environment
declares — count and product, memory, driver version, uncorrected ECC errors, pending
row remaps, MIG mode — and a short CUDA workload when PyTorch or CuPy is installed.

Without NVML (no driver, no GPU, ``nvidia-ml-py`` missing) the result is one clear
"could not run" check, exit code 2.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from .. import settings
from ..findings import Location, ResourceRef, Severity
from .expectations import GpuSpec
from .report import describe_measurements
from .results import CheckRecord, ConformReport, Status, finding, timed

GIB = 1024**3
# NVML reports usable memory a little under the marketing size (80 GB H100: 79.6 GiB)
MEMORY_TOLERANCE = 0.9
WORKLOAD_SIZE = 4096


def normalize_product(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` and the node label ``NVIDIA-H100-80GB-HBM3`` compare equal."""
    return "-".join(name.replace("_", " ").replace("-", " ").split()).lower()


@dataclass
class GpuInfo:
    index: int
    name: str
    uuid: str
    memory_total: int
    memory_used: int
    ecc_volatile_uncorrected: int | None
    ecc_aggregate_uncorrected: int | None
    remap_pending: bool | None
    remap_failure: bool | None
    mig_current: bool | None
    mig_pending: bool | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "uuid": self.uuid,
                "memory_total_gib": round(self.memory_total / GIB, 2),
                "memory_used_gib": round(self.memory_used / GIB, 2),
                "ecc_uncorrected_volatile": self.ecc_volatile_uncorrected,
                "ecc_uncorrected_aggregate": self.ecc_aggregate_uncorrected,
                "row_remap_pending": self.remap_pending, "row_remap_failure": self.remap_failure,
                "mig_mode": self.mig_current, "mig_mode_pending": self.mig_pending, **self.extra}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(nvml: ModuleType, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None where the GPU does not support the query."""
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def read_gpus(nvml: ModuleType) -> tuple[str, list[GpuInfo]]:
    """Driver version and every visible GPU; NVML must be initialised."""
    driver = _text(nvml.nvmlSystemGetDriverVersion())
    gpus = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        unc = nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        ecc = nvml.nvmlDeviceGetTotalEccErrors
        vol = _optional(nvml, ecc, h, unc, nvml.NVML_VOLATILE_ECC)
        agg = _optional(nvml, ecc, h, unc, nvml.NVML_AGGREGATE_ECC)
        remap = _optional(nvml, nvml.nvmlDeviceGetRemappedRows, h)
        mig = _optional(nvml, nvml.nvmlDeviceGetMigMode, h)
        enable = getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)
        gpus.append(GpuInfo(
            index=i, name=_text(nvml.nvmlDeviceGetName(h)), uuid=_text(nvml.nvmlDeviceGetUUID(h)),
            memory_total=int(mem.total), memory_used=int(mem.used),
            ecc_volatile_uncorrected=None if vol is None else int(vol),
            ecc_aggregate_uncorrected=None if agg is None else int(agg),
            remap_pending=None if remap is None else bool(remap[2]),
            remap_failure=None if remap is None else bool(remap[3]),
            mig_current=None if mig is None else mig[0] == enable,
            mig_pending=None if mig is None else mig[1] == enable))
    return driver, gpus


def _load_nvml() -> ModuleType:
    import pynvml

    module: ModuleType = pynvml
    return module


@dataclass
class GpuOptions:
    node: str = ""
    min_driver: str | None = None
    workload: bool = True


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def check_gpus(spec: GpuSpec | None, environment: str, opts: GpuOptions | None = None, *,
               nvml_loader: Callable[[], ModuleType] = _load_nvml,
               workload: Callable[[int], dict[str, Any]] | None = None,
               fail_on_warn: bool = False) -> ConformReport:
    """The GPU checks of this node against ``spec``."""
    report = ConformReport("gpu", environment, started=datetime.now(UTC).isoformat(timespec="seconds"),
                           fail_on_warn=fail_on_warn)
    return describe_measurements(_check_gpus(report, spec, environment, opts or GpuOptions(),
                                             nvml_loader, workload))


def _check_gpus(report: ConformReport, spec: GpuSpec | None, environment: str, opts: GpuOptions,
                nvml_loader: Callable[[], ModuleType],
                workload: Callable[[int], dict[str, Any]] | None) -> ConformReport:
    node = opts.node or settings.NODE_NAME.text() or platform.node()
    report.info["node"] = node
    t0 = time.monotonic()
    loc = spec.source.location() if spec is not None else Location("<command line>")
    ref = ResourceRef("Node", node, "", "v1")

    nvml_res = CheckRecord("gpu.nvml", node)
    report.records.append(nvml_res)
    try:
        nvml = nvml_loader()
        nvml.nvmlInit()
    except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
        nvml_res.could_not_run(finding(
            "gpu.nvml", f"no GPU/NVML on {node}: {type(exc).__name__}: {exc}", location=loc,
            resource=ref, expected="the NVIDIA driver's NVML library and at least one GPU",
            actual=f"{type(exc).__name__}: {exc}"))
        report.duration_s = round(time.monotonic() - t0, 3)
        return report
    gpus: list[GpuInfo] = []
    try:
        try:
            with timed(nvml_res):
                driver, gpus = read_gpus(nvml)
        except nvml.NVMLError as exc:
            nvml_res.could_not_run(finding(
                "gpu.nvml", f"NVML failed on {node}: {exc}", location=loc, resource=ref,
                expected="NVML answers device queries", actual=f"{type(exc).__name__}: {exc}"))
            report.duration_s = round(time.monotonic() - t0, 3)
            return report
        nvml_res.details = {"driver_version": driver, "gpus": [g.as_dict() for g in gpus]}
        report.info.update({"driver_version": driver, "gpu_count": len(gpus),
                            "gpus": [g.as_dict() for g in gpus]})
        if opts.min_driver and _version_tuple(driver) < _version_tuple(opts.min_driver):
            nvml_res.add(finding("gpu.nvml", f"driver {driver} is older than {opts.min_driver}",
                                 location=loc, resource=ref, expected=f">= {opts.min_driver}",
                                 actual=driver))
        report.records += _judge(spec, gpus, loc, ref, node)
    finally:
        with contextlib.suppress(Exception):  # shutting down is best effort
            nvml.nvmlShutdown()
    if opts.workload and gpus:
        report.records.append(_workload(gpus, node, loc, ref, workload))
    report.duration_s = round(time.monotonic() - t0, 3)
    return report


def _judge(spec: GpuSpec | None, gpus: list[GpuInfo], loc: Location, ref: ResourceRef,
           node: str) -> list[CheckRecord]:
    count = _judge_count(spec, gpus, loc, ref, node)
    if not gpus:
        return [count]
    product = CheckRecord("gpu.product", node, details={"names": sorted({g.name for g in gpus})})
    memory = CheckRecord("gpu.memory", node)
    ecc = CheckRecord("gpu.ecc", node)
    remap = CheckRecord("gpu.row-remap", node)
    mig = CheckRecord("gpu.mig", node)
    for g in gpus:
        tag = f"GPU {g.index} ({g.uuid})"
        _judge_product(product, g, tag, spec, loc, ref)
        _judge_memory(memory, g, tag, spec, loc, ref)
        _judge_ecc(ecc, g, tag, loc, ref)
        _judge_remap(remap, g, tag, loc, ref)
        _judge_mig(mig, g, tag, spec, loc, ref)
    return [count, product, memory, ecc, remap, mig]


def _judge_count(spec: GpuSpec | None, gpus: list[GpuInfo], loc: Location, ref: ResourceRef,
                 node: str) -> CheckRecord:
    """The GPUs NVML sees: at least one, as many as the environment declares per node."""
    count = CheckRecord("gpu.count", node, details={"visible": len(gpus)})
    if not gpus:
        count.add(finding("gpu.count", f"NVML sees no GPU on {node}", location=loc, resource=ref,
                          expected=f"{spec.per_node if spec else 'at least 1'} GPU(s)", actual="0"))
        return count
    if spec is not None:
        count.details["declared_per_node"] = spec.per_node
        if len(gpus) != spec.per_node:
            count.add(finding("gpu.count", f"{node} has {len(gpus)} GPU(s), the environment "
                              f"declares {spec.per_node} per node", location=loc, resource=ref,
                              expected=f"{spec.per_node} GPUs", actual=f"{len(gpus)} GPUs"))
    return count


def _judge_product(product: CheckRecord, g: GpuInfo, tag: str, spec: GpuSpec | None, loc: Location,
                   ref: ResourceRef) -> None:
    if spec is not None and normalize_product(g.name) != normalize_product(spec.product):
        product.add(finding("gpu.product", f"{tag} is {g.name}", location=loc, resource=ref,
                            expected=spec.product, actual=g.name))


def _judge_memory(memory: CheckRecord, g: GpuInfo, tag: str, spec: GpuSpec | None, loc: Location,
                  ref: ResourceRef) -> None:
    total_gib = g.memory_total / GIB
    memory.details[f"gpu{g.index}_total_gib"] = round(total_gib, 2)
    if spec is not None and total_gib < spec.memory_gib * MEMORY_TOLERANCE:
        memory.add(finding("gpu.memory", f"{tag} has {total_gib:.1f} GiB", location=loc,
                           resource=ref, expected=f"about {spec.memory_gib:g} GiB (at least "
                           f"{spec.memory_gib * MEMORY_TOLERANCE:.1f})",
                           actual=f"{total_gib:.1f} GiB"))


def _judge_ecc(ecc: CheckRecord, g: GpuInfo, tag: str, loc: Location, ref: ResourceRef) -> None:
    """Uncorrected ECC errors: an error since the driver loaded, a warning over the GPU's lifetime."""
    if g.ecc_volatile_uncorrected is None:
        ecc.details[f"gpu{g.index}"] = "not supported or ECC disabled"
        return
    ecc.details[f"gpu{g.index}"] = {"volatile": g.ecc_volatile_uncorrected,
                                    "aggregate": g.ecc_aggregate_uncorrected}
    if g.ecc_volatile_uncorrected > 0:
        ecc.add(finding("gpu.ecc", f"{tag} has {g.ecc_volatile_uncorrected} uncorrected "
                        "ECC error(s) since the last driver load", location=loc,
                        resource=ref, expected="0", actual=str(g.ecc_volatile_uncorrected)))
    elif g.ecc_aggregate_uncorrected:
        ecc.add(finding("gpu.ecc", f"{tag} has {g.ecc_aggregate_uncorrected} uncorrected "
                        "ECC error(s) over its lifetime", location=loc, resource=ref,
                        severity=Severity.WARNING, expected="0",
                        actual=str(g.ecc_aggregate_uncorrected)))


def _judge_remap(remap: CheckRecord, g: GpuInfo, tag: str, loc: Location, ref: ResourceRef) -> None:
    """Row remapping: one pending needs a reset, one failed needs a new GPU."""
    if g.remap_pending is None:
        remap.details[f"gpu{g.index}"] = "not supported"
        return
    remap.details[f"gpu{g.index}"] = {"pending": g.remap_pending, "failure": g.remap_failure}
    if g.remap_pending:
        remap.add(finding("gpu.row-remap", f"{tag} has a pending row remap: reset the GPU",
                          location=loc, resource=ref, expected="no pending remap",
                          actual="pending"))
    if g.remap_failure:
        remap.add(finding("gpu.row-remap", f"{tag} failed a row remap: replace the GPU",
                          location=loc, resource=ref, expected="no remap failure",
                          actual="failure occurred"))


def _judge_mig(mig: CheckRecord, g: GpuInfo, tag: str, spec: GpuSpec | None, loc: Location,
               ref: ResourceRef) -> None:
    """The MIG mode the environment declares, and no change pending a reset."""
    current = bool(g.mig_current)
    mig.details[f"gpu{g.index}"] = {"current": g.mig_current, "pending": g.mig_pending}
    if spec is not None and current != spec.mig:
        mig.add(finding("gpu.mig", f"{tag} has MIG mode {'on' if current else 'off'}",
                        location=loc, resource=ref,
                        expected=f"MIG {'on' if spec.mig else 'off'} as declared",
                        actual=f"MIG {'on' if current else 'off'}"))
    elif g.mig_pending is not None and g.mig_pending != current:
        mig.add(finding("gpu.mig", f"{tag} has a MIG mode change pending a reset",
                        location=loc, resource=ref, severity=Severity.WARNING,
                        expected="no pending change", actual="pending"))


def cuda_workload(index: int) -> dict[str, Any]:
    """A matrix product on GPU ``index`` checked against float64 on the CPU; raises
    ImportError without PyTorch and CuPy."""
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda:
        dev = torch.device(f"cuda:{index}")
        gen = torch.Generator().manual_seed(index)
        a = torch.randn(WORKLOAD_SIZE, WORKLOAD_SIZE, generator=gen)
        b = torch.randn(WORKLOAD_SIZE, WORKLOAD_SIZE, generator=gen)
        ga, gb = a.to(dev), b.to(dev)
        torch.matmul(ga, gb)
        torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        reps = 10
        for _ in range(reps):
            c = torch.matmul(ga, gb)
        torch.cuda.synchronize(dev)
        dt = (time.perf_counter() - t0) / reps
        ref = (a[:64].double() @ b.double())
        err = float((c[:64].cpu().double() - ref).abs().max() / ref.abs().max())
        return {"framework": f"torch {torch.__version__}", "size": WORKLOAD_SIZE,
                "tflops_fp32": round(2 * WORKLOAD_SIZE**3 / dt / 1e12, 1),
                "max_relative_error": err, "ok": err < 1e-2}
    import cupy as cp  # ImportError when neither is present

    with cp.cuda.Device(index):
        rs = cp.random.RandomState(index)
        a = rs.standard_normal((WORKLOAD_SIZE, WORKLOAD_SIZE), dtype=cp.float32)
        b = rs.standard_normal((WORKLOAD_SIZE, WORKLOAD_SIZE), dtype=cp.float32)
        c = a @ b
        cp.cuda.Device(index).synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            c = a @ b
        cp.cuda.Device(index).synchronize()
        dt = (time.perf_counter() - t0) / 10
        ref = cp.asnumpy(a[:64]).astype("float64") @ cp.asnumpy(b).astype("float64")
        err = float(abs(cp.asnumpy(c[:64]) - ref).max() / abs(ref).max())
    return {"framework": f"cupy {cp.__version__}", "size": WORKLOAD_SIZE,
            "tflops_fp32": round(2 * WORKLOAD_SIZE**3 / dt / 1e12, 1),
            "max_relative_error": err, "ok": err < 1e-2}


def _workload(gpus: list[GpuInfo], node: str, loc: Location, ref: ResourceRef,
              workload: Callable[[int], dict[str, Any]] | None) -> CheckRecord:
    res = CheckRecord("gpu.cuda", node)
    run = workload or cuda_workload
    with timed(res):
        for g in gpus:
            try:
                out = run(g.index)
            except ImportError:
                res.status = Status.SKIP
                res.note = "neither PyTorch nor CuPy is installed: no CUDA workload"
                return res
            except Exception as exc:  # a CUDA error is the finding
                res.add(finding("gpu.cuda", f"GPU {g.index}: the CUDA workload failed: "
                                f"{type(exc).__name__}: {exc}", location=loc, resource=ref,
                                expected="a matrix product that completes",
                                actual=f"{type(exc).__name__}: {exc}"))
                continue
            res.details[f"gpu{g.index}"] = out
            if not out.get("ok"):
                res.add(finding("gpu.cuda", f"GPU {g.index}: the matrix product is wrong "
                                f"(relative error {out.get('max_relative_error')})", location=loc,
                                resource=ref, expected="relative error < 1e-2",
                                actual=str(out.get("max_relative_error"))))
    return res
