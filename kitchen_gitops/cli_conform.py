"""``kitchen conform serving`` and ``kitchen conform gpu``: option parsing only.

Exit codes: 0 conformant, 1 not conformant, 2 could not run (configuration, an
unreachable server, no GPU/NVML).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .conform.expectations import Expectations, GpuSpec, Source, build_expectations, load_expectations
from .conform.report import REPORTERS
from .conform.results import ConformReport
from .conform.serving import CHECKS
from .errors import ConfigError, UsageError

DEFAULT_EXPECTATIONS = "/etc/kitchen/expectations.json"
EXPECTATIONS_ENV = "KITCHEN_EXPECTATIONS"

ReportFormat = Enum("ReportFormat", {name: name for name in REPORTERS}, type=str)  # type: ignore[misc]

ExpectationsOpt = Annotated[Path | None, typer.Option(
    "--expectations", "-x",
    help=f"Expectations JSON (the rendered ConfigMap's content); default ${EXPECTATIONS_ENV} or "
         f"{DEFAULT_EXPECTATIONS}, unless --catalog is given.")]
CatalogOpt = Annotated[Path | None, typer.Option(
    "--catalog", "--root", help="Build the expectations from this catalog instead (needs --env).")]
EnvOpt = Annotated[str | None, typer.Option("--env", "-e", help="Environment, with --catalog.")]
FormatOpt = Annotated[ReportFormat, typer.Option("--format", "-f", help="Report on stdout.")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the JSON report here.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")]


def _expectations(path: Path | None, catalog: Path | None, env: str | None) -> Expectations:
    if catalog is not None:
        if not env:
            raise UsageError("--catalog needs --env: which environment to check")
        from . import pipeline

        outcome = pipeline.plan(catalog, [env])
        if not outcome.ok:
            first = next(f for f in outcome.findings if f.severity.value == "error")
            raise ConfigError(f"the catalog does not plan: {first.format_text()}")
        return build_expectations(outcome.catalog, outcome.plans[env])
    if path is None:
        path = Path(os.environ.get(EXPECTATIONS_ENV, DEFAULT_EXPECTATIONS))
    exp = load_expectations(path)
    if env and env != exp.environment:
        raise UsageError(f"{path} holds the expectations of {exp.environment}, not {env}")
    return exp


def _endpoints(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if v.startswith(("http://", "https://")):
            out["*"] = v
            continue
        key, sep, url = v.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise UsageError(f"--endpoint {v!r}: expected [NAMESPACE/NAME=]http(s)://HOST:PORT")
        out[key] = url
    return out


def _publish(report: ConformReport, fmt: str, json_path: Path | None, junit_path: Path | None) -> None:
    for path, name in ((json_path, "json"), (junit_path, "junit")):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(REPORTERS[name](report), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the {name} report: {exc.strerror}") from None
    typer.echo(REPORTERS[fmt](report), nl=False)


def register(app: typer.Typer) -> None:
    conform = typer.Typer(
        name="conform", no_args_is_help=True,
        help="Prove a deployment: GPUs, and every flavor served, correct, isolated, within SLO.")
    app.add_typer(conform, name="conform")

    @conform.command("serving")
    def serving(
        expectations: ExpectationsOpt = None,
        catalog: CatalogOpt = None,
        env: EnvOpt = None,
        tenant: Annotated[list[str] | None, typer.Option(
            "--tenant", "-t", help="Only this tenant (name or namespace); repeatable.")] = None,
        service: Annotated[list[str] | None, typer.Option(
            "--service", "-s", help="Only this InferenceService (NAMESPACE/NAME); repeatable.")] = None,
        endpoint: Annotated[list[str] | None, typer.Option(
            "--endpoint", help="[NAMESPACE/NAME=]URL overriding the service's endpoint; repeatable.")] = None,
        check: Annotated[list[str] | None, typer.Option(
            "--check", "-c", help=f"Run only these checks: {', '.join(CHECKS)}; repeatable.")] = None,
        skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip this check; repeatable.")] = None,
        no_readiness: Annotated[bool, typer.Option(
            "--no-readiness", help="Do not ask the Kubernetes API (outside a cluster).")] = False,
        kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig instead of in-cluster.")] = None,
        token_file: Annotated[Path | None, typer.Option(
            help="Bearer token for authenticated endpoints (the Job passes its service account's).")] = None,
        readiness_timeout: Annotated[float | None, typer.Option(
            help="Seconds to wait for Ready; default from the environment.")] = None,
        concurrency: Annotated[int | None, typer.Option(min=1)] = None,
        requests: Annotated[int | None, typer.Option(min=1)] = None,
        output_tokens: Annotated[int | None, typer.Option(min=1)] = None,
        prompt_tokens: Annotated[int | None, typer.Option(min=1)] = None,
        load_seed: Annotated[int | None, typer.Option(
            help="Seed of the load's random prompts (default: a new one each run).")] = None,
        isolation_rounds: Annotated[int, typer.Option(
            min=1, help="Concurrent bursts of every base/flavor request on every probe.")] = 3,
        perf_model: Annotated[list[str] | None, typer.Option(
            help="Load only this model (base or flavor); default all, in turn.")] = None,
        fmt: FormatOpt = ReportFormat["text"],
        json_out: JsonOpt = None,
        junit_out: JunitOpt = None,
    ) -> None:
        """Readiness, inventory, smoke, adapter effect, isolation and performance."""
        from .conform.readiness import IsvcSource, KubeIsvcSource
        from .conform.serving import ServingOptions, run_serving

        exp = _expectations(expectations, catalog, env).select(tenant, service)
        if not exp.services:
            raise UsageError("no InferenceService matches --tenant/--service in "
                             f"environment {exp.environment}")
        unknown = sorted((set(check or []) | set(skip or [])) - set(CHECKS))
        if unknown:
            raise UsageError(f"unknown check {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
        chosen = tuple(c for c in CHECKS if (not check or c in check) and c not in (skip or []))
        if no_readiness:
            chosen = tuple(c for c in chosen if c != "readiness")
        overrides = {k: v for k, v in {"concurrency": concurrency, "requests": requests,
                                       "output_tokens": output_tokens,
                                       "prompt_tokens": prompt_tokens,
                                       "seed": load_seed}.items() if v is not None}
        if overrides:
            exp = exp.model_copy(update={"load": exp.load.model_copy(update=overrides)})
        token = None
        if token_file is not None:
            try:
                token = token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{token_file}: cannot read the token: {exc.strerror}") from None
        opts = ServingOptions(checks=chosen, token=token, endpoints=_endpoints(endpoint or []),
                              perf_models=tuple(perf_model or ()), isolation_rounds=isolation_rounds,
                              readiness_timeout_s=readiness_timeout)
        source: IsvcSource | None = KubeIsvcSource(kubeconfig) if "readiness" in chosen else None
        report = run_serving(exp, opts, source)
        _publish(report, fmt.value, json_out, junit_out)
        raise typer.Exit(report.exit_code)

    @conform.command("gpu")
    def gpu(
        expectations: ExpectationsOpt = None,
        catalog: CatalogOpt = None,
        env: EnvOpt = None,
        product: Annotated[str | None, typer.Option(help="Expected GPU product (overrides).")] = None,
        count: Annotated[int | None, typer.Option(help="Expected GPUs on this node.", min=0)] = None,
        memory_gib: Annotated[float | None, typer.Option(help="Expected memory per GPU.")] = None,
        mig: Annotated[bool | None, typer.Option("--mig/--no-mig", help="Expected MIG mode.")] = None,
        no_expectations: Annotated[bool, typer.Option(
            "--no-expectations", help="Only the options above (no expectations file).")] = False,
        node: Annotated[str, typer.Option(help="Node name for the report; default $NODE_NAME.")] = "",
        min_driver: Annotated[str | None, typer.Option(help="Oldest acceptable driver.")] = None,
        no_workload: Annotated[bool, typer.Option("--no-workload", help="Skip the CUDA workload.")] = False,
        fmt: FormatOpt = ReportFormat["text"],
        json_out: JsonOpt = None,
        junit_out: JunitOpt = None,
    ) -> None:
        """NVML: count, product, memory, driver, ECC, row remaps, MIG; a CUDA workload."""
        from .conform.gpu import GpuOptions, check_gpus

        spec: GpuSpec | None = None
        environment = env or "-"
        if not no_expectations:
            exp = _expectations(expectations, catalog, env)
            spec, environment = exp.gpu, exp.environment
        overrides = {k: v for k, v in {"product": product, "per_node": count,
                                       "memory_gib": memory_gib, "mig": mig}.items()
                     if v is not None}
        if spec is not None:
            spec = spec.model_copy(update=overrides)
        elif overrides:
            if product is None or count is None:
                raise UsageError("without expectations, give at least --product and --count")
            spec = GpuSpec(product=product, per_node=count, memory_gib=memory_gib or 0.0,
                           mig=bool(mig), source=Source(file="<command line>"))
        report = check_gpus(spec, environment, GpuOptions(node=node, min_driver=min_driver,
                                                          workload=not no_workload))
        _publish(report, fmt.value, json_out, junit_out)
        raise typer.Exit(report.exit_code)
