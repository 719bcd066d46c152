"""``kitchen check``'s per-environment work in the gate's cache.

One environment's share of the gate — render, the closed world, the rendered-as-planned
and staleness checks, the policy evaluation — is stored as its findings, keyed by the
digest of everything it reads: kitchen's code and libraries (in every key), the engine,
the environment's name, the options that change its findings, every file of the folders
the gate reads (catalog/, environments/, templates/, the policy folder and policies/,
evaluations/, evidence/) and, where the committed output is checked, that environment's
output folder.  A change to any of them is a different key.  Time-dependent work (waivers,
promotion evidence) and the whole-catalog checks after it are never stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .cache import Digest, Signatures, folder_digest
from .findings import Finding, Location, ResourceRef, Severity
from .policy.library import Library

KIND = "environment"
# the repository's folders the gate reads besides templates/ and the policy folder
READ_FOLDERS = ("catalog", "environments", "policies", "evaluations", "evidence")
# The built-ins OPA's capabilities mark non-deterministic (their answer depends on the time,
# the network, randomness or the running engine), and the certificate and token checks that
# read the clock: a library that calls one is evaluated on every run.
NONDETERMINISTIC = ("http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "time.now_ns",
                    "uuid.rfc4122", "io.jwt.decode_verify", "crypto.x509.parse_and_verify_certificates",
                    "crypto.x509.parse_and_verify_certificates_with_options")
_CALL = re.compile(r"(?<![\w.])(" + "|".join(re.escape(n) for n in NONDETERMINISTIC) + r")\s*\(")
_COMMENT = re.compile(r"#[^\n]*")
_FIELDS = ("rule_id", "severity", "message", "location", "resource", "expected", "actual", "environment",
           "subject", "waived_by")


@dataclass
class Inputs:
    """The digest of the folders the gate reads, taken before it reads them, and what each
    file looked like then."""

    digest: bytes
    signatures: Signatures


def inputs_digest(folders: Sequence[Path]) -> Inputs:
    """The digest of every file below ``folders`` (each named by its position in the list,
    so that the same bytes in another folder are another input)."""
    d = Digest("inputs")
    signatures = Signatures()
    for i, folder in enumerate(folders):
        d.text(f"folder {i}")
        folder_digest(folder, d, signatures)
    return Inputs(d.hexdigest().encode(), signatures)


def nondeterministic(library: Library) -> str:
    """Where the library's policies call a built-in of :data:`NONDETERMINISTIC` (the first
    one, ``file:line``), or "" (comments aside; tests count too, as they are evaluated)."""
    for module in library.modules:
        text = _COMMENT.sub(lambda m: " " * len(m.group(0)), module.text)
        if match := _CALL.search(text):
            line = text.count("\n", 0, match.start()) + 1
            return f"{module.display}:{line}: {match.group(1)}"
    return ""


def environment_key(name: str, inputs: Inputs, options: Sequence[str], output: Path | None) -> str:
    """The key of one environment's findings; the output folder's files join the inputs'
    signatures."""
    d = Digest(KIND).text(name, *options).add(inputs.digest)
    if output is not None:
        d.text("output")
        folder_digest(output, d, inputs.signatures)
    return d.hexdigest()


def encode(findings: Sequence[Finding]) -> bytes:
    def one(f: Finding) -> list[Any]:
        loc = [f.location.file, f.location.line, f.location.col]
        res = None if f.resource is None else [f.resource.kind, f.resource.name, f.resource.namespace,
                                               f.resource.api_version]
        return [f.rule_id, f.severity.value, f.message, loc, res, f.expected, f.actual, f.environment,
                f.subject, f.waived_by]

    return orjson.dumps([one(f) for f in findings])


def _strings(*values: Any) -> bool:
    return all(type(v) is str for v in values)


def _finding(item: Any) -> Finding:
    if not (isinstance(item, list) and len(item) == len(_FIELDS)):
        raise ValueError("a finding has ten fields")
    rule, severity, message, loc, res, expected, actual, env, subject, waived = item
    if not (_strings(rule, severity, message, expected, actual, env, subject, waived)
            and isinstance(loc, list) and len(loc) == 3 and type(loc[0]) is str
            and type(loc[1]) is int and type(loc[2]) is int):
        raise ValueError("a finding's fields are strings and a location")
    resource = None
    if res is not None:
        if not (isinstance(res, list) and len(res) == 4 and _strings(*res)):
            raise ValueError("a resource is four strings")
        resource = ResourceRef(*res)
    return Finding(rule, Severity(severity), message, Location(*loc), resource, expected, actual, env,
                   subject, waived)


def decode(payload: bytes) -> list[Finding] | None:
    """The findings an entry holds, or None when it is not an entry's shape."""
    try:
        items = orjson.loads(payload)
        if not isinstance(items, list):
            return None
        return [_finding(item) for item in items]
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
