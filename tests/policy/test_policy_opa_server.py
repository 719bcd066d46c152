"""The OPA-server backend, end to end through opa-python-client over HTTP.

The server is tests/policy/opa_standin.py: a loopback stand-in for the `opa` binary (which
cannot be had here) implementing the REST endpoints the client uses on the real OPA engine.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.pipeline import CheckOptions, check
from kitchen_gitops.policy.engines import OpaServerEngine
from kitchen_gitops.policy.errors import EngineUnavailable, PolicyError
from kitchen_gitops.policy.library import load_library
from tests.policy.opa_standin import opa_standin
from tests.policy.policy_cases import REPO, build_repo, cases


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    with opa_standin() as url:
        yield url


def test_example_catalog_is_clean_on_the_server(opa_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--root", str(REPO), "--opa-url", opa_url]) == 0
    assert "check ok" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["lora-rank", "auth-required", "promotion-order"])
def test_server_and_embedded_engine_give_the_same_findings(opa_url: str, tmp_path: Path, name: str) -> None:
    case = next(c for c in cases() if c.name == name)
    root = build_repo(case, tmp_path / "repo")
    server = check(CheckOptions(root, tuple(case.environments or ()), opa_url=opa_url, render_check=False))
    embedded = check(CheckOptions(root, tuple(case.environments or ()), render_check=False))
    assert server.findings == embedded.findings
    assert any(f.rule_id == case.rule for f in server.findings)


def test_env_var_selects_the_server(opa_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_OPA_URL", opa_url)
    assert main(["check", "--root", str(REPO), "--env", "dev"]) == 0


def test_bad_policy_on_the_server_names_file_and_line(opa_url: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    (policies / "rules").mkdir(parents=True)
    (policies / "rules" / "bad.rego").write_text(
        "# METADATA\n# title: Bad\n# custom:\n#   id: policy.bad\n#   severity: error\n"
        "package kitchen.rules.bad\n\nviolation contains v if {\n\tv := nope.missing(1)\n}\n")
    engine = OpaServerEngine(opa_url)
    lib = load_library(policies, tmp_path)
    with pytest.raises(PolicyError) as err:
        engine.load(lib.policy_modules(), {})
    assert str(err.value).startswith("policies/rules/bad.rego:9:")
    assert "unknown function" in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["check", "--root", str(REPO), "--opa-url", url]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the OPA server at {url}" in err and "Traceback" not in err


def test_server_timeout_is_a_clear_error() -> None:
    # a socket that accepts connections and never answers
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    continue

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        try:
            engine = OpaServerEngine(f"http://127.0.0.1:{port}", timeout=0.5)
            lib = load_library(REPO / "policies", REPO)
            with pytest.raises(EngineUnavailable, match=r"did not answer within 0.5s"):
                engine.load(lib.policy_modules(), lib.data)
        finally:
            stop.set()
            t.join(timeout=2)
            for s in held:
                s.close()
