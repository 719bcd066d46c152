"""The policy library: Rego modules under ``policies/``, and the metadata of each rule.

A rule is a package under ``kitchen.rules`` with an OPA ``# METADATA`` block (title,
description, ``custom.id``, ``custom.severity``) and a partial set ``violation``.  The
metadata is read here, in Python, so that every engine (embedded, real OPA, an OPA
server) reports the same rule ids and severities, and so that the docs are generated
from it.  Test modules (``*_test.rego``) hold the ``test_`` rules of ``kitchen policy test``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..escape import visible
from ..findings import Location, Severity
from .errors import PolicyError

if TYPE_CHECKING:
    from ..cache import Cache

RULES_PREFIX = "kitchen.rules."
GATE_PACKAGE = "kitchen.gate"
WHOLE_SCOPE = "whole"  # the whole input (the default)
ENVIRONMENT_SCOPE = "environment"  # the input without the tenants' resources
PLAN_SCOPE = "plan"  # the input without the tenants' resources and the catalog's flavors
TENANT_SCOPE = "tenant"  # each tenant's slice of the input
SCOPES = (WHOLE_SCOPE, ENVIRONMENT_SCOPE, PLAN_SCOPE, TENANT_SCOPE)
DATA_FILE = "data.yaml"

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*$", re.M)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.M)
_VIOLATION = re.compile(r"^violation\s+contains\b", re.M)
# The built-ins that reach outside the engine's input and data: the network (http.send,
# net.lookup_ip_addr) and the running engine (opa.runtime, its configuration and
# environment). A gate policy decides from the catalog alone; one that called these would
# make CI's engine fetch from CI's network (a cloud metadata endpoint) and send it on, and
# the embedded engine, which has none of them, would silently disagree with OPA. Found by
# their references, with comments and strings blanked (a message may name them).
_OUTSIDE = re.compile(r"(?<![\w.])(?:(?P<root>http|opa)\s*[.\[]|net\s*\.\s*lookup_ip_addr\b)")
# a comment, or a string (a "#" in it starts no comment), in Rego's syntax
COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*')


def blanked(text: str) -> str:
    """A Rego module's text with every comment and string blanked out (lines and columns kept)."""
    return COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _outside_call(text: str, display: str) -> PolicyError | None:
    match = _OUTSIDE.search(text) and _OUTSIDE.search(blanked(text))  # most modules name none at all
    if match is None:
        return None
    line = text.count("\n", 0, match.start()) + 1
    col = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    name = {"http": "http.send", "opa": "opa.runtime"}.get(match["root"] or "", "net.lookup_ip_addr")
    return PolicyError(Location(display, line, col),
                       f"refers to {name}, which reaches outside the policy input (the network, or the engine's "
                       "own environment); a gate policy decides from its input and data alone")
_RULE_ID = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")


@dataclass(frozen=True)
class Module:
    """One Rego file as loaded."""

    path: Path
    display: str  # relative to the repository root, posix
    text: str
    package: str

    @property
    def is_test(self) -> bool:
        return self.path.name.endswith("_test.rego")


@dataclass(frozen=True)
class Rule:
    """A rule's self-description, from its ``# METADATA`` block."""

    id: str
    title: str
    description: str
    severity: Severity
    package: str
    location: Location
    remediation: str = ""
    scope: str = WHOLE_SCOPE  # what of the input the rule is evaluated on (policy/slices.py)

    @property
    def name(self) -> str:
        return self.package.removeprefix(RULES_PREFIX)


@dataclass(frozen=True)
class TestRule:
    package: str
    name: str
    location: Location


@dataclass
class Library:
    folder: Path
    modules: list[Module] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)  # by package
    data: dict[str, Any] = field(default_factory=dict)

    def policy_modules(self) -> list[Module]:
        """Every module but the tests, libraries first (an OPA server compiles on each upload)."""
        mods = [m for m in self.modules if not m.is_test]
        return sorted(mods, key=lambda m: (m.package.startswith(RULES_PREFIX), m.display))

    def test_modules(self) -> list[Module]:
        return [m for m in self.modules if m.is_test]

    def tests(self) -> list[TestRule]:
        out = []
        for m in self.test_modules():
            for match in _TEST_RULE.finditer(m.text):
                line = m.text.count("\n", 0, match.start()) + 1
                out.append(TestRule(m.package, match.group(1), Location(m.display, line, 1)))
        # a test rule may have several bodies (incremental definitions): run it once
        unique = {(t.package, t.name): t for t in reversed(out)}
        return sorted(unique.values(), key=lambda t: (t.location.file, t.location.line))

    def rule_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules.values()}

    def gate_module(self) -> Module:
        """The query module: each rule's violations in one document, one evaluation — every
        rule (``violations``: on the whole input, what the slices are proven against), and
        the rules of each scope (``<scope>_violations``)."""
        def document(name: str, packages: list[str]) -> str:
            entries = "".join(f'\t"{pkg}": data.{pkg}.violation,\n' for pkg in packages)
            return f"{name} := {{\n{entries}}}\n" if entries else f"{name} := {{}}\n"

        rules = sorted(self.rules)
        text = "\n".join([f"package {GATE_PACKAGE}\n", document("violations", rules),
                          *(document(f"{scope}_violations", [p for p in rules if self.rules[p].scope == scope])
                            for scope in SCOPES)])
        return Module(self.folder / "_gate.rego", "kitchen/gate.rego", text, GATE_PACKAGE)


def violation_location(value: Any, fallback: Location) -> Location:
    """The ``at`` of a violation as a :class:`Location`, whatever a rule put there.

    A rule from a pull request may return a string, a negative or fractional line, a
    file name with a newline: anything that is not ``{file: str, line: int >= 0,
    col: int >= 0}`` with a printable file name gives ``fallback`` (the environment's
    file) instead of a traceback or a forged output line.
    """
    if not isinstance(value, dict):
        return fallback
    file, line, col = value.get("file"), value.get("line", 0), value.get("col", 0)
    if not isinstance(file, str) or not file or len(file) > 4096 or visible(file) != file:
        return fallback
    numbers = [0 if n is None else n for n in (line, col)]
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
        return fallback
    if any(n != int(n) or not 0 <= n <= 10_000_000 for n in numbers):
        return fallback
    return Location(file, int(numbers[0]), int(numbers[1]))


def _display(path: Path, root: Path) -> str:
    from ..load import relative_display

    return relative_display(path, root)


def _metadata_blocks(text: str) -> list[tuple[int, str, int]]:
    """(line of '# METADATA', YAML text, line of the statement it annotates)."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "# METADATA":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                raw = lines[i].lstrip()[1:]
                body.append(raw[1:] if raw.startswith(" ") else raw)
                i += 1
            out.append((start, "\n".join(body), i + 1))
            continue
        i += 1
    return out


def _rule_from_metadata(module: Module, line: int, yaml_text: str) -> Rule:
    from ..load import parse_text

    where = Location(module.display, line, 1)
    # the loader's bounds (depth, aliases, tags) hold for the metadata block too
    doc, problems = parse_text(yaml_text.encode("utf-8"), module.path, module.display)
    if problems:
        p = problems[0]
        at = Location(module.display, line + max(p.location.line, 1) - 1, 1)
        raise PolicyError(at, f"METADATA block: {p.message}")
    meta = doc.data if doc is not None else {}
    if not isinstance(meta, dict):
        raise PolicyError(where, "METADATA block must be a YAML mapping")
    custom = meta.get("custom") or {}
    rule_id = str(custom.get("id", "")) if isinstance(custom, dict) else ""
    severity = str(custom.get("severity", "")) if isinstance(custom, dict) else ""
    if not rule_id or not _RULE_ID.match(rule_id):
        raise PolicyError(where, f"rule package {module.package} needs custom.id (like "
                          f"policy.image-pinned) in its METADATA, got '{rule_id}'")
    if severity not in {s.value for s in Severity}:
        raise PolicyError(where, f"rule {rule_id}: custom.severity must be error, warning or info, "
                          f"got '{severity}'")
    title = str(meta.get("title") or "").strip()
    if not title:
        raise PolicyError(where, f"rule {rule_id}: METADATA needs a title")
    scope = custom.get("scope", WHOLE_SCOPE)
    if scope not in SCOPES:
        raise PolicyError(where, f"rule {rule_id}: custom.scope must be whole, environment, plan or tenant "
                          f"(the whole input, the input without the tenants' objects, that without the "
                          f"catalog's flavors too, or each tenant's slice of it), got "
                          f"{visible(str(scope))[:80]!r}")
    return Rule(rule_id, title, str(meta.get("description") or "").strip(), Severity(severity),
                module.package, where, str(custom.get("remediation") or "").strip(), scope)


def load_library(folder: Path, root: Path | None = None, cache: Cache | None = None) -> Library:
    """Read every ``*.rego`` below ``folder`` and the rules' metadata; :class:`PolicyError` if bad.
    With ``cache``, the policy data's parse is found by its shown path and bytes."""
    root = root if root is not None else folder.parent
    if not folder.is_dir():
        raise PolicyError(Location(_display(folder, root)), "no policy folder here")
    lib = Library(folder)
    real_folder = folder.resolve()
    for path in sorted(folder.rglob("*.rego")):
        display = _display(path, root)
        text = _read_policy(path, display, real_folder)
        if (outside := _outside_call(text, display)) is not None:
            raise outside
        match = _PACKAGE.search(text)
        if match is None:
            raise PolicyError(Location(display, 1, 1), "no package declaration")
        module = Module(path, display, text, match.group(1))
        lib.modules.append(module)
        if module.is_test or not module.package.startswith(RULES_PREFIX):
            continue
        blocks = [b for b in _metadata_blocks(text) if b[2] <= text.count("\n", 0, match.start()) + 1]
        pkg_line = text.count("\n", 0, match.start()) + 1
        if not blocks:
            raise PolicyError(Location(display, pkg_line, 1),
                              f"rule package {module.package} has no # METADATA block above it")
        if module.package in lib.rules:
            raise PolicyError(Location(display, pkg_line, 1),
                              f"package {module.package} is already declared in "
                              f"{lib.rules[module.package].location.file}; one file per rule")
        if not _VIOLATION.search(text):
            raise PolicyError(Location(display, pkg_line, 1),
                              f"rule package {module.package} defines no `violation contains …` rule")
        rule = _rule_from_metadata(module, blocks[-1][0], blocks[-1][1])
        lib.rules[module.package] = rule
    seen: dict[str, Rule] = {}
    for rule in lib.rules.values():
        if rule.id in seen:
            raise PolicyError(rule.location, f"rule id {rule.id} is already used by "
                              f"{seen[rule.id].location}")
        seen[rule.id] = rule
    data_file = folder / DATA_FILE
    if data_file.is_file():
        lib.data = _load_data(data_file, _display(data_file, root), cache)
    return lib


MAX_POLICY_BYTES = 1 << 20


def _read_policy(path: Path, display: str, real_folder: Path) -> str:
    """A policy file's text: a regular UTF-8 file inside the policy folder, at most 1 MiB."""
    from ..load import read_regular_file

    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise PolicyError(Location(display, 1, 1), "policy is a link to nothing") from None
    if real_folder not in real.parents:
        raise PolicyError(Location(display, 1, 1), "policy links outside the policy folder; not read")
    try:
        raw = read_regular_file(real, MAX_POLICY_BYTES)
    except OSError as exc:
        raise PolicyError(Location(display, 1, 1), f"cannot read policy: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(Location(display, 1, 1), f"policy larger than {MAX_POLICY_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise PolicyError(Location(display, line, col),
                          f"policy is not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None


_STRICTNESS = ("relaxed", "standard", "strict")
_SCHEMES = ("s3", "pvc", "hf", "http", "https", "gs")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class DataKey:
    """One parameter of ``policies/data.yaml``: its shape and what it is for."""

    # "list", "map" (name → string), "numbers" (name → positive number) or "metrics"
    # (metric name → {higher_is_better: bool, floor: finite number}) or "points" (the
    # customisation points, checked by closed_world.check_points)
    shape: str
    description: str
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None


# The schema of policies/data.yaml: a typo in a key or a wrong type would silently turn a
# rule off (it would read an undefined parameter), so both are errors.
DATA_SCHEMA: dict[str, DataKey] = {
    "air_gapped_schemes": DataKey("list", "storage URI schemes an air-gapped environment may "
                                  "load from", _SCHEMES),
    "offline_env": DataKey("map", "environment variables (name: value) every runtime of an "
                           "air-gapped environment sets", pattern=_ENV_NAME),
    "forbidden_runtime_env": DataKey("map", "vLLM environment switches (name: what it does) no serving "
                                     "container may turn on", pattern=_ENV_NAME),
    "auth_required_strictness": DataKey("list", "gate strictness levels at which endpoints "
                                        "require authentication", _STRICTNESS),
    "tls_required_strictness": DataKey("list", "gate strictness levels at which S3 is reached "
                                       "over verified TLS", _STRICTNESS),
    "workload_kinds": DataKey("list", "kinds whose pod templates the container rules inspect",
                              pattern=_KIND),
    "burn_rates": DataKey("numbers", "burn rate of the goodput alerts by long window (1h, 6h)",
                          pattern=re.compile(r"[1-9][0-9]{0,3}[mhd]")),
    "gate_floors": DataKey("floors", "the minimum gates per environment name (environments), the "
                           "floor of an environment not named (unnamed) and per cluster (clusters)"),
    "waiver_max_days": DataKey("days", "how many days ahead a waiver may expire at most (default 90)"),
    "conformance_required_strictness": DataKey("list", "gate strictness levels at which the "
                                               "post-sync conformance Job runs every check", _STRICTNESS),
    "conformance_forbidden_flags": DataKey("list", "options that narrow or weaken `kitchen conform` "
                                           "(the rendered Job may not pass them)",
                                           pattern=re.compile(r"--[a-z][a-z0-9-]{0,62}")),
    "evidence_max_age_days": DataKey("days", "how old conformance evidence may be when a flavor version is "
                                     "promoted with it (default 14)"),
    "customisation_points": DataKey("points", "where a template may add to what kitchen renders: extra "
                                    "labels or annotations under keys the organisation owns, or a field "
                                    "with the values allowed (docs/security.md#customisation-points)"),
    "evaluation_metrics": DataKey("metrics", "per evaluation metric: its direction (higher_is_better), "
                                  "the floor no flavor's threshold may be below and, for the metrics "
                                  "scored on the live server, the drift tolerance", pattern=_ENV_NAME),
    "admission_actions": DataKey("list", "what the cluster does with an object the admission policies refuse "
                                 "(the bindings' validationActions): [Warn, Audit] while rolling out, then [Deny] "
                                 "(docs/policies.md#admission)", ("Deny", "Warn", "Audit")),
    "vllm_extra_args": DataKey("vllm_args", "the vLLM options an environment's extra_args may set (--flag: "
                               "{kind: switch | int, min, max | number, min, max | choice, values | path, "
                               "under}); every other option is refused"),
}


def _load_data(path: Path, display: str, cache: Cache | None = None) -> dict[str, Any]:
    """The policy data, its schema checked. With ``cache``, data whose shown path and bytes
    passed the schema before (with this kitchen: its code is in every key) is found there
    instead of parsed and checked again."""
    from ..load import load_file, parse_text

    raw, key = _data_bytes(path, display) if cache is not None and cache.enabled else (None, "")
    if cache is not None and raw is not None:
        from ..document_cache import decode_data

        found = cache.read(DATA_KIND, key, decode_data, "not policy data")
        if found is not None:
            return found
    doc, problems = parse_text(raw, path, display) if raw is not None else \
        load_file(path, path.parent, display, within="the policy folder")
    if problems:
        p = problems[0]
        raise PolicyError(p.location, p.message + (f"; expected {p.expected}" if p.expected else ""))
    assert doc is not None
    if not isinstance(doc.data, dict):
        raise PolicyError(Location(display, 1, 1), "policy data must be a mapping")
    for name, value in doc.data.items():
        spec = DATA_SCHEMA.get(name)
        if spec is None:
            raise PolicyError(doc.location((name,)), f"unknown policy parameter '{visible(name)}'; "
                              f"expected one of {', '.join(sorted(DATA_SCHEMA))}")
        _check_data(doc, name, value, spec)
    data = dict(doc.data)
    if cache is not None and raw is not None:
        from ..document_cache import encode_data

        if (payload := encode_data(data)) is not None:
            cache.put(DATA_KIND, key, payload)
    return data


DATA_KIND = "policy-data"


def _data_bytes(path: Path, display: str) -> tuple[bytes | None, str]:
    """The policy data's bytes and their key, or (None, "") where the loader must read the
    file itself (a link out of the policy folder, a file it cannot read: it reports them)."""
    from ..cache import Digest
    from ..load import links_out, read_regular_file

    if links_out(path, path.parent):
        return None, ""
    try:
        raw = read_regular_file(path)
    except OSError:
        return None, ""
    return raw, Digest(DATA_KIND).text(display).add(raw).hexdigest()


def _check_metric(doc: Any, key: str, name: str, item: Any) -> None:
    where = doc.location((key, name), value=True)
    if not isinstance(item, dict) or not {"higher_is_better", "floor"} <= set(item) \
            <= {"higher_is_better", "floor", "drift_tolerance"}:
        raise PolicyError(where, f"{key}.{name} must be a mapping with higher_is_better and floor "
                          "(and, optionally, drift_tolerance)")
    if not isinstance(item["higher_is_better"], bool):
        raise PolicyError(doc.location((key, name, "higher_is_better"), value=True),
                          f"{key}.{name}.higher_is_better must be true or false")
    floor = item["floor"]
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not abs(floor) < 1e6:
        raise PolicyError(doc.location((key, name, "floor"), value=True),
                          f"{key}.{name}.floor must be a finite number below 1e6 in size")
    tolerance = item.get("drift_tolerance", 0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 1:
        raise PolicyError(doc.location((key, name, "drift_tolerance"), value=True),
                          f"{key}.{name}.drift_tolerance must be a number from 0 to 1")


_FLOOR_FLAGS = ("fail_on_warn", "air_gapped", "require_approved_base", "require_evaluation", "waiver_wildcards",
                "promotion_evidence")
_FLOOR_LISTS = ("registries", "licenses", "trust_remote_code")
# What an environment asks of its own serving, floored by number (policy.gate-floor's
# `limits` says which way each bound goes) and, for observability, by `enabled`.
FLOOR_LIMITS: dict[str, tuple[str, ...]] = {
    "slo": ("ttft_p95_ms", "tpot_p95_ms", "e2e_p95_ms", "min_output_tokens_per_s", "goodput_min_ratio"),
    "conformance": ("requests", "concurrency", "output_tokens", "prompt_tokens", "isolation_max_flip_rate"),
    # the most load the conformance Job puts on the environment's live servers (conformance)
    "conformance_max": ("requests", "concurrency", "output_tokens", "prompt_tokens", "readiness_timeout_s",
                        "active_deadline_s"),
    "observability": ("scrape_interval_s", "slo_for_minutes"),
    "saturation": ("kv_cache_usage_max", "requests_waiting_max", "for_minutes"),  # observability.saturation
    "gpu": ("memory_gib", "per_node", "nodes"),  # cluster.gpu
}
_FLOOR_SECTION_FLAGS = {"observability": ("enabled",), "argocd": ("manual_sync",),
                        "storage": ("use_https", "verify_ssl")}
# Floors on what is rendered, by number: the replicas of every served base (at least).
FLOOR_RENDERED: dict[str, tuple[str, ...]] = {"serving": ("min_replicas",)}
# Floors by list (the environment's or the rendered value one of these): where Argo CD may
# sync an environment from and deploy it to and the namespace of its Application, the S3
# endpoint, buckets, address blocks, credentials Secret and CA ConfigMap its storage may
# use, the claims its bases' weights are read from, and the namespaces admitted to scrape
# every tenant's vLLM and holding the dashboard.
_FLOOR_SECTION_LISTS: dict[str, tuple[str, ...]] = {
    "argocd": ("repo_urls", "target_revisions", "projects", "destination_servers", "namespaces"),
    "storage": ("endpoints", "buckets", "claims", "egress_cidrs", "secrets", "ca_bundle_configmaps"),
    "observability": ("monitoring_namespaces", "dashboard_namespaces", "runbook_urls"),
    "gpu": ("products", "resources"),
    "autoscaling": ("prometheus_urls",),
    "serving": ("deployment_modes", "apis"),
    "images": ("vllm", "kitchen"),  # the repositories (no tag, no digest) of the environment's images
}
# The lists of names of Kubernetes objects (DNS labels): any other value could never be the
# environment's.
_FLOOR_NAME_LISTS = frozenset({("argocd", "namespaces"), ("storage", "secrets"), ("storage", "ca_bundle_configmaps"),
                               ("observability", "monitoring_namespaces"),
                               ("observability", "dashboard_namespaces")})
# A list a floor may leave empty: no address block at all (the S3 endpoint a cluster service).
_FLOOR_EMPTY_LISTS = frozenset({("storage", "egress_cidrs")})
FLOOR_KEYS = tuple(dict.fromkeys(("strictness", *_FLOOR_FLAGS, *_FLOOR_LISTS, "promotes_from", *FLOOR_LIMITS,
                                  *FLOOR_RENDERED, *_FLOOR_SECTION_LISTS, "scheduling",
                                  "promotion_baseline", "approved_bases")))
_FLAVOR_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _floor_value_problem(section: str, name: str, value: str) -> str:
    """Why a value of a floor's list could never equal the environment's (compared exactly,
    as the catalog model writes it): "" when it could."""
    import ipaddress

    from ..catalog_fields import DNS1123_LABEL, DNS1123_SUBDOMAIN
    from ..environment import DEPLOYMENT_MODES, SERVING_APIS
    from ..model import S3_BUCKET

    if (section, name) == ("storage", "buckets") and not S3_BUCKET.fullmatch(value):
        return "a bucket name (3-63 lower-case letters, digits, '.', '-')"
    if (section, name) == ("storage", "claims") and (len(value) > 253 or not DNS1123_SUBDOMAIN.fullmatch(value)):
        return "the name of a PersistentVolumeClaim (a DNS subdomain: lower-case letters, digits, '-' and '.')"
    if section == "images":
        from ..catalog_fields import IMAGE_DIGEST

        parsed = IMAGE_DIGEST.fullmatch(f"{value}@sha256:{'0' * 64}")
        if parsed is None or parsed["repo"] != value:
            return "an image repository, <registry>/<path>, without tag or digest"
    if (section, name) == ("serving", "deployment_modes") and value not in DEPLOYMENT_MODES:
        return f"{' or '.join(DEPLOYMENT_MODES)} (serving.deployment_mode)"
    if (section, name) == ("serving", "apis") and value not in SERVING_APIS:
        return f"{' or '.join(SERVING_APIS)} (serving.api)"
    if (section, name) == ("autoscaling", "prometheus_urls"):
        from ..scaling import prometheus_url

        try:
            prometheus_url(value)
        except ValueError as exc:
            return str(exc)
    if (section, name) in _FLOOR_NAME_LISTS and (len(value) > 63 or not DNS1123_LABEL.fullmatch(value)):
        return "the name of a Kubernetes object (a DNS label: up to 63 lower-case letters, digits and '-')"
    if (section, name) == ("storage", "egress_cidrs"):
        try:
            written = str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            written = "e.g. 10.20.0.0/16"
        if written != value:
            return f"an address block without host bits, as kitchen writes it ({written})"
    return ""


def _check_floor_section(fail: Any, path: tuple[Any, ...], section: str, item: Any) -> None:
    flags = _FLOOR_SECTION_FLAGS.get(section, ())
    lists = _FLOOR_SECTION_LISTS.get(section, ())
    known = (*FLOOR_LIMITS.get(section, ()), *FLOOR_RENDERED.get(section, ()), *flags, *lists)
    if not isinstance(item, dict) or not item:
        raise fail(path, f"a mapping of {', '.join(known)}")
    for name, bound in item.items():
        if name not in known:
            raise fail((*path, name), f"unknown field; expected one of {', '.join(known)}", at_value=False)
        if name in flags:
            if not isinstance(bound, bool):
                raise fail((*path, name), "true or false")
        elif name in lists:
            empty_ok = (section, name) in _FLOOR_EMPTY_LISTS
            if not isinstance(bound, list) or not (bound or empty_ok) \
                    or not all(isinstance(i, str) and i.strip() and i == i.strip() for i in bound):
                raise fail((*path, name), "a list of values" if empty_ok else "a list of one or more values")
            for i, item in enumerate(bound):
                problem = _floor_value_problem(section, name, item)
                if problem:
                    raise fail((*path, name, i), problem)
        elif isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 <= bound < 1e12:
            raise fail((*path, name), "a finite number from 0 to below 1e12")


def _check_scheduling_floor(fail: Any, path: tuple[Any, ...], item: Any) -> None:
    """``scheduling``: the node labels every server of the environment is scheduled by
    (``node_selector``: label → value, each in the environment's ``cluster.node_selector``)
    and the tolerations it may have (``tolerations``: each of the environment's one of them)."""
    if not isinstance(item, dict) or not item or not set(item) <= {"node_selector", "tolerations"}:
        raise fail(path, "a mapping of node_selector and tolerations")
    if "node_selector" in item:
        selector = item["node_selector"]
        if not isinstance(selector, dict) or not selector:
            raise fail((*path, "node_selector"), "a mapping of node label to its value")
        for label, value in selector.items():
            if not isinstance(label, str) or not label.strip() or label != label.strip() \
                    or not isinstance(value, str):
                raise fail((*path, "node_selector", label), "a node label and its value (a string; \"\" for none)")
    if "tolerations" in item:
        tolerations = item["tolerations"]
        if not isinstance(tolerations, list):
            raise fail((*path, "tolerations"), "a list of tolerations ([] for none)")
        for i, toleration in enumerate(tolerations):
            _check_toleration(fail, (*path, "tolerations", i), toleration)


_TOLERATION_OPERATORS = ("Exists", "Equal")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _check_toleration(fail: Any, path: tuple[Any, ...], item: Any) -> None:
    """One toleration a floor allows, as an environment's ``cluster.tolerations`` writes it."""
    expected = ("a toleration: key (a taint's key), operator (Exists or Equal; Exists where none is given), "
                "value (with Equal) and effect (NoSchedule, PreferNoSchedule or NoExecute; any where none is given)")
    if not isinstance(item, dict) or not set(item) <= {"key", "operator", "value", "effect"}:
        raise fail(path, expected)
    key, operator, value, effect = (item.get(k) for k in ("key", "operator", "value", "effect"))
    if not isinstance(key, str) or not key.strip() or key != key.strip() \
            or operator not in (None, *_TOLERATION_OPERATORS) or effect not in (None, *_TOLERATION_EFFECTS) \
            or not (value is None or isinstance(value, str)):
        raise fail(path, expected)


def _is_ref(ref: Any) -> bool:
    """Whether ``ref`` is a catalog version, name@version, exactly as the catalog writes it."""
    from ..catalog_fields import Ref

    try:
        return isinstance(ref, str) and str(Ref.model_validate(ref)) == ref
    except ValueError:
        return False


def _check_baseline_floor(fail: Any, path: tuple[Any, ...], item: Any) -> None:
    """``promotion_baseline``: flavor version (name@version) → its flavor digest, what
    security accepted as served before the environment required promotion evidence."""
    if not isinstance(item, dict):
        raise fail(path, "a mapping of flavor version (name@version) to its digest (sha256:…)")
    for ref, digest in item.items():
        if not _is_ref(ref):
            raise fail((*path, ref), "a flavor version, name@version", at_value=False)
        if not (isinstance(digest, str) and _FLAVOR_DIGEST.fullmatch(digest)):
            raise fail((*path, ref), "the flavor digest the evidence index records (sha256: and 64 hex digits)")


def _check_approved_bases(fail: Any, path: tuple[Any, ...], item: Any) -> None:
    """``approved_bases``: base version (name@version) → the source its weights are read
    from, what security approved for the environment."""
    from pydantic import TypeAdapter

    from ..catalog_fields import PvcUri

    if not isinstance(item, dict):
        raise fail(path, "a mapping of base version (name@version) to the source of its weights")
    claims = TypeAdapter(PvcUri)
    for ref, source in item.items():
        if not _is_ref(ref):
            raise fail((*path, ref), "a base version, name@version", at_value=False)
        try:
            exact = isinstance(source, str) and claims.validate_python(source) == source
        except ValueError:
            exact = False
        if not exact:
            raise fail((*path, ref), "the source of the base's weights as its catalog file writes it "
                       "(pvc://<claim>/<path>/)")


def _check_floors(doc: Any, key: str, value: Any) -> None:
    """``gate_floors``: a wrong key or type here would silently drop a floor, so each is an error."""
    def fail(path: tuple[Any, ...], message: str, *, at_value: bool = True) -> PolicyError:
        return PolicyError(doc.location((key, *path), value=at_value), f"{key}.{'.'.join(map(str, path))}: {message}")

    if not isinstance(value, dict) or not set(value) <= {"environments", "unnamed", "clusters"}:
        raise PolicyError(doc.location((key,), value=True),
                          f"{key} must be a mapping of environments, unnamed and clusters")
    floors = value.get("environments")
    if not isinstance(floors, dict) or not floors:
        raise fail(("environments",), "a mapping of environment name to its floor")
    for name, floor in floors.items():
        if not isinstance(floor, dict):
            raise fail(("environments", name), "a floor is a mapping")
        for entry, item in floor.items():
            path = ("environments", name, entry)
            if entry not in FLOOR_KEYS:
                raise fail(path, f"unknown field; expected one of {', '.join(FLOOR_KEYS)}", at_value=False)
            if entry == "strictness" and item not in _STRICTNESS:
                raise fail(path, f"one of {', '.join(_STRICTNESS)}")
            if entry in _FLOOR_FLAGS and not isinstance(item, bool):
                raise fail(path, "true or false")
            if entry in _FLOOR_LISTS and (not isinstance(item, list)
                                          or not all(isinstance(i, str) and i.strip() for i in item)):
                raise fail(path, "a list of names")
            if entry in FLOOR_LIMITS or entry in FLOOR_RENDERED or entry in _FLOOR_SECTION_LISTS:
                _check_floor_section(fail, path, entry, item)
            if entry == "scheduling":
                _check_scheduling_floor(fail, path, item)
            if entry == "promotion_baseline":
                _check_baseline_floor(fail, path, item)
            if entry == "approved_bases":
                _check_approved_bases(fail, path, item)
            if entry == "promotes_from" and item is not None and not (isinstance(item, str) and item in floors):
                raise fail(path, "null or the name of another floor")
    unnamed = value.get("unnamed")
    if unnamed not in floors:
        raise fail(("unnamed",), "the floor (one of environments) of an environment not named there")
    clusters = value.get("clusters", {})
    if not isinstance(clusters, dict):
        raise fail(("clusters",), "a mapping of cluster name to the name of a floor")
    for cluster, floor_name in clusters.items():
        if floor_name not in floors:
            raise fail(("clusters", cluster), "the name of a floor (one of environments)")


def _check_vllm_args(doc: Any, key: str, value: Any) -> None:
    """``vllm_extra_args``: an entry that does not fit the releases' parsers, an unknown kind or
    field, an option kitchen owns or refuses, each at its line."""
    from ..vllm_allow import AllowListError, parse_allow_list

    try:
        parse_allow_list(value)
    except AllowListError as exc:
        path = (key, *exc.path)
        where = doc.location(path, value=exc.at_value) if exc.path else doc.location(path, value=True)
        raise PolicyError(where, f"{key}: {visible(exc.message)}") from None


def _check_data(doc: Any, key: str, value: Any, spec: DataKey) -> None:
    where = doc.location((key,), value=True)
    if spec.shape == "floors":
        _check_floors(doc, key, value)
        return
    if spec.shape == "points":
        from ..closed_world import check_points

        problem = check_points(value)
        if problem is not None:
            sub, expected = problem
            raise PolicyError(doc.location((key, *sub), value=True), f"{key}: expected {expected}")
        return
    if spec.shape == "vllm_args":
        _check_vllm_args(doc, key, value)
        return
    if spec.shape == "days":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 3660:
            raise PolicyError(where, f"{key} must be a whole number of days from 1 to 3660")
        return
    if spec.shape == "list":
        if not isinstance(value, list):
            raise PolicyError(where, f"{key} must be a list ({spec.description})")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PolicyError(doc.location((key, i), value=True), f"{key}[{i}] must be a string")
            if spec.choices and item not in spec.choices:
                raise PolicyError(doc.location((key, i), value=True),
                                  f"{key}[{i}] '{visible(item)}' is not one of {', '.join(spec.choices)}")
            if spec.pattern is not None and not spec.pattern.fullmatch(item):
                raise PolicyError(doc.location((key, i), value=True),
                                  f"{key}[{i}] '{visible(item)}' is not a valid value")
        if key == "admission_actions" and ({"Deny", "Warn"} <= set(value) or not value):
            raise PolicyError(where, f"{key}: expected [Deny], [Deny, Audit], [Warn, Audit], [Warn] or [Audit] "
                              "(Kubernetes refuses a binding with both Deny and Warn, or none)")
        return
    if not isinstance(value, dict):
        raise PolicyError(where, f"{key} must be a mapping ({spec.description})")
    for name, item in value.items():
        if spec.pattern is not None and not spec.pattern.fullmatch(name):
            raise PolicyError(doc.location((key, name)), f"{key}: '{visible(name)}' is not a valid name")
        if spec.shape == "metrics":
            _check_metric(doc, key, name, item)
            continue
        if spec.shape == "numbers":
            if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item < 1e6:
                raise PolicyError(doc.location((key, name), value=True),
                                  f"{key}.{name} must be a positive number below 1e6 ({spec.description})")
            continue
        if not isinstance(item, str):
            raise PolicyError(doc.location((key, name), value=True),
                              f"{key}.{name} must be a string (quote numbers: \"1\")")


def load_policy_data(root: Path) -> dict[str, Any]:
    """``<root>/policies/data.yaml`` checked against its schema (:class:`PolicyError` if bad);
    empty when the repository has none.  What stages other than the gate read from it (the
    evaluation metrics' drift tolerance) comes from here."""
    data_file = repository_policy_folder(root) / DATA_FILE
    return _load_data(data_file, _display(data_file, root)) if data_file.is_file() else {}


def repository_policy_folder(root: Path) -> Path:
    """``<root>/policies``, which may be a link only to a folder of the repository
    (:class:`PolicyError` else): the library is read from there (or from ``--policies``),
    never from wherever a committed link leads — a link to ``/`` was a walk over the
    machine for ``*.rego``."""
    from ..load import links_out

    folder = root / "policies"
    if links_out(folder, root):
        raise PolicyError(Location("policies"), "a symbolic link to a path outside the repository; the "
                              "policy library is read only from a folder of the repository (or --policies)")
    return folder
