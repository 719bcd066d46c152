"""The catalog built from its documents: schema errors at their positions, then the cross
references between kinds (flavor → base@version, tenant → flavor@version → environment),
served names, reserved namespaces, the vLLM releases and the evaluation sets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from . import rules, vllm_release
from .cache import Cache
from .catalog import Catalog
from .catalog_fields import (
    LLMISVC_CONTROLLER_FLAGS,
    RESERVED_NAMESPACE_PREFIXES,
    RESERVED_NAMESPACES,
    Strict,
    service_namespace,
)
from .catalog_kinds import Base, Evaluation, Flavor, Tenant, TenantEnvironment, served_name
from .document_cache import load_documents as load_cached
from .environment import KIND_MODELS, ArgoCd, Environment
from .escape import visible
from .evaluation_sets import MAX_REPOSITORY_DATASET_BYTES, METRICS, Metric, parse_dataset
from .findings import Finding, Location, Severity
from .load import Document, load_documents
from .scaling import Autoscaling, EnvironmentAutoscaling, resolve


def _object_key(kind: str, obj: Strict) -> str:
    if isinstance(obj, Base | Flavor):
        return obj.ref
    return str(getattr(obj, "name"))  # noqa: B009


def _raw_key(kind: str, data: dict[str, Any]) -> str:
    name, version = str(data.get("name", "")), str(data.get("version", ""))
    return f"{name}@{version}" if kind in ("Base", "Flavor") else name


def _validation_findings(doc: Document, exc: ValidationError, kind: str) -> list[Finding]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        etype = err["type"]
        # a mapping key that is itself invalid: pydantic appends "[key]"; point at the key
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        field_name = visible(".".join(str(p) for p in loc)) or "(top level)"
        if is_key:
            location = doc.location(loc)
            msg = visible(str(err["msg"]).removeprefix("Value error, "))
            message = f"{field_name}: key: {msg}"
            expected = _expected_for(err)
        elif etype == "extra_forbidden":
            location = doc.location(loc)
            message = f"unknown field '{field_name}' in {kind}"
            expected = "one of the fields documented in docs/catalog.md"
        elif etype == "missing":
            location = doc.location(loc[:-1])
            message = f"missing required field '{field_name}' in {kind}"
            expected = f"a value for '{loc[-1]}'"
        else:
            location = doc.location(loc, value=True)
            msg = visible(str(err["msg"]).removeprefix("Value error, "))
            message = f"{field_name}: {msg}"
            expected = _expected_for(err)
        out.append(Finding(rules.SCHEMA.member(etype.replace("_", "-")), Severity.ERROR, message,
                           location, expected=expected))
    return out


def _expected_for(err: Any) -> str:
    ctx = err.get("ctx") or {}
    etype = err["type"]
    if "expected" in ctx:
        return str(ctx["expected"])
    simple = {
        "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
        "float_parsing": "a number", "bool_type": "true or false", "bool_parsing": "true or false",
        "string_type": "a string", "dict_type": "a mapping", "list_type": "a list",
        "date_from_datetime_parsing": "a date YYYY-MM-DD", "date_parsing": "a date YYYY-MM-DD",
        "date_type": "a date YYYY-MM-DD", "model_type": "a mapping",
    }
    if etype in simple:
        return simple[etype]
    for key, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx:
            return f"a value {word} {ctx[key]}"
    if "min_length" in ctx:
        return f"at least {ctx['min_length']} item(s)"
    return ""


def _ref_finding(doc: Document, path: tuple[str | int, ...], message: str, expected: str) -> Finding:
    return Finding(rules.CATALOG_DANGLING_REFERENCE, Severity.ERROR, message,
                   doc.location(path, value=True), expected=expected)


def build_catalog(root: Path, documents: list[tuple[str, Document]],
                  unloaded: tuple[str, ...] = ()) -> tuple[Catalog, list[Finding]]:
    """Validate every document against its kind's model and check cross references."""
    catalog = Catalog(root=root, unloaded=unloaded)
    findings: list[Finding] = []
    first_seen: dict[tuple[str, str], Document] = {}
    for folder_kind, doc in documents:
        kind = doc.kind
        if kind not in KIND_MODELS:
            findings.append(Finding(
                rules.SCHEMA_KIND, Severity.ERROR,
                f"unknown or missing kind '{kind}'" if kind else "missing field 'kind'",
                doc.location(("kind",), value=True), expected=f"kind: {folder_kind}"))
            continue
        if kind != folder_kind:
            findings.append(Finding(
                rules.CATALOG_MISPLACED, Severity.ERROR,
                f"kind {kind} in the {folder_kind} folder",
                doc.location(("kind",), value=True), expected=f"kind: {folder_kind}"))
            continue
        try:
            obj = KIND_MODELS[kind].model_validate(doc.data)
        except ValidationError as exc:
            findings.extend(_validation_findings(doc, exc, kind))
            catalog.invalid.add((kind, _raw_key(kind, doc.data)))
            continue
        key = _object_key(kind, obj)
        if (kind, key) in first_seen:
            first = first_seen[(kind, key)]
            findings.append(Finding(
                rules.CATALOG_DUPLICATE_NAME, Severity.ERROR,
                f"{kind} '{key}' is already defined in {first.location(('name',))}",
                doc.location(("name",), value=True), expected=f"a unique {kind} name"))
            continue
        first_seen[(kind, key)] = doc
        catalog.documents[(kind, key)] = doc
        registries: dict[str, dict[str, Any]] = {
            "Base": catalog.bases, "Flavor": catalog.flavors,
            "Tenant": catalog.tenants, "Environment": catalog.environments,
        }
        registries[kind][key] = obj
    findings.extend(_cross_references(catalog))
    findings.extend(_cluster_safety(catalog))
    findings.extend(_evaluation_sets(catalog))
    findings.extend(_vllm_releases(catalog))
    findings.extend(autoscaling_findings(catalog.tenants, catalog.environments, catalog.location))
    return catalog, findings


def _vllm_releases(catalog: Catalog) -> list[Finding]:
    """Each environment's image runs a vLLM release whose command line kitchen knows."""
    out: list[Finding] = []
    known = vllm_release.supported()
    for name, env in catalog.environments.items():
        version = env.images.vllm_version
        if vllm_release.release(version) is None:
            out.append(Finding(
                rules.CATALOG_VLLM_RELEASE, Severity.ERROR,
                f"environment {name} declares vLLM '{visible(version)}', a release kitchen has no parser table for",
                catalog.location("Environment", name, ("images", "vllm_version"), value=True),
                expected="one of " + ", ".join(known) + " (docs/compatibility.md)"))
    return out


def _cross_references(catalog: Catalog) -> list[Finding]:
    out = _flavor_bases(catalog) + _tenant_references(catalog)
    for name, env in catalog.environments.items():
        out += _controller_flags(catalog, name, env)
        if env.promotes_from and env.promotes_from not in catalog.environments:
            out.append(_ref_finding(
                catalog.doc("Environment", name), ("promotes_from",),
                f"environment {name} promotes from '{env.promotes_from}', which is not defined",
                f"one of {', '.join(sorted(catalog.environments))}"))
    return out + _path_prefixes(catalog)


def _flavor_bases(catalog: Catalog) -> list[Finding]:
    """Each flavor's base is in the catalog (or failed to load, which is reported there)."""
    out: list[Finding] = []
    for key, flavor in catalog.flavors.items():
        doc = catalog.doc("Flavor", key)
        if str(flavor.base) not in catalog.bases and ("Base", str(flavor.base)) not in catalog.invalid:
            known = sorted(b.ref for b in catalog.bases.values() if b.name == flavor.base.name)
            out.append(_ref_finding(
                doc, ("base",), f"flavor {key} names base {flavor.base}, which is not in the catalog"
                f"{catalog.unloaded_hint('Base', flavor.base.name)}",
                f"one of {', '.join(known)}" if known else "a Base defined in catalog/bases/"))
    return out


def _tenant_references(catalog: Catalog) -> list[Finding]:
    """Each tenant: a namespace of its own, environments that exist, and in each the
    flavors it serves and their served names."""
    out: list[Finding] = []
    namespaces: dict[str, str] = {}
    for name, tenant in catalog.tenants.items():
        doc = catalog.doc("Tenant", name)
        if tenant.ns in namespaces:
            out.append(Finding(
                rules.CATALOG_DUPLICATE_NAMESPACE, Severity.ERROR,
                f"namespace '{tenant.ns}' is already used by tenant {namespaces[tenant.ns]}",
                doc.location(("namespace",) if tenant.namespace else ("name",), value=True),
                expected="one namespace per tenant"))
        namespaces.setdefault(tenant.ns, name)
        for env_name, tenv in tenant.environments.items():
            if env_name not in catalog.environments and ("Environment", env_name) not in catalog.invalid:
                out.append(Finding(
                    rules.CATALOG_DANGLING_REFERENCE, Severity.ERROR,
                    f"tenant {name} runs in environment '{env_name}', which is not defined"
                    f"{catalog.unloaded_hint('Environment', env_name)}",
                    doc.location(("environments", env_name)),
                    expected=f"one of {', '.join(sorted(catalog.environments)) or 'environments/*.yaml'}"))
            out += _tenant_flavors(catalog, doc, name, env_name, tenv)
            out += _served_names(catalog, doc, name, env_name, tenv)
    return out


def _tenant_flavors(catalog: Catalog, doc: Document, name: str, env_name: str,
                    tenv: TenantEnvironment) -> list[Finding]:
    """The flavors a tenant serves in an environment: in the catalog, and trained on one
    version of each base (one InferenceService serves one base version)."""
    out: list[Finding] = []
    bases_used: dict[str, str] = {}
    for i, ref in enumerate(tenv.flavors):
        path = ("environments", env_name, "flavors", i)
        used = catalog.flavors.get(str(ref))
        if used is None and ("Flavor", str(ref)) in catalog.invalid:
            continue
        if used is None:
            known = sorted(f.ref for f in catalog.flavors.values() if f.name == ref.name)
            out.append(_ref_finding(
                doc, path, f"tenant {name} uses flavor {ref}, which is not in the catalog"
                f"{catalog.unloaded_hint('Flavor', ref.name)}",
                f"one of {', '.join(known)}" if known else "a Flavor defined in catalog/flavors/"))
            continue
        other = bases_used.setdefault(used.base.name, used.base.version)
        if other != used.base.version:
            out.append(Finding(
                rules.CATALOG_BASE_VERSION_CONFLICT, Severity.ERROR,
                f"tenant {name} in {env_name} uses flavors of {used.base.name} at "
                f"versions {other} and {used.base.version}; one InferenceService "
                "serves one base version",
                doc.location(path, value=True), expected=f"flavors trained on {used.base.name}@{other}"))
    return out


def _path_prefixes(catalog: Catalog) -> list[Finding]:
    """One folder of rendered output per repository: render writes it, check compares it,
    every Application syncs <path_prefix>/<environment> from it."""
    prefixes = sorted({env.argocd.path_prefix for env in catalog.environments.values()})
    if len(prefixes) <= 1:
        return []
    out: list[Finding] = []
    first = min(catalog.environments)
    want = catalog.environments[first].argocd.path_prefix
    for name, env in sorted(catalog.environments.items()):
        if env.argocd.path_prefix != want:
            out.append(Finding(
                rules.CATALOG_PATH_PREFIX, Severity.ERROR,
                f"environment {name} renders to '{env.argocd.path_prefix}/{name}', environment {first} to "
                f"'{want}/{first}': the repository has one folder of rendered output",
                catalog.location("Environment", name, ("argocd", "path_prefix"), value=True),
                expected=f"argocd.path_prefix: {want}", environment=name))
    return out


def _base_names(catalog: Catalog, doc: Document, tenant: str, env_name: str, tenv: TenantEnvironment,
                taken: dict[str, str]) -> list[Finding]:
    """The names the bases of a tenant's environment are served as, into ``taken`` (before
    any flavor's: a flavor listed before its base is compared with it too); two bases
    under one name are a finding at the list item that brings in the second."""
    out: list[Finding] = []
    bases: set[str] = set()
    for i, ref in enumerate(tenv.flavors):
        flavor = catalog.flavors.get(str(ref))
        base = catalog.bases.get(str(flavor.base)) if flavor is not None else None
        if base is None or base.ref in bases:
            continue
        bases.add(base.ref)
        if base.serve_name in taken:
            out.append(Finding(
                rules.CATALOG_SERVED_NAME, Severity.ERROR,
                f"base {base.ref} would be served as '{base.serve_name}', the name of {taken[base.serve_name]} "
                f"in tenant {tenant}'s {env_name}",
                doc.location(("environments", env_name, "flavors", i), value=True),
                expected="bases whose served names (served_model_name, else the base's name) differ"))
        else:
            taken[base.serve_name] = f"the base {base.ref}"
    return out


def _served_names(catalog: Catalog, doc: Document, tenant: str, env_name: str,
                  tenv: TenantEnvironment) -> list[Finding]:
    """The model names a tenant's environment serves: each flavor version once, served
    names that are DNS labels and distinct, aliases that name a listed version and take no
    name already served."""
    out: list[Finding] = []
    listed = [str(r) for r in tenv.flavors]
    taken: dict[str, str] = {}  # served name -> what it serves
    out += _base_names(catalog, doc, tenant, env_name, tenv, taken)
    for i, ref in enumerate(tenv.flavors):
        where = ("environments", env_name, "flavors", i)  # looked up for a finding only
        key = str(ref)
        if listed.index(key) != i:
            out.append(Finding(
                rules.CATALOG_DUPLICATE_FLAVOR, Severity.ERROR,
                f"tenant {tenant} lists flavor {key} twice in {env_name}", doc.location(where, value=True),
                expected="each flavor version once per environment (two versions of a flavor may "
                "be listed side by side)"))
            continue
        served = served_name(ref.name, ref.version)
        if len(served) > 63:
            out.append(Finding(
                rules.CATALOG_SERVED_NAME, Severity.ERROR,
                f"flavor {key} would be served as '{served}', {len(served)} characters",
                doc.location(where, value=True),
                expected="a flavor name and version that make a served name of at most 63 characters"))
        elif served in taken:
            out.append(Finding(
                rules.CATALOG_SERVED_NAME, Severity.ERROR,
                f"flavor {key} would be served as '{served}', the name of {taken[served]} in "
                f"tenant {tenant}'s {env_name}", doc.location(where, value=True),
                expected="flavor versions whose served names (<flavor>-<version>, lower case, "
                "'-' for other characters) differ"))
        else:
            taken[served] = f"flavor {key}"
    for alias, target in tenv.aliases.items():
        path = ("environments", env_name, "aliases", alias)
        if str(target) not in listed:
            out.append(Finding(
                rules.CATALOG_ALIAS, Severity.ERROR,
                f"tenant {tenant}'s alias {alias} in {env_name} points at {target}, which it does "
                f"not serve there", doc.location(path, value=True),
                expected=f"one of the versions listed in environments.{env_name}.flavors: "
                f"{', '.join(listed) or '(none)'}"))
        elif alias in taken:
            out.append(Finding(
                rules.CATALOG_ALIAS, Severity.ERROR,
                f"tenant {tenant}'s alias {alias} in {env_name} is already the name of {taken[alias]}",
                doc.location(path), expected="an alias that no flavor version or base is served as"))
    return out


def _controller_flags(catalog: Catalog, name: str, env: Environment) -> list[Finding]:
    """An LLMInferenceService's controller writes some of vLLM's flags from the spec: the
    same flag in extra_args would be given twice, and a --lora-modules there makes the
    controller leave out every adapter of the spec."""
    if env.serving.api != "LLMInferenceService":
        return []
    out = []
    for i, token in enumerate(env.serving.vllm.extra_args):
        flag = "--" + token.partition("=")[0][2:].replace("_", "-") if token.startswith("--") else ""
        if flag in LLMISVC_CONTROLLER_FLAGS:
            out.append(Finding(
                rules.CATALOG_CONTROLLER_FLAG, Severity.ERROR,
                f"environment {name} serves through LLMInferenceServices, whose controller sets "
                f"{flag} itself from the spec; extra_args cannot set it",
                catalog.location("Environment", name, ("serving", "vllm", "extra_args", i), value=True),
                expected=f"extra_args without {', '.join(sorted(LLMISVC_CONTROLLER_FLAGS))}",
                environment=name))
    return out


def output_prefix(catalog: Catalog) -> str:
    """The folder, relative to the repository, that holds ``<environment>/`` of rendered output."""
    prefixes = sorted({env.argocd.path_prefix for env in catalog.environments.values()})
    return prefixes[0] if prefixes else ArgoCd.model_fields["path_prefix"].default


# Subjects that would grant a role to everyone, to every service account, or to a
# Kubernetes system identity; an access group names people of one team.
REFUSED_SUBJECTS = frozenset({
    "system:authenticated", "system:unauthenticated", "system:anonymous", "system:masters",
    "system:serviceaccounts", "system:authenticated:oauth", "system:cluster-admins",
    "system:cluster-readers", "system:nodes",
})


def _reserved_reason(ns: str, env: Environment | None) -> str:
    """Why ``ns`` may not be a tenant namespace ("" when it may); ``env`` adds its own."""
    if env is None:
        if ns in RESERVED_NAMESPACES:
            return "is reserved for the platform"
        prefix = next((p for p in RESERVED_NAMESPACE_PREFIXES if ns.startswith(p)), "")
        if prefix:
            return f"starts with {prefix}, a prefix reserved for the platform"
        return ""
    if ns in env.gates.reserved_namespaces:
        return f"is reserved in environment {env.name} (gates.reserved_namespaces)"
    if ns == env.argocd.namespace:
        return f"is Argo CD's namespace in environment {env.name}"
    if ns == service_namespace(env.storage.s3.endpoint)[0]:
        return f"is the namespace of environment {env.name}'s S3 storage"
    if ns == env.observability.prometheus_namespace(env.cluster.platform):
        return (f"is environment {env.name}'s monitoring namespace, whose pods every tenant's NetworkPolicy "
                "admits to vLLM's port (observability.monitoring_namespace)")
    if ns == env.observability.dashboard_namespace:
        return f"is where environment {env.name} renders its dashboard (observability.dashboard_namespace)"
    return ""


def _subject_problem(subject: str, ns: str) -> str:
    """Why ``subject`` may not receive a tenant role ("" when it may)."""
    if "*" in subject:
        return "a wildcard would match every group"
    if subject in REFUSED_SUBJECTS:
        return "it is a Kubernetes system group that holds far more than one team"
    if subject.startswith("system:serviceaccounts:"):
        other = subject.removeprefix("system:serviceaccounts:")
        return "" if other == ns else f"it names the service accounts of another namespace ({other})"
    if subject.startswith("system:serviceaccount:"):
        other = subject.removeprefix("system:serviceaccount:").partition(":")[0]
        return "" if other == ns else f"it names a service account of another namespace ({other})"
    if subject.startswith("system:"):
        return "the system: prefix is reserved for Kubernetes' own identities"
    if subject != subject.strip() or not subject.strip():
        return "leading or trailing spaces name another group"
    return ""


def _cluster_safety(catalog: Catalog) -> list[Finding]:
    """Tenants may not take over platform namespaces or grant roles beyond their team."""
    out: list[Finding] = []
    for name, tenant in catalog.tenants.items():
        doc = catalog.doc("Tenant", name)
        ns_path = ("namespace",) if tenant.namespace else ("name",)
        reasons = [_reserved_reason(tenant.ns, None)]
        reasons += [_reserved_reason(tenant.ns, catalog.environments[e])
                    for e in sorted(tenant.environments) if e in catalog.environments]
        for reason in dict.fromkeys(r for r in reasons if r):
            out.append(Finding(
                rules.CATALOG_RESERVED_NAMESPACE, Severity.ERROR,
                f"tenant {name} would be rendered into namespace '{tenant.ns}', which {reason}",
                doc.location(ns_path, value=True), expected="a namespace of the tenant's own"))
        for role in sorted(tenant.access_groups):
            for i, subject in enumerate(tenant.access_groups[role]):
                problem = _subject_problem(subject, tenant.ns)
                if problem:
                    out.append(Finding(
                        rules.CATALOG_RBAC_SUBJECT, Severity.ERROR,
                        f"tenant {name} grants {role} on namespace {tenant.ns} to "
                        f"'{visible(subject)}': {problem}",
                        doc.location(("access_groups", role, i), value=True),
                        expected="the name of a group of the tenant's team"))
    return out


def read_dataset(root: Path, rel: str) -> bytes:
    """The bytes of an evaluation set of the repository (at most one byte over its bound).

    ``OSError`` when it cannot be read, is not a regular file, or a link takes it outside
    the repository."""
    from .load import read_regular_file

    path = root / rel
    try:
        real, real_root = path.resolve(strict=True), root.resolve()
    except RuntimeError:
        raise OSError(0, "a link loop") from None
    if real_root not in real.parents:
        raise OSError(0, "a link that leaves the repository")
    return read_regular_file(real, limit=MAX_REPOSITORY_DATASET_BYTES)


def _evaluation_sets(catalog: Catalog) -> list[Finding]:
    """Each flavor's evaluation set: a metric of the registry in its direction, the label
    set where the metric needs one, and a file of the repository whose every line is a
    record (``file:line:col`` of the line).  Sets in S3 are read by ``artifacts verify``."""
    out: list[Finding] = []
    for key, flavor in sorted(catalog.flavors.items()):
        e = flavor.evaluation
        if e is not None and e.dataset is not None:
            out += _evaluation_set(catalog, key, e)
    return out


EvaluationAt = Callable[[tuple[str | int, ...]], Location]


def _evaluation_set(catalog: Catalog, key: str, e: Evaluation) -> list[Finding]:
    """One flavor's evaluation: its metric, its settings for that metric, then its set of
    the repository where the settings hold."""
    subject = f"Flavor/{key}"

    def at(path: tuple[str | int, ...]) -> Location:
        return catalog.location("Flavor", key, ("evaluation", *path), value=True)

    metric = METRICS.get(e.metric)
    if metric is None:
        return [Finding(rules.EVALUATION_UNKNOWN_METRIC, Severity.ERROR,
                        f"flavor {key} scores its evaluation set on metric '{visible(e.metric)}', "
                        "which kitchen cannot compute", at(("metric",)),
                        expected=f"one of {', '.join(METRICS)}", subject=subject)]
    problems = _evaluation_settings(e, metric, at)
    out = [Finding(rules.EVALUATION_SETTINGS, Severity.ERROR, f"flavor {key}'s evaluation {what}",
                   loc, expected=expected, subject=subject) for loc, what, expected in problems]
    if problems or e.dataset is None or e.dataset.path is None:
        return out
    return out + _repository_set(catalog, key, e, e.dataset.path, at)


def _evaluation_settings(e: Evaluation, metric: Metric, at: EvaluationAt) -> list[tuple[Location, str, str]]:
    """What the evaluation's settings say against its metric: (where, what, expected)."""
    problems: list[tuple[Location, str, str]] = []
    if e.higher_is_better != metric.higher_is_better:
        problems.append((at(("higher_is_better",)),
                         f"says higher_is_better: {str(e.higher_is_better).lower()} for {e.metric}",
                         f"higher_is_better: {str(metric.higher_is_better).lower()} (the metric decides)"))
    for name in ("score", "threshold"):
        value = getattr(e, name)
        if not 0 <= value <= 1:
            problems.append((at((name,)), f"{name} {value:g} is outside what {e.metric} can score",
                             "a number from 0 to 1"))
    if metric.reference == "label" and not e.labels:
        problems.append((at(()), f"scores {e.metric} without a label set",
                         "evaluation.labels: the closed set of labels the flavor answers with"))
    if metric.reference != "label" and e.labels:
        problems.append((at(("labels",)), f"names labels, which {e.metric} does not read",
                         "no labels, or metric: label_accuracy"))
    if e.labels and len(set(e.labels)) != len(e.labels):
        problems.append((at(("labels",)), "lists a label twice", "each label once"))
    return problems


def _repository_set(catalog: Catalog, key: str, e: Evaluation, path: str, at: EvaluationAt) -> list[Finding]:
    """The evaluation set at ``path`` of the repository: readable, the bytes its flavor
    pins, and every line a record of the metric."""
    assert e.dataset is not None
    subject = f"Flavor/{key}"
    try:
        raw = read_dataset(catalog.root, path)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        return [Finding(rules.EVALUATION_DATASET_MISSING, Severity.ERROR,
                        f"flavor {key}'s evaluation set {visible(path)} cannot be read: {reason}",
                        at(("dataset", "path")), expected="a regular JSONL file of the repository",
                        subject=subject)]
    out: list[Finding] = []
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) <= MAX_REPOSITORY_DATASET_BYTES and digest != e.dataset.sha256:
        out.append(Finding(rules.EVALUATION_DATASET_PIN, Severity.ERROR,
                           f"flavor {key}'s evaluation set {visible(path)} has sha256 {digest}, "
                           f"not the {e.dataset.sha256} its flavor pins: the conformance job would refuse "
                           "it, and evidence would name another set",
                           at(("dataset", "sha256")),
                           expected=f"sha256: {digest} for these bytes (`kitchen artifacts lock` writes it), "
                                    "or the pinned set back",
                           subject=subject))
    _, bad = parse_dataset(raw, e.metric, e.labels or ())
    out += [Finding(p.rule, Severity.ERROR, f"evaluation set of flavor {key}: {p.message}",
                    Location(path, p.line, p.col), expected=p.expected, subject=subject)
            for p in bad]
    return out


def load_catalog(root: Path, cache: Cache | None = None) -> tuple[Catalog, list[Finding]]:
    """Load and validate the catalog below ``root``: every problem at once, as findings
    (each file's parse read from ``cache`` where it holds the same bytes)."""
    if cache is not None and cache.enabled:
        documents, findings = load_cached(root, cache)
    else:
        documents, findings = load_documents(root)
    unloaded = tuple(sorted({f.location.file for f in findings}))
    catalog, more = build_catalog(root, documents, unloaded)
    return catalog, findings + more


# ---------------------------------------------------------------- autoscaling


def autoscaling_findings(tenants: Mapping[str, Tenant], environments: Mapping[str, Environment],
                         locate: Callable[..., Location]) -> list[Finding]:
    """What a tenant's autoscaling and its environment's cannot mean together."""
    out: list[Finding] = []
    for tname in sorted(tenants):
        for env_name, tenv in sorted(tenants[tname].environments.items()):
            env = environments.get(env_name)
            if env is not None:
                out += _tenant_autoscaling(tname, tenv, env, locate)
    return out


def _tenant_autoscaling(tname: str, tenv: TenantEnvironment, env: Environment,
                        locate: Callable[..., Location]) -> list[Finding]:
    own: Autoscaling | None = tenv.autoscaling
    default: EnvironmentAutoscaling | None = env.serving.autoscaling
    here = ("environments", env.name)

    def finding(message: str, at: Location, expected: str) -> Finding:
        return Finding(rules.CATALOG_AUTOSCALING, Severity.ERROR, message, at, expected=expected,
                       environment=env.name, subject=f"Tenant/{tname}")

    if own is not None and tenv.replicas is not None:
        return [finding(f"tenant {tname} sets both replicas and autoscaling in {env.name}",
                        locate("Tenant", tname, (*here, "replicas")),
                        "either a fixed replicas or an autoscaling block")]
    scaling = resolve(env.name, default, own, tenv.replicas, env.serving.replicas)
    if scaling is None:
        if own is not None:
            return [finding(f"tenant {tname} autoscales in {env.name} without a max (neither its block nor "
                            f"{env.name}'s serving.autoscaling sets one)",
                            locate("Tenant", tname, (*here, "autoscaling")),
                            "autoscaling.max: the replicas at full scale")]
        return []
    out: list[Finding] = []
    at_own = locate("Tenant", tname, (*here, "autoscaling")) if own is not None else \
        locate("Environment", env.name, ("serving", "autoscaling"))
    if scaling.min > scaling.max:
        kind, key = ("Tenant", tname) if scaling.max_from == "Tenant" else ("Environment", env.name)
        out.append(finding(f"tenant {tname} in {env.name} scales between min {scaling.min} and max "
                           f"{scaling.max}", locate(kind, key, tuple(scaling.max_field.split("."))),
                           f"max at least min ({scaling.min})"))
    if env.serving.api == "InferenceService" and env.serving.deployment_mode == "Serverless":
        if scaling.signal != "requests_running" or scaling.target != int(scaling.target):
            out.append(finding(
                f"tenant {tname} scales on {scaling.signal} (target {scaling.target:g}) in {env.name}, whose "
                "Serverless InferenceServices Knative scales on concurrency only", at_own,
                "signal: requests_running with a whole-number target (Knative's concurrency per replica)"))
        return out
    if not scaling.prometheus_url:
        out.append(finding(f"tenant {tname} autoscales in {env.name}, which names no Prometheus for KEDA",
                           locate("Environment", env.name, ("serving",)),
                           "serving.autoscaling.prometheus_url: the Prometheus API KEDA queries"))
    if not env.observability.enabled:
        out.append(finding(f"tenant {tname} autoscales on {scaling.metric} in {env.name}, where observability "
                           "is off: no PodMonitor scrapes it",
                           locate("Environment", env.name, ("observability", "enabled")),
                           "observability on where a tenant autoscales"))
    elif scaling.window_s < 2 * env.observability.scrape_interval_s:
        out.append(finding(f"tenant {tname} averages {scaling.metric} over {scaling.window_s}s in {env.name}, "
                           f"less than two scrapes ({env.observability.scrape_interval_s}s apart)", at_own,
                           f"window_s at least {2 * env.observability.scrape_interval_s}"))
    return out
