"""An environment of the catalog: its cluster and GPUs, registry and images, storage,
serving defaults, SLOs, gates, conformance, observability, Argo CD and evidence."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import (
    Field,
    model_validator,
)

from . import settings
from .catalog_fields import (
    MAX_COUNT,
    Cidr,
    Endpoint,
    ImageRef,
    Line,
    Name,
    NonEmpty,
    Quantity,
    RelativePath,
    ResourceName,
    S3Uri,
    Strict,
)
from .catalog_fields import Registry as RegistryName
from .catalog_kinds import Base, Flavor, Tenant
from .scaling import EnvironmentAutoscaling

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

    @model_validator(mode="after")
    def _cuda_within_the_product(self) -> Gpu:
        # CUDA reports less than the product's nominal memory (H200: 139.8 of 141), never more:
        # a larger figure would plan past the GPU, and past the floor that bounds memory_gib
        if self.cuda_memory_gib is not None and self.cuda_memory_gib > self.memory_gib:
            raise ValueError(f"cuda_memory_gib ({self.cuda_memory_gib:g}) is more than the GPU's memory_gib "
                             f"({self.memory_gib:g}): CUDA reports at most the product's memory")
        return self

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
    internal: RegistryName
    allowed: list[RegistryName] = Field(min_length=1)


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


DeploymentMode = Literal["RawDeployment", "Serverless"]
DEPLOYMENT_MODES: tuple[str, ...] = get_args(DeploymentMode)


ServingApi = Literal["InferenceService", "LLMInferenceService"]
SERVING_APIS: tuple[str, ...] = get_args(ServingApi)


class Serving(Strict):
    api: ServingApi = Field(
        default="InferenceService",
        description="the KServe API each tenant's base is served through: an InferenceService "
        "(serving.kserve.io/v1beta1) with a vLLM ServingRuntime, or an LLMInferenceService "
        "(serving.kserve.io/v1alpha2, KServe >= 0.19) with the llm-d scheduler")
    deployment_mode: DeploymentMode = "RawDeployment"
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
    # below 1: usage never exceeds 1, so an alert above 1 would never fire
    kv_cache_usage_max: float = Field(default=0.9, gt=0, lt=1, allow_inf_nan=False,
                                      description="KV-cache usage (0 to below 1) above which an InferenceService "
                                      "is near full")
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
