"""Signed conformance evidence: what a post-sync run proved, about which bytes, when.

An evidence record is built from the one result model of ``kitchen conform serving``
(every :class:`~kitchen_gitops.findings.CheckRecord`, copied generically: check,
subject, status, details) and the expectations it ran against (environment, cluster,
per InferenceService its serving digest and per flavor its flavor digest, computed from
the catalog by :mod:`kitchen_gitops.serving_digest`).  It is serialised as canonical
JSON (keys sorted, no whitespace, UTF-8) and signed with ed25519; the file holds

    {"record": {...}, "signature": {"algorithm": "ed25519", "key_id": "sha256:…", "value": "<base64>"}}

and the signature covers ``canonical_json(record)``: verification re-serialises the
record it read, so one changed byte of any value, or of the signature, fails it.  The
file is refused before that when it is not JSON, holds a key twice or a non-finite
number.

The keys kitchen trusts are public keys in ``policies/evidence-keys.yaml`` (security owns
``policies/``), each trusted for named environments only; the private key is a Secret in
the cluster (the conformance Job mounts it) or a file on a workstation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .escape import visible
from .findings import Location, Result
from .json_types import JsonObject, JsonValue, no_constants, unique_keys
from .serving_digest import canonical_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .artifacts.storage import S3Settings, S3Store
    from .conform.expectations import Expectations

FORMAT = "kitchen-evidence/1"
ALGORITHM = "ed25519"
KEYS_FILE = "evidence-keys.yaml"
# a record holds every check of a run; far below this even for thousands of flavors
MAX_RECORD_BYTES = 16 << 20
# a record from a clock ahead of this one by more than this is refused
CLOCK_SKEW = dt.timedelta(minutes=5)


class EvidenceError(Exception):
    """A record that cannot be trusted: where it came from, and why (one line)."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin, self.reason = origin, reason


@dataclass(frozen=True)
class Refusal:
    """An evidence file that does not verify: where it came from, and why."""

    origin: str
    reason: str


def kitchen_version() -> str:
    try:
        return metadata.version("kitchen-gitops")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a time")
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return when.astimezone(dt.UTC)


# ---------------------------------------------------------------- keys


def key_id(public_key: Ed25519PublicKey) -> str:
    """``sha256:`` of the raw 32-byte ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """An ed25519 private key from a PEM file (``openssl genpkey -algorithm ed25519``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the evidence signing key: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({exc}); expected an ed25519 key "
                          "(openssl genpkey -algorithm ed25519)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: a {type(key).__name__.removeprefix('_')} key; evidence is signed "
                          "with ed25519 (openssl genpkey -algorithm ed25519)")
    return key


def public_pem(private_key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"))


@dataclass(frozen=True)
class TrustedKey:
    name: str
    key_id: str
    environments: frozenset[str]
    public_key: Ed25519PublicKey
    location: Location


def load_trusted_keys(policies: Path, root: Path) -> dict[str, TrustedKey]:
    """The keys of ``policies/evidence-keys.yaml`` by key id; none when the file is absent.

    The file is security's: a key it lists is trusted for its ``environments`` only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .load import load_file

    path = policies / KEYS_FILE
    if not path.exists():
        return {}
    doc, problems = load_file(path, root)
    if problems or doc is None:
        p = problems[0]
        raise ConfigError(f"{p.location}: {p.message}")

    def fail(at: tuple[str | int, ...], message: str) -> ConfigError:
        return ConfigError(f"{doc.location(at, value=True)}: {message}")

    data = doc.data
    if not isinstance(data, dict) or set(data) != {"keys"} or not isinstance(data["keys"], list):
        raise fail((), "expected a mapping with one field, keys: a list of {name, environments, public_key}")
    out: dict[str, TrustedKey] = {}
    names: set[str] = set()
    for i, entry in enumerate(data["keys"]):
        at: tuple[str | int, ...] = ("keys", i)
        if not isinstance(entry, dict) or set(entry) != {"name", "environments", "public_key"}:
            raise fail(at, "expected name, environments and public_key (and nothing else)")
        name, envs, pem = entry["name"], entry["environments"], entry["public_key"]
        if not isinstance(name, str) or not name.strip() or name in names:
            raise fail((*at, "name"), "expected a name used once in the file")
        if (not isinstance(envs, list) or not envs
                or not all(isinstance(e, str) and e.strip() for e in envs)):
            raise fail((*at, "environments"), "expected the environments whose evidence this key signs")
        try:
            key = serialization.load_pem_public_key(pem.encode("ascii") if isinstance(pem, str) else b"")
        except (ValueError, UnicodeEncodeError):
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise fail((*at, "public_key"), "expected an ed25519 public key in PEM "
                       "(openssl pkey -in signing-key.pem -pubout)")
        kid = key_id(key)
        if kid in out:
            raise fail((*at, "public_key"), f"the same key as {out[kid].name}")
        names.add(name)
        out[kid] = TrustedKey(name, kid, frozenset(envs), key, doc.location(at))
    return out


# ---------------------------------------------------------------- records


def _plain(value: object) -> JsonValue:
    """JSON of a check's details: non-finite numbers as text, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items: list[JsonValue] = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _details(details: Mapping[str, object]) -> JsonObject:
    return {str(k): _plain(v) for k, v in details.items()}


def build_record(result: Result, expectations: Expectations, *, now: dt.datetime) -> dict[str, Any]:
    """The evidence record of a ``conform serving`` run over ``expectations``."""
    services: list[JsonValue] = [{
        "namespace": s.namespace, "name": s.name, "tenant": s.tenant, "base": s.base_ref,
        "serving_digest": s.serving_digest,
        "flavors": [{"ref": f.ref, "name": f.name, "digest": f.digest}
                    for f in sorted(s.flavors, key=lambda f: f.ref)],
    } for s in sorted(expectations.services, key=lambda s: (s.namespace, s.name))]
    checks: list[JsonValue] = []
    evaluations: list[JsonValue] = []
    for r in result.records or ():
        details = _details(r.details)
        checks.append({"check": r.check, "subject": r.subject, "status": r.status.value, "details": details})
        if r.check == "evaluation":
            evaluations.append({**details, "subject": r.subject, "status": r.status.value})
    return {
        "format": FORMAT,
        "environment": expectations.environment,
        "cluster": expectations.cluster,
        "time": utc_text(now),
        "started": result.started,
        "kitchen_version": kitchen_version(),
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "checks_run": list(result.info.get("checks", [])),
        "services": services,
        "checks": checks,
        "evaluations": evaluations,
    }


def sign_record(record: Mapping[str, object], private_key: Ed25519PrivateKey) -> bytes:
    """The signed file's bytes: canonical JSON of the record and its signature, one line."""
    signature = private_key.sign(canonical_json(record))
    envelope = {"record": record, "signature": {
        "algorithm": ALGORITHM, "key_id": key_id(private_key.public_key()),
        "value": base64.b64encode(signature).decode("ascii")}}
    return canonical_json(envelope) + b"\n"


def record_name(record: Mapping[str, object], data: bytes) -> str:
    """``<environment>-<time>-<sha256 prefix>.json``: sorts by time, never collides."""
    stamp = str(record["time"]).replace("-", "").replace(":", "")
    return f"{record['environment']}-{stamp}-{hashlib.sha256(data).hexdigest()[:16]}.json"


@dataclass(frozen=True)
class FlavorEvidence:
    ref: str
    digest: str
    service: str  # namespace/name


@dataclass
class VerifiedRecord:
    """A record whose signature a trusted key made, and what it says."""

    origin: str
    sha256: str
    data: bytes
    environment: str
    cluster: str
    time: dt.datetime
    verdict: str
    signer: str
    record: dict[str, Any]
    flavors: dict[str, list[FlavorEvidence]] = field(default_factory=dict)


def parse_signed(data: bytes, origin: str) -> dict[str, object]:
    if len(data) > MAX_RECORD_BYTES:
        raise EvidenceError(origin, f"larger than {MAX_RECORD_BYTES >> 20} MiB")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EvidenceError(origin, f"not an evidence file ({visible(str(exc))[:200]})") from None
    if not isinstance(doc, dict) or set(doc) != {"record", "signature"}:
        raise EvidenceError(origin, "not an evidence file (expected record and signature)")
    return doc


def verify_signed(data: bytes, origin: str, trusted: Mapping[str, TrustedKey]) -> VerifiedRecord:
    """The record of a signed evidence file, or EvidenceError saying why it is not trusted."""
    from cryptography.exceptions import InvalidSignature

    doc = parse_signed(data, origin)
    record, sig = doc["record"], doc["signature"]
    if not isinstance(record, dict) or not isinstance(sig, dict):
        raise EvidenceError(origin, "not an evidence file (record and signature are objects)")
    if sig.get("algorithm") != ALGORITHM:
        raise EvidenceError(origin, f"signature algorithm {visible(str(sig.get('algorithm')))}, expected {ALGORITHM}")
    key = trusted.get(str(sig.get("key_id")))
    if key is None:
        raise EvidenceError(origin, f"signed by key {visible(str(sig.get('key_id')))[:80]}, which "
                            f"policies/{KEYS_FILE} does not trust")
    try:
        signature = base64.b64decode(str(sig.get("value")), validate=True)
        key.public_key.verify(signature, canonical_json(record))
    except (ValueError, InvalidSignature):
        raise EvidenceError(origin, f"the signature of key {key.name} does not verify: the record or its "
                            "signature was changed after signing") from None
    if record.get("format") != FORMAT:
        raise EvidenceError(origin, f"format {visible(str(record.get('format')))}, expected {FORMAT}")
    env = record.get("environment")
    if env not in key.environments:
        raise EvidenceError(origin, f"evidence of environment {visible(str(env))} signed by key {key.name}, "
                            f"which is trusted for {', '.join(sorted(key.environments))} only")
    try:
        when = parse_time(record.get("time"))
        out = VerifiedRecord(origin, hashlib.sha256(data).hexdigest(), data, str(env), str(record["cluster"]),
                             when, str(record["verdict"]), key.name, record)
        for svc in record["services"]:
            where = f"{svc['namespace']}/{svc['name']}"
            for f in svc["flavors"]:
                out.flavors.setdefault(str(f["ref"]), []).append(
                    FlavorEvidence(str(f["ref"]), str(f["digest"]), where))
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(origin, f"a signed record without the fields of {FORMAT} ({exc!r})") from None
    return out


def fresh(record: VerifiedRecord, now: dt.datetime, max_age_days: int) -> str:
    """Why the record is not fresh at ``now`` ("" when it is)."""
    age = now - record.time
    if age < -CLOCK_SKEW:
        return f"recorded at {utc_text(record.time)}, in the future of {utc_text(now)}"
    if age > dt.timedelta(days=max_age_days):
        return (f"recorded at {utc_text(record.time)}, {age.days} days before {utc_text(now)}; "
                f"at most {max_age_days} days")
    return ""


# ---------------------------------------------------------------- where records are kept


def read_folder(folder: Path) -> list[tuple[str, bytes]]:
    """Every ``*.json`` file below ``folder`` (its path, its bytes), in name order."""
    if not folder.is_dir():
        raise ConfigError(f"--evidence {folder}: no such folder")
    from .load import read_regular_file

    out = []
    for path in sorted(folder.rglob("*.json")):
        if path.is_file() and not path.is_symlink():
            try:
                data = read_regular_file(path, MAX_RECORD_BYTES)  # one byte more is refused
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
            out.append((str(path), data))
    return out


def write_folder(folder: Path, name: str, data: bytes) -> Path:
    from .write import write_report

    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create the evidence folder: {exc.strerror or exc}") from None
    write_report(path, data.decode("utf-8"))
    return path


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending with "/"

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        from .artifacts.storage import SourceUri

        if not uri.startswith("s3://"):
            raise ConfigError(f"{visible(uri)}: expected s3://BUCKET/PREFIX/")
        try:
            src = SourceUri.parse(uri)
        except ValueError as exc:
            raise ConfigError(f"{visible(uri)}: {exc}") from None
        return cls(src.container, src.prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def s3_client(settings: S3Settings) -> S3Store:
    from .artifacts.storage import S3Store

    return S3Store(settings)


def upload(store: S3Store, where: S3Location, name: str, data: bytes) -> str:
    """Put one record; returns its URI.  Storage failures are configuration errors (exit 2)."""
    import io

    from .artifacts.storage import SourceUri

    client = store.client()
    try:
        client.put_object(where.bucket, where.prefix + name, io.BytesIO(data), len(data),
                          content_type="application/json")
    except Exception as exc:
        raise ConfigError(f"cannot upload the evidence to {where}: "
                          f"{store._translate(exc, SourceUri('s3', where.bucket, where.prefix), name)}") from None
    return f"{where}{name}"


def download(store: S3Store, where: S3Location) -> list[tuple[str, bytes]]:
    """Every ``*.json`` record under the location (its URI, its bytes), in name order."""
    from .artifacts.storage import SourceUri

    src = SourceUri("s3", where.bucket, where.prefix)
    try:
        names = sorted(n for n in store.listing(src) if n.endswith(".json"))
        out = []
        for n in names:
            data = bytearray()
            for chunk in store.chunks(src, n):
                data += chunk
                if len(data) > MAX_RECORD_BYTES:  # refused by its size: read no further
                    break
            out.append((src.uri(n), bytes(data)))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot read the evidence under {where}: {getattr(exc, 'message', exc)}") from None
    return out


def verified_records(files: Iterable[tuple[str, bytes]],
                     trusted: Mapping[str, TrustedKey]) -> tuple[list[VerifiedRecord], list[Refusal]]:
    """The records that verify, and why each other one does not."""
    good: list[VerifiedRecord] = []
    bad: list[Refusal] = []
    for origin, data in files:
        try:
            good.append(verify_signed(data, origin, trusted))
        except EvidenceError as exc:
            bad.append(Refusal(exc.origin, exc.reason))
    return good, bad
