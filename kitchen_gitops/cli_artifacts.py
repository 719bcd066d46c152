"""``kitchen artifacts verify|lock`` and ``kitchen bundle``: the air-gap supply chain.

Options only; the work is in :mod:`kitchen_gitops.artifacts`.  Exit codes: 0 clean,
1 findings, 2 usage, configuration or storage that cannot be reached at all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from . import pipeline
from .artifacts.bundle import build_bundle, write_bundle
from .artifacts.lock import lock_updates, render_locked, stale_findings, write_files
from .artifacts.scan import StorageOptions, scan_environments
from .artifacts.verify import verify_scans
from .cli_options import EnvOpt, Format, FormatOpt, RootOpt
from .errors import UsageError
from .findings import Finding, exit_code, sort_findings
from .model import Catalog
from .report import report

MirrorOpt = Annotated[Path | None, typer.Option(
    "--pvc-mirror", envvar="KITCHEN_PVC_MIRROR", file_okay=False,
    help="Local mirror of the PVCs: pvc://CLAIM/PATH is read from DIR/CLAIM/PATH.")]
FlavorsOnlyOpt = Annotated[bool, typer.Option(
    "--flavors-only", help="Check adapters only (no --pvc-mirror needed for bases).")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--s3-endpoint", envvar="KITCHEN_S3_ENDPOINT",
    help="S3 endpoint as seen from here (host:port or URL); default: the environment's.")]
AccessKeyOpt = Annotated[str | None, typer.Option(
    "--access-key", envvar="AWS_ACCESS_KEY_ID", show_envvar=True,
    help="S3 access key (prefer the environment variable).")]
SecretKeyOpt = Annotated[str | None, typer.Option(
    "--secret-key", envvar="AWS_SECRET_ACCESS_KEY", show_envvar=True,
    help="S3 secret key (prefer the environment variable).")]
CaBundleOpt = Annotated[Path | None, typer.Option(
    "--ca-bundle", envvar="AWS_CA_BUNDLE", dir_okay=False,
    help="PEM file of the CA that signed the S3 endpoint's certificate.")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, help="Seconds to wait for the S3 endpoint to connect or answer.")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, help="Files read and hashed in parallel (default: 2 per CPU, 4..16).")]

artifacts_app = typer.Typer(
    name="artifacts",
    help="Verify models and adapters in storage against the catalog; lock their digests.",
    no_args_is_help=True,
)


def _options(pvc_mirror: Path | None, flavors_only: bool, s3_endpoint: str | None,
             access_key: str | None, secret_key: str | None, ca_bundle: Path | None,
             timeout: float, jobs: int | None) -> StorageOptions:
    import os

    options = StorageOptions(
        pvc_mirror=pvc_mirror, s3_endpoint=s3_endpoint, access_key=access_key,
        secret_key=secret_key, session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        ca_bundle=ca_bundle, timeout_s=timeout, skip_bases=flavors_only)
    if jobs is not None:
        options.jobs = jobs
    if pvc_mirror is not None and not pvc_mirror.is_dir():
        raise UsageError(f"--pvc-mirror {pvc_mirror} is not a folder")
    return options


def _load(root: Path, envs: list[str] | None, fmt: str) -> tuple[Catalog, list[str]]:
    outcome = pipeline.validate(root)
    if not outcome.ok:
        _emit(outcome.findings, fmt)
        typer.echo("the catalog has errors: fix them before checking artifacts", err=True)
        raise typer.Exit(1)
    return outcome.catalog, pipeline.select_environments(outcome.catalog, envs)


def _emit(findings: Sequence[Finding], fmt: str) -> None:
    if findings or fmt != "text":
        sys.stdout.write(report(findings, fmt))


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@artifacts_app.command("verify")
def verify(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    fmt: FormatOpt = Format["text"],
    pvc_mirror: MirrorOpt = None,
    flavors_only: FlavorsOnlyOpt = False,
    s3_endpoint: EndpointOpt = None,
    access_key: AccessKeyOpt = None,
    secret_key: SecretKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = 10.0,
    jobs: JobsOpt = None,
) -> None:
    """Check every base and flavor an environment serves: present, pinned sha256, coherent."""
    catalog, envs = _load(root, env, fmt.value)
    options = _options(pvc_mirror, flavors_only, s3_endpoint, access_key, secret_key,
                       ca_bundle, timeout, jobs)
    scans = scan_environments(catalog, envs, options)
    findings = verify_scans(catalog, scans)
    _emit(findings, fmt.value)
    if fmt.value == "text":
        files = {(s.store.identity if s.store else "", s.artifact.source.uri(n)): d.size
                 for s in scans for n, d in s.digests.items()}
        arts = {(s.kind, s.key) for s in scans}
        bases = sum(1 for k, _ in arts if k == "Base")
        verdict = "ok" if exit_code(findings) == 0 else "FAILED"
        typer.echo(f"artifacts {verdict}: {len(files)} files ({_mib(sum(files.values()))}) of "
                   f"{bases} bases and {len(arts) - bases} flavors checked in "
                   f"{', '.join(envs)}", err=bool(findings))
    raise typer.Exit(exit_code(findings))


@artifacts_app.command("lock")
def lock(
    root: RootOpt = Path("."),
    env: EnvOpt = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; report the pins that would change (exit 1).")] = False,
    fmt: FormatOpt = Format["text"],
    pvc_mirror: MirrorOpt = None,
    flavors_only: FlavorsOnlyOpt = False,
    s3_endpoint: EndpointOpt = None,
    access_key: AccessKeyOpt = None,
    secret_key: SecretKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = 10.0,
    jobs: JobsOpt = None,
) -> None:
    """Write the sha256 of what is in storage into the catalog (comments and format kept)."""
    catalog, envs = _load(root, env, fmt.value)
    options = _options(pvc_mirror, flavors_only, s3_endpoint, access_key, secret_key,
                       ca_bundle, timeout, jobs)
    scans = scan_environments(catalog, envs, options)
    updates, findings = lock_updates(catalog, scans)
    if check:
        findings = sort_findings([*findings, *stale_findings(updates)])
        _emit(findings, fmt.value)
        if not findings and fmt.value == "text":
            typer.echo(f"catalog pins up to date with storage ({', '.join(envs)})")
        raise typer.Exit(exit_code(findings))
    if exit_code(findings):
        _emit(findings, fmt.value)
        typer.echo("nothing written: fix the findings above", err=True)
        raise typer.Exit(1)
    write_files(render_locked(updates), root=catalog.root)
    for u in updates:
        typer.echo(f"{u.location}: {u.what}: {u.old} -> {u.new}")
    files = len({u.path for u in updates})
    typer.echo(f"locked {len(updates)} pin(s) in {files} file(s)" if updates
               else "catalog pins already match storage")
    raise typer.Exit(0)


def bundle(
    root: RootOpt = Path("."),
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to carry in.")] = "",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Bundle folder; default <root>/bundle/<env>.")] = None,
    with_files: Annotated[bool, typer.Option(
        "--with-files", help="Also copy every model and adapter file into the bundle, "
                             "checked against its pin.")] = False,
    pvc_mirror: MirrorOpt = None,
    flavors_only: FlavorsOnlyOpt = False,
    s3_endpoint: EndpointOpt = None,
    access_key: AccessKeyOpt = None,
    secret_key: SecretKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = 10.0,
    jobs: JobsOpt = None,
) -> None:
    """Write the carry-in manifest of an environment: images by digest, files with sha256."""
    if not env:
        raise UsageError("kitchen bundle needs --env ENV")
    catalog, envs = _load(root, [env], "text")
    options = _options(pvc_mirror, flavors_only, s3_endpoint, access_key, secret_key,
                       ca_bundle, timeout, jobs)
    scans = scan_environments(catalog, envs, options, hash_files=False)
    result, findings = build_bundle(catalog, env, scans)
    target = out if out is not None else root / "bundle" / env
    if not exit_code(findings):
        findings = write_bundle(target, result, with_files=with_files, jobs=options.jobs)
    if exit_code(findings):
        _emit(findings, "text")
        typer.echo("nothing written: fix the findings above", err=True)
        raise typer.Exit(1)
    _emit(findings, "text")
    typer.echo(f"bundle for {env}: {len(result.images)} images, {len(result.entries)} files "
               f"({_mib(result.total_bytes)}){' copied' if with_files else ''} in {target}")
    typer.echo(f"on the inside: cd {target} && sha256sum -c SHA256SUMS")
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts_app, name="artifacts")
    app.command("bundle")(bundle)
