"""``kitchen bundle``: the air-gap carry-in manifest of one environment."""

from __future__ import annotations

from ..errors import UsageError
from ..findings import Result, sort_findings
from .artifacts import Options, catalog_for, mib

__all__ = ["Options", "execute"]


def execute(opts: Options) -> Result:
    from ..artifacts.bundle import build_bundle, write_bundle
    from ..artifacts.scan import scan_environments

    if len(opts.environments) != 1:
        raise UsageError("kitchen bundle needs --env ENV (one environment)")
    env = opts.environments[0]
    outcome, envs, failed = catalog_for(opts.root, [env], "bundle")
    if failed is not None:
        return failed
    scans = scan_environments(outcome.catalog, envs, opts.storage, hash_files=False)
    bundle, findings = build_bundle(outcome.catalog, env, scans)
    result = Result("bundle", sort_findings(findings), environments=envs, gates=outcome.gates)
    target = opts.out if opts.out is not None else opts.root / "bundle" / env
    if not result.exit_code:
        result.findings = sort_findings([*result.findings, *write_bundle(
            target, bundle, with_files=opts.with_files, jobs=opts.storage.jobs)])
    if result.exit_code:
        result.notes = ["nothing written: fix the findings above"]
        return result
    result.summary = [f"bundle for {env}: {len(bundle.images)} images, {len(bundle.entries)} files "
                      f"({mib(bundle.total_bytes)}){' copied' if opts.with_files else ''} in {target}",
                      f"on the inside: cd {target} && sha256sum -c SHA256SUMS"]
    return result
