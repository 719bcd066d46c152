"""Each command line parses into its command's ``Options``, with nothing run: every
command's ``execute`` is replaced by one that records what it was given (as
check-jsonschema tests its parser)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kitchen_gitops import commands, operations
from kitchen_gitops.artifacts.scan import StorageOptions
from kitchen_gitops.cli import main
from kitchen_gitops.commands import S3Options
from kitchen_gitops.commands import artifacts as artifacts_command
from kitchen_gitops.commands import bundle as bundle_command
from kitchen_gitops.commands import check as check_command
from kitchen_gitops.commands import conform as conform_command
from kitchen_gitops.commands import diff as diff_command
from kitchen_gitops.commands import plan as plan_command
from kitchen_gitops.commands import policy as policy_command
from kitchen_gitops.commands import promote as promote_command
from kitchen_gitops.commands import render as render_command
from kitchen_gitops.commands import validate as validate_command
from kitchen_gitops.findings import Result
from kitchen_gitops.report import Options as Display

R = Path("repo")
MIRROR = Path(__file__).parent  # a folder that exists
NO_ENV = ("KITCHEN_S3_ENDPOINT", "KITCHEN_PVC_MIRROR", "KITCHEN_OPA_URL", "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "GITHUB_ACTIONS")


def _storage(**values: Any) -> StorageOptions:
    return StorageOptions(**values)


def _serving(**values: Any) -> conform_command.ServingOptions:
    load = {"concurrency": None, "requests": None, "output_tokens": None, "prompt_tokens": None, "seed": None}
    defaults: dict[str, Any] = {
        "source": conform_command.ExpectationsSource(), "load": load,
        "evidence": conform_command.EvidenceOptions(None, None, None, S3Options())}
    return conform_command.ServingOptions(**{**defaults, **values})


# command line → (module, its execute's name, the Options it must receive)
CASES: list[tuple[list[str], Any, str, Any]] = [
    (["validate", "--root", "repo"], validate_command, "execute", validate_command.Options(R)),
    (["plan", "--root", "repo", "-e", "dev", "-e", "prod", "--format", "json"], plan_command, "execute",
     plan_command.Options(R, ("dev", "prod"), "json")),
    (["plan"], plan_command, "execute", plan_command.Options(Path("."), (), "table")),
    (["render", "--catalog", "repo", "--env", "dev", "--out", "o"], render_command, "execute",
     render_command.Options(R, ("dev",), Path("o"), False)),
    (["render", "--check"], render_command, "execute", render_command.Options(Path("."), (), None, True)),
    (["diff", "--root", "repo", "--base", "origin/main", "--format", "markdown"], diff_command, "execute",
     diff_command.Options(R, "origin/main")),
    (["check", "--root", "repo", "-e", "prod", "--fail-on-warn", "--no-render-check", "--opa-url",
      "http://opa:8181", "--opa-timeout", "3", "--waivers", "w.yaml", "--today", "2026-01-02"],
     check_command, "execute",
     check_command.Options(R, ("prod",), None, Path("w.yaml"), "regorus", "http://opa:8181", 3.0, False, True,
                           dt.date(2026, 1, 2))),
    (["check"], check_command, "execute", check_command.Options(Path("."))),
    (["check", "--no-cache", "-v"], check_command, "execute", check_command.Options(Path("."), cache=False,
                                                                                  verbose=True)),
    (["policy", "test", "--root", "repo", "--run", "alias", "-v"], policy_command, "execute_test",
     policy_command.TestOptions(R, None, "regorus", "alias", True)),
    (["artifacts", "verify", "--root", "repo", "-e", "dev", "--pvc-mirror", str(MIRROR), "--s3-endpoint",
      "s3:9000", "--timeout", "2", "-j", "5"], artifacts_command, "execute_verify",
     artifacts_command.Options(R, ("dev",), _storage(pvc_mirror=MIRROR, s3_endpoint="s3:9000", timeout_s=2.0,
                                                     jobs=5))),
    (["artifacts", "lock", "--check", "--flavors-only", "-j", "4"], artifacts_command, "execute_lock",
     artifacts_command.Options(Path("."), (), _storage(skip_bases=True, jobs=4), check=True)),
    (["bundle", "--env", "prod", "--with-files", "--out", "b", "-j", "4"], bundle_command, "execute",
     bundle_command.Options(Path("."), ("prod",), _storage(jobs=4), out=Path("b"), with_files=True)),
    (["conform", "serving", "--catalog", "repo", "-e", "dev", "-t", "a", "-c", "smoke", "--skip", "perf",
      "--no-readiness", "--requests", "8", "--load-seed", "3", "--evidence-out", "ev", "--evidence-key", "k.pem",
      "--s3-region", "eu-west-1"], conform_command, "execute_serving",
     _serving(source=conform_command.ExpectationsSource(None, R, "dev"), tenants=("a",), checks=("smoke",),
              skip=("perf",), no_readiness=True,
              load={"concurrency": None, "requests": 8, "output_tokens": None, "prompt_tokens": None, "seed": 3},
              evidence=conform_command.EvidenceOptions(Path("k.pem"), Path("ev"), None,
                                                       S3Options(None, "eu-west-1")))),
    (["conform", "gpu", "--no-expectations", "--product", "H100", "--count", "8", "--no-mig", "--no-workload"],
     conform_command, "execute_gpu",
     conform_command.GpuOptions(conform_command.ExpectationsSource(), "H100", 8, None, False, True, "", None,
                                False)),
    (["promote", "--env", "prod", "--root", "repo", "--evidence", "ev", "--write", "--flavor", "faq",
      "--now", "2026-03-01T12:00:00Z", "--s3-endpoint", "http://s3:9000", "--timeout", "4"],
     promote_command, "execute",
     promote_command.Options(R, "prod", (Path("ev"),), False, S3Options("http://s3:9000", "us-east-1", None, 4.0),
                             True, ("faq",), dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), None)),
    (["rollback", "--env", "prod", "--root", "repo", "--to", "HEAD~2", "--write", "--reason", "bad answers",
      "--now", "2026-03-01T12:00:00Z"],
     operations, "execute_rollback",
     operations.RollbackOptions(R, "prod", "HEAD~2", True, "bad answers", dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))),
    (["history", "--env", "prod", "--root", "repo", "--flavor", "faq", "--flavor", "legal@v2"],
     operations, "execute_history", operations.HistoryOptions(R, "prod", ("faq", "legal@v2"))),
]


def _recorder(seen: list[Any], answer: Callable[[], Any]) -> Callable[[Any], Any]:
    def execute(opts: Any, *how: Any) -> Any:  # rollback and history are also told the format
        seen.append(opts)
        return answer()
    return execute


@pytest.mark.parametrize(("argv", "module", "name", "expected"), CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_a_command_line_parses_into_its_options(argv: list[str], module: Any, name: str, expected: Any,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for var in NO_ENV:
        monkeypatch.delenv(var, raising=False)
    seen: list[Any] = []
    monkeypatch.setattr(module, name, _recorder(seen, lambda: Result(argv[0])))
    assert main(argv) == 0, capsys.readouterr().err
    assert seen == [expected]


def test_policy_docs_parses_into_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(policy_command, "execute_docs", _recorder(seen, lambda: Result("policy docs")))
    assert main(["policy", "docs", "--root", "repo", "--check"]) == 0
    assert seen == [policy_command.DocsOptions(R, None, True)]


@pytest.mark.parametrize(("argv", "module", "name", "fmt", "display"), [
    (["plan", "--format", "json"], plan_command, "execute", "json", Display(document=True)),
    (["plan"], plan_command, "execute", "text", Display(document=True)),
    (["diff", "--format", "github"], diff_command, "execute", "github", Display(headline=False)),
    (["policy", "test", "-v"], policy_command, "execute_test", "text", Display(show_passing=True)),
    (["policy", "test"], policy_command, "execute_test", "text", Display(show_passing=False)),
    (["artifacts", "verify", "-f", "json"], artifacts_command, "execute_verify", "json",
     Display(text_records=False)),
    (["validate", "-f", "sarif"], validate_command, "execute", "sarif", Display()),
])
def test_a_command_line_chooses_how_its_result_is_shown(argv: list[str], module: Any, name: str, fmt: str,
                                                       display: Display, monkeypatch: pytest.MonkeyPatch) -> None:
    """The display options go to the reporter, never onto the result."""
    shown: list[tuple[str, Display]] = []

    def publish(result: Result, fmt: str, *, display: Display = Display(), **_: Any) -> int:
        shown.append((fmt, display))
        return 0

    monkeypatch.setattr(module, name, lambda opts: Result(argv[0]))
    monkeypatch.setattr(commands, "publish", publish)
    assert main(argv) == 0
    assert shown == [(fmt, display)]


def test_every_command_has_a_case() -> None:
    """A command added to the CLI without a case here fails."""
    from kitchen_gitops.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    groups = {g.name: {c.name for c in g.typer_instance.registered_commands}
              for g in app.registered_groups if g.typer_instance is not None and g.name}
    lines = {f"{g} {c}" for g, cs in groups.items() for c in cs} | names
    covered = {" ".join(a for a in c[0][:2] if not a.startswith("-")) for c in CASES} | {"policy docs"}
    covered |= {c[0][0] for c in CASES}
    assert lines <= covered, sorted(lines - covered)
