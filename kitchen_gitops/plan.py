"""Plan each environment: which InferenceService serves which base with which flavors.

Every vLLM argument is computed from the catalog (ranks, adapter counts, architecture
facts, the environment's GPUs and defaults); the plan also estimates whether the model,
the LoRA slots and a full-length KV cache fit in the GPU memory of one replica
(:mod:`.gpu_memory`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import vllm_release
from .findings import Finding, Location, ResourceRef, Severity
from .gpu_memory import MemoryEstimate, estimate_memory, memory_utilization
from .model import (
    LLMISVC_CONTROLLER_FLAGS,
    VLLM_LORA_RANKS,
    Base,
    Catalog,
    Environment,
    Flavor,
    Tenant,
)
from .rules import (
    PLAN_CLUSTER_GPU_CAPACITY,
    PLAN_EVALUATION_SETS_SIZE,
    PLAN_GPU_MEMORY,
    PLAN_VLLM_ARGS,
    PLAN_VLLM_OWNED_FLAG,
)
from .scaling import Scaling, resolve
from .vllm_args import ArgValue, VllmArgs, normalise_flag
from .vllm_release import VllmRelease

# The port vLLM serves on inside the predictor (probes, scrape target, network policies).
PREDICTOR_PORT = 8080

BASE_MOUNT = "/mnt/models/base"
ADAPTER_MOUNT = "/mnt/models/adapters"
ISVC_API_VERSION = "serving.kserve.io/v1beta1"
LLMISVC_API_VERSION = "serving.kserve.io/v1alpha2"
API_VERSIONS = {"InferenceService": ISVC_API_VERSION, "LLMInferenceService": LLMISVC_API_VERSION}
# The port vLLM serves on in an LLMInferenceService's workload (KServe's LLMInferenceServiceConfig).
LLMISVC_PORT = 8000
OFFLINE_ENV = (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("VLLM_NO_USAGE_STATS", "1"))
# Every vLLM option kitchen itself writes (plan_service, runtime_args), as the admission
# policies allow them on a serving container beside the allow-list of extra_args.
KITCHEN_FLAGS = ("--model", "--served-model-name", "--dtype", "--max-model-len", "--tensor-parallel-size",
                 "--gpu-memory-utilization", "--max-num-seqs", "--max-num-batched-tokens", "--trust-remote-code",
                 "--enable-lora", "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--lora-modules", "--port")


def round_lora_rank(rank: int, ranks: tuple[int, ...] = VLLM_LORA_RANKS) -> int:
    """The smallest rank vLLM (the release that reads ``ranks``) accepts that is at least ``rank``."""
    for allowed in ranks:
        if allowed >= rank:
            return allowed
    raise ValueError(f"rank {rank} exceeds vLLM's largest --max-lora-rank {ranks[-1]}")


def environment_release(env: Environment) -> VllmRelease | None:
    """The release the environment's image runs (None: one kitchen has no table for, which
    validation reports)."""
    return vllm_release.release(env.images.vllm_version)


@dataclass(frozen=True)
class LoraModule:
    """One adapter name vLLM serves: a flavor version under its served name, or an alias
    (``alias=True``) that serves the same files under a stable name."""

    name: str
    path: str
    uri: str
    flavor: Flavor
    alias: bool = False

    def as_arg(self, base_model_name: str) -> str:
        return json.dumps({"name": self.name, "path": self.path, "base_model_name": base_model_name},
                          separators=(",", ":"))



@dataclass(frozen=True)
class ServicePlan:
    """One InferenceService: a tenant's base model with that tenant's flavors of it."""

    environment: Environment
    tenant: Tenant
    base: Base
    flavors: tuple[Flavor, ...]
    name: str
    namespace: str
    served_model_name: str
    max_loras: int
    max_lora_rank: int
    max_cpu_loras: int
    max_model_len: int
    tensor_parallel_size: int
    replicas: int
    memory: MemoryEstimate
    lora_modules: tuple[LoraModule, ...]
    vllm: VllmArgs
    env_vars: tuple[tuple[str, str], ...]
    aliases: tuple[LoraModule, ...] = ()
    scaling: Scaling | None = None  # None: a fixed `replicas`

    @property
    def adapters(self) -> tuple[LoraModule, ...]:
        """Every adapter name served: the flavor versions, then the aliases."""
        return self.lora_modules + self.aliases

    @property
    def args(self) -> tuple[str, ...]:
        """The command line as the template writes it."""
        return tuple(self.vllm.argv())

    @property
    def kind(self) -> str:
        return self.environment.serving.api

    @property
    def api_version(self) -> str:
        return API_VERSIONS[self.kind]

    @property
    def workload_args(self) -> tuple[str, ...]:
        """The arguments an LLMInferenceService's workload container adds to what the
        controller sets (``LLMISVC_CONTROLLER_FLAGS``): the computed options the spec does not
        carry, and the environment's ``extra_args`` as written."""
        kept = VllmArgs(tuple((f, v) for f, v in self.vllm.options
                              if normalise_flag(f) not in LLMISVC_CONTROLLER_FLAGS), self.vllm.extra)
        return tuple(kept.argv())

    @property
    def gpus(self) -> int:
        """GPUs at the replicas always running (``min`` when it autoscales)."""
        return self.tensor_parallel_size * self.replicas

    @property
    def max_replicas(self) -> int:
        return self.scaling.max if self.scaling is not None else self.replicas

    @property
    def gpus_max(self) -> int:
        """GPUs at full scale: what quotas and the cluster must hold."""
        return self.tensor_parallel_size * self.max_replicas

    @property
    def runtime_name(self) -> str:
        return f"vllm-{self.name}"

    @property
    def storage_uris(self) -> list[dict[str, str]]:
        out = [{"uri": self.base.source, "mountPath": BASE_MOUNT}]
        out += [{"uri": m.uri, "mountPath": m.path} for m in self.lora_modules]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment.name,
            "tenant": self.tenant.name,
            "namespace": self.namespace,
            "inference_service": self.name,
            "kind": self.kind,
            "api_version": self.api_version,
            "runtime": self.runtime_name,
            "base": self.base.ref,
            "served_model_name": self.served_model_name,
            "flavors": [f.ref for f in self.flavors],
            "adapters": [{"name": m.name, "flavor": m.flavor.ref, "alias": m.alias} for m in self.adapters],
            "max_adapter_rank": max((f.rank for f in self.flavors), default=0),
            "max_lora_rank": self.max_lora_rank,
            "max_loras": self.max_loras,
            "max_cpu_loras": self.max_cpu_loras,
            "max_model_len": self.max_model_len,
            "tensor_parallel_size": self.tensor_parallel_size,
            "replicas": self.replicas,
            "gpus": self.gpus,
            "max_replicas": self.max_replicas,
            "gpus_max": self.gpus_max,
            "autoscaling": self.scaling.as_dict() if self.scaling is not None else None,
            "memory": self.memory.as_dict(),
            "args": list(self.args),
            "vllm_args": {flag: list(v) if isinstance(v, tuple) else v for flag, v in self.vllm.flags().items()},
            "env": dict(self.env_vars),
            "storage_uris": self.storage_uris,
        }


@dataclass
class TenantPlan:
    tenant: Tenant
    namespace: str
    gpu_quota: int
    services: list[ServicePlan] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant.name, "namespace": self.namespace, "gpu_quota": self.gpu_quota,
                "services": [s.as_dict() for s in self.services]}


@dataclass
class EnvironmentPlan:
    environment: Environment
    tenants: list[TenantPlan] = field(default_factory=list)

    @property
    def services(self) -> list[ServicePlan]:
        return [s for t in self.tenants for s in t.services]

    def as_dict(self, tenants: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The plan as the policy input holds it; ``tenants``: each tenant's ``as_dict``, where
        the caller has them already."""
        env = self.environment
        return {
            "environment": env.name,
            "vllm_release": env.images.vllm_version,  # the arguments are written for it
            "gpu": {"product": env.cluster.gpu.product, "memory_gib": env.cluster.gpu.memory_gib,
                    "total": env.cluster.gpu.total},
            "gpus_planned": sum(s.gpus for s in self.services),
            "gpus_planned_max": sum(s.gpus_max for s in self.services),
            "gpu_quota_total": sum(t.gpu_quota for t in self.tenants),
            "tenants": list(tenants) if tenants is not None else [t.as_dict() for t in self.tenants],
        }


def _choose_tp(base: Base, env: Environment, max_loras: int, max_rank: int,
               max_model_len: int, known: dict[tuple[Any, ...], tuple[int, MemoryEstimate]] | None = None,
               ) -> tuple[int, MemoryEstimate]:
    """Smallest power-of-two GPU count per replica that fits, divides the heads, fits a node.
    ``known``: the answers of this environment's plan so far, by base and LoRA sizes (the
    estimate reads nothing else of a service: many tenants serve a base alike)."""
    if known is None:
        return _fit_tp(base, env, max_loras, max_rank, max_model_len)
    key = (id(base), id(env), max_loras, max_rank, max_model_len)
    if key not in known:
        known[key] = _fit_tp(base, env, max_loras, max_rank, max_model_len)
    return known[key]


def _fit_tp(base: Base, env: Environment, max_loras: int, max_rank: int,
            max_model_len: int) -> tuple[int, MemoryEstimate]:
    gpu = env.cluster.gpu
    heads = base.architecture.num_attention_heads
    tp = 1
    while tp < env.serving.min_gpus_per_replica:
        tp *= 2
    candidates = []
    while tp <= gpu.per_node:
        if heads % tp == 0:
            candidates.append(tp)
        tp *= 2
    if not candidates:
        candidates = [max(1, env.serving.min_gpus_per_replica)]
    for tp in candidates:
        est = estimate_memory(base, env, tp, max_loras, max_rank, max_model_len)
        if est.fits:
            return tp, est
    tp = candidates[-1]
    return tp, estimate_memory(base, env, tp, max_loras, max_rank, max_model_len)


def release_options(options: list[tuple[str, ArgValue]], release: VllmRelease | None) -> list[tuple[str, ArgValue]]:
    """The options the declared release reads: each under the spelling that release's parser
    knows it by (vLLM renames keep the old spelling as an alias or drop it), an option the
    release lacks left out — vLLM's own behaviour then applies."""
    if release is None:
        return options
    out: list[tuple[str, ArgValue]] = []
    for flag, value in options:
        # a renamed flag keeps its destination (the config field it sets)
        option = release.option(flag) or release.options.get(flag.lstrip("-").replace("-", "_"))
        if option is not None:
            out.append((flag if flag in option.flags else option.flag, value))
    return out


def plan_service(env: Environment, tenant: Tenant, base: Base, flavors: list[Flavor],
                 replicas: int, aliases: dict[str, str] | None = None,
                 scaling: Scaling | None = None,
                 known: dict[tuple[Any, ...], tuple[int, MemoryEstimate]] | None = None) -> ServicePlan:
    """``aliases``: alias name → the ``name@version`` of one of ``flavors`` it serves."""
    vllm = env.serving.vllm
    release = environment_release(env)
    flavors = sorted(flavors, key=lambda f: (f.name, f.version))
    modules = tuple(LoraModule(f.served_name, f"{ADAPTER_MOUNT}/{f.served_name}", f.source, f)
                    for f in flavors)
    by_ref = {m.flavor.ref: m for m in modules}
    alias_modules = tuple(LoraModule(a, by_ref[ref].path, by_ref[ref].uri, by_ref[ref].flavor, alias=True)
                          for a, ref in sorted((aliases or {}).items()) if ref in by_ref)
    # vLLM loads an alias as an adapter of its own (its own id, slot and cache entries)
    names = len(modules) + len(alias_modules)
    max_rank = round_lora_rank(max((f.rank for f in flavors), default=1),
                               release.lora_ranks if release is not None else VLLM_LORA_RANKS)
    max_loras = max(1, min(names, vllm.max_loras))
    max_cpu_loras = max(max_loras, names, vllm.max_cpu_loras or 0)
    max_model_len = min(vllm.max_model_len, base.architecture.max_position_embeddings)
    tp, memory = _choose_tp(base, env, max_loras, max_rank, max_model_len, known)
    served = base.serve_name
    options: list[tuple[str, ArgValue]] = [
        ("--model", BASE_MOUNT),
        ("--served-model-name", served),
        ("--dtype", base.architecture.torch_dtype),
        ("--max-model-len", str(max_model_len)),
        ("--tensor-parallel-size", str(tp)),
        ("--gpu-memory-utilization", str(memory_utilization(env))),
        ("--max-num-seqs", str(vllm.max_num_seqs)),
    ]
    if vllm.max_num_batched_tokens is not None:
        options.append(("--max-num-batched-tokens", str(vllm.max_num_batched_tokens)))
    if base.trust_remote_code:
        options.append(("--trust-remote-code", None))
    if modules:
        # --max-loras and --max-lora-rank always written: KServe passes neither unless the
        # spec sets it, and the release's defaults (1 and 16) would apply
        options += [
            ("--enable-lora", None),
            ("--max-loras", str(max_loras)),
            ("--max-lora-rank", str(max_rank)),
            ("--max-cpu-loras", str(max_cpu_loras)),
            ("--lora-modules", tuple(m.as_arg(served) for m in modules + alias_modules)),
        ]
    return ServicePlan(
        environment=env, tenant=tenant, base=base, flavors=tuple(flavors), name=base.name,
        namespace=tenant.ns, served_model_name=served, max_loras=max_loras, max_lora_rank=max_rank,
        max_cpu_loras=max_cpu_loras, max_model_len=max_model_len, tensor_parallel_size=tp,
        replicas=replicas, memory=memory, lora_modules=modules,
        vllm=VllmArgs(tuple(release_options(options, release)), tuple(vllm.extra_args)),
        env_vars=OFFLINE_ENV, aliases=alias_modules, scaling=scaling,
    )


def plan_environment(catalog: Catalog, env_name: str) -> EnvironmentPlan:
    """Plan one environment of a catalog that validated without errors."""
    env = catalog.environments[env_name]
    plan = EnvironmentPlan(env)
    known: dict[tuple[Any, ...], tuple[int, MemoryEstimate]] = {}  # the GPU fits so far, of live objects
    for tenant_name in sorted(catalog.tenants):
        tenant = catalog.tenants[tenant_name]
        tenv = tenant.environments.get(env_name)
        if tenv is None:
            continue
        tplan = TenantPlan(tenant, tenant.ns, tenv.gpu_quota)
        by_base: dict[str, list[Flavor]] = {}
        for ref in tenv.flavors:
            flavor = catalog.flavors[str(ref)]
            by_base.setdefault(str(flavor.base), []).append(flavor)
        scaling = resolve(env.name, env.serving.autoscaling, tenv.autoscaling, tenv.replicas, env.serving.replicas)
        replicas = env.serving.replicas if tenv.replicas is None else tenv.replicas
        if scaling is not None:
            replicas = scaling.min
        aliases = {a: str(ref) for a, ref in tenv.aliases.items()}
        for base_ref in sorted(by_base):
            base = catalog.bases[base_ref]
            tplan.services.append(plan_service(env, tenant, base, by_base[base_ref], replicas, aliases, scaling,
                                               known))
        plan.tenants.append(tplan)
    return plan


def plan_findings(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    """What the plan itself can tell: a command line the declared vLLM would refuse, a
    replica that does not fit its GPUs."""
    out = vllm_args_findings(catalog, plan)
    env = plan.environment
    for svc in plan.services:
        if not svc.memory.fits:
            m = svc.memory
            # KV room enough, but more in use than the GPUs hold: the share vLLM takes leaves
            # too little for the CUDA graphs and contexts outside it
            over = m.serving_gib > m.gpu_memory_gib and m.kv_tokens >= svc.max_model_len
            out.append(Finding(
                PLAN_GPU_MEMORY, Severity.ERROR,
                f"{svc.base.ref} for tenant {svc.tenant.name} in {env.name} does not fit "
                f"{svc.tensor_parallel_size}× {env.cluster.gpu.product}: weights {m.weights_gib:.1f} GiB "
                f"+ LoRA slots {m.lora_gib:.2f} GiB + activations and runtime "
                f"{m.overhead_gib:.1f} GiB leave room for {m.kv_tokens} KV tokens"
                + ("" if m.serving_gib <= m.gpu_memory_gib else
                   f"; serving would use {m.serving_gib:.1f} GiB with CUDA graphs and contexts"
                   f" of {m.gpu_memory_gib:.1f}"),
                _tenant_env_location(catalog, svc.tenant, env.name),
                resource=ResourceRef(svc.kind, svc.name, svc.namespace, svc.api_version),
                expected=(f"at most the {m.gpu_memory_gib:.1f} GiB the GPUs hold (a lower "
                          "serving.vllm.gpu_memory_utilization leaves room for the CUDA graphs and contexts)"
                          if over else f"KV cache for at least --max-model-len={svc.max_model_len} tokens"),
                actual=f"{m.serving_gib:.1f} GiB" if over else f"{m.kv_tokens} KV tokens",
                environment=env.name, subject=f"Base/{svc.base.ref}",
            ))
    out += _evaluation_sets_size(catalog, plan)
    return out


def max_location(catalog: Catalog, svc: ServicePlan) -> Location:
    """The catalog line that sets a service's full scale: its ``max`` (the tenant's or its
    environment's), else the tenant's fixed replicas (or where it would write them)."""
    if svc.scaling is not None:
        key = svc.tenant.name if svc.scaling.max_from == "Tenant" else svc.environment.name
        return catalog.location(svc.scaling.max_from, key, tuple(svc.scaling.max_field.split(".")))
    return catalog.location("Tenant", svc.tenant.name, ("environments", svc.environment.name, "replicas"))


def cluster_findings(catalog: Catalog, plans: dict[str, EnvironmentPlan]) -> list[Finding]:
    """Environments that name one cluster share its GPUs: at full scale (every tenant at
    ``max``) they fit it together.  One environment alone is the policy's (policy.gpu-capacity)."""
    clusters: dict[str, list[str]] = {}
    for name, env in sorted(catalog.environments.items()):
        clusters.setdefault(env.cluster.name, []).append(name)
    out: list[Finding] = []
    for cluster, names in sorted(clusters.items()):
        if len(names) < 2 or not any(n in plans for n in names):
            continue
        services = [s for n in names for s in (plans.get(n) or plan_environment(catalog, n)).services]
        total = min(catalog.environments[n].cluster.gpu.total for n in names)
        planned = sum(s.gpus_max for s in services)
        if planned <= total or not services:
            continue
        top = max(services, key=lambda s: (s.gpus_max, s.scaling is not None, s.environment.name, s.namespace))
        shares = ", ".join(f"{n} {sum(s.gpus_max for s in services if s.environment.name == n)}" for n in names)
        out.append(Finding(
            PLAN_CLUSTER_GPU_CAPACITY, Severity.ERROR,
            f"environments {', '.join(names)} share cluster {cluster} ({total} GPUs) and plan {planned} GPUs "
            f"at full scale ({shares}); the largest, {top.namespace}/{top.name} in {top.environment.name}, "
            f"at {top.max_replicas} replica(s) × {top.tensor_parallel_size} GPU(s)",
            max_location(catalog, top), resource=ResourceRef(top.kind, top.name, top.namespace, top.api_version),
            expected=f"at most {total} GPUs at max replicas over every environment of cluster {cluster}",
            actual=f"{planned} GPUs", environment=top.environment.name, subject=f"Tenant/{top.tenant.name}"))
    return out


# The evaluation sets of the repository travel in the conformance ConfigMap, which
# Kubernetes holds to 1 MiB with everything else; JSON escaping adds a fifth or so.
MAX_CONFIGMAP_SETS_BYTES = 640 << 10


def _evaluation_sets_size(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    sizes: dict[str, tuple[int, str]] = {}  # path -> (bytes, flavor)
    for svc in plan.services:
        for f in svc.flavors:
            ds = f.evaluation.dataset if f.evaluation is not None else None
            if ds is not None and ds.path is not None and ds.path not in sizes:
                try:
                    sizes[ds.path] = ((catalog.root / ds.path).stat().st_size, f.ref)
                except OSError:
                    continue  # validate reports it
    total = sum(n for n, _ in sizes.values())
    if total <= MAX_CONFIGMAP_SETS_BYTES:
        return []
    biggest, (size, ref) = max(sizes.items(), key=lambda kv: (kv[1][0], kv[0]))
    return [Finding(
        PLAN_EVALUATION_SETS_SIZE, Severity.ERROR,
        f"the evaluation sets of the repository served in {plan.environment.name} hold {total >> 10} KiB; "
        f"they travel in the conformance ConfigMap (1 MiB with everything else); the largest is {biggest} "
        f"({size >> 10} KiB, flavor {ref})",
        catalog.location("Flavor", ref, ("evaluation", "dataset", "path"), value=True),
        expected=f"at most {MAX_CONFIGMAP_SETS_BYTES >> 10} KiB of sets in the repository per environment; "
                 "move large sets to S3 (evaluation.dataset.uri)",
        environment=plan.environment.name, subject=f"Flavor/{ref}")]


# The serving runtime's entrypoint: vLLM's OpenAI server, which KServe's InferenceService
# arguments follow.
RUNTIME_COMMAND = ("python", "-m", "vllm.entrypoints.openai.api_server")


def runtime_args() -> tuple[str, ...]:
    """What the ServingRuntime's container passes before the InferenceService's arguments."""
    return (f"--port={PREDICTOR_PORT}",)


def vllm_args_findings(catalog: Catalog, plan: EnvironmentPlan) -> list[Finding]:
    """Each InferenceService's whole command line (the runtime's, the computed arguments,
    the environment's ``extra_args``) read by the declared release's parser: a problem in
    ``extra_args`` is reported at its entry, once per environment; one in the computed
    arguments at the environment's vllm_version (kitchen computed them for that release)."""
    env = plan.environment
    release = environment_release(env)
    if release is None:
        return []
    out: dict[tuple[str, str], Finding] = {}
    for svc in plan.services:
        argv = [*runtime_args(), *svc.args]
        boundary = len(argv) - len(svc.vllm.extra)
        for problem in release.check(argv, boundary):
            if problem.index >= boundary:
                location = catalog.location("Environment", env.name,
                                            ("serving", "vllm", "extra_args", problem.index - boundary), value=True)
                what = f"the extra_args of {env.name}"
            else:
                location = catalog.location("Environment", env.name, ("images", "vllm_version"), value=True)
                what = f"the arguments of {svc.namespace}/{svc.name} in {env.name}"
            finding = Finding(
                PLAN_VLLM_ARGS, Severity.ERROR,
                f"vLLM {release.release} would refuse {what}: {problem.message}",
                location, resource=ResourceRef("InferenceService", svc.name, svc.namespace, ISVC_API_VERSION),
                expected=problem.expected, actual=problem.flag, environment=env.name,
                subject=f"Environment/{env.name}")
            out.setdefault((str(location), problem.message), finding)
        extra = release.options_set(argv[boundary:])
        owned = {option.dest: i for i, option in release.options_set(argv[:boundary])} if extra else {}
        for i, option in extra:
            if option.dest not in owned and option.dest not in OWNED_DESTS:
                continue
            location = catalog.location("Environment", env.name,
                                        ("serving", "vllm", "extra_args", i), value=True)
            if any(where == str(location) for where, _ in out):
                continue  # refused by the parser already: one finding per entry
            field = OWNED_DESTS.get(option.dest, "")
            message = (f"extra_args of {env.name} set {option.flag}, which kitchen writes itself"
                       + (f" from {field}" if field else "")
                       + (f" ({argv[owned[option.dest]]} for {svc.namespace}/{svc.name})"
                          if option.dest in owned else "")
                       + ": vLLM would read the later one, the checks the one kitchen wrote")
            finding = Finding(
                PLAN_VLLM_OWNED_FLAG, Severity.ERROR, message, location,
                resource=ResourceRef("InferenceService", svc.name, svc.namespace, ISVC_API_VERSION),
                expected=(f"{field}, not {option.flag} in extra_args" if field
                          else f"extra_args without {option.flag}"),
                actual=argv[boundary + i], environment=env.name, subject=f"Environment/{env.name}")
            out.setdefault((str(location), "owned"), finding)
    return list(out.values())


# vLLM options kitchen writes from the catalog, whether or not a given InferenceService
# needs them (an adapter list where it serves none is as much a smuggled adapter), with
# the field that sets each; extra_args cannot set them a second time.
OWNED_DESTS: dict[str, str] = {
    "model": "the base's source",
    "served_model_name": "the base's name",
    "lora_modules": "the tenants' flavors",
    "enable_lora": "the tenants' flavors",
    "max_loras": "serving.vllm.max_loras",
    "max_lora_rank": "serving.vllm.max_lora_rank",
    "max_cpu_loras": "serving.vllm.max_loras",
    "port": "the serving runtime",
    "host": "the serving runtime (every address: where the probes and the router reach it)",
    "tensor_parallel_size": "the base's GPUs",
    "gpu_memory_utilization": "serving.vllm.gpu_memory_utilization",
    "max_model_len": "serving.vllm.max_model_len",
    "max_num_seqs": "serving.vllm.max_num_seqs",
    "max_num_batched_tokens": "serving.vllm.max_num_batched_tokens",
    "dtype": "the base's dtype",
}


def _tenant_env_location(catalog: Catalog, tenant: Tenant, env_name: str) -> Location:
    return catalog.location("Tenant", tenant.name, ("environments", env_name))
