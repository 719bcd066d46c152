"""``kitchen conform serving`` and ``kitchen conform gpu``: option parsing only.

Exit codes: 0 conformant, 1 not conformant, 2 could not run (configuration, an
unreachable server, no GPU/NVML).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import commands, settings
from .cli_options import Format, FormatOpt
from .commands import conform as conform_command
from .conform.results import CHECKS

ExpectationsOpt = Annotated[Path | None, typer.Option(
    "--expectations", "-x",
    help=f"Expectations JSON (the rendered ConfigMap's content); default ${settings.EXPECTATIONS.name} or "
         f"{settings.EXPECTATIONS_FILE}, unless --catalog is given.")]
CatalogOpt = Annotated[Path | None, typer.Option(
    "--catalog", "--root", help="Build the expectations from this catalog instead (needs --env).")]
EnvOpt = Annotated[str | None, typer.Option("--env", "-e", help="Environment, with --catalog.")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the JSON report here.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")]

# the options of ``conform serving``
TenantOpt = Annotated[list[str] | None, typer.Option(
    "--tenant", "-t", help="Only this tenant (name or namespace); repeatable.")]
ServiceOpt = Annotated[list[str] | None, typer.Option(
    "--service", "-s", help="Only this InferenceService (NAMESPACE/NAME); repeatable.")]
EndpointOpt = Annotated[list[str] | None, typer.Option(
    "--endpoint", help="[NAMESPACE/NAME=]URL overriding the service's endpoint; repeatable.")]
CheckOpt = Annotated[list[str] | None, typer.Option(
    "--check", "-c", help=f"Run only these checks: {', '.join(CHECKS)}; repeatable.")]
SkipOpt = Annotated[list[str] | None, typer.Option("--skip", help="Skip this check; repeatable.")]
NoReadinessOpt = Annotated[bool, typer.Option(
    "--no-readiness", help="Do not ask the Kubernetes API (outside a cluster).")]
KubeconfigOpt = Annotated[str | None, typer.Option(help="kubeconfig instead of in-cluster.")]
TokenFileOpt = Annotated[Path | None, typer.Option(
    help="Bearer token for authenticated endpoints (the Job passes its service account's).")]
ReadinessTimeoutOpt = Annotated[float | None, typer.Option(
    help="Seconds to wait for Ready; default from the environment.")]
LoadCountOpt = Annotated[int | None, typer.Option(min=1)]
LoadSeedOpt = Annotated[int | None, typer.Option(
    help="Seed of the load's random prompts (default: a new one each run).")]
IsolationRoundsOpt = Annotated[int, typer.Option(
    min=1, help="Concurrent bursts of every base/flavor request on every probe.")]
PerfModelOpt = Annotated[list[str] | None, typer.Option(
    help="Load only this model (base or flavor); default all, in turn.")]
EvaluationConcurrencyOpt = Annotated[int | None, typer.Option(
    min=1, max=1024, help="Evaluation requests in flight at once; default the load's concurrency.")]
EvidenceOutOpt = Annotated[Path | None, typer.Option(
    "--evidence-out", file_okay=False, help="Write the signed evidence record of this run here.")]
EvidenceKeyOpt = Annotated[Path | None, typer.Option(
    "--evidence-key", dir_okay=False, help="The ed25519 private key (PEM) that signs the evidence record.")]
EvidenceS3Opt = Annotated[str | None, typer.Option(
    "--evidence-s3", help="Upload the signed evidence record under s3://BUCKET/PREFIX/.")]
S3EndpointOpt = Annotated[str | None, typer.Option(
    "--s3-endpoint", envvar=settings.S3_ENDPOINT.name, help="S3 endpoint of --evidence-s3 (host:port or URL).")]
S3RegionOpt = Annotated[str, typer.Option("--s3-region", help="S3 region of --evidence-s3.")]
CaBundleOpt = Annotated[Path | None, typer.Option(
    "--ca-bundle", envvar=settings.CA_BUNDLE.name, dir_okay=False, help="PEM CA bundle of the S3 endpoint.")]

conform = typer.Typer(name="conform", no_args_is_help=True,
                      help="Prove a deployment: GPUs, and every flavor served, correct, isolated, within SLO.")


def _also(json_out: Path | None, junit_out: Path | None) -> list[tuple[Path, str]]:
    return [(p, name) for p, name in ((json_out, "json"), (junit_out, "junit")) if p is not None]


@conform.command("serving")
def serving(
    expectations: ExpectationsOpt = None,
    catalog: CatalogOpt = None,
    env: EnvOpt = None,
    tenant: TenantOpt = None,
    service: ServiceOpt = None,
    endpoint: EndpointOpt = None,
    check: CheckOpt = None,
    skip: SkipOpt = None,
    no_readiness: NoReadinessOpt = False,
    kubeconfig: KubeconfigOpt = None,
    token_file: TokenFileOpt = None,
    readiness_timeout: ReadinessTimeoutOpt = None,
    concurrency: LoadCountOpt = None,
    requests: LoadCountOpt = None,
    output_tokens: LoadCountOpt = None,
    prompt_tokens: LoadCountOpt = None,
    load_seed: LoadSeedOpt = None,
    isolation_rounds: IsolationRoundsOpt = 3,
    perf_model: PerfModelOpt = None,
    evaluation_concurrency: EvaluationConcurrencyOpt = None,
    evidence_out: EvidenceOutOpt = None,
    evidence_key: EvidenceKeyOpt = None,
    evidence_s3: EvidenceS3Opt = None,
    s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = settings.S3_REGION,
    ca_bundle: CaBundleOpt = None,
    fmt: FormatOpt = Format["text"],
    json_out: JsonOpt = None,
    junit_out: JunitOpt = None,
) -> None:
    """Readiness, inventory, smoke, adapter effect, evaluation sets, isolation and
    performance; a signed evidence record."""
    opts = conform_command.ServingOptions(
        conform_command.ExpectationsSource(expectations, catalog, env), tuple(tenant or ()), tuple(service or ()),
        tuple(endpoint or ()), tuple(check or ()), tuple(skip or ()), no_readiness, kubeconfig, token_file,
        readiness_timeout, {"concurrency": concurrency, "requests": requests, "output_tokens": output_tokens,
                            "prompt_tokens": prompt_tokens, "seed": load_seed}, isolation_rounds,
        tuple(perf_model or ()), evaluation_concurrency,
        conform_command.EvidenceOptions(evidence_key, evidence_out, evidence_s3,
                                 commands.S3Options(s3_endpoint, s3_region, ca_bundle)))
    result = conform_command.execute_serving(opts)
    raise typer.Exit(commands.publish(result, fmt.value, also=_also(json_out, junit_out)))


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
    fmt: FormatOpt = Format["text"],
    json_out: JsonOpt = None,
    junit_out: JunitOpt = None,
) -> None:
    """NVML: count, product, memory, driver, ECC, row remaps, MIG; a CUDA workload."""
    opts = conform_command.GpuOptions(conform_command.ExpectationsSource(expectations, catalog, env), product,
                                      count, memory_gib, mig, no_expectations, node, min_driver, not no_workload)
    result = conform_command.execute_gpu(opts)
    raise typer.Exit(commands.publish(result, fmt.value, also=_also(json_out, junit_out)))


def register(app: typer.Typer) -> None:
    app.add_typer(conform, name="conform")
