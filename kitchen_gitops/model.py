"""The typed catalog: pydantic models of each kind, and the cross references between them.

Every model forbids unknown fields.  Validation errors are mapped back to the position
of the offending key or value through the document's span index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
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

from . import rules, settings, vllm_release
from .escape import visible
from .evaluation import DATASET_DIR, DATASET_SUFFIX, MAX_REPOSITORY_DATASET_BYTES, METRICS, parse_dataset
from .findings import Finding, Location, Severity
from .load import CATALOG_DIRS, Document, load_documents
from .scaling import Autoscaling, EnvironmentAutoscaling
from .scaling import catalog_findings as autoscaling_findings

# Every pattern is matched with fullmatch: "$" would also match before a trailing
# newline, and "cs-llm\n" would pass as a DNS label and become a folder name.
# The --max-lora-rank values vLLM's argument parser accepts; a flavor's rank is at most the largest.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_LORA_RANK = VLLM_LORA_RANKS[-1]

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SHA256 = re.compile(r"[0-9a-f]{64}")
# An OCI reference pinned by digest: [registry[:port]/]path[:tag]@sha256:<hex>
_OCI_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
IMAGE_DIGEST = re.compile(
    rf"(?P<repo>(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{{1,5}})?/)?"
    rf"{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*)(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"@sha256:(?P<digest>[0-9a-f]{64})")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# A Kubernetes resource quantity (resource.Quantity), as the API server parses it.
QUANTITY = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
# An extended resource name such as nvidia.com/gpu.
RESOURCE_NAME = re.compile(r"(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                           r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
# host or host:port, what an S3 client is given.
ENDPOINT = re.compile(r"(?:https?://)?(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                      r"(?::(?P<port>[0-9]{1,5}))?/?")
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A model's name upstream: a hub id (org/name) or a bare name, as PEFT writes it into an
# adapter's base_model_name_or_path.
MODEL_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
# One segment of a storage path: printable, no separator, no backslash, not . or ..
PATH_SEGMENT = re.compile(r"[^/\\\x00-\x1f\x7f]+")

# Namespaces no tenant may take, whatever the environment says: Kubernetes' and
# OpenShift's own, the service meshes', monitoring, GitOps, and kitchen's conformance
# namespace.  Environments add theirs with gates.reserved_namespaces.
CONFORMANCE_NAMESPACE = "kitchen-conformance"
RESERVED_NAMESPACES = frozenset({
    "default", "kube-system", "kube-public", "kube-node-lease", "openshift", "openshift-gitops",
    "argocd", "istio-system", "knative-serving", "knative-eventing", "monitoring",
    "openshift-monitoring", "cert-manager", "kserve", "redhat-ods-applications",
    "redhat-ods-operator", "opendatahub", CONFORMANCE_NAMESPACE,
})
RESERVED_NAMESPACE_PREFIXES = ("kube-", "openshift-")

# What KServe's LLMInferenceService controller and its default LLMInferenceServiceConfig put
# on vLLM's command line (`vllm serve /mnt/models --served-model-name … --port 8000
# --tensor-parallel-size <spec.parallelism.tensor>`; from spec.model.lora: --enable-lora,
# --lora-modules and, when the spec sets them, --max-lora-rank, --max-loras, --max-cpu-loras):
# the spec carries these values, the workload's arguments carry the rest.
LLMISVC_CONTROLLER_FLAGS = frozenset({
    "--model", "--served-model-name", "--port", "--tensor-parallel-size", "--enable-lora",
    "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--lora-modules",
})

MAX_COUNT = 1_000_000  # replicas, GPUs, quotas, sequences: far above any cluster, far below overflow


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"'{visible(value)}' is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _version(value: str) -> str:
    if not VERSION.fullmatch(value):
        raise ValueError(f"'{visible(value)}' is not a version (letters, digits, '.', '_', '-')")
    return value


def _digits_need_quotes(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("a digest made only of digits must be quoted, or YAML reads it as a number")
    return value


def _sha256(value: str) -> str:
    v = value.removeprefix("sha256:")
    if not SHA256.fullmatch(v):
        raise ValueError(f"'{visible(value)}' is not a sha256 digest (64 lower-case hex digits)")
    return v


def _image_digest(value: str) -> str:
    if len(value) > 512 or not IMAGE_DIGEST.fullmatch(value):
        raise ValueError(f"'{visible(value)}' is not an image pinned by digest "
                         "(<registry>/<repository>@sha256:<64 hex>)")
    return value


def _relative_path(value: str, what: str = "path") -> str:
    """A relative path inside its container: no absolute, empty, '.' or '..' segment."""
    segments = value.split("/")
    if not value or len(value) > 1024 or any(
            s in ("", ".", "..") or not PATH_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"'{visible(value)}' is not a relative {what} (segments separated by '/', "
                         "none empty, '.' or '..', no backslash)")
    return value


def _file_path(value: str) -> str:
    return _relative_path(value, "file path")


def _uri(schemes: tuple[str, ...]) -> Any:
    """A storage URI parsed strictly: the container named as its storage names it, and a path
    that cannot leave it once a mirror or a bundle turns it into a local path."""

    def check(value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in schemes:
            raise ValueError(f"'{visible(value)}' must be a "
                             f"{' or '.join(s + '://' for s in schemes)} URI")
        container, slash, path = rest.partition("/")
        path = path[:-1] if path.endswith("/") else path
        if not slash or not path:
            raise ValueError(f"'{visible(value)}' must name a bucket or claim and a path")
        if scheme == "pvc" and (len(container) > 253 or not DNS1123_SUBDOMAIN.fullmatch(container)):
            raise ValueError(f"claim '{visible(container)}' in '{visible(value)}' is not a PVC name "
                             "(a DNS-1123 subdomain)")
        if scheme in ("s3", "gs") and (not S3_BUCKET.fullmatch(container) or ".." in container):
            raise ValueError(f"bucket '{visible(container)}' in '{visible(value)}' is not a bucket "
                             "name (3-63 lower-case letters, digits, '.', '-')")
        if scheme in ("http", "https") and not ENDPOINT.fullmatch(container):
            raise ValueError(f"host '{visible(container)}' in '{visible(value)}' is not a host name")
        if scheme == "hf" and not PATH_SEGMENT.fullmatch(container):
            raise ValueError(f"'{visible(value)}' must name an organisation and a repository")
        _relative_path(path, f"path in '{visible(value)}'")
        if any(c in value for c in "?#") and scheme != "http":
            raise ValueError(f"'{visible(value)}' must not hold a query or fragment")
        return value

    return check


def _quantity(value: Any) -> Any:
    """``8``, ``500m``, ``64Gi``: a Kubernetes quantity; YAML numbers are accepted as such."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value  # the str type check reports it
    text = str(value) if not isinstance(value, str) else value
    if isinstance(value, float) and value != int(value):
        text = repr(value)
    if not QUANTITY.fullmatch(text) or len(text) > 32:
        raise ValueError(f"'{visible(text)}' is not a Kubernetes quantity (like 8, 500m, 64Gi, 1.5G)")
    return text


def _resource_name(value: str) -> str:
    if len(value) > 253 or not RESOURCE_NAME.fullmatch(value):
        raise ValueError(f"'{visible(value)}' is not a resource name (like nvidia.com/gpu)")
    return value


def _endpoint(value: str) -> str:
    m = ENDPOINT.fullmatch(value)
    if m is None or (m.group("port") and not 0 < int(m.group("port")) < 65536):
        raise ValueError(f"'{visible(value)}' is not an S3 endpoint (host, host:port or an http(s) URL)")
    return value


def _date(value: Any) -> Any:
    """A date written unquoted (YAML reads it) or quoted ``"YYYY-MM-DD"``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value) if len(value) == 10 else value
        except ValueError:
            raise ValueError(f"'{visible(value)}' is not a date YYYY-MM-DD") from None
    return value


def _model_alias(value: str) -> str:
    if not MODEL_ALIAS.fullmatch(value):
        raise ValueError(f"'{visible(value)}' is not a model name as a hub writes it "
                         "(name or org/name: letters, digits, '.', '_', '-')")
    return value


def _unique(values: list[str]) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"'{visible(value)}' is listed twice")
        seen.add(value)
    return values


def _one_line(value: str) -> str:
    if "\n" in value or "\t" in value or "\r" in value:
        raise ValueError(f"'{visible(value)}' must be one line (no line break or tab)")
    return value


def _not_blank(value: str) -> str:
    # a person, a team or a value made of spaces names no one: " " as an approver would
    # pass any "is it set" test downstream
    if not value.strip():
        raise ValueError("a blank value (only spaces) where a value is required")
    return value


def service_namespace(endpoint: str, use_https: bool = True) -> tuple[str, int]:
    """``minio.storage.svc:9000`` → (``storage``, 9000); external hosts give no namespace.
    Without a port, the port of the scheme the endpoint is reached by: ``http://`` 80,
    ``https://`` 443, no scheme 443 or 80 as ``use_https`` says."""
    scheme, sep, rest = endpoint.partition("://")
    if sep:
        use_https = scheme.lower() != "http"
    else:
        rest = endpoint
    host, _, port = rest.rstrip("/").partition(":")
    parts = host.split(".")
    ns = parts[1] if len(parts) >= 3 and parts[2] == "svc" else ""
    default = 443 if use_https else 80
    return ns, int(port) if port.isdigit() and 0 < int(port) < 65536 else default


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"'{visible(value)}' is not an address block (CIDR, e.g. 10.20.0.0/16) "
                         f"without host bits") from None
    return str(net)


Name = Annotated[str, AfterValidator(_dns_label)]
Version = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_version)]
Sha256 = Annotated[str, BeforeValidator(_digits_need_quotes), AfterValidator(_sha256)]
ImageRef = Annotated[str, AfterValidator(_image_digest)]
PvcUri = Annotated[str, AfterValidator(_uri(("pvc",)))]
S3Uri = Annotated[str, AfterValidator(_uri(("s3",)))]
StorageUri = Annotated[str, AfterValidator(_uri(("s3", "pvc", "hf", "http", "https", "gs")))]
Text = Annotated[str, StringConstraints(min_length=1)]  # free text: prompts, may span lines
# An identifier, a name shown in a table or a header: one line, no tab
Line = Annotated[str, AfterValidator(_one_line)]
NonEmpty = Annotated[str, StringConstraints(min_length=1), AfterValidator(_one_line), AfterValidator(_not_blank)]
FilePath = Annotated[str, AfterValidator(_file_path)]
RelativePath = Annotated[str, AfterValidator(_relative_path)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
Endpoint = Annotated[str, AfterValidator(_endpoint)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Date = Annotated[dt.date, BeforeValidator(_date)]
ModelAlias = Annotated[str, AfterValidator(_model_alias)]


class Strict(BaseModel):
    # strict: no bool or float read as an integer, no "yes" read as true, no number read
    # as a string; the few lax conversions wanted (dates, quantities) are validators.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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
    approver: NonEmpty | None = None
    date: Date | None = None
    ticket: Line | None = None

    @model_validator(mode="after")
    def _approver_when_approved(self) -> Approval:
        if self.approved and not self.approver:
            raise ValueError("an approved base names its approver")
        return self


class License(Strict):
    id: NonEmpty
    url: Line | None = None
    approval: Approval = Approval()


class Architecture(Strict):
    model_type: NonEmpty
    architectures: list[NonEmpty] = Field(min_length=1)
    num_hidden_layers: int = Field(gt=0, le=10_000)
    hidden_size: int = Field(gt=0, le=1_000_000)
    intermediate_size: int = Field(gt=0, le=10_000_000)
    num_attention_heads: int = Field(gt=0, le=10_000)
    num_key_value_heads: int = Field(gt=0, le=10_000)
    head_dim: int = Field(gt=0, le=100_000)
    vocab_size: int = Field(gt=0, le=100_000_000)
    max_position_embeddings: int = Field(gt=0, le=1 << 30)
    torch_dtype: Literal["bfloat16", "float16", "float32"]
    parameters_billions: float = Field(gt=0, le=1_000_000)

    @model_validator(mode="after")
    def _heads(self) -> Architecture:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        return self


class FilePin(Strict):
    path: FilePath
    sha256: Sha256
    size: int | None = Field(default=None, ge=0)


class Base(Strict):
    kind: Literal["Base"]
    name: Name
    version: Version
    display_name: Line | None = None
    description: str | None = None
    source: PvcUri
    served_model_name: Name | None = None
    # the names it is known by upstream (meta-llama/Llama-3.1-8B-Instruct): what a PEFT
    # adapter trained on it writes as base_model_name_or_path
    aliases: Annotated[list[ModelAlias], AfterValidator(_unique)] = Field(default_factory=list, max_length=32)
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


def _dataset_path(value: str) -> str:
    _relative_path(value, "file path")
    if not value.startswith(f"{DATASET_DIR}/") or not value.endswith(DATASET_SUFFIX):
        raise ValueError(f"'{visible(value)}' is not an evaluation set of the repository "
                         f"({DATASET_DIR}/<…>{DATASET_SUFFIX})")
    return value


def _dataset_uri(value: str) -> str:
    _uri(("s3",))(value)
    if not value.endswith(DATASET_SUFFIX):
        raise ValueError(f"'{visible(value)}' does not name a JSONL object (…{DATASET_SUFFIX})")
    return value


class Dataset(Strict):
    """An evaluation set: a JSONL file of the repository or an object in S3, pinned."""

    path: Annotated[str, AfterValidator(_dataset_path)] | None = None
    uri: Annotated[str, AfterValidator(_dataset_uri)] | None = None
    sha256: Sha256

    @model_validator(mode="after")
    def _one_place(self) -> Dataset:
        if (self.path is None) == (self.uri is None):
            raise ValueError("an evaluation set is either a path in the repository (evaluations/…) "
                             "or an s3:// uri, exactly one of them")
        return self

    @property
    def where(self) -> str:
        return self.path or self.uri or ""


class Evaluation(Strict):
    suite: NonEmpty
    metric: NonEmpty
    score: float
    threshold: float
    higher_is_better: bool = True
    date: Date | None = None
    # the set the conformance job scores on the live server, and how
    dataset: Dataset | None = None
    labels: list[NonEmpty] | None = Field(default=None, min_length=2, max_length=1000)
    max_tokens: int = Field(default=64, gt=0, le=4096)

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
    prompt: Text
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
    rank: int = Field(gt=0, le=MAX_LORA_RANK)
    alpha: float | None = Field(default=None, gt=0, le=1e6)
    target_modules: list[NonEmpty] = Field(min_length=1)
    owner: Owner
    files: AdapterFiles
    evaluation: Evaluation | None = None
    smoke: list[SmokeTest] = Field(default_factory=list)
    probes: list[Text] = Field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def served_name(self) -> str:
        return served_name(self.name, self.version)


def served_name(name: str, version: str) -> str:
    """The model name a flavor version is served under: ``<flavor>-<version>``, lower case,
    every character outside ``[a-z0-9-]`` as ``-`` and no ``-`` run, so that the name is a
    DNS-1123 label (when at most 63 characters; validate checks) and an OpenAI model name
    that needs no quoting: ``helpdesk-classifier@v2026-02-01`` → ``helpdesk-classifier-v2026-02-01``,
    ``ticket-router@v1.2`` → ``ticket-router-v1-2``.  Two versions of a flavor never share
    a name, so vLLM never answers one version from another's prefix-cache entries."""
    text = re.sub(r"[^a-z0-9-]+", "-", f"{name}-{version}".lower())
    return re.sub(r"-{2,}", "-", text).strip("-")


# ---------------------------------------------------------------- Tenant


class TenantEnvironment(Strict):
    flavors: list[Ref] = Field(default_factory=list)
    aliases: dict[Name, Ref] = Field(
        default_factory=dict,
        description="stable model names, each serving one of the flavor versions listed here")
    gpu_quota: int = Field(ge=0, le=MAX_COUNT)
    replicas: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    autoscaling: Autoscaling | None = None


class Tenant(Strict):
    kind: Literal["Tenant"]
    name: Name
    display_name: Line | None = None
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
    key: Line
    operator: Literal["Exists", "Equal"] = "Exists"
    value: Line | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Gpu(Strict):
    product: NonEmpty
    # the product's nominal memory (H100 80GB: 80, H200: 141); `kitchen conform gpu` checks
    # NVML's total against it
    memory_gib: float = Field(gt=0, le=1 << 20)
    # what CUDA reports as the GPU's total (torch.cuda.mem_get_info()[1] / 2**30; H200:
    # 139.8), which vLLM multiplies by gpu_memory_utilization; the plan estimates it from
    # memory_gib where it is not given
    cuda_memory_gib: float | None = Field(default=None, gt=0, le=1 << 20)
    per_node: int = Field(gt=0, le=1024)
    nodes: int = Field(gt=0, le=MAX_COUNT)
    mig: bool = False
    resource: ResourceName = "nvidia.com/gpu"

    @property
    def total(self) -> int:
        return self.per_node * self.nodes


class Cluster(Strict):
    name: NonEmpty
    api_server: NonEmpty = "https://kubernetes.default.svc"
    platform: Literal["openshift", "kubernetes"] = "openshift"
    gpu: Gpu
    node_selector: dict[NonEmpty, Line] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class Registry(Strict):
    internal: NonEmpty
    allowed: list[NonEmpty] = Field(min_length=1)


class Images(Strict):
    vllm: ImageRef
    vllm_version: NonEmpty
    kitchen: ImageRef


class S3Storage(Strict):
    endpoint: Endpoint
    use_https: bool = True
    verify_ssl: bool = True
    region: NonEmpty = settings.S3_REGION
    secret: Name = Field(description="Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    ca_bundle_configmap: Name | None = None
    egress_cidrs: list[Cidr] = Field(
        default_factory=list, max_length=64,
        description="address blocks of an S3 endpoint outside the cluster: the only destinations "
                    "of the storage egress (a cluster service is reached through its namespace)")


class Storage(Strict):
    s3: S3Storage
    pvc_namespace_mode: Literal["per-tenant"] = "per-tenant"


class VllmDefaults(Strict):
    # the declared release's default where not given (0.9 up to vLLM 0.2x, 0.92 since), written out
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_model_len: int = Field(gt=0, le=1 << 30)
    max_loras: int = Field(default=4, gt=0, le=4096, description="LoRA slots per batch (budget)")
    max_cpu_loras: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    max_num_seqs: int = Field(default=256, gt=0, le=MAX_COUNT)
    # vLLM's default (8192 on GPUs of 70 GiB and more, else 2048) where not given
    max_num_batched_tokens: int | None = Field(default=None, gt=0, le=1 << 30)
    max_lora_rank: int = Field(default=64, gt=0, le=4096, description="largest rank the environment allows")
    extra_args: list[NonEmpty] = Field(default_factory=list)


class Resources(Strict):
    cpu: Quantity = "8"
    memory: Quantity = "64Gi"


class Serving(Strict):
    api: Literal["InferenceService", "LLMInferenceService"] = Field(
        default="InferenceService",
        description="the KServe API each tenant's base is served through: an InferenceService "
        "(serving.kserve.io/v1beta1) with a vLLM ServingRuntime, or an LLMInferenceService "
        "(serving.kserve.io/v1alpha2, KServe >= 0.19) with the llm-d scheduler")
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    replicas: int = Field(default=1, ge=0, le=MAX_COUNT)
    min_gpus_per_replica: int = Field(default=1, gt=0, le=1024)
    auth: bool = False
    resources: Resources = Resources()
    vllm: VllmDefaults
    autoscaling: EnvironmentAutoscaling | None = None


class Slo(Strict):
    # finite only: an SLO of .inf or .nan would render alert thresholds no one can meet or read
    ttft_p95_ms: float = Field(gt=0, le=1e9, allow_inf_nan=False)
    tpot_p95_ms: float = Field(gt=0, le=1e9, allow_inf_nan=False)
    e2e_p95_ms: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    min_output_tokens_per_s: float = Field(default=0, ge=0, le=1e12, allow_inf_nan=False)
    goodput_min_ratio: float = Field(default=0.9, ge=0, le=1, allow_inf_nan=False)


class Gates(Strict):
    strictness: Literal["relaxed", "standard", "strict"] = "standard"
    fail_on_warn: bool = False
    air_gapped: bool = True
    allowed_licenses: list[NonEmpty] = Field(min_length=1)
    require_approved_base: bool = False
    require_evaluation: bool = False
    trust_remote_code_allowlist: list[Name] = Field(default_factory=list)
    reserved_namespaces: list[Name] = Field(
        default_factory=list,
        description="namespaces no tenant may use in this environment, besides the built-in ones")


class Conformance(Strict):
    concurrency: int = Field(default=4, gt=0, le=10_000)
    requests: int = Field(default=32, gt=0, le=MAX_COUNT)
    output_tokens: int = Field(default=64, gt=0, le=MAX_COUNT)
    prompt_tokens: int = Field(default=48, gt=0, le=1 << 20, description="random token ids per prompt")
    isolation_max_flip_rate: float = Field(
        default=0.25, ge=0, le=1, allow_inf_nan=False,
        description="share of concurrent answers allowed to differ by numerics before a warning")
    readiness_timeout_s: int = Field(default=900, gt=0, le=7 * 86_400)
    active_deadline_s: int = Field(default=1800, gt=0, le=7 * 86_400)


class Saturation(Strict):
    kv_cache_usage_max: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False,
                                      description="KV-cache usage (0–1) above which an InferenceService is near full")
    requests_waiting_max: int = Field(default=0, ge=0, description="requests waiting per InferenceService tolerated")
    for_minutes: int = Field(default=15, gt=0, le=1440)


class Observability(Strict):
    enabled: bool = True
    scrape_interval_s: int = Field(default=30, ge=5, le=300)
    monitoring_namespace: Name | None = Field(
        default=None, description="where Prometheus runs; default by platform: "
        "openshift-user-workload-monitoring on OpenShift, monitoring on Kubernetes")
    dashboard: bool = True
    dashboard_namespace: Name = "kitchen-conformance"
    runbook_url: NonEmpty = Field(default="docs/operations.md",
                                  description="the runbook document; each alert links to its section")
    slo_for_minutes: int = Field(default=10, gt=0, le=1440)
    saturation: Saturation = Saturation()

    def prometheus_namespace(self, platform: str) -> str:
        if self.monitoring_namespace:
            return self.monitoring_namespace
        return "openshift-user-workload-monitoring" if platform == "openshift" else "monitoring"


class ArgoCd(Strict):
    namespace: Name = "openshift-gitops"
    project: Name = "default"
    repo_url: NonEmpty
    target_revision: NonEmpty = "main"
    path_prefix: RelativePath = "rendered"
    auto_sync: bool = True


class Evidence(Strict):
    """Where the post-sync conformance run uploads its signed evidence records."""

    uri: S3Uri = Field(description="s3://BUCKET/PREFIX/ on the environment's S3 endpoint")
    key_secret: Name = Field(default="kitchen-evidence-signing-key",
                             description="Secret in the conformance namespace holding signing-key.pem")


class Environment(Strict):
    kind: Literal["Environment"]
    name: Name
    display_name: Line | None = None
    promotes_from: Name | None = None
    cluster: Cluster
    registry: Registry
    images: Images
    storage: Storage
    serving: Serving
    slo: Slo
    gates: Gates
    conformance: Conformance = Conformance()
    observability: Observability = Observability()
    evidence: Evidence | None = None
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

    def location(self, kind: str, key: str, path: Iterable[str | int] = (), *, value: bool = False) -> Location:
        """Where ``path`` of a catalog object is written: the one strict position accessor.

        A path the file does not write but the object's model has (a defaulted field, an
        optional mapping left out) is located at its nearest written parent — that is where
        a person would add it.  A path the model does not have is a programming error in
        the caller (a rule or a stage naming a field that does not exist): PositionError.
        """
        doc = self.documents.get((kind, key))
        if doc is None:
            raise PositionError(f"no {kind} '{key}' in the catalog")
        segments = tuple(path)
        if segments in doc.spans:
            return doc.location(segments, value=value)
        obj = self._object(kind, key)
        if not model_has_path(obj, segments):
            raise PositionError(f"{kind} {key} has no field {'.'.join(map(str, segments))}")
        return doc.location(segments, value=value)

    def _object(self, kind: str, key: str) -> Any:
        registries: dict[str, dict[str, Any]] = {"Base": self.bases, "Flavor": self.flavors,
                                                 "Tenant": self.tenants, "Environment": self.environments}
        return registries[kind].get(key)

    def locate(self, file: str, dotted: str) -> Location:
        """``location`` for a catalog file and a dotted path (``environments.prod.flavors.0``),
        as the policy rules name them; keys with dots in them are matched whole."""
        for (kind, key), doc in self.documents.items():
            if doc.display_path == file:
                segments = split_dotted(self._object(kind, key), dotted, doc)
                if segments is None:
                    raise PositionError(f"{kind} {key} ({file}) has no field {dotted}")
                return self.location(kind, key, segments)
        raise PositionError(f"{file} is not a catalog file")

    def source_file(self, kind: str, key: str) -> str:
        return self.documents[(kind, key)].display_path


class PositionError(LookupError):
    """A position asked for a field the object's model does not have."""


def _field_value(obj: Any, name: str | int) -> tuple[bool, Any]:
    """(exists, value) of one path segment in a model, mapping or list."""
    if isinstance(obj, BaseModel):
        for fname, info in type(obj).model_fields.items():
            if name in (fname, info.alias):
                return True, getattr(obj, fname)
        return False, None
    if isinstance(obj, dict):
        return (name in obj), obj.get(name)
    if isinstance(obj, list | tuple):
        try:
            index = int(name)
        except (TypeError, ValueError):
            return False, None
        return (0 <= index < len(obj)), (obj[index] if 0 <= index < len(obj) else None)
    return False, None


def model_has_path(obj: Any, path: Iterable[str | int]) -> bool:
    """Whether ``path`` names a field of the (validated) object ``obj``; below an unset
    optional field (None) the rest cannot be checked and is accepted."""
    for segment in path:
        if obj is None:
            return True
        exists, obj = _field_value(obj, segment)
        if not exists:
            return False
    return True


def split_dotted(obj: Any, dotted: str, doc: Document | None = None) -> tuple[str | int, ...] | None:
    """A dotted path as segments, matching keys that contain dots (``adapter_config.json``)
    whole: the longest key of the object (or of the document) that the rest starts with."""
    if not dotted:
        return ()
    out: list[str | int] = []
    rest = dotted
    while rest:
        candidates: list[str] = []
        if isinstance(obj, BaseModel):
            for fname, info in type(obj).model_fields.items():
                candidates += [fname] + ([info.alias] if info.alias else [])
        elif isinstance(obj, dict):
            candidates += [str(k) for k in obj]
        elif isinstance(obj, list | tuple):
            candidates += [str(i) for i in range(len(obj))]
        if doc is not None:
            prefix = tuple(out)
            candidates += [str(k[len(prefix)]) for k in doc.spans if len(k) > len(prefix) and k[:len(prefix)] == prefix]
        match = max((c for c in candidates if rest == c or rest.startswith(c + ".")), key=len, default=None)
        if match is None:
            if obj is None:  # below an unset optional field
                out += rest.split(".")
                return tuple(out)
            return None
        segment: str | int = int(match) if isinstance(obj, list | tuple) else match
        out.append(segment)
        _, obj = _field_value(obj, segment)
        rest = rest[len(match) + 1:]
    return tuple(out)


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
            out += _served_names(catalog, doc, name, env_name, tenv)
    for name, env in catalog.environments.items():
        out += _controller_flags(catalog, name, env)
        if env.promotes_from and env.promotes_from not in catalog.environments:
            out.append(_ref_finding(
                catalog.doc("Environment", name), ("promotes_from",),
                f"environment {name} promotes from '{env.promotes_from}', which is not defined",
                f"one of {', '.join(sorted(catalog.environments))}"))
    # one folder of rendered output per repository: render writes it, check compares it,
    # every Application syncs <path_prefix>/<environment> from it
    prefixes = sorted({env.argocd.path_prefix for env in catalog.environments.values()})
    if len(prefixes) > 1:
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


def _served_names(catalog: Catalog, doc: Document, tenant: str, env_name: str,
                  tenv: TenantEnvironment) -> list[Finding]:
    """The model names a tenant's environment serves: each flavor version once, served
    names that are DNS labels and distinct, aliases that name a listed version and take no
    name already served."""
    out: list[Finding] = []
    listed = [str(r) for r in tenv.flavors]
    taken: dict[str, str] = {}  # served name -> what it serves
    for i, ref in enumerate(tenv.flavors):
        at = doc.location(("environments", env_name, "flavors", i), value=True)
        key = str(ref)
        if listed.index(key) != i:
            out.append(Finding(
                rules.CATALOG_DUPLICATE_FLAVOR, Severity.ERROR,
                f"tenant {tenant} lists flavor {key} twice in {env_name}", at,
                expected="each flavor version once per environment (two versions of a flavor may "
                "be listed side by side)"))
            continue
        flavor = catalog.flavors.get(key)
        if flavor is not None and (base := catalog.bases.get(str(flavor.base))) is not None:
            taken.setdefault(base.serve_name, f"the base {base.ref}")
        served = served_name(ref.name, ref.version)
        if len(served) > 63:
            out.append(Finding(
                rules.CATALOG_SERVED_NAME, Severity.ERROR,
                f"flavor {key} would be served as '{served}', {len(served)} characters", at,
                expected="a flavor name and version that make a served name of at most 63 characters"))
        elif served in taken:
            out.append(Finding(
                rules.CATALOG_SERVED_NAME, Severity.ERROR,
                f"flavor {key} would be served as '{served}', the name of {taken[served]} in "
                f"tenant {tenant}'s {env_name}", at,
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
        if ns.startswith(RESERVED_NAMESPACE_PREFIXES):
            return f"starts with {' or '.join(RESERVED_NAMESPACE_PREFIXES)}, reserved for the platform"
        return ""
    if ns in env.gates.reserved_namespaces:
        return f"is reserved in environment {env.name} (gates.reserved_namespaces)"
    if ns == env.argocd.namespace:
        return f"is Argo CD's namespace in environment {env.name}"
    if ns == service_namespace(env.storage.s3.endpoint)[0]:
        return f"is the namespace of environment {env.name}'s S3 storage"
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
        if e is None or e.dataset is None:
            continue
        subject = f"Flavor/{key}"

        def at(path: tuple[str | int, ...], k: str = key) -> Location:
            return catalog.location("Flavor", k, ("evaluation", *path), value=True)

        metric = METRICS.get(e.metric)
        if metric is None:
            out.append(Finding(rules.EVALUATION_UNKNOWN_METRIC, Severity.ERROR,
                               f"flavor {key} scores its evaluation set on metric '{visible(e.metric)}', "
                               "which kitchen cannot compute", at(("metric",)),
                               expected=f"one of {', '.join(METRICS)}", subject=subject))
            continue
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
        for loc, what, expected in problems:
            out.append(Finding(rules.EVALUATION_SETTINGS, Severity.ERROR, f"flavor {key}'s evaluation {what}",
                               loc, expected=expected, subject=subject))
        if problems or e.dataset.path is None:
            continue
        try:
            raw = read_dataset(catalog.root, e.dataset.path)
        except OSError as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
            out.append(Finding(rules.EVALUATION_DATASET_MISSING, Severity.ERROR,
                               f"flavor {key}'s evaluation set {visible(e.dataset.path)} cannot be read: {reason}",
                               at(("dataset", "path")), expected="a regular JSONL file of the repository",
                               subject=subject))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if len(raw) <= MAX_REPOSITORY_DATASET_BYTES and digest != e.dataset.sha256:
            out.append(Finding(rules.EVALUATION_DATASET_PIN, Severity.ERROR,
                               f"flavor {key}'s evaluation set {visible(e.dataset.path)} has sha256 {digest}, "
                               f"not the {e.dataset.sha256} its flavor pins: the conformance job would refuse "
                               "it, and evidence would name another set",
                               at(("dataset", "sha256")),
                               expected=f"sha256: {digest} for these bytes (`kitchen artifacts lock` writes it), "
                                        "or the pinned set back",
                               subject=subject))
        _, bad = parse_dataset(raw, e.metric, e.labels or ())
        out += [Finding(p.rule, Severity.ERROR, f"evaluation set of flavor {key}: {p.message}",
                        Location(e.dataset.path, p.line, p.col), expected=p.expected, subject=subject)
                for p in bad]
    return out


def load_catalog(root: Path) -> tuple[Catalog, list[Finding]]:
    """Load and validate the catalog below ``root``: every problem at once, as findings."""
    documents, findings = load_documents(root)
    unloaded = tuple(sorted({f.location.file for f in findings}))
    catalog, more = build_catalog(root, documents, unloaded)
    return catalog, findings + more
