"""End to end: the scaling query of a rendered InferenceService, asked of a real Prometheus
on 127.0.0.1 that scrapes the tests' real vLLM (``clean_server``) as the rendered PodMonitor
says, while load runs: it returns one number, and the signal's gauge moves with the load.
Every signal's metric is one the live server exports."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kitchen_gitops.scaling import SIGNALS
from tests.conform.conform_support import BASE, CLEAN_FLAVORS
from tests.conform.test_observability_prometheus import _scrape_config, _scraped_names, _wait
from tests.observability.obs_support import edited_repo, rendered_docs
from tests.support.prometheus_server import PrometheusServer, require_prometheus
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow
ISVC = "llama-3-1-8b-instruct"


def _rendered(tmp: Path) -> tuple[str, dict[str, object]]:
    """customer-support's scaling query in prod (on requests running, averaged over 30 s) and its PodMonitor."""
    root = edited_repo(tmp / "repo", observability={"scrape_interval_s": 5})
    env = root / "environments/prod.yaml"
    env.write_text(env.read_text().replace(
        "  replicas: 2\n", "  replicas: 2\n  autoscaling:\n    prometheus_url: http://127.0.0.1:9090\n", 1))
    tenant = root / "catalog/tenants/customer-support.yaml"
    tenant.write_text(tenant.read_text().replace(
        "    replicas: 2\n", "    autoscaling:\n      min: 2\n      max: 4\n      signal: requests_running\n"
        "      target: 8\n      window_s: 30\n"))
    docs = rendered_docs(root, "prod")
    isvc = docs[f"cs-llm/inferenceservice-{ISVC}.yaml"]
    (metric,) = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
    return metric["external"]["metric"]["query"], docs[f"cs-llm/podmonitor-{ISVC}.yaml"]


def test_the_scaling_query_reads_the_live_signal_under_load(clean_server: VllmServer, tmp_path: Path) -> None:
    require_prometheus()
    query, monitor = _rendered(tmp_path)
    live = _scraped_names(httpx.get(f"{clean_server.base_url}/metrics", timeout=30).text)
    assert {s.metric for s in SIGNALS.values()} <= live
    scrape = _scrape_config(monitor, clean_server.base_url.removeprefix("http://"))
    stop = threading.Event()
    models = [*CLEAN_FLAVORS, BASE]

    def load(i: int) -> None:
        n = 0
        while not stop.is_set():
            clean_server.complete(models[(i + n) % len(models)], f"{i} {n} tell me about the kitchen", max_tokens=48)
            n += 1

    with PrometheusServer(tmp_path / "prometheus", [scrape], []) as prom, ThreadPoolExecutor(4) as pool:
        _wait("the target up", lambda: len(prom.query("up == 1")) == 1, 60)
        for i in range(4):
            pool.submit(load, i)
        try:
            def running() -> float | None:
                found = prom.query(query)
                assert len(found) == 1, found  # one number: the InferenceService, all replicas summed
                value = float(found[0]["value"][1])
                assert math.isfinite(value) and value >= 0, value
                return value if value > 0 else None

            value = _wait("the scaling query to see requests running", running, 180)
        finally:
            stop.set()
    assert 0 < value <= 4  # never more than the load's four clients
