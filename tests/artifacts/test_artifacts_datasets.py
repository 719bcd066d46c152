"""Evaluation sets as pinned artifacts: ``artifacts verify`` and ``lock`` on sets of the
repository and sets in S3 (SeaweedFS), and the conformance job fetching a set from S3.

Acceptance folders ``tests/cases/datasets/<case>/``: ``evaluation.yaml`` (the flavor's
``evaluation:`` block, ``<prefix>`` standing for the test's S3 prefix), files of the
repository (``evaluations/…``), objects to upload (``s3/…``, below the prefix),
``case.yaml`` (command and exit code) and ``expected.txt`` (stdout, ``<prefix>`` again).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitchen_gitops.cli import main
from kitchen_gitops.conform.evaluation import DatasetUnavailable, EvaluationTarget, check_evaluation, fetch_dataset
from kitchen_gitops.conform.expectations import DatasetSpec, EvaluationSpec, FlavorExpectation, S3Spec
from kitchen_gitops.findings import Status
from tests.artifacts.artifact_case import ArtifactRepo, FlavorSpec
from tests.conftest import CASES
from tests.support.s3_server import SeaweedS3

pytestmark = pytest.mark.slow

DATASET_CASES = sorted(p for p in (CASES / "datasets").iterdir() if p.is_dir())
GOOD = ('{"prompt": "How do I reset my password?", "reference": "portal"}\n'
        '{"prompt": "Where is the VPN client?", "reference": "Software Center"}\n')


def _faq(repo: ArtifactRepo, kit: dict[str, Any], evaluation: str) -> Path:
    repo.add_flavor(FlavorSpec("faq", kit["adapters"]["faq"], rank=8, alpha=16))
    repo.finish()
    flavor = repo.root / "catalog/flavors/faq.yaml"
    flavor.write_text(flavor.read_text() + evaluation.replace("<prefix>", repo.prefix))
    return flavor


@pytest.mark.parametrize("case", DATASET_CASES, ids=[p.name for p in DATASET_CASES])
def test_dataset_case(case: Path, repo: ArtifactRepo, model_kit: dict[str, Any],
                      capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    _faq(repo, model_kit, (case / "evaluation.yaml").read_text())
    for src in sorted(case.rglob("*")):
        rel = src.relative_to(case)
        if src.is_file() and rel.parts[0] == "evaluations":
            (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo.root / rel).write_bytes(src.read_bytes())
        elif src.is_file() and rel.parts[0] == "s3":
            repo.put(f"{repo.prefix}/{Path(*rel.parts[1:]).as_posix()}", src.read_bytes())
    rc = main([*spec["command"], *repo.args()])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert rc == spec["exit"], out + err
    shown = out.replace(repo.prefix, "<prefix>")
    expected = case / "expected.txt"
    if update_golden:
        expected.write_text(shown)
    assert shown == expected.read_text()


def test_lock_writes_the_pin_of_an_edited_set_and_nothing_else(
        repo: ArtifactRepo, model_kit: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    stale = hashlib.sha256(GOOD.encode()).hexdigest()
    flavor = _faq(repo, model_kit, "evaluation:  # scored after every sync\n  suite: faq-eval\n"
                  "  metric: contains\n  score: 1.0\n  threshold: 0.8\n  dataset:\n"
                  f"    path: evaluations/faq/v1.jsonl\n    sha256: '{stale}'  # pinned\n")
    edited = GOOD.replace("Software Center", "App Store")
    (repo.root / "evaluations/faq").mkdir(parents=True)
    (repo.root / "evaluations/faq/v1.jsonl").write_text(edited)
    before = flavor.read_text()
    assert main(["artifacts", "lock", "--check", *repo.args()]) == 1
    out = capsys.readouterr().out
    new = hashlib.sha256(edited.encode()).hexdigest()
    assert f"sha256 of evaluations/faq/v1.jsonl is {new}, the catalog pins {stale}" in out
    assert main(["artifacts", "lock", *repo.args()]) == 0
    capsys.readouterr()
    assert flavor.read_text() == before.replace(f"'{stale}'", f"'{new}'")
    assert main(["artifacts", "verify", *repo.args()]) == 0


# ---------------------------------------------------------------- the job's side


def _spec(server: SeaweedS3, uri: str, content: bytes) -> EvaluationSpec:
    return EvaluationSpec(
        metric="contains", threshold=0.5, recorded=1.0, tolerance=0.05,
        dataset=DatasetSpec(sha256=hashlib.sha256(content).hexdigest(), file=uri, uri=uri,
                            s3=S3Spec(endpoint=server.endpoint, use_https=False, secret="kitchen-s3-credentials")))


def test_the_job_fetches_a_set_from_s3(repo: ArtifactRepo, s3_credentials: SeaweedS3) -> None:
    key = f"{repo.prefix}/eval/faq-v1.jsonl"
    repo.put(key, GOOD.encode())
    spec = _spec(s3_credentials, f"s3://lora/{key}", GOOD.encode())
    assert fetch_dataset(spec.dataset) == GOOD.encode()
    missing = spec.dataset.model_copy(update={"uri": f"s3://lora/{repo.prefix}/eval/none.jsonl"})
    with pytest.raises(DatasetUnavailable, match="is not in storage"):
        fetch_dataset(missing)


def test_a_set_that_cannot_be_fetched_means_could_not_run(
        repo: ArtifactRepo, s3_credentials: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"{repo.prefix}/eval/faq-v1.jsonl"
    repo.put(key, GOOD.encode())
    spec = _spec(s3_credentials, f"s3://lora/{key}", GOOD.encode())
    flavor = FlavorExpectation(name="faq", ref="faq@v1", evaluation=spec)
    # the server is never asked: the set is fetched and checked first
    target = EvaluationTarget("http://127.0.0.1:9", "tiny-llama", "ns/isvc", None)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    res = check_evaluation(target, flavor)
    assert res.status is Status.ERROR
    (f,) = res.findings
    assert f.rule_id == "conform.evaluation" and "rejected the credentials" in f.message
    assert "Secret kitchen-s3-credentials" in f.message
    # uploaded again with other bytes: not the pinned set, a failure (nothing scored)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_credentials.secret_key)
    repo.put(key, GOOD.replace("portal", "kiosk").encode())
    res = check_evaluation(target, flavor)
    assert res.status is Status.FAIL and [f.rule_id for f in res.findings] == ["conform.evaluation.dataset"]


def test_a_set_in_s3_is_carried_in_and_a_set_of_the_repository_is_not(
        repo: ArtifactRepo, model_kit: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    key = f"{repo.prefix}/eval/faq-v1.jsonl"
    repo.put(key, GOOD.encode())
    _faq(repo, model_kit, "evaluation:\n  suite: faq-eval\n  metric: contains\n  score: 1.0\n  threshold: 0.8\n"
         f"  dataset:\n    uri: s3://lora/{key}\n    sha256: {hashlib.sha256(GOOD.encode()).hexdigest()}\n")
    out = tmp_path / "bundle"
    assert main(["bundle", "--env", "dev", "--out", str(out), "--with-files", *repo.args()]) == 0, \
        capsys.readouterr()
    rows = (out / "models.tsv").read_text().splitlines()
    (row,) = [r for r in rows if r.endswith(f"s3://lora/{key}")]
    assert "\tFlavor dataset faq@v1\t" in row
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out).returncode == 0
    # the same set in the repository travels with Git, not in the bundle
    flavor = repo.root / "catalog/flavors/faq.yaml"
    flavor.write_text(flavor.read_text().replace(f"uri: s3://lora/{key}", "path: evaluations/faq/v1.jsonl"))
    (repo.root / "evaluations/faq").mkdir(parents=True)
    (repo.root / "evaluations/faq/v1.jsonl").write_text(GOOD)
    again = tmp_path / "bundle2"
    assert main(["bundle", "--env", "dev", "--out", str(again), *repo.args()]) == 0
    assert "evaluations" not in (again / "models.tsv").read_text() + (again / "SHA256SUMS").read_text()
