"""Run a real Prometheus (Debian's ``prometheus`` package) on 127.0.0.1 for tests.

    with PrometheusServer(tmp, scrape_configs, rule_files) as prom:
        prom.query('up')

Storage goes to a temporary folder under ``workdir``; the process runs in its own process
group and is always stopped (:class:`ServerProcess`).  ``promtool()`` runs the package's
promtool.  Both are found on PATH; :func:`require_prometheus` skips a test without them,
except in CI (``CI=true``), where bootstrap installs them and their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .process import ServerProcess
from .vllm_server import free_port

__all__ = ["PrometheusServer", "promtool", "require_prometheus"]


def require_prometheus() -> None:
    missing = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not on PATH (scripts/bootstrap.sh installs Debian's prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, check=False,
                          timeout=300)


class PrometheusServer(ServerProcess):
    stop_timeout = 15.0
    name = "prometheus"

    def __init__(self, workdir: Path, scrape_configs: Sequence[dict[str, Any]], rule_files: Sequence[Path],
                 *, evaluation_interval: str = "5s", startup_timeout: float = 120.0) -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.port = free_port()
        self.config = {"global": {"scrape_interval": "1s", "evaluation_interval": evaluation_interval},
                       "scrape_configs": list(scrape_configs),
                       "rule_files": [str(p) for p in rule_files]}
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / "prometheus.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        check = promtool("check", "config", str(config))
        if check.returncode:
            raise RuntimeError(f"promtool check config: {check.stdout}{check.stderr}")
        cmd = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
               "--storage.tsdb.retention.time=1h"]
        self.launch(cmd)
        return self

    def ready(self, client: httpx.Client) -> bool:
        return client.get(f"{self.base_url}/-/ready").status_code == 200

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """The JSON answer of ``/api/v1/<path>`` (errors included: ``status`` says which)."""
        r = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=30.0)
        data: dict[str, Any] = r.json()
        return data

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        if data.get("status") != "success":
            raise AssertionError(f"query {expr!r}: {data.get('errorType')}: {data.get('error')}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result
