"""Acceptance cases: folders under tests/cases/policy/<rule>/ with a case.yaml.

    description: what the change does
    edits:                       # exact text edits on a copy of the example repository
      - file: catalog/flavors/faq-answerer@v3.yaml
        old: "rank: 32"          # must occur exactly once
        new: "rank: 128"
      - file: environments/prod2.yaml  # or a new file, a copy of another, edited further on
        copy: environments/prod.yaml
    rule: policy.lora-rank       # optional: else policy.<folder name up to "--">
    environments: [prod]         # optional: check only these
    exit: 1                      # optional: the exit code, when not 1 for errors / 0 otherwise
    expected:                    # the findings of the case's rule, exactly
      - rule: policy.lora-rank
        severity: error
        location: catalog/flavors/faq-answerer@v3.yaml:12:1
        resource: "[prod] InferenceService cs-llm/llama-3-1-8b-instruct"   # optional
        environment: prod        # optional: else the resource's, else the only one checked
    admission: deny              # a rule the admission policies enforce too: they deny exactly
                                 # the objects the gate refuses (tests/policy/test_admission.py);
                                 # or {ci-only: why} where only the gate can tell
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kitchen_gitops.rules import REGISTRY

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "policy"
PARTS = ("catalog", "environments", "evaluations", "templates", "policies", "evidence")


@dataclass
class Case:
    name: str
    folder: Path
    spec: dict[str, Any]

    @property
    def rule(self) -> str:
        """The rule the case is about: ``rule:`` in case.yaml, else the folder's name (a
        folder ``<rule>--<variant>`` is another case of ``<rule>``)."""
        return str(self.spec.get("rule") or f"policy.{self.name.split('--', 1)[0]}")

    @property
    def is_policy(self) -> bool:
        """A case of a Rego rule (else of a built-in check: ``schema.*``, ``policy.waiver-*``)."""
        return self.rule.startswith("policy.") and self.rule not in REGISTRY

    @property
    def environments(self) -> list[str] | None:
        envs = self.spec.get("environments")
        return list(envs) if envs else None

    @property
    def admission(self) -> str:
        """``deny``, ``ci-only`` or "" (a case the admission policies are not about)."""
        value = self.spec.get("admission")
        if isinstance(value, dict) and set(value) == {"ci-only"}:
            return "ci-only"
        return "deny" if value == "deny" else ""

    @property
    def expected(self) -> list[dict[str, str]]:
        return list(self.spec.get("expected") or [])


def cases() -> list[Case]:
    return [Case(p.parent.name, p.parent, yaml.safe_load(p.read_text(encoding="utf-8")))
            for p in sorted(CASES.glob("*/case.yaml"))]


def build_repo(case: Case, dst: Path) -> Path:
    """The example repository with the case's edits applied."""
    for part in PARTS:
        shutil.copytree(REPO / part, dst / part)
    for edit in case.spec.get("edits") or []:
        path = dst / edit["file"]
        if "copy" in edit:  # a new file, copied from another of the repository
            assert not path.exists(), f"{case.name}: {edit['file']} exists"
            shutil.copyfile(dst / edit["copy"], path)
            continue
        text = path.read_text(encoding="utf-8")
        count = text.count(edit["old"])
        assert count == 1, f"{case.name}: {edit['old']!r} occurs {count} times in {edit['file']}"
        path.write_text(text.replace(edit["old"], edit["new"]), encoding="utf-8")
    return dst
