"""``kitchen check`` (the CI gate) and ``kitchen policy test|docs``: option parsing only.

Exit codes: 0 clean, 1 findings (or failing policy tests, or stale docs), 2 usage,
configuration, a broken policy or an unreachable OPA server.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import commands, settings
from .cli_options import EnvOpt, Format, FormatOpt, OutputOpt, RootOpt
from .commands import check as check_command
from .commands import policy as policy_command
from .policy.engines import ENGINES
from .report import Options as Display

EngineName = Enum("EngineName", {name: name for name in ENGINES}, type=str)  # type: ignore[misc]

PoliciesOpt = Annotated[Path | None, typer.Option("--policies", help="Policy folder; default <root>/policies.")]
EngineOpt = Annotated[EngineName, typer.Option(
    "--engine", help="Embedded engine: regorus (default) or opa (the real OPA engine, if installed).")]
OpaUrlOpt = Annotated[str | None, typer.Option(
    "--opa-url", envvar=settings.OPA_URL.name, help=f"Evaluate on this OPA server instead (${settings.OPA_URL.name}).")]
TimeoutOpt = Annotated[float, typer.Option("--opa-timeout", help="Seconds to wait for the OPA server.")]


def check(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
    fail_on_warn: Annotated[bool, typer.Option("--fail-on-warn", help="Exit 1 on every warning.")] = False,
    waivers: Annotated[Path | None, typer.Option(
        "--waivers", help="Waivers file; default <policies>/waivers.yaml.")] = None,
    policies: PoliciesOpt = None,
    engine: EngineOpt = EngineName[settings.DEFAULT_ENGINE],
    opa_url: OpaUrlOpt = None,
    opa_timeout: TimeoutOpt = settings.OPA_TIMEOUT_S,
    render_check: Annotated[bool, typer.Option("--render-check/--no-render-check",
                                               help="Also fail when rendered/ is stale.")] = True,
    today: Annotated[str | None, typer.Option("--today", hidden=True, help="Date for waiver expiry (tests).")] = None,
    cache: Annotated[bool, typer.Option(
        "--cache/--no-cache", help="Read and store the results of unchanged work in <root>/.kitchen-cache/ "
        f"(${settings.CACHE.name}=off: never).")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say what the cache found, computed and "
                                          "ignored (on stderr).")] = False,
) -> None:
    """The CI gate: validate, plan, render in memory, policies, waivers, rendered/ up to date."""
    opts = check_command.Options(root, tuple(env or ()), policies, waivers, engine.value, opa_url, opa_timeout,
                                 render_check, fail_on_warn, check_command.parse_day(today), cache, verbose)
    raise typer.Exit(commands.publish(check_command.execute(opts), fmt.value, output=output))


policy_app = typer.Typer(help="The policy library: run its unit tests, generate its docs.",
                         no_args_is_help=True)


@policy_app.command("test")
def policy_test(
    root: RootOpt = Path("."),
    policies: PoliciesOpt = None,
    engine: EngineOpt = EngineName[settings.DEFAULT_ENGINE],
    run: Annotated[str, typer.Option("--run", "-r", help="Only tests whose name contains this.")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing tests too.")] = False,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """Run the test_ rules of the policy library (like `opa test`); exit 1 on a failure."""
    opts = policy_command.TestOptions(root, policies, engine.value, run, verbose)
    result = policy_command.execute_test(opts)
    raise typer.Exit(commands.publish(result, fmt.value, display=Display(show_passing=verbose), output=output))


@policy_app.command("docs")
def policy_docs(
    root: RootOpt = Path("."),
    policies: PoliciesOpt = None,
    check_only: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if out of date.")] = False,
    fmt: FormatOpt = Format["text"],
    output: OutputOpt = None,
) -> None:
    """Generate docs/policies.md from the rules' metadata and tests, and the built-in rules."""
    result = policy_command.execute_docs(policy_command.DocsOptions(root, policies, check_only))
    raise typer.Exit(commands.publish(result, fmt.value, output=output))


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.add_typer(policy_app, name="policy")
