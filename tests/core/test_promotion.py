"""The serving digest, the flavor-list splice of ``kitchen promote --write``, the trusted
keys file, and ``policy.promotion-evidence`` over the example's index (no servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.errors import ConfigError
from kitchen_gitops.evidence import load_trusted_keys
from kitchen_gitops.model import load_catalog
from kitchen_gitops.pipeline import plan, validate
from kitchen_gitops.promotion import digest_of, edit_flavor_list
from kitchen_gitops.serving_digest import FLAVOR_FIELDS, flavor_digest, service_digest
from tests.conform.conform_support import new_signing_key

# ---------------------------------------------------------------- digests


def _services(root: Path, env: str) -> dict[str, str]:
    outcome = plan(root, [env])
    return {f"{s.namespace}/{s.name}": service_digest(s) for s in outcome.plans[env].services}


def test_flavor_digest_is_the_same_in_every_environment_and_follows_the_bytes(example_repo: Path) -> None:
    catalog = validate(example_repo).catalog
    before = digest_of(catalog, "faq-answerer@v3")
    assert before.startswith("sha256:") and len(before) == 71
    flavor = example_repo / "catalog/flavors/faq-answerer@v3.yaml"
    text = flavor.read_text(encoding="utf-8")
    pin = text.split("adapter_model.safetensors:", 1)[1].split()[0].strip("\"'")
    flavor.write_text(text.replace(pin, "f" * 64), encoding="utf-8")
    assert digest_of(validate(example_repo).catalog, "faq-answerer@v3") != before
    assert digest_of(validate(example_repo).catalog, "ticket-router@v1-2") == digest_of(catalog, "ticket-router@v1-2")


def test_base_bytes_change_every_flavor_digest_on_it(example_repo: Path) -> None:
    catalog = validate(example_repo).catalog
    base = next(iter(catalog.bases.values()))
    on_it = sorted(ref for ref, f in catalog.flavors.items() if str(f.base) == base.ref)
    path = catalog.documents[("Base", base.ref)].path
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(base.files[0].sha256, "e" * 64, 1), encoding="utf-8")
    after = validate(example_repo).catalog
    assert on_it and all(digest_of(after, r) != digest_of(catalog, r) for r in on_it)


def test_service_digest_covers_vllm_arguments_and_image(example_repo: Path) -> None:
    before = _services(example_repo, "staging")
    env = example_repo / "environments/staging.yaml"
    text = env.read_text(encoding="utf-8")
    env.write_text(text.replace("max_num_seqs: 128", "max_num_seqs: 96"), encoding="utf-8")
    args = _services(example_repo, "staging")
    assert all(args[k] != before[k] for k in before)
    env.write_text(text.replace("vllm-openai@sha256:3b1f", "vllm-openai@sha256:3b1e"), encoding="utf-8")
    image = _services(example_repo, "staging")
    assert all(image[k] != before[k] for k in before)
    env.write_text(text, encoding="utf-8")
    assert _services(example_repo, "staging") == before  # deterministic


def test_a_part_a_flavor_does_not_have_leaves_its_digest_alone(example_repo: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a field to FLAVOR_FIELDS (one line) keeps the digest of flavors without it."""
    import kitchen_gitops.serving_digest as sd

    catalog = validate(example_repo).catalog
    flavor = catalog.flavors["faq-answerer@v3"]
    base = catalog.bases[str(flavor.base)]
    before = flavor_digest(flavor, base)
    monkeypatch.setattr(sd, "FLAVOR_FIELDS", (*FLAVOR_FIELDS, ("not_in_the_model", lambda f: None)))
    assert sd.flavor_digest(flavor, base) == before
    monkeypatch.setattr(sd, "FLAVOR_FIELDS", (*FLAVOR_FIELDS, ("rank", lambda f: f.rank)))
    assert sd.flavor_digest(flavor, base) != before


def test_the_rendered_expectations_carry_the_digests(example_repo: Path) -> None:
    from kitchen_gitops.conform.expectations import build_expectations

    outcome = plan(example_repo, ["prod"])
    exp = build_expectations(outcome.catalog, outcome.plans["prod"])
    assert exp.cluster == "ocp-prod-osaka"
    for svc, planned in zip(exp.services, outcome.plans["prod"].services, strict=True):
        assert svc.serving_digest == service_digest(planned)
        assert {f.ref: f.digest for f in svc.flavors} == {
            f.ref: digest_of(outcome.catalog, f.ref) for f in planned.flavors}


# ---------------------------------------------------------------- the flavor-list splice

BLOCK = """\
# a tenant
environments:
  staging:
    flavors:
      - a@v2   # newer
  prod:
    gpu_quota: 2
    flavors:
      - a@v1   # keep this comment
      - 'b@v1'
    replicas: 2
"""


def test_splice_replaces_the_version_and_keeps_every_other_byte() -> None:
    out = edit_flavor_list(BLOCK, "prod", {0: "a@v2", 1: "b@v3"}, [])
    assert out == BLOCK.replace("- a@v1   #", "- a@v2   #").replace("'b@v1'", "'b@v3'")


def test_splice_appends_in_the_list_style() -> None:
    out = edit_flavor_list(BLOCK, "prod", {}, ["c@v1", "d@v2"])
    assert out == BLOCK.replace("      - 'b@v1'\n", "      - 'b@v1'\n      - c@v1\n      - d@v2\n")
    flow = "environments:\n  prod: {gpu_quota: 1, flavors: [a@v1, b@v1]}  # flow\n"
    assert edit_flavor_list(flow, "prod", {1: "b@v2"}, ["c@v1"]) == \
        "environments:\n  prod: {gpu_quota: 1, flavors: [a@v1, b@v2, c@v1]}  # flow\n"
    empty = "environments:\n  prod:\n    flavors: []\n"
    assert edit_flavor_list(empty, "prod", {}, ["a@v1"]) == "environments:\n  prod:\n    flavors: [a@v1]\n"
    crlf = BLOCK.replace("\n", "\r\n")
    assert edit_flavor_list(crlf, "prod", {}, ["c@v1"]) == crlf.replace(
        "      - 'b@v1'\r\n", "      - 'b@v1'\r\n      - c@v1\r\n")


# ---------------------------------------------------------------- trusted keys


def _public_pem(tmp_path: Path) -> str:
    return new_signing_key(tmp_path / "k.pem")


def test_trusted_keys_file(tmp_path: Path) -> None:
    pem = "".join(f"      {line}\n" for line in _public_pem(tmp_path).strip().splitlines())
    (tmp_path / "evidence-keys.yaml").write_text(
        f"keys:\n  - name: stg\n    environments: [staging]\n    public_key: |\n{pem}", encoding="utf-8")
    keys = load_trusted_keys(tmp_path, tmp_path)
    assert [(k.name, sorted(k.environments)) for k in keys.values()] == [("stg", ["staging"])]


@pytest.mark.parametrize(("text", "where", "what"), [
    ("keys:\n  - name: stg\n    environments: [staging]\n    public_key: not a key\n", ":4:17",
     "expected an ed25519 public key"),
    ("keys:\n  - name: stg\n    environments: []\n    public_key: x\n", ":3:19", "expected the environments"),
    ("keys:\n  - name: stg\n    environments: [staging]\n    public_key: x\n    extra: 1\n", ":2:5",
     "expected name, environments and public_key"),
    ("keys: {}\n", ":1:1", "expected a mapping with one field, keys"),
])
def test_a_broken_keys_file_is_a_configuration_error_at_its_line(tmp_path: Path, text: str, where: str,
                                                                   what: str) -> None:
    (tmp_path / "evidence-keys.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_trusted_keys(tmp_path, tmp_path)
    assert f"evidence-keys.yaml{where}: {what}" in str(err.value)


# ---------------------------------------------------------------- policy.promotion-evidence in check


def _check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["check", "--root", str(root), "--env", "prod", "--no-render-check"])
    return rc, [line for line in capsys.readouterr().out.splitlines() if "(policy.promotion-evidence)" in line]


def test_the_example_passes_with_its_baseline(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(example_repo, capsys) == (0, [])


def test_a_version_prod_newly_serves_needs_evidence(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = example_repo / "catalog/tenants/customer-support.yaml"
    text = tenant.read_text(encoding="utf-8")
    i = text.index("  prod:")
    tenant.write_text(text[:i] + text[i:].replace("helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"),
                      encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1
    assert lines == ["catalog/tenants/customer-support.yaml:31:9: [error] no promotion evidence for "
                     "helpdesk-classifier@v2026-03-15 in evidence/prod/index.json; expected an entry for "
                     "helpdesk-classifier@v2026-03-15 (run `kitchen promote --env prod`) [env prod, "
                     "Flavor/helpdesk-classifier@v2026-03-15] (policy.promotion-evidence)"]


def test_the_baseline_covers_its_bytes_only(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flavor = example_repo / "catalog/flavors/ticket-router@v1-2.yaml"
    text = flavor.read_text(encoding="utf-8")
    pin = text.split("adapter_config.json:", 1)[1].split()[0].strip("\"'")
    flavor.write_text(text.replace(pin, "a" * 64), encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 1
    assert lines[0].startswith("catalog/tenants/customer-support.yaml:33:9: [error] ticket-router@v1-2 is served "
                               "with digest sha256:")
    assert "other adapter or base bytes than were promoted" in lines[0]


def test_a_changed_source_needs_new_evidence(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same adapter pins read from another place: the digest covers the source, and the
    finding says what changed, at the flavor's source line (once, whoever serves it)."""
    flavor = example_repo / "catalog/flavors/ticket-router@v1-2.yaml"
    text = flavor.read_text(encoding="utf-8")
    flavor.write_text(text.replace("source: s3://lora/ticket-router/v1-2/", "source: s3://lora/ticket-router/v1-3/"),
                      encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1
    assert lines == ["catalog/flavors/ticket-router@v1-2.yaml:8:1: [error] ticket-router@v1-2 loads from "
                     "s3://lora/ticket-router/v1-3/, but the evidence in evidence/prod/index.json proved it from "
                     "s3://lora/ticket-router/v1-2/: a changed source needs new evidence; expected source "
                     "s3://lora/ticket-router/v1-2/, or new evidence for s3://lora/ticket-router/v1-3/ "
                     "(kitchen promote --env prod) [env prod, Flavor/ticket-router@v1-2] (policy.promotion-evidence)"]


def test_the_digest_pins_the_source_without_the_recorded_one(example_repo: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An index entry that records no source (or whose source was edited along) still pins it
    through its digest."""
    index = example_repo / "evidence/prod/index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    del doc["flavors"]["ticket-router@v1-2"]["source"]
    index.write_text(json.dumps(doc), encoding="utf-8")
    assert _check(example_repo, capsys) == (0, [])
    flavor = example_repo / "catalog/flavors/ticket-router@v1-2.yaml"
    flavor.write_text(flavor.read_text(encoding="utf-8").replace("s3://lora/ticket-router/v1-2/",
                                                                 "s3://lora/ticket-router/v1-3/"), encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 1
    assert lines[0].startswith("catalog/tenants/customer-support.yaml:33:9: [error] ticket-router@v1-2 is served "
                               "with digest sha256:")


def test_an_entry_of_the_digest_without_source_is_not_accepted(example_repo: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An index written before the digest covered the source: each entry says so."""
    from kitchen_gitops.promotion import legacy_digest_of

    catalog = validate(example_repo).catalog
    index = example_repo / "evidence/prod/index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    for ref, entry in doc["flavors"].items():
        entry["digest"] = legacy_digest_of(catalog, ref)
        del entry["source"]
    index.write_text(json.dumps(doc), encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 6
    assert all("records its digest of format 1, which does not pin the adapter's source" in line for line in lines)


def test_the_digest_of_format_1_is_made_only_for_an_entry_of_other_bytes(
        example_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry that holds the flavor's digest is not compared with its digest of format 1
    (the two formats hash different texts): that digest is made only for an entry of other
    bytes, to say which of the two it is."""
    from kitchen_gitops import promotion, serving_digest

    made: list[str] = []
    original = serving_digest.flavor_digest_v1

    def counted(flavor: Any, base: Any) -> str:
        made.append(f"{flavor.name}@{flavor.version}")
        return original(flavor, base)

    monkeypatch.setattr(promotion, "flavor_digest_v1", counted)
    assert _check(example_repo, capsys) == (0, [])
    assert made == []
    index = example_repo / "evidence/prod/index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    doc["flavors"]["ticket-router@v1-2"]["digest"] = "sha256:" + "0" * 64
    index.write_text(json.dumps(doc), encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 1 and "records sha256:" + "0" * 64 in lines[0]
    assert made == ["ticket-router@v1-2"]


def test_without_an_index_every_version_is_a_finding(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example_repo / "evidence/prod/index.json").unlink()
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 6


def test_a_broken_index_is_exit_2(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example_repo / "evidence/prod/index.json").write_text(json.dumps({"format": "x"}), encoding="utf-8")
    assert main(["check", "--root", str(example_repo), "--env", "prod", "--no-render-check"]) == 2
    assert "evidence/prod/index.json: expected {format: kitchen-evidence-index/1" in capsys.readouterr().err


def test_dev_and_staging_need_no_index(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example_repo / "evidence/prod/index.json").unlink()
    assert main(["check", "--root", str(example_repo), "--env", "dev", "--env", "staging",
                 "--no-render-check"]) == 0


def test_promote_needs_a_source_environment(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote", "--root", str(example_repo), "--env", "dev"]) == 2
    assert "environment dev promotes from no environment" in capsys.readouterr().err
    assert main(["promote", "--root", str(example_repo), "--env", "nope"]) == 2
    assert main(["promote", "--root", str(example_repo), "--env", "prod", "--now", "yesterday"]) == 2


def test_promote_with_nothing_new_is_exit_0(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote", "--root", str(example_repo), "--env", "prod"]) == 0
    assert "nothing to promote" in capsys.readouterr().out


# ---------------------------------------------------------------- the rendered Job


def test_the_rendered_job_signs_and_uploads_with_secrets_it_references(example_repo: Path) -> None:
    import yaml

    job = yaml.safe_load((example_repo / "rendered/staging/kitchen-conformance/job-kitchen-conformance.yaml")
                         .read_text(encoding="utf-8"))
    pod = job["spec"]["template"]["spec"]
    serving = next(c for c in pod["containers"] if c["name"] == "serving")
    args = serving["args"]

    def arg(flag: str) -> str:
        return str(args[args.index(flag) + 1])

    assert arg("--evidence-s3") == "s3://kitchen-evidence/staging/"
    assert arg("--s3-endpoint") == "https://minio.minio-stg.svc:9000"
    assert arg("--evidence-key") == "/etc/kitchen-evidence-key/signing-key.pem"
    assert arg("--ca-bundle") == "/etc/kitchen-evidence-ca/cabundle.crt"
    assert serving["envFrom"] == [{"secretRef": {"name": "kitchen-s3-credentials"}}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["evidence-key"]["secret"] == {
        "secretName": "kitchen-evidence-signing-key",
        "items": [{"key": "signing-key.pem", "path": "signing-key.pem"}]}
    assert volumes["evidence-ca"]["configMap"] == {"name": "kitchen-internal-ca"}
    mounts = {m["name"]: m for m in serving["volumeMounts"]}
    assert mounts["evidence-key"] == {"name": "evidence-key", "mountPath": "/etc/kitchen-evidence-key",
                                      "readOnly": True}
    gpu = next(c for c in pod["containers"] if c["name"] == "gpu")
    assert "envFrom" not in gpu and "evidence-key" not in {m["name"] for m in gpu["volumeMounts"]}
    # dev speaks plain HTTP to its S3 and has no CA bundle
    dev = (example_repo / "rendered/dev/kitchen-conformance/job-kitchen-conformance.yaml").read_text(encoding="utf-8")
    assert '"http://minio.minio-dev.svc:9000"' in dev and "--ca-bundle" not in dev


def test_promote_takes_the_source_the_floor_names(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = example_repo / "environments/prod.yaml"
    env.write_text(env.read_text(encoding="utf-8").replace("promotes_from: staging", "promotes_from: dev"),
                   encoding="utf-8")
    assert main(["promote", "--root", str(example_repo), "--env", "prod"]) == 2
    assert "but its floor in policies/data.yaml says staging" in capsys.readouterr().err


def test_baseline_needs_a_reason_and_adds_only_what_has_no_entry(example_repo: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for blank in ("", "  \t "):
        assert main(["promote", "--root", str(example_repo), "--env", "prod", "--baseline", blank]) == 2
        assert "--baseline needs a reason" in capsys.readouterr().err
    index = example_repo / "evidence/prod/index.json"
    before = json.loads(index.read_text(encoding="utf-8"))["flavors"]
    del before["faq-answerer@v3"]
    index.write_text(json.dumps({"format": "kitchen-evidence-index/1", "environment": "prod", "flavors": before}),
                     encoding="utf-8")
    assert main(["promote", "--root", str(example_repo), "--env", "prod", "--baseline", "adopted", "--now",
                 "2026-12-01T00:00:00Z"]) == 0
    after = json.loads(index.read_text(encoding="utf-8"))["flavors"]
    assert after == {**before, "faq-answerer@v3": {"baseline": "adopted", "digest": after["faq-answerer@v3"]["digest"],
                                                    "recorded": "2026-12-01", "source": "s3://lora/faq-answerer/v3/"}}


def test_a_baseline_counts_once_security_pins_it(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An index's baseline entry alone is no evidence (a pull request could write one); the
    gate honours it once the floor in policies/data.yaml pins its digest, which
    ``promote --baseline`` prints for security."""
    tenant = example_repo / "catalog/tenants/customer-support.yaml"
    text = tenant.read_text(encoding="utf-8")
    i = text.index("  staging:")
    tenant.write_text(text[:i] + text[i:].replace("helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"),
                      encoding="utf-8")
    capsys.readouterr()
    assert main(["promote", "--root", str(example_repo), "--env", "prod", "--baseline", "adopted"]) == 0
    out = capsys.readouterr().out.splitlines()
    digest = digest_of(load_catalog(example_repo)[0], "helpdesk-classifier@v2026-03-15")
    pin = f'  helpdesk-classifier@v2026-03-15: "{digest}"'
    assert out[-2:] == ["the gate honours them once security pins them in policies/data.yaml, "
                        "gate_floors.environments.prod.promotion_baseline:", pin]
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and len(lines) == 1
    assert "evidence/prod/index.json enters it as its baseline (served before promotion evidence was required), " \
           "but the floor prod in policies/data.yaml does not pin it" in lines[0]
    data = example_repo / "policies/data.yaml"
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("      promotion_baseline:", f"      promotion_baseline:\n      {pin}", 1),
                    encoding="utf-8")
    assert _check(example_repo, capsys) == (0, [])
    # the pin names the bytes: other bytes under the version are not what security accepted
    data.write_text(text.replace("      promotion_baseline:", f"      promotion_baseline:\n      {pin[:-3]}00\"", 1),
                    encoding="utf-8")
    rc, lines = _check(example_repo, capsys)
    assert rc == 1 and "does not pin it" in lines[0]


def test_a_linked_index_is_refused(example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = example_repo / "evidence/prod/index.json"
    elsewhere = tmp_path / "index.json"
    elsewhere.write_bytes(index.read_bytes())
    index.unlink()
    index.symlink_to(elsewhere)
    assert main(["check", "--root", str(example_repo), "--env", "prod", "--no-render-check"]) == 2
    assert "evidence/prod/index.json: a link" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"[" * 200_000, b'{"record": NaN, "signature": {}}',
                                     b'{"record": {}, "record": {}, "signature": {}}', b"\xff\xfe",
                                     b"x" * (16 << 20) + b"x"])
def test_hostile_evidence_files_are_refused_with_a_reason(example_repo: Path, tmp_path: Path, content: bytes,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    tenant = example_repo / "catalog/tenants/customer-support.yaml"
    text = tenant.read_text(encoding="utf-8")
    i = text.index("  staging:")
    tenant.write_text(text[:i] + text[i:].replace("helpdesk-classifier@v2026-02-01", "helpdesk-classifier@v2026-03-15"),
                      encoding="utf-8")
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev/record.json").write_bytes(content)
    capsys.readouterr()
    assert main(["promote", "--root", str(example_repo), "--env", "prod", "--evidence", str(tmp_path / "ev"),
                 "--write"]) == 1
    out = capsys.readouterr().out
    assert "record.json: [warning] " in out and "(promotion.evidence-invalid)" in out
    assert "(promotion.evidence-missing)" in out and "Traceback" not in out
