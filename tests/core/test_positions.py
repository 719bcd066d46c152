"""The catalog's one strict position accessor: a written field is found where it is written,
a field left to its default at its nearest written parent, a field that no model has is an
error — for the stages and for the policy rules alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.model import PositionError, load_catalog
from tests.conftest import copy_catalog

REPO = Path(__file__).resolve().parents[2]
FLAVOR = "catalog/flavors/faq-answerer@v3.yaml"


def _line(rel: str, needle: str) -> int:
    return next(i for i, line in enumerate((REPO / rel).read_text().splitlines(), 1) if needle in line)


def test_written_defaulted_and_unknown_fields() -> None:
    catalog, findings = load_catalog(REPO)
    assert not findings
    rank = catalog.location("Flavor", "faq-answerer@v3", ("rank",))
    assert (rank.file, rank.line, rank.col) == (FLAVOR, _line(FLAVOR, "rank:"), 1)
    # legal-ai writes no namespace: its default is located at the object, where it would go
    tenant = catalog.location("Tenant", "legal-ai", ("namespace",))
    assert (tenant.file, tenant.line) == ("catalog/tenants/legal-ai.yaml", 1)
    with pytest.raises(PositionError, match="no field rnak"):
        catalog.location("Flavor", "faq-answerer@v3", ("rnak",))
    with pytest.raises(PositionError):
        catalog.location("Flavor", "no-such@v1", ("rank",))


def test_dotted_paths_keep_keys_with_dots_whole() -> None:
    catalog, _ = load_catalog(REPO)
    at = catalog.locate(FLAVOR, "files.adapter_config.json")
    assert (at.file, at.line) == (FLAVOR, _line(FLAVOR, "adapter_config.json:"))
    assert catalog.locate("catalog/tenants/legal-ai.yaml", "environments.prod.flavors.0").line > 1
    with pytest.raises(PositionError):
        catalog.locate(FLAVOR, "files.nope")


def test_a_rule_pointing_at_no_field_is_a_policy_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    rule = root / "policies/rules/lora_rank.rego"
    text = rule.read_text()
    assert text.count('"rank", sprintf') == 1
    rule.write_text(text.replace('"rank", sprintf', '"rnak", sprintf').replace("f.rank > max_rank", "true"))
    assert main(["check", "--root", str(root), "--no-render-check"]) == 2
    err = capsys.readouterr().err
    assert "policies/rules/lora_rank.rego" in err and "no field rnak" in err and "Traceback" not in err
