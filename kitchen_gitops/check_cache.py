"""``kitchen check``'s per-environment work in the gate's cache, at two levels, each keyed
by the digest of what it reads (kitchen's code and libraries are in every key):

- **environment**: the environment's findings, under the engine, the environment's name,
  the options that change its findings, every file of the folders the gate reads
  (catalog/, environments/, templates/, the policy folder and policies/, evaluations/,
  evidence/) and, where the committed output is checked, that environment's output folder;
- **evaluated**: the engine's answer for each part of the environment's input its rules'
  scopes name (the whole input, the input without the tenants' resources, that without
  the catalog's flavors, each slice), under the engine, the modules and data the engine
  holds, the query and the digest that names the input's bytes exactly (a found tenant's
  items by their SHA-256 and place, read only where the answer is not found): exactly
  what it reads; in one pack per environment.  The findings are made from
  the answers on every run (their positions come from the catalog).

Time-dependent work (waivers, promotion evidence) and the whole-catalog checks after it are
never stored.  A templates folder every template of which compiled is marked
(**templates-compiled**, under the folder's digest), so that a later run compiles only the
templates it renders with.  Below these levels, an environment rendered again finds each
tenant's objects by the files they come from and the environment's own objects by their
templates' contexts (:mod:`kitchen_gitops.render_memo`), so that it renders only what an
edit changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .cache import Cache, Digest, DigestBudget, DigestTooLarge, Pack, Signatures, folder_digest
from .findings import Finding, Location, ResourceRef, Severity
from .limits import Done, Pending
from .policy.library import COMMENT_OR_STRING, Library

KIND = "environment"
EVALUATED = "evaluated"
COMPILED = "templates-compiled"
_COMPILED_MARK = b"every template compiled"
# the repository's folders the gate reads besides templates/ and the policy folder
READ_FOLDERS = ("catalog", "environments", "policies", "evaluations", "evidence")
# The built-ins OPA's capabilities mark non-deterministic (their answer depends on the time,
# the network, randomness or the running engine), and the certificate and token checks that
# read the clock: a library that calls one is evaluated on every run.
NONDETERMINISTIC = ("http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "time.now_ns",
                    "uuid.rfc4122", "io.jwt.decode_verify", "crypto.x509.parse_and_verify_certificates",
                    "crypto.x509.parse_and_verify_certificates_with_options")
_CALL = re.compile(r"(?<![\w.])(" + "|".join(re.escape(n) for n in NONDETERMINISTIC) + r")\s*\(")
_FIELDS = ("rule_id", "severity", "message", "location", "resource", "expected", "actual", "environment",
           "subject", "waived_by")


@dataclass
class Inputs:
    """The digest of each folder the gate reads, taken before it reads them, and what each
    file looked like then."""

    parts: dict[str, bytes]
    signatures: Signatures
    budget: DigestBudget = field(default_factory=DigestBudget)  # what the output digests may still read

    def digest_of(self, labels: Sequence[str]) -> bytes:
        d = Digest("inputs")
        for label in sorted(labels):
            d.text(label).add(self.parts[label])
        return d.hexdigest().encode()

    @property
    def digest(self) -> bytes:
        return self.digest_of(list(self.parts))


def inputs_digest(folders: Mapping[str, Path], root: Path, given: Sequence[str] = ()) -> Inputs:
    """The digest of every file below each of ``folders`` (by label: the same bytes in
    another folder are another input), links followed where they stay in the repository
    ``root`` — or, for the folders of ``given`` (named on the command line), in that
    folder; :class:`~kitchen_gitops.cache.DigestTooLarge` where they hold more than a
    digest reads."""
    signatures = Signatures()
    budget = DigestBudget()
    parts = {}
    for label, folder in folders.items():
        d = Digest("folder")
        folder_digest(folder, d, signatures, () if label in given else (root,), budget)
        parts[label] = d.hexdigest().encode()
    return Inputs(parts, signatures, budget)


def output_digest(output: Path | None, inputs: Inputs) -> bytes | None:
    """The digest of an environment's committed output (b"" when it is not checked), no
    link followed (the staleness check reads none: kitchen writes files, and a link is
    out of date whatever it leads to); None where it holds more than a digest reads.  Its
    files join the inputs' signatures."""
    if output is None:
        return b""
    d = Digest("output")
    try:
        folder_digest(output, d, inputs.signatures, budget=inputs.budget, follow=False)
    except DigestTooLarge:
        return None
    return d.hexdigest().encode()


def nondeterministic(library: Library) -> str:
    """Where the library's policies call a built-in of :data:`NONDETERMINISTIC` (the first
    one, ``file:line``), or "" (comments aside; tests count too, as they are evaluated).
    A call named in a string counts too: it is not a call, and the library is only
    evaluated every run; a ``#`` in a string is not a comment that hides the rest of its
    line."""
    for module in library.modules:
        text = without_comments(module.text)
        if match := _CALL.search(text):
            line = text.count("\n", 0, match.start()) + 1
            return f"{module.display}:{line}: {match.group(1)}"
    return ""


def without_comments(text: str) -> str:
    """A Rego module's text with each comment blanked out (lines and columns kept)."""
    return COMMENT_OR_STRING.sub(lambda m: " " * len(m.group(0)) if m.group(0).startswith("#") else m.group(0),
                                  text)


def _compiled_key(templates: bytes) -> str:
    return Digest(COMPILED).add(templates).hexdigest()


def templates_compiled(cache: Cache, templates: bytes) -> bool:
    """Whether a run compiled every template of the templates folder whose digest (every
    file below it, :func:`inputs_digest`) is ``templates``, with this kitchen and jinja2."""
    mark = cache.read(COMPILED, _compiled_key(templates), lambda p: p if p == _COMPILED_MARK else None,
                      "not the mark of a compiled folder")
    return mark is not None


def mark_compiled(cache: Cache, templates: bytes) -> None:
    """Mark the templates folder ``templates`` (its digest) as compiled, every template of it."""
    cache.put(COMPILED, _compiled_key(templates), _COMPILED_MARK)


def environment_key(name: str, inputs: Inputs, options: Sequence[str], output: bytes) -> str:
    return Digest(KIND).text(name, *options).add(inputs.digest, output).hexdigest()


@dataclass
class Stages:
    """Where an environment's evaluation is found and stored: what its keys read that the
    job does not compute (the library's digest)."""

    cache: Cache
    library: bytes  # the modules and data the engine holds

    @classmethod
    def of(cls, cache: Cache, library: Library) -> Stages:
        held = Digest("library").add(orjson.dumps(library.data, option=orjson.OPT_SORT_KEYS))
        for module in library.modules:
            held.text(module.display, module.text)
        return cls(cache, held.hexdigest().encode())

    def answers(self, engine: str, name: str) -> StoredAnswers:
        """The engine's answers for ``name``'s input and its slices, found and kept in one
        pack per environment."""
        return StoredAnswers(self, engine, self.cache.pack(EVALUATED, name))


class StoredAnswers:
    """The engine's answer for an input, found by the engine, the modules and data it
    holds, the query and the digest that names the input's bytes exactly
    (:func:`~kitchen_gitops.input_items.input_digest`): exactly what it reads
    (policy/gate.Answers)."""

    def __init__(self, stages: Stages, engine: str, pack: Pack) -> None:
        self.stages, self.engine, self.pack = stages, engine, pack

    def _key(self, query: str, digest: bytes) -> str:
        return Digest(EVALUATED).text(self.engine, query).add(self.stages.library, digest).hexdigest()

    def find(self, query: str, digest: bytes) -> Pending[Any] | None:
        return self.pack.read(self._key(query, digest), _answer, "not JSON")

    def flush(self) -> None:
        self.pack.flush()

    def keep(self, query: str, digest: bytes, answer: Any) -> None:
        try:
            payload = orjson.dumps(answer)
        except TypeError:  # a value JSON cannot hold exactly: not kept
            return
        self.pack.put(self._key(query, digest), payload)


def _answer(payload: bytes) -> Pending[Any] | None:
    try:
        return Done(orjson.loads(payload))  # an answer may be null: wrapped, it is not a refusal
    except orjson.JSONDecodeError:
        return None


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
