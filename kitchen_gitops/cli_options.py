"""Options that several commands share, declared once: the catalog root, the environments,
the report format (the reporters' registry is its list of choices), and the storage
options of ``artifacts verify|lock`` and ``bundle``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from . import settings
from .errors import UsageError
from .report import REPORTERS

if TYPE_CHECKING:
    from .artifacts.scan import StorageOptions

Format = Enum("Format", {name: name for name in REPORTERS}, type=str)  # type: ignore[misc]

RootOpt = Annotated[Path, typer.Option(
    "--root", "--catalog",
    help="Repository root holding catalog/, environments/, templates/ and policies/.")]
EnvOpt = Annotated[list[str] | None, typer.Option(
    "--env", "-e", help="Environment (repeatable); default: all.")]
FormatOpt = Annotated[Format, typer.Option(
    "--format", "-f", help="Report format; auto = github under GitHub Actions, else text.")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the report here instead of stdout.")]

F = TypeVar("F", bound=Callable[..., Any])

# the storage options: name → (annotation, default)
STORAGE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "pvc_mirror": (Annotated[Path | None, typer.Option(
        "--pvc-mirror", envvar=settings.PVC_MIRROR.name, file_okay=False,
        help="Local mirror of the PVCs: pvc://CLAIM/PATH is read from DIR/CLAIM/PATH.")], None),
    "flavors_only": (Annotated[bool, typer.Option(
        "--flavors-only", help="Check adapters only (no --pvc-mirror needed for bases).")], False),
    "s3_endpoint": (Annotated[str | None, typer.Option(
        "--s3-endpoint", envvar=settings.S3_ENDPOINT.name,
        help="S3 endpoint as seen from here (host:port or URL); default: the environment's.")], None),
    "access_key": (Annotated[str | None, typer.Option(
        "--access-key", envvar=settings.ACCESS_KEY.name, show_envvar=True,
        help="S3 access key (prefer the environment variable).")], None),
    "secret_key": (Annotated[str | None, typer.Option(
        "--secret-key", envvar=settings.SECRET_KEY.name, show_envvar=True,
        help="S3 secret key (prefer the environment variable).")], None),
    "ca_bundle": (Annotated[Path | None, typer.Option(
        "--ca-bundle", envvar=settings.CA_BUNDLE.name, dir_okay=False,
        help="PEM file of the CA that signed the S3 endpoint's certificate.")], None),
    "timeout": (Annotated[float, typer.Option(
        "--timeout", min=0.1, help="Seconds to wait for the S3 endpoint to connect or answer.")],
                settings.S3_TIMEOUT_S),
    "jobs": (Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="Files read and hashed in parallel (default: 2 per CPU, 4..16).")], None),
}


def storage_options(**values: Any) -> StorageOptions:
    """The parsed storage options as :class:`~kitchen_gitops.artifacts.scan.StorageOptions`."""
    from .artifacts.scan import StorageOptions

    mirror = values["pvc_mirror"]
    options = StorageOptions(
        pvc_mirror=mirror, s3_endpoint=values["s3_endpoint"], access_key=values["access_key"],
        secret_key=values["secret_key"], session_token=settings.credential(settings.SESSION_TOKEN),
        ca_bundle=values["ca_bundle"], timeout_s=values["timeout"], skip_bases=values["flavors_only"])
    if values["jobs"] is not None:
        options.jobs = values["jobs"]
    if mirror is not None and not mirror.is_dir():
        raise UsageError(f"--pvc-mirror {mirror} is not a folder")
    return options


def with_storage_options(command: F) -> F:
    """Give ``command`` the storage options, declared once here; it receives them as one
    value, ``storage`` (a StorageOptions)."""
    sig = inspect.signature(command, eval_str=True)  # a __signature__ is taken as is: resolve now
    own = [p for name, p in sig.parameters.items() if name != "storage"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in STORAGE_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        storage = storage_options(**{name: kwargs.pop(name) for name in STORAGE_OPTIONS})
        return command(storage=storage, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]
