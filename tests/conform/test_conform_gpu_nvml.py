"""``kitchen conform gpu``: here NVML is absent (a real "could not run"); the checks
themselves run on a stand-in NVML module with the same API."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.conform.expectations import GpuSpec
from kitchen_gitops.conform.gpu import check_gpus, normalize_product
from kitchen_gitops.conform.results import Status

REPO = Path(__file__).resolve().parents[2]


def nvml_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.skipif(nvml_present(), reason="this machine has NVML")
def test_no_nvml_is_a_clear_could_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["conform", "gpu", "--catalog", str(REPO), "--env", "prod",
               "--json", str(tmp_path / "gpu.json"), "--junit", str(tmp_path / "gpu.xml")])
    out = capsys.readouterr().out
    assert rc == 2
    assert "COULD NOT RUN (exit 2)" in out and "no GPU/NVML on" in out
    doc = json.loads((tmp_path / "gpu.json").read_text())
    (check,) = doc["checks"]
    assert check["check"] == "gpu.nvml" and check["status"] == "error"
    assert check["findings"][0]["location"]["file"] == "environments/prod.yaml"
    assert 'errors="1"' in (tmp_path / "gpu.xml").read_text()


class FakeNvml(SimpleNamespace):
    """The subset of pynvml that conform.gpu uses, over a list of GPU dicts."""

    class NVMLError(Exception):
        pass

    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_AGGREGATE_ECC = 1
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, gpus: list[dict[str, Any]]) -> None:
        super().__init__()
        self.gpus = gpus
        self.shutdown = False

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None:
        self.shutdown = True
    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"
    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)
    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        return self.gpus[i]
    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        return SimpleNamespace(total=int(h.get("gib", 79.6) * 1024**3), used=0)
    def nvmlDeviceGetName(self, h: dict[str, Any]) -> bytes:
        return str(h.get("name", "NVIDIA H100 80GB HBM3")).encode()
    def nvmlDeviceGetUUID(self, h: dict[str, Any]) -> str:
        return f"GPU-{id(h)}"
    def nvmlDeviceGetTotalEccErrors(self, h: dict[str, Any], kind: int, counter: int) -> int:
        if h.get("ecc") is None:
            raise self.NVMLError("Not Supported")
        return int(h["ecc"][counter])
    def nvmlDeviceGetRemappedRows(self, h: dict[str, Any]) -> tuple[int, int, int, int]:
        return (0, 0, int(h.get("pending", 0)), int(h.get("failure", 0)))
    def nvmlDeviceGetMigMode(self, h: dict[str, Any]) -> tuple[int, int]:
        return (int(h.get("mig", 0)), int(h.get("mig_pending", h.get("mig", 0))))


SPEC = GpuSpec(product="NVIDIA-H100-80GB-HBM3", memory_gib=80, per_node=2, mig=False)


def run(gpus: list[dict[str, Any]], spec: GpuSpec = SPEC) -> Any:
    fake = FakeNvml(gpus)
    report = check_gpus(spec, "prod", nvml_loader=lambda: fake,  # type: ignore[arg-type,return-value]
                        workload=lambda i: {"framework": "fake", "ok": True, "tflops_fp32": 1.0,
                                            "size": 8, "max_relative_error": 0.0})
    assert fake.shutdown
    return report


def by_check(report: Any) -> dict[str, Any]:
    return {r.check: r for r in report.records}


def test_healthy_node_passes() -> None:
    report = run([{"ecc": (0, 0)}, {"ecc": (0, 0)}])
    assert report.exit_code == 0
    assert all(r.status is Status.PASS for r in report.records)
    assert report.info["driver_version"] == "580.159.04"


def test_each_fault_is_named() -> None:
    report = run([{"name": "NVIDIA A100-SXM4-40GB", "gib": 39.5, "ecc": (2, 2)},
                  {"ecc": (0, 3), "pending": 1, "mig": 1}, {"ecc": None}])
    checks = by_check(report)
    assert report.exit_code == 1
    assert checks["gpu.count"].findings[0].expected == "2 GPUs"
    assert checks["gpu.product"].findings[0].actual == "NVIDIA A100-SXM4-40GB"
    assert checks["gpu.memory"].status is Status.FAIL
    ecc = checks["gpu.ecc"].findings
    assert [f.severity.value for f in ecc] == ["error", "warning"]
    assert "2 uncorrected ECC error(s) since the last driver load" in ecc[0].message
    assert checks["gpu.ecc"].details["gpu2"] == "not supported or ECC disabled"
    assert "pending row remap" in checks["gpu.row-remap"].findings[0].message
    assert checks["gpu.mig"].findings[0].expected == "MIG off as declared"


def test_product_names_compare_like_node_labels() -> None:
    assert normalize_product("NVIDIA H100 80GB HBM3") == normalize_product("NVIDIA-H100-80GB-HBM3")
    assert normalize_product("NVIDIA L40S") != normalize_product("NVIDIA-H100-80GB-HBM3")
