"""``kitchen diff`` names the SLO, observability and alert changes of each environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.conftest import edit_once as _edit


def test_slo_and_alert_changes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "environments/prod.yaml", "  ttft_p95_ms: 500\n", "  ttft_p95_ms: 400\n")
    _edit(repo / "environments/prod.yaml", "  goodput_min_ratio: 0.95\n", "  goodput_min_ratio: 0.99\n")
    _edit(repo / "environments/prod.yaml", "  e2e_p95_ms: 6000\n", "")
    _edit(repo / "environments/dev.yaml", "slo:\n", "observability:\n  enabled: false\nslo:\n")
    assert main(["diff", "--root", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dev: SLOs and alerts changed"
    assert "    observability.enabled true → false" in out
    assert "    alert KitchenTTFTAboveSLO removed" in out
    serving = out[:out.index("the SLOs or alerts of 2 environment(s) change against HEAD in dev, prod") + 1]
    prod = serving[serving.index("prod: SLOs and alerts changed") + 1:-1]
    assert prod == [
        "    slo.e2e_p95_ms 6000 → (unset)",
        "    slo.goodput_min_ratio 0.95 → 0.99",
        "    slo.ttft_p95_ms 500 → 400",
        "    alert KitchenE2ELatencyAboveSLO removed",
        "    alert KitchenGoodputBudgetBurnFast threshold > 0.72 and > 0.72 → > 0.144 and > 0.144",
        "    alert KitchenGoodputBudgetBurnSlow threshold > 0.3 and > 0.3 → > 0.06 and > 0.06",
        "    alert KitchenTTFTAboveSLO threshold > 0.5 → > 0.4",
    ]
    # the rendered PrometheusRules say the same, field by field, after the summary
    assert "    spec.groups[1].rules[0].expr: " in "\n".join(out[len(serving):])
    assert main(["diff", "--root", str(repo), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["info"]["diff"]
    assert [e["environment"] for e in data["environments"]] == ["dev", "prod"] and data["changes"] == []
    assert main(["diff", "--root", str(repo), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "- alert KitchenTTFTAboveSLO threshold > 0.5 → > 0.4" in md and "| InferenceService |" not in md


def test_unchanged_slos_say_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo / "environments/prod.yaml", "  ttft_p95_ms: 500\n", "  ttft_p95_ms: 500.0\n")
    assert main(["diff", "--root", str(repo)]) == 0
    assert capsys.readouterr().out == "no serving changes against HEAD\nno rendered object changes against HEAD\n"
