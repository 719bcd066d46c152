"""The typed catalog: pydantic models of each kind, and the cross references between them.

Every model forbids unknown fields.  Validation errors are mapped back to the position
of the offending key or value through the document's span index.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .findings import Finding, Location, Severity
from .load import CATALOG_DIRS, Document, load_documents

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMAGE_DIGEST = re.compile(r"^(?P<repo>[^@\s]+)@sha256:(?P<digest>[0-9a-f]{64})$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _version(value: str) -> str:
    if not VERSION.match(value):
        raise ValueError(f"'{value}' is not a version (letters, digits, '.', '_', '-')")
    return value


def _digits_need_quotes(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("a digest made only of digits must be quoted, or YAML reads it as a number")
    return value


def _sha256(value: str) -> str:
    v = value.removeprefix("sha256:")
    if not SHA256.match(v):
        raise ValueError(f"'{value}' is not a sha256 digest (64 lower-case hex digits)")
    return v


def _image_digest(value: str) -> str:
    if not IMAGE_DIGEST.match(value):
        raise ValueError(f"'{value}' is not an image pinned by digest (<repository>@sha256:<64 hex>)")
    return value


def _uri(schemes: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise ValueError(f"'{value}' must be a {' or '.join(s + '://' for s in schemes)} URI")
        rest = value.split("://", 1)[1]
        if not rest or rest.startswith("/") or "/" not in rest.rstrip("/"):
            raise ValueError(f"'{value}' must name a bucket or claim and a path")
        return value

    return check


Name = Annotated[str, AfterValidator(_dns_label)]
Version = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_version)]
Sha256 = Annotated[str, BeforeValidator(_digits_need_quotes), AfterValidator(_sha256)]
ImageRef = Annotated[str, AfterValidator(_image_digest)]
PvcUri = Annotated[str, AfterValidator(_uri(("pvc",)))]
StorageUri = Annotated[str, AfterValidator(_uri(("s3", "pvc", "hf", "http", "https", "gs")))]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# ---------------------------------------------------------------- references


def _split_ref(value: Any) -> Any:
    """Accept ``name@version`` as shorthand for ``{name, version}``."""
    if isinstance(value, str):
        name, sep, version = value.partition("@")
        if not sep:
            raise ValueError(f"'{value}' must be written name@version")
        return {"name": name, "version": version}
    return value


class Ref(Strict):
    name: Name
    version: Version

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _split_ref(value)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------- Base


class Approval(Strict):
    approved: bool = False
    approver: str | None = None
    date: dt.date | None = None
    ticket: str | None = None

    @model_validator(mode="after")
    def _approver_when_approved(self) -> Approval:
        if self.approved and not self.approver:
            raise ValueError("an approved base names its approver")
        return self


class License(Strict):
    id: NonEmpty
    url: str | None = None
    approval: Approval = Approval()


class Architecture(Strict):
    model_type: NonEmpty
    architectures: list[NonEmpty] = Field(min_length=1)
    num_hidden_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    torch_dtype: Literal["bfloat16", "float16", "float32"]
    parameters_billions: float = Field(gt=0)

    @model_validator(mode="after")
    def _heads(self) -> Architecture:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        return self


class FilePin(Strict):
    path: NonEmpty
    sha256: Sha256
    size: int | None = Field(default=None, ge=0)


class Base(Strict):
    kind: Literal["Base"]
    name: Name
    version: Version
    display_name: str | None = None
    description: str | None = None
    source: PvcUri
    served_model_name: Name | None = None
    license: License
    architecture: Architecture
    trust_remote_code: bool = False
    files: list[FilePin] = Field(min_length=1)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def serve_name(self) -> str:
        return self.served_model_name or self.name


# ---------------------------------------------------------------- Flavor


class Owner(Strict):
    team: NonEmpty
    contact: NonEmpty


class Evaluation(Strict):
    suite: NonEmpty
    metric: NonEmpty
    score: float
    threshold: float
    higher_is_better: bool = True
    date: dt.date | None = None

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold if self.higher_is_better else self.score <= self.threshold


class Expectation(Strict):
    contains: str | None = None
    not_contains: str | None = None
    regex: str | None = None
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        if not any(v is not None for v in (self.contains, self.not_contains, self.regex,
                                           self.json_schema)):
            raise ValueError("an expectation needs contains, not_contains, regex or json_schema")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return self


class SmokeTest(Strict):
    prompt: NonEmpty
    expect: Expectation
    max_tokens: int = Field(default=32, gt=0, le=4096)


class AdapterFiles(Strict):
    adapter_config: Sha256 = Field(alias="adapter_config.json")
    adapter_model: Sha256 = Field(alias="adapter_model.safetensors")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Flavor(Strict):
    kind: Literal["Flavor"]
    name: Name
    version: Version
    description: str | None = None
    base: Ref
    source: StorageUri
    rank: int = Field(gt=0, le=512)
    alpha: float | None = Field(default=None, gt=0)
    target_modules: list[NonEmpty] = Field(min_length=1)
    owner: Owner
    files: AdapterFiles
    evaluation: Evaluation | None = None
    smoke: list[SmokeTest] = Field(default_factory=list)
    probes: list[NonEmpty] = Field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------- Tenant


class TenantEnvironment(Strict):
    flavors: list[Ref] = Field(default_factory=list)
    gpu_quota: int = Field(ge=0)
    replicas: int | None = Field(default=None, ge=0)


class Tenant(Strict):
    kind: Literal["Tenant"]
    name: Name
    display_name: str | None = None
    description: str | None = None
    namespace: Name | None = None
    owner: Owner
    access_groups: dict[Literal["admin", "edit", "view"], list[NonEmpty]] = Field(default_factory=dict)
    allowed_clients: list[Name] = Field(
        default_factory=list,
        description="namespaces whose pods may call this tenant's endpoints",
    )
    environments: dict[Name, TenantEnvironment] = Field(min_length=1)

    @property
    def ns(self) -> str:
        return self.namespace or self.name


# ---------------------------------------------------------------- Environment


class Toleration(Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Gpu(Strict):
    product: NonEmpty
    # the product's nominal memory (H100 80GB: 80, H200: 141); `kitchen conform gpu` checks
    # NVML's total against it
    memory_gib: float = Field(gt=0)
    # what CUDA reports as the GPU's total (torch.cuda.mem_get_info()[1] / 2**30; H200:
    # 139.8), which vLLM multiplies by gpu_memory_utilization; the plan estimates it from
    # memory_gib where it is not given
    cuda_memory_gib: float | None = Field(default=None, gt=0)
    per_node: int = Field(gt=0)
    nodes: int = Field(gt=0)
    mig: bool = False
    resource: str = "nvidia.com/gpu"

    @property
    def total(self) -> int:
        return self.per_node * self.nodes


class Cluster(Strict):
    name: NonEmpty
    api_server: str = "https://kubernetes.default.svc"
    platform: Literal["openshift", "kubernetes"] = "openshift"
    gpu: Gpu
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class Registry(Strict):
    internal: NonEmpty
    allowed: list[NonEmpty] = Field(min_length=1)


class Images(Strict):
    vllm: ImageRef
    vllm_version: NonEmpty
    kitchen: ImageRef


class S3Storage(Strict):
    endpoint: NonEmpty
    use_https: bool = True
    verify_ssl: bool = True
    region: str = "us-east-1"
    secret: Name = Field(description="Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    ca_bundle_configmap: Name | None = None


class Storage(Strict):
    s3: S3Storage
    pvc_namespace_mode: Literal["per-tenant"] = "per-tenant"


class VllmDefaults(Strict):
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int = Field(gt=0)
    max_loras: int = Field(default=4, gt=0, description="LoRA slots per batch (budget)")
    max_cpu_loras: int | None = Field(default=None, gt=0)
    max_num_seqs: int = Field(default=256, gt=0)
    # vLLM's default (8192 on GPUs of 70 GiB and more, else 2048) where not given
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    max_lora_rank: int = Field(default=64, gt=0, description="largest rank the environment allows")
    extra_args: list[str] = Field(default_factory=list)


class Resources(Strict):
    cpu: str = "8"
    memory: str = "64Gi"


class Serving(Strict):
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    replicas: int = Field(default=1, ge=0)
    min_gpus_per_replica: int = Field(default=1, gt=0)
    auth: bool = False
    resources: Resources = Resources()
    vllm: VllmDefaults


class Slo(Strict):
    ttft_p95_ms: float = Field(gt=0)
    tpot_p95_ms: float = Field(gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    min_output_tokens_per_s: float = Field(default=0, ge=0)
    goodput_min_ratio: float = Field(default=0.9, ge=0, le=1)


class Gates(Strict):
    strictness: Literal["relaxed", "standard", "strict"] = "standard"
    fail_on_warn: bool = False
    air_gapped: bool = True
    allowed_licenses: list[NonEmpty] = Field(min_length=1)
    require_approved_base: bool = False
    require_evaluation: bool = False
    trust_remote_code_allowlist: list[Name] = Field(default_factory=list)


class Conformance(Strict):
    concurrency: int = Field(default=4, gt=0)
    requests: int = Field(default=32, gt=0)
    output_tokens: int = Field(default=64, gt=0)
    prompt_tokens: int = Field(default=48, gt=0, description="random token ids per prompt")
    isolation_max_flip_rate: float = Field(
        default=0.25, ge=0, le=1,
        description="share of concurrent answers allowed to differ by numerics before a warning")
    readiness_timeout_s: int = Field(default=900, gt=0)
    active_deadline_s: int = Field(default=1800, gt=0)


class ArgoCd(Strict):
    namespace: str = "openshift-gitops"
    project: str = "default"
    repo_url: NonEmpty
    target_revision: str = "main"
    path_prefix: str = "rendered"
    auto_sync: bool = True


class Environment(Strict):
    kind: Literal["Environment"]
    name: Name
    display_name: str | None = None
    promotes_from: Name | None = None
    cluster: Cluster
    registry: Registry
    images: Images
    storage: Storage
    serving: Serving
    slo: Slo
    gates: Gates
    conformance: Conformance = Conformance()
    argocd: ArgoCd


KIND_MODELS: dict[str, type[Strict]] = {
    "Base": Base,
    "Flavor": Flavor,
    "Tenant": Tenant,
    "Environment": Environment,
}

# ---------------------------------------------------------------- catalog


@dataclass
class Catalog:
    root: Path
    bases: dict[str, Base] = field(default_factory=dict)  # key name@version
    flavors: dict[str, Flavor] = field(default_factory=dict)  # key name@version
    tenants: dict[str, Tenant] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    # objects whose file exists but did not validate: references to them are not dangling
    invalid: set[tuple[str, str]] = field(default_factory=set)
    # files that could not be loaded at all (syntax, encoding, ...): they may define what is missing
    unloaded: tuple[str, ...] = ()

    def unloaded_hint(self, kind: str, name: str) -> str:
        """``; <file>, which may define it, could not be loaded`` for a failed file named like ``name``."""
        folder = CATALOG_DIRS[kind] + "/"
        files = [f for f in self.unloaded
                 if f.startswith(folder) and Path(f).stem.partition("@")[0] == name]
        return f"; {', '.join(files)}, which may define it, could not be loaded" if files else ""

    def doc(self, kind: str, key: str) -> Document:
        return self.documents[(kind, key)]

    def location(self, kind: str, key: str, path: Iterable[str | int] = ()) -> Location:
        doc = self.documents.get((kind, key))
        if doc is None:
            return Location("<catalog>", 0, 0)
        return doc.location(path)

    def source_file(self, kind: str, key: str) -> str:
        return self.documents[(kind, key)].display_path


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
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        if etype == "extra_forbidden":
            location = doc.location(loc)
            message = f"unknown field '{field_name}' in {kind}"
            expected = "one of the fields documented in docs/catalog.md"
        elif etype == "missing":
            location = doc.location(loc[:-1])
            message = f"missing required field '{field_name}' in {kind}"
            expected = f"a value for '{loc[-1]}'"
        else:
            location = doc.location(loc, value=True)
            msg = str(err["msg"]).removeprefix("Value error, ")
            message = f"{field_name}: {msg}"
            expected = _expected_for(err)
        out.append(Finding(f"schema.{etype.replace('_', '-')}", Severity.ERROR, message,
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
    return Finding("catalog.dangling-reference", Severity.ERROR, message,
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
                "schema.kind", Severity.ERROR,
                f"unknown or missing kind '{kind}'" if kind else "missing field 'kind'",
                doc.location(("kind",), value=True), expected=f"kind: {folder_kind}"))
            continue
        if kind != folder_kind:
            findings.append(Finding(
                "catalog.misplaced", Severity.ERROR,
                f"a {kind} does not belong in the {folder_kind} folder",
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
                "catalog.duplicate-name", Severity.ERROR,
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
    return catalog, findings


def _cross_references(catalog: Catalog) -> list[Finding]:
    out: list[Finding] = []
    for key, flavor in catalog.flavors.items():
        doc = catalog.doc("Flavor", key)
        if str(flavor.base) not in catalog.bases and ("Base", str(flavor.base)) not in catalog.invalid:
            known = sorted(b.ref for b in catalog.bases.values() if b.name == flavor.base.name)
            out.append(_ref_finding(
                doc, ("base",), f"flavor {key} names base {flavor.base}, which is not in the catalog"
                f"{catalog.unloaded_hint('Base', flavor.base.name)}",
                f"one of {', '.join(known)}" if known else "a Base defined in catalog/bases/"))
    namespaces: dict[str, str] = {}
    for name, tenant in catalog.tenants.items():
        doc = catalog.doc("Tenant", name)
        if tenant.ns in namespaces:
            out.append(Finding(
                "catalog.duplicate-namespace", Severity.ERROR,
                f"namespace '{tenant.ns}' is already used by tenant {namespaces[tenant.ns]}",
                doc.location(("namespace",) if tenant.namespace else ("name",), value=True),
                expected="one namespace per tenant"))
        namespaces.setdefault(tenant.ns, name)
        for env_name, tenv in tenant.environments.items():
            if env_name not in catalog.environments and ("Environment", env_name) not in catalog.invalid:
                out.append(Finding(
                    "catalog.dangling-reference", Severity.ERROR,
                    f"tenant {name} runs in environment '{env_name}', which is not defined"
                    f"{catalog.unloaded_hint('Environment', env_name)}",
                    doc.location(("environments", env_name)),
                    expected=f"one of {', '.join(sorted(catalog.environments)) or 'environments/*.yaml'}"))
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
                        "catalog.base-version-conflict", Severity.ERROR,
                        f"tenant {name} in {env_name} uses flavors of {used.base.name} at "
                        f"versions {other} and {used.base.version}; one InferenceService "
                        "serves one base version",
                        doc.location(path, value=True), expected=f"flavors trained on {used.base.name}@{other}"))
            names = [r.name for r in tenv.flavors]
            for i, ref in enumerate(tenv.flavors):
                if names.index(ref.name) != i:
                    out.append(Finding(
                        "catalog.duplicate-flavor", Severity.ERROR,
                        f"tenant {name} lists flavor {ref.name} twice in {env_name}",
                        doc.location(("environments", env_name, "flavors", i), value=True),
                        expected="each flavor once per environment"))
    for name, env in catalog.environments.items():
        if env.promotes_from and env.promotes_from not in catalog.environments:
            out.append(_ref_finding(
                catalog.doc("Environment", name), ("promotes_from",),
                f"environment {name} promotes from '{env.promotes_from}', which is not defined",
                f"one of {', '.join(sorted(catalog.environments))}"))
    return out


def load_catalog(root: Path) -> tuple[Catalog, list[Finding]]:
    """Load and validate the catalog below ``root``: every problem at once, as findings."""
    documents, findings = load_documents(root)
    unloaded = tuple(sorted({f.location.file for f in findings}))
    catalog, more = build_catalog(root, documents, unloaded)
    return catalog, findings + more
