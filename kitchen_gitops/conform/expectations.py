"""What a deployment must prove: the expectations document the render stage writes into a
ConfigMap next to the conformance Job, and that ``kitchen conform`` reads back.

It is plain JSON so that the Job needs neither the catalog nor the repository: endpoints,
base and flavor names, smoke prompts with their expectations, probe prompts, SLOs, the
load to apply and the GPUs the environment declares.  Each flavor and smoke test keeps
the catalog position it came from, so findings point at ``file:line:col``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import settings
from ..errors import ConfigError
from ..evaluation_sets import RegexTimeout, json_value, search
from ..findings import Location
from ..json_types import pretty_json
from ..model import Catalog, Environment, Expectation, Flavor, read_dataset
from ..plan import LLMISVC_PORT, EnvironmentPlan, ServicePlan
from ..policy.library import load_policy_data
from ..serving_digest import flavor_digest, service_digest

VERSION = 1
CONFIGMAP_KEY = "expectations.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """A catalog position (``file:line:col``)."""

    file: str = "<expectations>"
    line: int = 0
    col: int = 0

    @classmethod
    def of(cls, loc: Location) -> Source:
        return cls(file=loc.file, line=loc.line, col=loc.col)

    def location(self) -> Location:
        return Location(self.file, self.line, self.col)


class Smoke(_Model):
    prompt: str
    expect: Expectation
    max_tokens: int = 32
    source: Source = Source()


class S3Spec(_Model):
    """How the job reaches the environment's S3 (credentials: AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY from the environment's Secret)."""

    endpoint: str
    use_https: bool = True
    verify_ssl: bool = True
    region: str = settings.S3_REGION
    secret: str = ""


class DatasetSpec(_Model):
    """An evaluation set: its bytes (a set of the repository travels here) or where the
    job fetches it (a set in S3), and the sha256 the catalog pins."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    file: str  # the repository path or the s3:// URI: where its lines are
    content: str | None = None
    uri: str | None = None
    s3: S3Spec | None = None


class EvaluationSpec(_Model):
    """A flavor's evaluation: the set, its metric, and what the live score is held to."""

    metric: str
    suite: str = ""
    threshold: float = Field(allow_inf_nan=False)
    recorded: float = Field(allow_inf_nan=False)  # the score the catalog records
    tolerance: float = Field(ge=0, allow_inf_nan=False)  # drift allowed (policy data)
    drift_fails: bool = False  # strict environments: drift is an error
    labels: list[str] = Field(default_factory=list)
    max_tokens: int = Field(default=64, gt=0)
    dataset: DatasetSpec
    source: Source = Source()


class FlavorExpectation(_Model):
    name: str  # the model name it is served under (<flavor>-<version>, the plan's)
    ref: str = ""
    smoke: list[Smoke] = Field(default_factory=list)
    probes: list[str] = Field(default_factory=list)
    evaluation: EvaluationSpec | None = None
    # the flavor digest (serving_digest.flavor_digest): its adapter bytes on its base's bytes
    digest: str = ""
    source: Source = Source()

    @property
    def effect_prompts(self) -> list[str]:
        """Probe prompts, or the smoke prompts where the flavor declares none."""
        return list(self.probes) or [s.prompt for s in self.smoke]


class ServiceExpectation(_Model):
    tenant: str
    namespace: str
    name: str
    endpoint: str
    base: str
    base_ref: str = ""
    # the base's vocabulary: the performance load's prompts are random token ids below it
    vocab_size: int | None = Field(default=None, gt=0)
    flavors: list[FlavorExpectation] = Field(default_factory=list)
    # the serving API: absent for an InferenceService, "LLMInferenceService" otherwise
    kind: Literal["InferenceService", "LLMInferenceService"] | None = None
    # stable model names: alias -> the served name of the flavor version it serves
    aliases: dict[str, str] = Field(default_factory=dict)
    # the service digest (serving_digest.service_digest) of what this service was rendered from
    serving_digest: str = ""
    source: Source = Source()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class SloSpec(_Model):
    ttft_p95_ms: float
    tpot_p95_ms: float
    e2e_p95_ms: float | None = None
    min_output_tokens_per_s: float = 0.0
    goodput_min_ratio: float = 0.9
    source: Source = Source()


class LoadSpec(_Model):
    concurrency: int = Field(default=4, gt=0)
    requests: int = Field(default=32, gt=0)
    output_tokens: int = Field(default=64, gt=0)
    prompt_tokens: int = Field(default=48, gt=0)
    seed: int | None = None  # of the prompts; default: a new one each run
    readiness_timeout_s: int = Field(default=900, gt=0)


class IsolationSpec(_Model):
    # share of concurrent answers that may differ from the sequential ones by numerics
    # alone (explained by their own model) before the check warns
    max_flip_rate: float = Field(default=0.25, ge=0, le=1)


class GpuSpec(_Model):
    product: str
    memory_gib: float
    per_node: int
    nodes: int = 1
    mig: bool = False
    source: Source = Source()


class Expectations(_Model):
    version: int = VERSION
    environment: str
    cluster: str = ""
    services: list[ServiceExpectation] = Field(default_factory=list)
    slo: SloSpec
    load: LoadSpec = LoadSpec()
    isolation: IsolationSpec = IsolationSpec()
    gpu: GpuSpec | None = None
    # the environment's gate: its warnings fail the run (absent = false)
    fail_on_warn: bool | None = None

    def select(self, tenants: list[str] | None = None,
               services: list[str] | None = None) -> Expectations:
        """Only the services of the given tenants (names or namespaces) and/or ``ns/name``s."""
        chosen = [s for s in self.services
                  if (not tenants or s.tenant in tenants or s.namespace in tenants)
                  and (not services or s.key in services or s.name in services)]
        return self.model_copy(update={"services": chosen})

    def to_json(self) -> str:
        return pretty_json(self.model_dump(mode="json", exclude_none=True)) + "\n"


def endpoint_for(svc: ServicePlan) -> str:
    """The predictor's cluster-internal URL (KServe names the Service ``<isvc>-predictor``);
    an LLMInferenceService's workload Service (``<name>-kserve-workload-svc``, port 8000, TLS
    with KServe's self-signed certificate).  The Job prefers the URL the service reports in
    its status: an LLMInferenceService's gateway route, through the scheduler."""
    if svc.kind == "LLMInferenceService":
        return f"https://{svc.name}-kserve-workload-svc.{svc.namespace}.svc.cluster.local:{LLMISVC_PORT}"
    return f"http://{svc.name}-predictor.{svc.namespace}.svc.cluster.local"


DEFAULT_DRIFT_TOLERANCE = 0.05  # where the policy data sets none for the metric


def drift_tolerance(params: dict[str, Any], metric: str) -> float:
    """The metric's ``drift_tolerance`` in the policy data (``evaluation_metrics``)."""
    spec = (params.get("evaluation_metrics") or {}).get(metric) or {}
    return float(spec.get("drift_tolerance", DEFAULT_DRIFT_TOLERANCE))


def evaluation_spec(catalog: Catalog, env: Environment, flavor: Flavor,
                    params: dict[str, Any]) -> EvaluationSpec | None:
    """What the job needs to score the flavor's evaluation set, or None without a set."""
    e = flavor.evaluation
    if e is None or e.dataset is None:
        return None
    ds = e.dataset
    if ds.path is not None:
        # validate read and checked this file; the job checks the bytes against the pin again
        try:
            content = read_dataset(catalog.root, ds.path).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # changed since validate read it
            raise ConfigError(f"{ds.path}: cannot read the evaluation set of {flavor.ref}: {exc}") from None
        dataset = DatasetSpec(sha256=ds.sha256, file=ds.path, content=content)
    else:
        s3 = env.storage.s3
        dataset = DatasetSpec(sha256=ds.sha256, file=str(ds.uri), uri=ds.uri, s3=S3Spec(
            endpoint=s3.endpoint, use_https=s3.use_https, verify_ssl=s3.verify_ssl, region=s3.region,
            secret=s3.secret))
    return EvaluationSpec(
        metric=e.metric, suite=e.suite, threshold=e.threshold, recorded=e.score,
        tolerance=drift_tolerance(params, e.metric), drift_fails=env.gates.strictness == "strict",
        labels=list(e.labels or ()), max_tokens=e.max_tokens, dataset=dataset,
        source=Source.of(catalog.location("Flavor", flavor.ref, ("evaluation",))))


def build_expectations(catalog: Catalog, plan: EnvironmentPlan) -> Expectations:
    """The expectations of one planned environment."""
    known: dict[str, FlavorExpectation] = {}  # a flavor served by many tenants is described once
    params = PolicyData(catalog)
    return environment_expectations(catalog, plan).model_copy(update={
        "services": [e for t in plan.tenants for e in service_expectations(catalog, plan.environment, t.services,
                                                                         known, params)]})


class PolicyData:
    """The policy data, read once and only when a flavor has an evaluation set."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._value: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._value is None:
            self._value = load_policy_data(self.catalog.root)
        return self._value


def reads_policy_data(services: Sequence[ServicePlan]) -> bool:
    """Whether the expectations of ``services`` read the policy data (a flavor's
    evaluation set takes its drift tolerance from it)."""
    return any(f.evaluation is not None and f.evaluation.dataset is not None for s in services for f in s.flavors)


def service_expectations(catalog: Catalog, env: Environment, services: Sequence[ServicePlan],
                         known: dict[str, FlavorExpectation],
                         params: Callable[[], dict[str, Any]]) -> list[ServiceExpectation]:
    """The expectations of ``services`` (one tenant's, or every tenant's): what each one is
    made of is its plan, its flavors' and tenant's catalog positions, the environment and,
    for a flavor with an evaluation set, the policy data and the set's pinned bytes."""
    out = []
    for svc in services:
        flavors = []
        served = {m.flavor.ref: m.name for m in svc.lora_modules}
        for f in svc.flavors:
            if f.ref not in known:
                smoke = [Smoke(prompt=s.prompt, expect=s.expect, max_tokens=s.max_tokens,
                               source=Source.of(catalog.location("Flavor", f.ref, ("smoke", i))))
                         for i, s in enumerate(f.smoke)]
                needs = f.evaluation is not None and f.evaluation.dataset is not None
                known[f.ref] = FlavorExpectation(
                    name=served.get(f.ref, f.served_name), ref=f.ref, smoke=smoke, probes=list(f.probes),
                    evaluation=evaluation_spec(catalog, env, f, params() if needs else {}),
                    digest=flavor_digest(f, svc.base),
                    source=Source.of(catalog.location("Flavor", f.ref, ("name",))))
            flavors.append(known[f.ref])
        out.append(ServiceExpectation(
            tenant=svc.tenant.name, namespace=svc.namespace, name=svc.name,
            endpoint=endpoint_for(svc), base=svc.served_model_name, base_ref=svc.base.ref,
            vocab_size=svc.base.architecture.vocab_size, flavors=flavors,
            aliases={m.name: m.flavor.served_name for m in svc.aliases},
            kind=None if svc.kind == "InferenceService" else svc.kind,
            serving_digest=service_digest(svc),
            source=Source.of(catalog.location("Tenant", svc.tenant.name,
                                              ("environments", env.name, "flavors")))))
    return out


def environment_expectations(catalog: Catalog, plan: EnvironmentPlan) -> Expectations:
    """The expectations of one planned environment without its services: what the
    environment alone sets (its SLOs, load, isolation, GPUs, gates)."""
    env = plan.environment
    gpu = env.cluster.gpu
    conf = env.conformance
    return Expectations(
        environment=env.name,
        cluster=env.cluster.name,
        services=[],
        slo=SloSpec(**env.slo.model_dump(),
                    source=Source.of(catalog.location("Environment", env.name, ("slo",)))),
        load=LoadSpec(concurrency=conf.concurrency, requests=conf.requests,
                      output_tokens=conf.output_tokens, prompt_tokens=conf.prompt_tokens,
                      readiness_timeout_s=conf.readiness_timeout_s),
        isolation=IsolationSpec(max_flip_rate=conf.isolation_max_flip_rate),
        gpu=GpuSpec(product=gpu.product, memory_gib=gpu.memory_gib, per_node=gpu.per_node,
                    nodes=gpu.nodes, mig=gpu.mig,
                    source=Source.of(catalog.location("Environment", env.name,
                                                      ("cluster", "gpu")))),
        fail_on_warn=True if env.gates.fail_on_warn else None,
    )


def parse_expectations(text: str, origin: str) -> Expectations:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    try:
        exp = Expectations.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{origin}: invalid expectations at {where}: {first['msg']} "
                          f"({exc.error_count()} problem(s))") from None
    if exp.version != VERSION:
        raise ConfigError(f"{origin}: expectations version {exp.version}; this kitchen reads "
                          f"version {VERSION}")
    return exp


def load_expectations(path: Path) -> Expectations:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read expectations: {exc.strerror}") from None
    return parse_expectations(text, str(path))


# ---------------------------------------------------------------- smoke expectations


def describe(expect: Expectation) -> str:
    parts = []
    if expect.contains is not None:
        parts.append(f"contains {expect.contains!r}")
    if expect.not_contains is not None:
        parts.append(f"does not contain {expect.not_contains!r}")
    if expect.regex is not None:
        parts.append(f"matches /{expect.regex}/")
    if expect.json_schema is not None:
        parts.append(f"JSON valid against {json.dumps(expect.json_schema, sort_keys=True)}")
    return " and ".join(parts)


def unmet(expect: Expectation, text: str) -> list[str]:
    """Why ``text`` does not meet ``expect`` (empty when it does)."""
    problems = []
    if expect.contains is not None and expect.contains not in text:
        problems.append(f"does not contain {expect.contains!r}")
    if expect.not_contains is not None and expect.not_contains in text:
        problems.append(f"contains {expect.not_contains!r}")
    if expect.regex is not None:
        try:
            if not search(expect.regex, text):
                problems.append(f"does not match /{expect.regex}/")
        except RegexTimeout as exc:
            problems.append(str(exc))
    if expect.json_schema is not None:
        import jsonschema

        try:
            value = json_value(text, "output")
            jsonschema.validate(value, expect.json_schema)
        except ValueError as exc:
            problems.append(str(exc))
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            problems.append(f"JSON at {where}: {exc.message}")
        except jsonschema.SchemaError as exc:
            problems.append(f"the expectation's JSON schema is invalid: {exc.message}")
    return problems
