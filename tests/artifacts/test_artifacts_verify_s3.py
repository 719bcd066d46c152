"""Acceptance: ``kitchen artifacts verify`` against a real S3 server (SeaweedFS) and real
PEFT adapters of a tiny base, one case per problem a user meets."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitchen_gitops.cli import main
from tests.artifacts.artifact_case import (
    OTHER_BUCKET_READER,
    ArtifactRepo,
    FlavorSpec,
    ensure_bucket,
)
from tests.support.s3_server import SeaweedS3

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    rc = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def verify(repo: ArtifactRepo, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(capsys, ["artifacts", "verify", *repo.args(*extra)])


def line_of(repo: ArtifactRepo, rel: str, needle: str) -> int:
    for i, line in enumerate((repo.root / rel).read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {rel}")


def findings(out: str) -> list[dict[str, Any]]:
    return list(json.loads(out)["findings"])


def test_all_good(repo: ArtifactRepo, model_kit: dict[str, Any],
                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("faq", "summarise", "classify"):
        repo.add_flavor(FlavorSpec(name, model_kit["adapters"][name],
                                   rank=model_kit["ranks"][name],
                                   alpha={"faq": 16, "summarise": 32, "classify": 32}[name]))
    repo.finish()
    rc, out, err = verify(repo, capsys)
    assert rc == 0, out + err
    assert out.startswith("artifacts ok: 12 files")
    assert "of 1 bases and 3 flavors checked in dev" in out
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 0
    assert json.loads(out)["summary"]["error"] == 0


def test_checksum_mismatch_points_at_the_pin(repo: ArtifactRepo, model_kit: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"],
                               pins={"adapter_model.safetensors": "b" * 64}))
    repo.finish()
    rc, out, _ = verify(repo, capsys)
    assert rc == 1
    line = line_of(repo, "catalog/flavors/faq.yaml", "adapter_model.safetensors:")
    actual = (model_kit["adapters"]["faq"] / "adapter_model.safetensors").read_bytes()
    import hashlib

    digest = hashlib.sha256(actual).hexdigest()
    expected_line = (
        f"catalog/flavors/faq.yaml:{line}:30: [error] sha256 of "
        f"s3://lora/{repo.prefix}/faq/v1/adapter_model.safetensors is {digest}, the catalog "
        f"pins {'b' * 64}; expected sha256 {'b' * 64}; if the new file is approved, run "
        "`kitchen artifacts lock` [env dev, Flavor/faq@v1] (artifacts.checksum-mismatch)")
    assert out.splitlines()[0] == expected_line
    assert out.splitlines()[-1] == "1 error(s), 0 warning(s), 0 info, 0 waived"


def test_missing_file(repo: ArtifactRepo, model_kit: dict[str, Any],
                      capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    repo.s3.client().remove_object("lora", f"{repo.prefix}/faq/v1/adapter_config.json")
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    (f,) = findings(out)
    assert f["rule_id"] == "artifacts.missing-file"
    assert f["message"] == (f"s3://lora/{repo.prefix}/faq/v1/adapter_config.json is not in "
                            "storage (environment dev)")
    assert f["location"] == {"file": "catalog/flavors/faq.yaml",
                             "line": line_of(repo, "catalog/flavors/faq.yaml",
                                             "adapter_config.json:"), "col": 3}


def test_rank_mismatch(repo: ArtifactRepo, model_kit: dict[str, Any],
                       capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"], rank=16))
    repo.finish()
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    (f,) = findings(out)
    assert f["rule_id"] == "artifacts.rank-mismatch"
    assert "the catalog declares rank 16" in f["message"] and "has r = 8" in f["message"]
    assert f["expected"] == "rank: 8"
    assert f["location"] == {"file": "catalog/flavors/faq.yaml",
                             "line": line_of(repo, "catalog/flavors/faq.yaml", "rank:"),
                             "col": 7}


@pytest.mark.parametrize("forged_name", [False, True])
def test_adapter_for_another_base_caught_by_shapes(
        repo: ArtifactRepo, model_kit: dict[str, Any], capsys: pytest.CaptureFixture[str],
        tmp_path: Path, forged_name: bool) -> None:
    """small-faq was trained on tiny-llama-small (hidden 64); the catalog pairs it with
    tiny-llama (hidden 128).  Even when its config claims the right base, shapes tell."""
    adapter = model_kit["small_adapters"]["small-faq"]
    if forged_name:
        forged = tmp_path / "forged"
        forged.mkdir()
        (forged / "adapter_model.safetensors").write_bytes(
            (adapter / "adapter_model.safetensors").read_bytes())
        cfg = json.loads((adapter / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = "tiny-llama"
        (forged / "adapter_config.json").write_text(json.dumps(cfg))
        adapter = forged
    repo.add_flavor(FlavorSpec("faq", adapter))
    repo.finish()
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    by_rule = {f["rule_id"]: f for f in findings(out)}
    shape = by_rule["artifacts.adapter-shape"]
    assert shape["message"].startswith(
        "adapter_model.safetensors does not fit base tiny-llama@1 (hidden_size 128, 2 layers, "
        "4 heads, 2 KV heads of 32): base_model.model.model.layers.0.self_attn.q_proj.lora_A"
        ".weight has shape [8, 64]: q_proj of the base has 128 inputs, the adapter 64")
    assert "[8 of 8 LoRA tensors]" in shape["message"]
    assert shape["location"]["line"] == line_of(repo, "catalog/flavors/faq.yaml", "base:")
    assert ("artifacts.base-mismatch" in by_rule) is not forged_name
    if not forged_name:
        assert "trained on 'tiny-llama-small'" in by_rule["artifacts.base-mismatch"]["message"]


def test_truncated_safetensors(repo: ArtifactRepo, model_kit: dict[str, Any],
                               capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A partial copy, pinned as it is (a lock of a broken upload): only the header tells."""
    src = model_kit["adapters"]["faq"]
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "adapter_config.json").write_bytes((src / "adapter_config.json").read_bytes())
    data = (src / "adapter_model.safetensors").read_bytes()
    (cut / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    repo.add_flavor(FlavorSpec("faq", cut))
    repo.finish()
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    (f,) = findings(out)
    assert f["rule_id"] == "artifacts.safetensors-invalid"
    assert f["message"].startswith(
        f"s3://lora/{repo.prefix}/faq/v1/adapter_model.safetensors is not a whole safetensors "
        f"file: truncated: {len(data) // 2} bytes, the header describes {len(data)}")


def test_not_safetensors_and_malformed_config(repo: ArtifactRepo, model_kit: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8,}')
    (junk / "adapter_model.safetensors").write_bytes(b"PK\x03\x04 this is a zip, not tensors")
    repo.add_flavor(FlavorSpec("faq", junk))
    repo.finish()
    rc, out, _ = verify(repo, capsys)
    assert rc == 1
    assert ("adapter_config.json is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 30") in out
    assert "(artifacts.adapter-config-invalid)" in out
    assert "adapter_model.safetensors is not a whole safetensors file: header length" in out
    assert "not a safetensors file" in out


def test_missing_bucket(repo: ArtifactRepo, model_kit: dict[str, Any],
                        capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"],
                               source="s3://no-such-bucket/faq/v1/"))
    repo.finish()
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    (f,) = findings(out)
    assert f["rule_id"] == "artifacts.bucket-missing"
    assert f["message"] == (f"Flavor faq@v1: bucket 'no-such-bucket' does not exist on S3 "
                            f"endpoint {repo.endpoint} (environment dev)")
    assert f["location"]["line"] == line_of(repo, "catalog/flavors/faq.yaml", "source:")


@pytest.mark.parametrize("which", ["secret", "access-key"])
def test_wrong_credentials(repo: ArtifactRepo, model_kit: dict[str, Any],
                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                           which: str) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    if which == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "NOBODY")
    rc, out, err = verify(repo, capsys)
    assert rc == 2
    assert out == ""
    code = "SignatureDoesNotMatch" if which == "secret" else "InvalidAccessKeyId"
    assert err.startswith(f"kitchen: error: S3 endpoint {repo.endpoint} (environment dev) "
                          f"rejected the credentials ({code}: ")
    assert err.rstrip().endswith("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in the "
                                 "cluster they come from Secret kitchen-s3-credentials")


def test_no_credentials(repo: ArtifactRepo, model_kit: dict[str, Any],
                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    rc, _, err = verify(repo, capsys)
    assert rc == 2
    assert "no credentials for S3 endpoint" in err and "AWS_SECRET_ACCESS_KEY" in err


def test_server_stopped(tmp_path: Path, model_kit: dict[str, Any],
                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    server = SeaweedS3(tmp_path / "s3").start()
    try:
        ensure_bucket(server, "lora")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
        repo = ArtifactRepo(tmp_path / "repo", s3=server, endpoint=server.endpoint)
        repo.add_base("tiny-llama", "1", model_kit["base"])
        repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
        repo.finish()
        assert verify(repo, capsys)[0] == 0
    finally:
        server.stop()
    rc, out, err = verify(repo, capsys, "--timeout", "2")
    assert rc == 2
    assert out == ""
    assert err == (f"kitchen: error: cannot reach S3 endpoint {repo.endpoint} (environment dev): "
                   "connection refused; is the server running and the endpoint right? "
                   "(override it with --s3-endpoint)\n")


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join()
    for c in held:
        c.close()
    sock.close()


def test_endpoint_timeout(repo: ArtifactRepo, model_kit: dict[str, Any],
                          capsys: pytest.CaptureFixture[str], silent_endpoint: str) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    rc, _, err = verify(repo, capsys, "--s3-endpoint", silent_endpoint, "--timeout", "0.5")
    assert rc == 2
    assert err == (f"kitchen: error: S3 endpoint {silent_endpoint} (environment dev) did not "
                   "answer within 0.5s (read timeout; raise it with --timeout)\n")


def test_tls_to_a_plain_http_endpoint(repo: ArtifactRepo, model_kit: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.use_https = True
    repo.finish()
    rc, _, err = verify(repo, capsys, "--timeout", "2")
    assert rc == 2
    assert err.startswith(f"kitchen: error: TLS handshake with S3 endpoint {repo.endpoint} "
                          "(environment dev) failed: ")
    assert "use_https: false" in err


def test_base_config_mismatch_on_the_pvc_mirror(repo: ArtifactRepo, model_kit: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    base_yaml = repo.root / "catalog/bases/tiny-llama.yaml"
    base_yaml.write_text(base_yaml.read_text().replace("num_key_value_heads: 2",
                                                       "num_key_value_heads: 4"))
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    by_rule = {f["rule_id"]: f for f in findings(out)}
    cfg = by_rule["artifacts.base-config"]
    assert cfg["message"] == ("pvc://models/tiny-llama/1/config.json has num_key_value_heads 2, "
                              "the catalog declares 4")
    assert cfg["location"]["line"] == line_of(repo, "catalog/bases/tiny-llama.yaml",
                                              "num_key_value_heads")
    # the adapter's k/v matrices are now judged against 4 KV heads: shapes disagree too
    assert "artifacts.adapter-shape" in by_rule
    assert "v_proj of the base has 128 outputs, the adapter 64" in \
        by_rule["artifacts.adapter-shape"]["message"]


def test_missing_pvc_mirror_is_a_usage_error(repo: ArtifactRepo, model_kit: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    rc, _, err = run(capsys, ["artifacts", "verify", "--root", str(repo.root)])
    assert rc == 2
    assert "pass --pvc-mirror DIR" in err
    rc, out, _ = run(capsys, ["artifacts", "verify", "--root", str(repo.root), "--flavors-only"])
    assert rc == 0
    assert "2 files" in out and "0 bases and 1 flavors" in out


def test_sharded_base_and_its_index(tmp_path: Path, model_kit: dict[str, Any],
                                    s3_credentials: SeaweedS3,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.tiny_model import build_tiny_base

    sharded = build_tiny_base(tmp_path / "sharded", shards=2)
    repo = ArtifactRepo(tmp_path / "repo", s3=s3_credentials, endpoint=s3_credentials.endpoint,
                        prefix="sharded-" + tmp_path.name[-8:])
    repo.add_base("tiny-llama", "1", sharded)
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish(envs=("dev", "prod"))
    rc, out, _ = verify(repo, capsys)
    assert rc == 0, out
    # two environments, one storage: every file is read once
    assert out.startswith("artifacts ok: 10 files") and out.rstrip().endswith("in dev, prod")

    base_yaml = repo.root / "catalog/bases/tiny-llama.yaml"
    lines = base_yaml.read_text().splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if "model-00002-of-00002.safetensors" in line)
    base_yaml.write_text("".join(lines[:i] + lines[i + 2:]))
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    both = findings(out)  # the base is served in both environments: a finding in each
    assert sorted(f["environment"] for f in both) == ["dev", "prod"]
    assert len({(f["message"], f["location"]["line"]) for f in both}) == 1
    f = both[0]
    assert f["rule_id"] == "artifacts.required-file"
    assert f["message"] == ("model.safetensors.index.json of base tiny-llama@1 names shard "
                            "model-00002-of-00002.safetensors, which the catalog does not pin")
    assert f["location"]["line"] == line_of(repo, "catalog/bases/tiny-llama.yaml", "files:")


def test_access_denied_with_valid_credentials(repo: ArtifactRepo, model_kit: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the server accepts, for an identity that may read only another bucket."""
    from minio.error import S3Error

    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.finish()
    reader = repo.s3.identity(OTHER_BUCKET_READER)
    # not vacuous: the identity is valid (it lists its own bucket) and denied on "lora"
    assert list(repo.s3.client(identity=OTHER_BUCKET_READER).list_objects("other")) == []
    for denied in (
        lambda c: list(c.list_objects("lora", prefix=f"{repo.prefix}/", recursive=True)),
        lambda c: c.get_object("lora", f"{repo.prefix}/faq/v1/adapter_config.json"),
    ):
        with pytest.raises(S3Error) as exc:
            denied(repo.s3.client(identity=OTHER_BUCKET_READER))
        assert exc.value.code == "AccessDenied"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader.secret_key)

    rc, out, err = verify(repo, capsys)
    assert rc == 1
    source = f"s3://lora/{repo.prefix}/faq/v1/"
    message = (f"Flavor faq@v1: access denied to {source} on S3 endpoint {repo.endpoint} "
               "(environment dev): the credentials may not read this bucket")
    line = line_of(repo, "catalog/flavors/faq.yaml", "source:")
    assert out.splitlines() == [
        f"catalog/flavors/faq.yaml:{line}:9: [error] {message}; expected {source} readable "
        "with the environment's credentials [env dev, Flavor/faq@v1] (artifacts.access-denied)",
        "1 error(s), 0 warning(s), 0 info, 0 waived",
    ]
    assert err.startswith("artifacts FAILED: ")
    rc, out, _ = verify(repo, capsys, "-f", "json")
    assert rc == 1
    (f,) = findings(out)
    assert f["rule_id"] == "artifacts.access-denied"
    assert f["message"] == message
    assert f["location"] == {"file": "catalog/flavors/faq.yaml", "line": line, "col": 9}


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (valid for 127.0.0.1):
    ``(host:port, certificate file)``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"not S3\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # failed handshakes are the point: keep them off stderr

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                   do_handshake_on_connect=False)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", cert
    finally:
        httpd.shutdown()
        t.join()
        httpd.server_close()


def test_tls_self_signed_certificate(repo: ArtifactRepo, model_kit: dict[str, Any],
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch,
                                     self_signed_https: tuple[str, Path]) -> None:
    endpoint, cert = self_signed_https
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    # not vacuous: the server speaks TLS, and its certificate is fine once trusted
    assert httpx.get(f"https://{endpoint}/", verify=ssl.create_default_context(cafile=cert),
                     timeout=5).text == "not S3\n"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://{endpoint}/", timeout=5)
    repo.add_flavor(FlavorSpec("faq", model_kit["adapters"]["faq"]))
    repo.endpoint = endpoint
    repo.use_https = True
    repo.finish()
    rc, out, err = verify(repo, capsys, "--timeout", "2")
    assert rc == 2
    assert out == ""
    # "self-signed" in OpenSSL 3, "self signed" in 1.1
    assert re.fullmatch(
        rf"kitchen: error: TLS handshake with S3 endpoint {re.escape(endpoint)} \(environment "
        r"dev\) failed: certificate verify failed: self[- ]signed certificate "
        r"\(CERTIFICATE_VERIFY_FAILED\); pass --ca-bundle FILE for a private CA, or set "
        r"use_https: false in the environment for a plain-HTTP endpoint\n", err), err
    # with the certificate trusted the handshake passes: what is left is that it is not S3
    rc, out, err = verify(repo, capsys, "--timeout", "2", "--ca-bundle", str(cert))
    assert rc == 2
    assert out == ""
    assert err == (f"kitchen: error: S3 endpoint {endpoint} (environment dev) does not answer "
                   "like S3: its reply is not XML (syntax error: line 1, column 0)\n")
