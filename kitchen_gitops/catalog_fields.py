"""The field types of the catalog: names, versions, digests, paths, URIs, quantities, and the
strict base model every kind of the catalog is built on (no unknown field, no coercion)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from .escape import visible

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
# OpenShift's own, the service meshes', monitoring, GitOps, kitchen's conformance
# namespace, and the default namespaces of the operators kitchen's output relies on (KEDA
# scales the autoscaling tenants, the NVIDIA GPU Operator and Node Feature Discovery run
# and label the GPU nodes): a tenant's access groups are admins of its namespace, and an
# admin of an operator's namespace controls what the operator does cluster-wide.
# Environments add theirs with gates.reserved_namespaces.
CONFORMANCE_NAMESPACE = "kitchen-conformance"
RESERVED_NAMESPACES = frozenset({
    "default", "kube-system", "kube-public", "kube-node-lease", "openshift", "openshift-gitops",
    "argocd", "istio-system", "knative-serving", "knative-eventing", "monitoring",
    "openshift-monitoring", "cert-manager", "kserve", "redhat-ods-applications",
    "redhat-ods-operator", "opendatahub", "keda", "nvidia-gpu-operator", "gpu-operator",
    "node-feature-discovery", CONFORMANCE_NAMESPACE,
})
RESERVED_NAMESPACE_PREFIXES = ("kube-", "openshift-", "istio-", "knative-")

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


# A registry as an image reference starts with it: host[:port][/path], as OCI names it.
REGISTRY = re.compile(rf"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{{1,5}})?(?:/{_OCI_COMPONENT})*")


def _registry(value: str) -> str:
    if len(value) > 255 or not REGISTRY.fullmatch(value):
        raise ValueError(f"'{visible(value)}' is not a registry (host, host:port, optionally /path, "
                         "as an image reference starts)")
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
Registry = Annotated[str, AfterValidator(_registry)]
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
