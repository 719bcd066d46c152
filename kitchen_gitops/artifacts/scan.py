"""Find what an environment serves, reach its storage, list and hash its files.

``scan_environments`` is the one pass over storage that ``verify``, ``lock`` and
``bundle`` share: per artifact one listing, then every pinned file hashed (streamed, on
a thread pool, largest first) with the heads the coherence checks read.  A file is
read once even when several environments share the same storage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, UsageError
from ..evaluation_sets import DATASET_SUFFIX
from ..model import Base, Catalog, Flavor
from ..plan import plan_environment
from .digest import Digest, Head, digest_chunks
from .storage import (
    REPOSITORY,
    ContainerProblem,
    MirrorStore,
    ObjectMissing,
    RepositoryStore,
    S3Settings,
    S3Store,
    SourceUri,
    StorageUnreachable,
    Store,
)

PathKey = tuple[str | int, ...]
JSON_HEADS = frozenset({"config.json", "adapter_config.json", "model.safetensors.index.json"})


def head_for(name: str) -> Head:
    if name.endswith(".safetensors"):
        return Head.SAFETENSORS
    if name.rsplit("/", 1)[-1] in JSON_HEADS or name.endswith(DATASET_SUFFIX):  # a set is read whole
        return Head.JSON
    return Head.NONE


@dataclass(frozen=True)
class Pin:
    """One file the catalog pins, and where its digest (and size) are written."""

    name: str
    sha256: str
    size: int | None
    entry_path: PathKey  # the catalog entry for the file
    sha_path: PathKey  # the sha256 value
    size_path: PathKey | None  # the size value, when the catalog records one


@dataclass(frozen=True)
class Artifact:
    kind: str  # "Base" or "Flavor"
    key: str  # name@version
    obj: Base | Flavor
    source: SourceUri
    pins: tuple[Pin, ...]
    role: str = "files"  # or "dataset": a flavor's evaluation set

    @property
    def label(self) -> str:
        """``Flavor`` or ``Flavor dataset``: what a record or a bundle row names."""
        return self.kind if self.role == "files" else f"{self.kind} {self.role}"


def pins_of(obj: Base | Flavor) -> tuple[Pin, ...]:
    if isinstance(obj, Flavor):
        return (
            Pin("adapter_config.json", obj.files.adapter_config, None,
                ("files", "adapter_config.json"), ("files", "adapter_config.json"), None),
            Pin("adapter_model.safetensors", obj.files.adapter_model, None,
                ("files", "adapter_model.safetensors"), ("files", "adapter_model.safetensors"), None),
        )
    return tuple(
        Pin(f.path, f.sha256, f.size, ("files", i), ("files", i, "sha256"),
            ("files", i, "size") if f.size is not None else None)
        for i, f in enumerate(obj.files))


def artifact_of(kind: str, key: str, obj: Base | Flavor) -> Artifact:
    try:
        source = SourceUri.parse(obj.source)
    except ValueError as exc:  # pragma: no cover - the catalog model refuses such sources
        raise ConfigError(f"{kind} {key}: {exc}") from None
    return Artifact(kind, key, obj, source, pins_of(obj))


def dataset_artifact(key: str, flavor: Flavor) -> Artifact | None:
    """The flavor's evaluation set as an artifact: one pinned file, in the repository
    (read from the catalog's own folder) or in S3."""
    ds = flavor.evaluation.dataset if flavor.evaluation is not None else None
    if ds is None:
        return None
    where = ds.path or ds.uri or ""
    folder, _, name = where.rpartition("/")
    if ds.path is not None:
        container, _, prefix = folder.partition("/")
        source = SourceUri(REPOSITORY, container, f"{prefix}/" if prefix else "")
    else:
        source = SourceUri.parse(folder + "/")
    path = ("evaluation", "dataset")
    return Artifact("Flavor", key, flavor, source,
                    (Pin(name, ds.sha256, None, path, (*path, "sha256"), None),), role="dataset")


@dataclass
class StorageOptions:
    """How to reach storage from where ``kitchen`` runs (a CI job, a bastion)."""

    pvc_mirror: Path | None = None
    s3_endpoint: str | None = None  # overrides every environment's endpoint
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    ca_bundle: Path | None = None
    timeout_s: float = 10.0
    jobs: int = field(default_factory=lambda: max(4, min(16, 2 * (os.cpu_count() or 2))))
    skip_bases: bool = False


@dataclass
class ArtifactScan:
    """What storage holds for one artifact as one environment sees it."""

    environment: str
    artifact: Artifact
    store: Store | None
    listing: dict[str, int] | None = None
    problem: ContainerProblem | None = None
    unsupported: str = ""  # why the source cannot be read, when it cannot
    digests: dict[str, Digest] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # name -> read error

    @property
    def kind(self) -> str:
        return self.artifact.kind

    @property
    def key(self) -> str:
        return self.artifact.key


def environment_artifacts(catalog: Catalog, env_name: str) -> list[Artifact]:
    """Every base and flavor the environment serves, bases first, each once, sorted."""
    plan = plan_environment(catalog, env_name)
    bases: dict[str, Base] = {}
    flavors: dict[str, Flavor] = {}
    for svc in plan.services:
        bases[svc.base.ref] = svc.base
        for f in svc.flavors:
            flavors[f.ref] = f
    datasets = [d for d in (dataset_artifact(k, flavors[k]) for k in sorted(flavors)) if d is not None]
    return ([artifact_of("Base", k, bases[k]) for k in sorted(bases)]
            + [artifact_of("Flavor", k, flavors[k]) for k in sorted(flavors)] + datasets)


class StoreFactory:
    """One store per distinct storage system, so identical storage is read once."""

    def __init__(self, catalog: Catalog, options: StorageOptions) -> None:
        self.catalog = catalog
        self.options = options
        self.stores: dict[str, Store] = {}

    def for_source(self, env_name: str, source: SourceUri) -> Store | str:
        """The store, or the reason why this source cannot be read."""
        o = self.options
        if source.scheme == REPOSITORY:
            store: Store = RepositoryStore(self.catalog.root)
        elif source.scheme == "pvc":
            if o.pvc_mirror is None:
                raise UsageError(
                    f"environment {env_name} serves {source.uri()} from a PVC; pvc:// sources "
                    "are read from a local mirror of the claims: pass --pvc-mirror DIR "
                    "(or --flavors-only to check the adapters alone)")
            store = MirrorStore(o.pvc_mirror)
        elif source.scheme == "s3":
            s3 = self.catalog.environments[env_name].storage.s3
            store = S3Store(S3Settings(
                endpoint=o.s3_endpoint or s3.endpoint, secure=s3.use_https,
                verify_tls=s3.verify_ssl, region=s3.region, access_key=o.access_key,
                secret_key=o.secret_key, session_token=o.session_token, ca_bundle=o.ca_bundle,
                timeout_s=o.timeout_s, connections=o.jobs, environment=env_name,
                secret_name=s3.secret))
        else:
            return (f"{source.scheme}:// sources cannot be verified; an air-gapped environment "
                    "serves from s3:// or pvc://")
        return self.stores.setdefault(store.identity, store)


def select_artifacts(catalog: Catalog, env_names: Iterable[str],
                     options: StorageOptions) -> list[tuple[str, Artifact]]:
    out = []
    for env in env_names:
        for art in environment_artifacts(catalog, env):
            if art.kind == "Base" and options.skip_bases:
                continue
            out.append((env, art))
    return out


Progress = Callable[[str], None]


def scan_environments(
    catalog: Catalog,
    env_names: Iterable[str],
    options: StorageOptions,
    *,
    hash_files: bool = True,
    progress: Progress | None = None,
) -> list[ArtifactScan]:
    """List (and hash) every pinned file of every artifact the environments serve.

    Raises :class:`StorageUnreachable` (a ``ConfigError``) when a storage system cannot
    be used at all; everything else is recorded on the scans.
    """
    if options.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    factory = StoreFactory(catalog, options)
    scans: list[ArtifactScan] = []
    for env, art in select_artifacts(catalog, env_names, options):
        store = factory.for_source(env, art.source)
        if isinstance(store, str):
            scans.append(ArtifactScan(env, art, None, unsupported=store))
        else:
            scans.append(ArtifactScan(env, art, store))

    with ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="kitchen-io") as pool:
        try:
            _list_all(pool, scans)
            if hash_files:
                _hash_all(pool, scans, progress)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return scans


def _list_all(pool: ThreadPoolExecutor, scans: list[ArtifactScan]) -> None:
    cache: dict[tuple[str, str], Future[dict[str, int]]] = {}
    pending: list[tuple[ArtifactScan, Future[dict[str, int]]]] = []
    for scan in scans:
        if scan.store is None:
            continue
        k = (scan.store.identity, scan.artifact.source.uri())
        if k not in cache:
            cache[k] = pool.submit(scan.store.listing, scan.artifact.source)
        pending.append((scan, cache[k]))
    for scan, fut in pending:
        try:
            scan.listing = fut.result()
        except ContainerProblem as exc:
            scan.problem = exc
        except StorageUnreachable:
            raise
        except OSError as exc:  # pragma: no cover - a local mirror that vanished mid-run
            raise ConfigError(f"{scan.artifact.source.uri()}: {exc}") from exc
    for scan in scans:
        if scan.listing is not None:
            scan.missing = {p.name for p in scan.artifact.pins if p.name not in scan.listing}


def _read(store: Store, source: SourceUri, name: str) -> Digest:
    return digest_chunks(store.chunks(source, name), head_for(name))


def _hash_all(pool: ThreadPoolExecutor, scans: list[ArtifactScan], progress: Progress | None) -> None:
    jobs: dict[tuple[str, str], tuple[int, Store, SourceUri, str]] = {}
    for scan in scans:
        if scan.store is None or scan.listing is None:
            continue
        for pin in scan.artifact.pins:
            if pin.name in scan.listing:
                k = (scan.store.identity, scan.artifact.source.uri(pin.name))
                jobs.setdefault(k, (scan.listing[pin.name], scan.store, scan.artifact.source,
                                    pin.name))
    # largest first: the long hashes start early and the pool drains evenly
    order = sorted(jobs, key=lambda k: (-jobs[k][0], k))
    futures = {pool.submit(_read, *jobs[k][1:]): k for k in order}
    results: dict[tuple[str, str], Digest | BaseException] = {}
    for fut in as_completed(futures):
        k = futures[fut]
        try:
            results[k] = fut.result()
        except (ObjectMissing, ContainerProblem) as exc:
            results[k] = exc
        if progress is not None:
            progress(k[1])
    for scan in scans:
        if scan.store is None or scan.listing is None:
            continue
        for pin in scan.artifact.pins:
            r = results.get((scan.store.identity, scan.artifact.source.uri(pin.name)))
            if isinstance(r, Digest):
                scan.digests[pin.name] = r
            elif isinstance(r, ObjectMissing):  # deleted between listing and reading
                scan.missing.add(pin.name)
            elif isinstance(r, ContainerProblem):
                scan.errors[pin.name] = r.message
