"""The rendered rules through Prometheus's own tools.

``promtool check rules`` on every rendered PrometheusRule of the example, minimal and edge
catalogs; ``promtool test rules`` on unit tests generated from the environment's own
thresholds: each alert fires on a breach after its ``for`` and stays silent just under
it, the burn-rate alerts on a fast and a slow burn of real TTFT histograms, and the
recording rules compute the figures they name.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops import observability as obs
from kitchen_gitops import pipeline
from tests.conftest import CASES, REPO, copy_catalog
from tests.observability.obs_support import edited_repo, of_kind, rendered_docs
from tests.support.prometheus_server import promtool, require_prometheus

NS, ISVC = "cs-llm", "llama-3-1-8b-instruct"
L = f'namespace="{NS}", inferenceservice="{ISVC}"'


@pytest.fixture(autouse=True)
def _prometheus() -> None:
    require_prometheus()


def _rule_specs(root: Path) -> dict[str, dict[str, Any]]:
    outcome = pipeline.render(root)
    assert outcome.ok
    return {f"{env}/{f.path}": yaml.safe_load(f.content)["spec"]
            for env, files in outcome.rendered.items() for f in files
            if f.objects and f.objects[0].kind == "PrometheusRule"}


@pytest.mark.parametrize("catalog", ["example", "minimal", "edge"])
def test_promtool_checks_every_rendered_rule_group(catalog: str, tmp_path: Path) -> None:
    root = copy_catalog(REPO if catalog == "example" else CASES / catalog, tmp_path / "repo")
    specs = _rule_specs(root)
    assert specs
    files = []
    for i, spec in enumerate(specs.values()):
        files.append(tmp_path / f"rules-{i}.yaml")
        files[-1].write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = promtool("check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check is not vacuous: a misspelt function fails it."""
    bad = {"groups": [{"name": "x", "rules": [{"record": "a:b:c", "expr": "sum(rat(x[5m]))"}]}]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert promtool("check", "rules", str(tmp_path / "bad.yaml")).returncode != 0


# ---------------------------------------------------------------- promtool test rules


def _const(value: float, n: int = 120) -> str:
    return f"{obs.fmt(value)}x{n}"


def _series(name: str, value: str, labels: str = L) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": value}


def _alert_labels(rule: dict[str, Any], **series_labels: str) -> dict[str, str]:
    return {**series_labels, **rule["labels"]}


def _for_minutes(rule: dict[str, Any]) -> int:
    text = rule["for"]
    return int(text[:-1]) * (60 if text.endswith("h") else 1)


class UnitTestBuilder:
    """Builds the unit tests of one namespace's rules from the thresholds they carry."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.alerts = {r["alert"]: r for g in spec["groups"] for r in g["rules"] if "alert" in r}
        self.tests: list[dict[str, Any]] = []

    def case(self, name: str, series: list[dict[str, str]], alert: str, fires: bool, at: int | None = None,
             **labels: str) -> None:
        rule = self.alerts[alert]
        at = at if at is not None else _for_minutes(rule) + 1
        checks = [{"eval_time": f"{at}m", "alertname": alert,
                   "exp_alerts": [{"exp_labels": _alert_labels(rule, **(labels or
                                                                        {"namespace": NS, "inferenceservice": ISVC}))}]
                   if fires else []}]
        if fires and _for_minutes(rule) > 1:  # not yet firing before its `for` has passed
            checks.append({"eval_time": f"{_for_minutes(rule) - 1}m", "alertname": alert, "exp_alerts": []})
        self.tests.append({"name": name, "interval": "1m", "input_series": series, "alert_rule_test": checks})

    def threshold(self, alert: str) -> float:
        expr = self.alerts[alert]["expr"]
        return float(expr.split(" > " if " > " in expr else " < ")[1].split()[0])


def _alert_tests(spec: dict[str, Any], env_slo: dict[str, Any]) -> list[dict[str, Any]]:
    t = UnitTestBuilder(spec)
    for alert, recorded in (("KitchenTTFTAboveSLO", obs.rule_name(obs.TTFT, "p95_5m")),
                            ("KitchenTPOTAboveSLO", obs.rule_name(obs.TPOT, "p95_5m")),
                            ("KitchenE2ELatencyAboveSLO", obs.rule_name(obs.E2E, "p95_5m")),
                            ("KitchenKVCacheNearFull", obs.KV_CACHE_MAX),
                            ("KitchenRequestsWaiting", obs.WAITING_SUM)):
        limit = t.threshold(alert)
        above = limit + 1 if alert == "KitchenRequestsWaiting" else limit * 1.01
        under = limit if alert == "KitchenRequestsWaiting" else limit * 0.99
        t.case(f"{alert} fires above {limit}", [_series(recorded, _const(above))], alert, True)
        t.case(f"{alert} silent under {limit}", [_series(recorded, _const(under))], alert, False)
    floor = t.threshold("KitchenOutputThroughputBelowSLO")
    assert floor == env_slo["min_output_tokens_per_s"]
    waiting = _series(obs.WAITING_SUM, _const(1))
    t.case("throughput under the floor while requests wait",
           [_series(obs.OUTPUT_TOKENS_RATE, _const(floor * 0.99)), waiting], "KitchenOutputThroughputBelowSLO", True)
    t.case("throughput at the floor", [_series(obs.OUTPUT_TOKENS_RATE, _const(floor * 1.01)), waiting],
           "KitchenOutputThroughputBelowSLO", False)
    t.case("low throughput without waiting requests is low demand",
           [_series(obs.OUTPUT_TOKENS_RATE, _const(floor * 0.1)), _series(obs.WAITING_SUM, _const(0))],
           "KitchenOutputThroughputBelowSLO", False)
    t.case("a request deferred for a LoRA slot", [_series(obs.WAITING_LORA_SUM, _const(1))],
           "KitchenLoraAdaptersWaitingForSlot", True)
    t.case("no request deferred", [_series(obs.WAITING_LORA_SUM, _const(0))], "KitchenLoraAdaptersWaitingForSlot",
           False)
    pod = f'{L}, pod="{ISVC}-predictor-0", job="{NS}/{ISVC}"'
    t.case("scrape failing", [_series("up", _const(0), pod)], "KitchenVllmTargetDown", True,
           namespace=NS, inferenceservice=ISVC, pod=f"{ISVC}-predictor-0", job=f"{NS}/{ISVC}")
    t.case("scrape working", [_series("up", _const(1), pod)], "KitchenVllmTargetDown", False)
    t.case("no scrape target at all", [_series("up", _const(1), 'namespace="elsewhere", inferenceservice="x"')],
           "KitchenVllmTargetDown", True, namespace=NS, inferenceservice=ISVC)
    # burn rates on real TTFT histograms: 100 requests a minute, a share `bad` above the SLO's bucket
    budget = 1 - env_slo["goodput_min_ratio"]
    le = obs.le_matcher(obs.bucket(obs.TTFT, env_slo["ttft_p95_ms"] / 1000)).split("=", 1)[1].strip('"~')
    le = le.split("|")[0]

    def burn(bad: float) -> list[dict[str, str]]:
        return [_series(f"{obs.TTFT}_count", "0+100x420"),
                _series(f"{obs.TTFT}_bucket", f"0+{obs.fmt(100 * (1 - bad))}x420", f'{L}, le="{le}"')]

    fast, slow = budget * 14.4 * 1.25, budget * 6 * 1.5
    t.case(f"fast burn ({fast:.0%} bad)", burn(fast), "KitchenGoodputBudgetBurnFast", True, at=10)
    t.case("fast burn: the slow alert waits for its own `for`", burn(fast), "KitchenGoodputBudgetBurnSlow", False,
           at=10)
    t.case(f"slow burn ({slow:.0%} bad)", burn(slow), "KitchenGoodputBudgetBurnSlow", True, at=20)
    t.case("slow burn does not page fast", burn(slow), "KitchenGoodputBudgetBurnFast", False, at=60)
    under = budget * 6 * 0.9
    t.case(f"under both burn rates ({under:.0%} bad)", burn(under), "KitchenGoodputBudgetBurnSlow", False, at=120)
    return t.tests


def _recording_tests() -> list[dict[str, Any]]:
    buckets = [_series(f"{obs.TTFT}_bucket", "0+0x30", f'{L}, le="0.25"'),
               _series(f"{obs.TTFT}_bucket", "0+100x30", f'{L}, le="0.5"'),
               _series(f"{obs.TTFT}_bucket", "0+100x30", f'{L}, le="+Inf"'),
               _series(f"{obs.TTFT}_count", "0+100x30")]
    pod = f'namespace="{NS}", pod="p0", inferenceservice="{ISVC}"'
    lora = [_series(obs.LORA_INFO, "100x30", f'{pod}, max_lora="4", running_lora_adapters="a,b,c", '
                                             'waiting_lora_adapters="d"'),
            _series(obs.LORA_INFO, "50x30", f'{pod}, max_lora="4", running_lora_adapters="", '
                                            'waiting_lora_adapters=""')]
    http = [_series(obs.HTTP_REQUESTS, "0+90x30", f'{L}, handler="/v1/completions", status="2xx"'),
            _series(obs.HTTP_REQUESTS, "0+10x30", f'{L}, handler="/v1/chat/completions", status="5xx"'),
            _series(obs.HTTP_REQUESTS, "0+1000x30", f'{L}, handler="/metrics", status="2xx"')]
    labels = f"{{{L}}}"
    return [{
        "name": "recording rules compute what they name", "interval": "1m",
        "input_series": [*buckets, *lora, *http],
        "promql_expr_test": [
            # all requests between 0.25 and 0.5 s: p95 interpolated inside that bucket
            {"expr": obs.rule_name(obs.TTFT, "p95_5m"), "eval_time": "10m",
             "exp_samples": [{"labels": f"{obs.rule_name(obs.TTFT, 'p95_5m')}{labels}", "value": 0.4875}]},
            {"expr": obs.LORA_RUNNING, "eval_time": "10m",
             "exp_samples": [{"labels": f"{obs.LORA_RUNNING}{labels}", "value": 3}]},
            {"expr": obs.LORA_WAITING, "eval_time": "10m",
             "exp_samples": [{"labels": f"{obs.LORA_WAITING}{labels}", "value": 1}]},
            # 10 of 100 inference requests failed; /metrics scrapes do not count
            {"expr": obs.ERROR_RATIO, "eval_time": "10m",
             "exp_samples": [{"labels": f"{obs.ERROR_RATIO}{labels}", "value": 0.1}]},
        ],
    }, {
        "name": "no 5xx yet is an error ratio of zero, not no ratio", "interval": "1m",
        "input_series": [http[0]],
        "promql_expr_test": [{"expr": obs.ERROR_RATIO, "eval_time": "10m",
                              "exp_samples": [{"labels": f"{obs.ERROR_RATIO}{labels}", "value": 0}]}],
    }]


def _run_unit_tests(tmp_path: Path, spec: dict[str, Any], tests: list[dict[str, Any]]) -> str:
    spec = copy.deepcopy(spec)
    for g in spec["groups"]:
        for r in g["rules"]:
            # annotation templates are checked by `promtool check rules` and expanded by the
            # live Prometheus test; here they would only make every expected alert a template
            r.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
                                                         "tests": tests}), encoding="utf-8")
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("variant", ["prod", "tight"])
def test_each_alert_fires_on_a_breach_after_its_for_and_not_under_it(variant: str, tmp_path: Path) -> None:
    slo = yaml.safe_load((REPO / "environments/prod.yaml").read_text())["slo"]
    if variant == "tight":  # other thresholds, none on a bucket boundary, a 99.9 % objective
        slo = {"ttft_p95_ms": 333, "tpot_p95_ms": 27, "e2e_p95_ms": 1234, "min_output_tokens_per_s": 55.5,
               "goodput_min_ratio": 0.999}
    root = edited_repo(tmp_path / "repo", slo=slo, observability={"slo_for_minutes": 3})
    spec = of_kind(rendered_docs(root, "prod"), "PrometheusRule")[f"{NS}/prometheusrule-kitchen-vllm.yaml"]["spec"]
    tests = _alert_tests(spec, slo) + _recording_tests()
    assert {c["alertname"] for t in tests for c in t.get("alert_rule_test", [])} == {a.name for a in obs.ALERTS}
    out = _run_unit_tests(tmp_path, spec, tests)
    assert "SUCCESS" in out


def test_unit_tests_can_fail(tmp_path: Path) -> None:
    """A threshold off by 2 % from the one rendered makes the generated tests fail."""
    slo = yaml.safe_load((REPO / "environments/prod.yaml").read_text())["slo"]
    spec = of_kind(rendered_docs(edited_repo(tmp_path / "repo"), "prod"),
                   "PrometheusRule")[f"{NS}/prometheusrule-kitchen-vllm.yaml"]["spec"]
    tests = _alert_tests(spec, slo)
    for g in spec["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "KitchenTTFTAboveSLO":
                r["expr"] = r["expr"].replace("> 0.5", "> 0.51")
    with pytest.raises(AssertionError, match="KitchenTTFTAboveSLO"):
        _run_unit_tests(tmp_path, spec, tests)
