"""``kitchen check`` (the CI gate) and ``kitchen policy test|docs``: option parsing only.

Exit codes: 0 clean, 1 findings (or failing policy tests, or stale docs), 2 usage,
configuration, a broken policy or an unreachable OPA server.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .cli_options import EnvOpt, Format, RootOpt
from .errors import UsageError
from .policy.docs import DOC_PATH, render_docs, write_docs
from .policy.engines import ENGINES, make_engine
from .policy.gate import POLICY_DIR, run_check
from .policy.library import Library, load_library
from .policy.testing import run_tests
from .report import RuleInfo, report, resolve_format
from .write import write_report

OPA_URL_ENV = "KITCHEN_OPA_URL"

EngineName = Enum("EngineName", {name: name for name in ENGINES}, type=str)  # type: ignore[misc]

PoliciesOpt = Annotated[Path | None, typer.Option("--policies", help="Policy folder; default <root>/policies.")]
EngineOpt = Annotated[EngineName, typer.Option(
    "--engine", help="Embedded engine: regorus (default) or opa (the real OPA engine, if installed).")]
OpaUrlOpt = Annotated[str | None, typer.Option(
    "--opa-url", envvar=OPA_URL_ENV, help=f"Evaluate on this OPA server instead (${OPA_URL_ENV}).")]
TimeoutOpt = Annotated[float, typer.Option("--opa-timeout", help="Seconds to wait for the OPA server.")]


def rule_infos(library: Library | None) -> dict[str, RuleInfo]:
    if library is None:
        return {}
    return {r.id: RuleInfo(r.id, r.title, r.description, r.severity.value,
                           f"docs/policies.md#{r.id.replace('.', '')}")
            for r in library.rules.values()}


def _library(root: Path, policies: Path | None) -> Library:
    folder = policies if policies is not None else root / POLICY_DIR
    if not folder.is_dir():
        raise UsageError(f"{folder}: no policy folder (expected {POLICY_DIR}/*.rego)")
    return load_library(folder, root)


def check(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format; auto = github under "
                                        "GitHub Actions, else text.")] = Format["text"],
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the report here instead of stdout.")] = None,
    fail_on_warn: Annotated[bool, typer.Option("--fail-on-warn", help="Exit 1 on warnings too.")] = False,
    waivers: Annotated[Path | None, typer.Option(
        "--waivers", help="Waivers file; default <policies>/waivers.yaml.")] = None,
    policies: PoliciesOpt = None,
    engine: EngineOpt = EngineName["regorus"],
    opa_url: OpaUrlOpt = None,
    opa_timeout: TimeoutOpt = 10.0,
    render_check: Annotated[bool, typer.Option("--render-check/--no-render-check",
                                               help="Also fail when rendered/ is stale.")] = True,
    today: Annotated[str | None, typer.Option("--today", hidden=True, help="Date for waiver expiry (tests).")] = None,
) -> None:
    """The CI gate: validate, plan, render in memory, policies, waivers, rendered/ up to date."""
    day = None
    if today:
        try:
            day = dt.date.fromisoformat(today)
        except ValueError:
            raise UsageError(f"--today {today!r} is not a date YYYY-MM-DD") from None
    eng = make_engine(engine.value, opa_url=opa_url, timeout=opa_timeout)
    outcome = run_check(root, env, engine=eng, policies=policies, waivers=waivers, today=day,
                        render_check=render_check)
    name = resolve_format(fmt.value, os.environ)
    text = report(outcome.findings, name, rule_infos(outcome.library))
    if output is not None:
        write_report(output, text)
    elif outcome.findings or name != "text":
        sys.stdout.write(text)
    if name == "text" and not outcome.findings:
        ran = f"{len(outcome.library.rules)} rules" if outcome.library else "no rules"
        typer.echo(f"check ok: {', '.join(outcome.environments)}; {ran}; rendered/ up to date"
                   if render_check else f"check ok: {', '.join(outcome.environments)}; {ran}")
    raise typer.Exit(outcome.exit_code(fail_on_warn=fail_on_warn))


policy_app = typer.Typer(help="The policy library: run its unit tests, generate its docs.",
                         no_args_is_help=True)


@policy_app.command("test")
def policy_test(
    root: RootOpt = Path("."),
    policies: PoliciesOpt = None,
    engine: EngineOpt = EngineName["regorus"],
    run: Annotated[str, typer.Option("--run", "-r", help="Only tests whose name contains this.")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing tests too.")] = False,
) -> None:
    """Run the test_ rules of the policy library (like `opa test`); exit 1 on a failure."""
    library = _library(root, policies)
    results = run_tests(library, make_engine(engine.value), match=run)
    failed = [r for r in results if not r.passed]
    for r in results:
        if verbose or not r.passed:
            typer.echo(r.format())
    typer.echo(f"{len(results) - len(failed)}/{len(results)} policy tests passed "
               f"({engine.value}, {len(library.rules)} rules)")
    raise typer.Exit(1 if failed else 0)


@policy_app.command("docs")
def policy_docs(
    root: RootOpt = Path("."),
    policies: PoliciesOpt = None,
    check_only: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if out of date.")] = False,
) -> None:
    """Generate docs/policies.md from the rules' metadata and tests."""
    library = _library(root, policies)
    path = root / DOC_PATH
    if check_only:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != render_docs(library):
            typer.echo(f"{path} is out of date: run `kitchen policy docs`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} up to date")
        raise typer.Exit(0)
    changed = write_docs(library, path)
    typer.echo(f"{'wrote' if changed else 'unchanged'} {path}")
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.add_typer(policy_app, name="policy")
