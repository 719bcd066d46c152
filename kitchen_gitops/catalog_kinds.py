"""The kinds of the catalog a tenant's pull request edits: bases (models on a PVC or S3),
flavors (LoRA adapters with their evaluation sets and expectations) and tenants."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    model_validator,
)

from .catalog_fields import (
    MAX_COUNT,
    MAX_LORA_RANK,
    Date,
    FilePath,
    Line,
    ModelAlias,
    Name,
    NonEmpty,
    PvcUri,
    Ref,
    Sha256,
    StorageUri,
    Strict,
    Text,
    Version,
    _relative_path,
    _unique,
    _uri,
)
from .escape import visible
from .evaluation_sets import DATASET_DIR, DATASET_SUFFIX
from .scaling import Autoscaling

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


@functools.lru_cache(maxsize=65536)  # a plan asks for each flavor's name many times
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
