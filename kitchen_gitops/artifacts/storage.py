"""Reach the storage that holds models and adapters: S3 (MinIO) and PVC mirrors.

Two kinds of failure are kept apart.  What concerns one artifact (a missing object, a
missing bucket, a bucket the credentials may not read) becomes a finding at the
catalog line that names it, and the run goes on.  What stops every request (wrong
credentials, an endpoint that is down, times out or fails the TLS handshake) raises
:class:`StorageUnreachable`, a configuration error: exit code 2 with one clear
message instead of one finding per file.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import settings
from ..errors import ConfigError
from ..rules import (
    ARTIFACTS_ACCESS_DENIED,
    ARTIFACTS_BUCKET_MISSING,
    ARTIFACTS_CLAIM_MISSING,
    ARTIFACTS_MISSING_FILE,
    ARTIFACTS_OUTSIDE_MIRROR,
    ARTIFACTS_STORAGE_ERROR,
)
from .digest import CHUNK_BYTES, read_file_chunks

# S3 error codes that mean every request will fail the same way
_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "TokenRefreshRequired", "InvalidSecurity", "InvalidClientTokenId",
})


class StorageUnreachable(ConfigError):
    """Storage cannot be used at all (credentials, network, TLS)."""


class ObjectMissing(Exception):
    """One object is not there."""


class ContainerProblem(Exception):
    """A bucket or claim cannot be read: missing, or access denied to it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


# The scheme of a file of the catalog repository itself (an evaluation set): written
# without a scheme, as the catalog names it (``evaluations/faq/v3.jsonl``).
REPOSITORY = "repo"


@dataclass(frozen=True)
class SourceUri:
    """``scheme://container/prefix/`` as the catalog writes it."""

    scheme: str
    container: str  # bucket or claim
    prefix: str  # "" or ending with "/"

    @classmethod
    def parse(cls, uri: str) -> SourceUri:
        """Split a URI the catalog model has validated; refuses anything that could turn
        into a path outside its container (``..``, ``.``, empty or absolute segments)."""
        scheme, _, rest = uri.partition("://")
        container, _, prefix = rest.partition("/")
        prefix = prefix.removesuffix("/")
        segments = prefix.split("/") if prefix else []
        if (not container or container in (".", "..") or "/" in container or "\\" in uri
                or any(s in ("", ".", "..") for s in segments)):
            raise ValueError(f"unsafe storage URI {uri!r}")
        return cls(scheme, container, f"{prefix}/" if prefix else "")

    def uri(self, name: str = "") -> str:
        if self.scheme == REPOSITORY:
            return f"{self.container}/{self.prefix}{name}"
        return f"{self.scheme}://{self.container}/{self.prefix}{name}"


class Store(Protocol):
    """Read access to one storage system."""

    identity: str  # equal for two stores that see the same bytes

    def listing(self, source: SourceUri) -> dict[str, int]:
        """Every object below ``source`` (name relative to it → size)."""
        ...

    def chunks(self, source: SourceUri, name: str) -> Iterator[bytes | memoryview]:
        """The object's bytes, streamed."""
        ...


# ---------------------------------------------------------------- PVC mirror


class MirrorStore:
    """``pvc://claim/path`` read from ``<mirror>/claim/path``: what a bastion or CI job sees."""

    def __init__(self, mirror: Path) -> None:
        self.mirror = mirror
        self.real = mirror.resolve()
        self.identity = f"mirror:{self.real}"

    def _dir(self, source: SourceUri) -> Path:
        return self.mirror / source.container / source.prefix

    def _confined(self, path: Path) -> Path | None:
        """``path`` resolved, or None when it (through a link) leaves the mirror."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return real if real == self.real or self.real in real.parents else None

    def listing(self, source: SourceUri) -> dict[str, int]:
        claim = self.mirror / source.container
        if claim.is_dir() and self._confined(claim) is None:
            raise ContainerProblem(ARTIFACTS_OUTSIDE_MIRROR,
                                   f"claim '{source.container}' links outside the PVC mirror "
                                   f"{self.mirror}; not read")
        if not claim.is_dir():
            raise ContainerProblem(
                ARTIFACTS_CLAIM_MISSING,
                f"claim '{source.container}' is not in the PVC mirror {self.mirror} "
                f"(no folder {claim})")
        folder = self._dir(source)
        out: dict[str, int] = {}
        if not folder.is_dir():
            return out
        if self._confined(folder) is None:
            raise ContainerProblem(ARTIFACTS_OUTSIDE_MIRROR,
                                   f"{folder} links outside the PVC mirror {self.mirror}; not read")
        try:
            for dirpath, _dirs, files in os.walk(folder):
                for f in files:
                    path = Path(dirpath) / f
                    real = self._confined(path)
                    if real is None or not real.is_file():
                        continue  # a link out of the mirror or a special file is not there
                    out[path.relative_to(folder).as_posix()] = real.stat().st_size
        except OSError as exc:
            raise ContainerProblem(ARTIFACTS_ACCESS_DENIED,
                                   f"cannot read {folder}: {exc.strerror}") from exc
        return out

    def chunks(self, source: SourceUri, name: str) -> Iterator[bytes | memoryview]:
        if name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/")):
            raise ObjectMissing(source.uri(name))
        path = self._dir(source) / name
        real = self._confined(path)
        if real is None or not real.is_file():
            raise ObjectMissing(source.uri(name))
        try:
            yield from read_file_chunks(real)
        except OSError as exc:
            raise ContainerProblem(ARTIFACTS_ACCESS_DENIED,
                                   f"cannot read {path}: {exc.strerror}") from exc


class RepositoryStore(MirrorStore):
    """Files of the catalog repository (``evaluations/…``), read like a mirror whose
    "claim" is the top folder; nothing outside the repository is read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.identity = f"repository:{self.real}"

    def listing(self, source: SourceUri) -> dict[str, int]:
        folder = self.mirror / source.container
        if not folder.is_dir() or self._confined(folder) is None:
            raise ContainerProblem(ARTIFACTS_MISSING_FILE,
                                   f"no folder {source.container}/ in the catalog repository")
        return super().listing(source)


# ---------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach S3; credentials come from the process environment or flags."""

    endpoint: str  # host:port, or a URL whose scheme decides TLS
    secure: bool = True
    verify_tls: bool = True
    region: str = settings.S3_REGION
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    ca_bundle: Path | None = None
    timeout_s: float = 10.0
    connections: int = 8
    environment: str = ""  # for messages
    secret_name: str = ""  # the in-cluster Secret that holds the credentials, for messages

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    @property
    def use_tls(self) -> bool:
        if "://" in self.endpoint:
            return self.endpoint.startswith("https://")
        return self.secure


class S3Store:
    """Objects in one S3 endpoint through the ``minio`` SDK."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.identity = f"s3:{'https' if settings.use_tls else 'http'}://{settings.host}"
        self._client: Any = None

    def _where(self) -> str:
        env = f" (environment {self.settings.environment})" if self.settings.environment else ""
        return f"S3 endpoint {self.settings.host}{env}"

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        s = self.settings
        if not s.access_key or not s.secret_key:
            secret = f" (in the cluster: Secret {s.secret_name})" if s.secret_name else ""
            raise StorageUnreachable(
                f"no credentials for {self._where()}: set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY{secret}, or pass --access-key/--secret-key")
        import urllib3
        from minio import Minio

        if s.ca_bundle is not None and not s.ca_bundle.is_file():
            raise StorageUnreachable(f"CA bundle {s.ca_bundle} is not a readable file")
        kwargs: dict[str, Any] = {}
        if s.use_tls:
            if s.verify_tls:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                if s.ca_bundle is not None:
                    kwargs["ca_certs"] = str(s.ca_bundle)
                else:
                    import certifi

                    kwargs["ca_certs"] = settings.SSL_CERT_FILE.get() or certifi.where()
            else:
                kwargs["cert_reqs"] = "CERT_NONE"
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=s.timeout_s, read=s.timeout_s),
            maxsize=max(1, s.connections),
            retries=urllib3.Retry(total=2, connect=1, read=1, backoff_factor=0.2,
                                  status_forcelist=(500, 502, 503, 504)),
            **kwargs,
        )
        try:
            self._client = Minio(s.host, access_key=s.access_key, secret_key=s.secret_key,
                                 session_token=s.session_token, secure=s.use_tls,
                                 region=s.region or None, http_client=http)
        except ValueError as exc:
            raise StorageUnreachable(f"S3 endpoint '{s.endpoint}' is not usable: {exc}") from exc
        return self._client

    def listing(self, source: SourceUri) -> dict[str, int]:
        client = self.client()
        out: dict[str, int] = {}
        try:
            for obj in client.list_objects(source.container, prefix=source.prefix, recursive=True):
                name = str(obj.object_name)
                if name.endswith("/"):
                    continue
                out[name[len(source.prefix):]] = int(obj.size or 0)
        except Exception as exc:
            raise self._translate(exc, source, "") from exc
        return out

    def chunks(self, source: SourceUri, name: str) -> Iterator[bytes | memoryview]:
        client = self.client()
        try:
            response = client.get_object(source.container, source.prefix + name)
        except Exception as exc:
            raise self._translate(exc, source, name) from exc
        try:
            yield from response.stream(CHUNK_BYTES, decode_content=False)
        except Exception as exc:
            raise self._translate(exc, source, name) from exc
        finally:
            response.close()
            response.release_conn()

    def _translate(self, exc: Exception, source: SourceUri, name: str) -> Exception:
        """Map an SDK or network exception to one of this module's errors."""
        from xml.etree import ElementTree

        from minio.error import InvalidResponseError, S3Error, ServerError

        where = self._where()
        if isinstance(exc, S3Error):
            code = exc.code or ""
            if code == "NoSuchKey" and name:
                return ObjectMissing(source.uri(name))
            if code == "NoSuchBucket":
                return ContainerProblem(
                    ARTIFACTS_BUCKET_MISSING,
                    f"bucket '{source.container}' does not exist on {where}")
            if code in _CREDENTIAL_CODES:
                secret = (f"; in the cluster they come from Secret {self.settings.secret_name}"
                          if self.settings.secret_name else "")
                return StorageUnreachable(
                    f"{where} rejected the credentials ({code}: {exc.message}); check "
                    f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{secret}")
            if code == "AuthorizationHeaderMalformed":
                return StorageUnreachable(
                    f"{where} rejected the request ({code}: {exc.message}); check the "
                    f"region (now '{self.settings.region}')")
            if code == "AccessDenied":
                return ContainerProblem(
                    ARTIFACTS_ACCESS_DENIED,
                    f"access denied to {source.uri(name)} on {where}: the credentials may "
                    "not read this bucket")
            return ContainerProblem(ARTIFACTS_STORAGE_ERROR,
                                    f"{source.uri(name)} on {where}: {code}: {exc.message}")
        if isinstance(exc, ServerError):
            return StorageUnreachable(f"{where} failed with HTTP {exc.status_code}: {exc}")
        if isinstance(exc, InvalidResponseError):
            return StorageUnreachable(f"{where} does not answer like S3: {_first_line(exc)}")
        if isinstance(exc, ElementTree.ParseError):  # a 2xx reply that is not S3's XML
            return StorageUnreachable(
                f"{where} does not answer like S3: its reply is not XML ({_first_line(exc)})")
        return self._network(exc)

    def _network(self, exc: Exception) -> Exception:
        import urllib3.exceptions as ue

        where = self._where()
        reason: BaseException = exc
        if isinstance(exc, ue.MaxRetryError) and exc.reason is not None:
            reason = exc.reason
        text = str(reason)
        if isinstance(reason, ue.SSLError | ssl.SSLError) or "SSL" in type(reason).__name__:
            hint = ("pass --ca-bundle FILE for a private CA" if self.settings.verify_tls
                    else "the endpoint may not speak TLS")
            return StorageUnreachable(
                f"TLS handshake with {where} failed: {_ssl_reason(text)}; {hint}, or set "
                "use_https: false in the environment for a plain-HTTP endpoint")
        # NewConnectionError is a ConnectTimeoutError in urllib3 2: test it first
        if isinstance(reason, ue.NewConnectionError | ue.NameResolutionError):
            return StorageUnreachable(
                f"cannot reach {where}: {_conn_reason(text)}; is the server running and "
                "the endpoint right? (override it with --s3-endpoint)")
        if isinstance(reason, ue.ConnectTimeoutError):
            return StorageUnreachable(
                f"{where} did not accept a connection within {self.settings.timeout_s:g}s")
        if isinstance(reason, ue.ReadTimeoutError | TimeoutError):
            return StorageUnreachable(
                f"{where} did not answer within {self.settings.timeout_s:g}s (read timeout; "
                "raise it with --timeout)")
        if isinstance(reason, ConnectionError | OSError):
            return StorageUnreachable(
                f"cannot reach {where}: {_conn_reason(text)}; is the server running and "
                "the endpoint right? (override it with --s3-endpoint)")
        if isinstance(reason, ue.ProtocolError | ue.HTTPError):
            return StorageUnreachable(f"connection to {where} broke: {_first_line(reason)}")
        return exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# OpenSSL's text inside the exception's repr: "[SSL: CODE] what happened (_ssl.c:1006)"
_SSL_TEXT = re.compile(r"\[SSL(?:: (?P<code>[A-Z0-9_]+))?\] (?P<what>.+?) \(_ssl\.c:\d+\)")


def _ssl_reason(text: str) -> str:
    """``certificate verify failed: self-signed certificate (CERTIFICATE_VERIFY_FAILED)``."""
    m = _SSL_TEXT.search(text)
    if m is None:
        return text[:200]
    what = m["what"].rstrip(".")
    return f"{what} ({m['code']})" if m["code"] else what


def _conn_reason(text: str) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "resolution" in low:
        return "host name does not resolve"
    if "unreachable" in low:
        return "network unreachable"
    return text.split(": ", 1)[-1][:200]
