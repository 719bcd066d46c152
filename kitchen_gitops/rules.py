"""Every rule id that a built-in (Python) check can report, declared once: each
registration returns a typed :class:`Rule` constant (``LOAD_ALIAS``), and the checks report
with those constants, never with a string of their own.

Each entry says what the rule checks, its default severity and its help anchor in the
generated rule reference (``docs/policies.md``).  The Rego rules of the policy library
describe themselves in their METADATA; :func:`describe` answers for both kinds, so SARIF
``rules[]``, JUnit and the docs read one registry.

A *family* (``schema.``, ``conform.``) stands for ids made at run time from a fixed set
(pydantic's error types, the conformance checks); its entry describes each member.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .findings import Severity

DOCS_URL = "https://github.com/kitchen-gitops/kitchen-gitops/blob/main/docs/policies.md"


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    severity: Severity
    description: str
    source: str = "built-in"  # or the Rego file that defines it
    family: bool = False

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9-]", "", self.id.lower().rstrip("."))

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.anchor}"


REGISTRY: dict[str, RuleInfo] = {}


class Rule(str):
    """A registered rule id, as :func:`_rule` returns it: the code reports with these
    constants, never with a string of its own, so an id without an entry cannot be written
    (mypy knows every constant; a test finds any literal id outside this module)."""

    __slots__ = ()

    @property
    def info(self) -> RuleInfo:
        return REGISTRY[self]

    def member(self, name: str) -> str:
        """The id of a family's member (``conform.`` + ``smoke``), made at run time."""
        assert REGISTRY[self].family, f"{self} is not a family"
        return f"{self}{name}"


def _rule(rule_id: str, title: str, severity: Severity, description: str, *, family: bool = False) -> Rule:
    if rule_id in REGISTRY:  # pragma: no cover - a programming error caught by the tests
        raise ValueError(f"rule {rule_id} declared twice")
    REGISTRY[rule_id] = RuleInfo(rule_id, title, severity, description, family=family)
    return Rule(rule_id)


E, W = Severity.ERROR, Severity.WARNING

# ---------------------------------------------------------------- load
LOAD_IO = _rule("load.io", "File cannot be read", E, "A catalog file exists but cannot be read (permissions, I/O).")
LOAD_ENCODING = _rule("load.encoding", "File is not UTF-8", E,
      "Catalog files are UTF-8 text; the finding points at the first bad byte.")
LOAD_TAB = _rule("load.tab", "Tab in indentation", E, "YAML indents with spaces; a tab in the indentation is an error.")
LOAD_SYNTAX = _rule("load.syntax", "YAML syntax error", E,
      "The file is not well-formed YAML, or a scalar cannot be read.")
LOAD_EMPTY = _rule("load.empty", "Empty file", E, "A catalog file holds exactly one object; this one holds nothing.")
LOAD_MULTIPLE_DOCUMENTS = _rule("load.multiple-documents", "Several YAML documents", E,
      "A catalog file holds exactly one YAML document.")
LOAD_NOT_MAPPING = _rule("load.not-mapping", "Top level is not a mapping", E,
      "A catalog object is a mapping with `kind` and `name`.")
LOAD_KEY_TYPE = _rule("load.key-type", "Mapping key is not a string", E, "Mapping keys are plain strings.")
LOAD_DUPLICATE_KEY = _rule("load.duplicate-key", "Duplicate key", E,
      "Each key appears once per mapping; YAML parsers disagree on which copy wins.")

LOAD_TOO_LARGE = _rule("load.too-large", "Catalog file too large", E,
      "A catalog, waivers or policy data file is at most 1 MiB (docs/security.md).")
LOAD_TOO_DEEP = _rule("load.too-deep", "Nesting or folders too deep", E,
      "YAML nests at most 32 levels; catalog folders are at most 8 deep.")
LOAD_ALIAS = _rule("load.alias", "Alias refused", E,
      "A recursive alias, or aliases that expand to more than 100,000 values (an alias bomb).")
LOAD_TAG = _rule("load.tag", "Explicit YAML tag", E,
      "Catalog files use no explicit tags (`!!int`, `!custom`): a value's type comes from the schema.")
LOAD_MERGE_KEY = _rule("load.merge-key", "Merge key", E,
      "Merge keys (`<<:`) are not supported: write each field where it applies.")
LOAD_NUMBER = _rule("load.number", "Number out of range", E,
      "Numbers are finite (no .inf, .nan) and integers fit in 64 bits.")
LOAD_DATE = _rule("load.date", "Impossible date", E, "A date is a real calendar day (YYYY-MM-DD).")
LOAD_CONTROL_CHARACTER = _rule("load.control-character", "Invisible or control character", E,
      "Keys, values and files hold no control, bidirectional or zero-width characters that would hide text "
      "from a reviewer or forge output lines.")
LOAD_FILE_NAME = _rule("load.file-name", "File name with a control character", E,
      "Catalog file and folder names hold no control characters (they reach rendered headers and reports).")
LOAD_SYMLINK = _rule("load.symlink", "Link refused", E,
      "A link under catalog/ or environments/ stays inside the repository, points at a file, and resolves.")
LOAD_NOT_REGULAR_FILE = _rule("load.not-regular-file", "Not a regular file", E,
      "A FIFO, socket or device is never read.")
LOAD_MISPLACED_FILE = _rule("load.misplaced-file", "YAML file outside the kind folders", E,
      "Every YAML file under catalog/ lives in bases/, flavors/ or tenants/ (any depth, any case of .yaml/.yml), "
      "or it is reported instead of ignored.")
LOAD_TOO_MANY_FILES = _rule("load.too-many-files", "Too many catalog files", E,
      "At most 20,000 catalog files are read, and at most 20,000 files refused or not read are listed.")
LOAD_UNREAD_FILE = _rule("load.unread-file", "File kitchen does not read", E,
      "The input side is closed: under catalog/, environments/, templates/ and policies/ every file is one "
      "kitchen reads (catalog and environment YAML, templates/*.j2, policies/**/*.rego, policies/data.yaml, "
      "waivers.yaml, evidence-keys.yaml). Anything else — a backup, a template in a subfolder, data.yml, a "
      "dotfile, a .gitkeep — would look to a reviewer as if it mattered while nothing checks it.")

# ---------------------------------------------------------------- schema and catalog
SCHEMA = _rule("schema.", "Schema violation", E,
      "A field does not match its kind's schema (docs/catalog.md): the id's suffix is the "
      "kind of problem — `schema.missing` (a required field is absent), `schema.extra-forbidden` "
      "(an unknown field), `schema.int-parsing`, `schema.string-type`, `schema.greater-than`, "
      "`schema.value-error` (a domain rule such as a DNS-1123 name or a sha256 digest), and "
      "the other pydantic error types.", family=True)
SCHEMA_KIND = _rule("schema.kind", "Unknown or missing kind", E,
      "Every catalog object names its kind: Base, Flavor, Tenant or Environment.")
CATALOG_MISPLACED = _rule("catalog.misplaced", "Object in the wrong folder", E,
      "Bases live in catalog/bases, flavors in catalog/flavors, tenants in catalog/tenants, environments "
      "in environments/.")
CATALOG_DUPLICATE_NAME = _rule("catalog.duplicate-name", "Duplicate object", E,
      "Two files define the same Base/Flavor (name@version), Tenant or Environment.")
CATALOG_DUPLICATE_NAMESPACE = _rule("catalog.duplicate-namespace", "Namespace used twice", E,
      "Each tenant has its own namespace.")
CATALOG_DANGLING_REFERENCE = _rule("catalog.dangling-reference", "Reference to nothing", E,
      "A flavor's base, a tenant's flavor or environment, or an environment's promotes_from names an "
      "object the catalog does not define.")
CATALOG_BASE_VERSION_CONFLICT = _rule("catalog.base-version-conflict", "Two versions of one base for a tenant", E,
      "One InferenceService serves one base version: a tenant's flavors in one environment are trained on "
      "the same version of each base.")
CATALOG_DUPLICATE_FLAVOR = _rule("catalog.duplicate-flavor", "Flavor version listed twice", E,
      "A tenant lists each flavor version once per environment; two versions of one flavor may "
      "be served side by side.")
CATALOG_SERVED_NAME = _rule("catalog.served-name", "Served model name unusable", E,
      "Each flavor version is served as `<flavor>-<version>` (lower case, `-` for any other "
      "character): the name must be at most 63 characters and differ from the other names "
      "the tenant serves in that environment, its bases' included; two bases of a tenant are "
      "not served under one name either.")
CATALOG_CONTROLLER_FLAG = _rule("catalog.controller-flag", "Flag the LLMInferenceService controller sets", E,
      "An environment that serves through LLMInferenceServices leaves --served-model-name, "
      "--tensor-parallel-size, --port and the LoRA flags to KServe's controller, which writes "
      "them from the spec; in serving.vllm.extra_args they would be given twice (and a "
      "--lora-modules there makes the controller drop every adapter of the spec).")
CATALOG_ALIAS = _rule("catalog.alias", "Model alias refused", E,
      "An alias in a tenant's environment names one of the flavor versions listed there and is "
      "not already the served name of a flavor version or of the base.")
CATALOG_PATH_PREFIX = _rule("catalog.path-prefix", "Environments render to different folders", E,
      "Every environment's argocd.path_prefix names the one folder of rendered output that render writes, check "
      "compares and the Applications sync.")
CATALOG_RESERVED_NAMESPACE = _rule("catalog.reserved-namespace", "Reserved namespace", E,
      "A tenant's namespace is not a system namespace (kube-*, openshift-*, default), the conformance or Argo CD "
      "namespace, the S3 service's, the environment's monitoring namespace (admitted to every tenant's vLLM) or "
      "dashboard namespace, or one the environment's gates reserve.")
CATALOG_RBAC_SUBJECT = _rule("catalog.rbac-subject", "Access group refused", E,
      "Access groups name groups of people: not system:authenticated, system:unauthenticated, a wildcard, or "
      "service accounts of other namespaces.")

CATALOG_VLLM_RELEASE = _rule("catalog.vllm-release", "Unsupported vLLM release", E,
      "An environment's images.vllm_version is a release kitchen has a parser table for "
      "(kitchen_gitops/data/vllm, docs/compatibility.md): the arguments are rendered for that release.")
CATALOG_AUTOSCALING = _rule("catalog.autoscaling", "Autoscaling that cannot mean what it says", E,
      "A tenant's autoscaling and its environment's default make one whole (docs/catalog.md#autoscaling): "
      "a max, min at most max, not beside a fixed replicas; a Prometheus for KEDA and observability on "
      "(the query reads what kitchen's PodMonitor scrapes), a window of at least two scrapes; in "
      "Serverless mode, Knative's concurrency (requests_running, a whole-number target).")
PLAN_CLUSTER_GPU_CAPACITY = _rule("plan.cluster-gpu-capacity",
      "Environments on one cluster exceed its GPUs at full scale", E,
      "Environments that name the same cluster.name share its GPUs: their tenants at max replicas "
      "(replicas x GPUs per replica, summed over every environment on the cluster) fit the cluster.")
# ---------------------------------------------------------------- evaluation sets
EVALUATION_UNKNOWN_METRIC = _rule("evaluation.unknown-metric", "Evaluation metric unknown", E,
      "A flavor with an evaluation set scores it on a metric kitchen computes: exact_match, contains, regex, "
      "json_schema, label_accuracy or rougeL (docs/quality.md).")
EVALUATION_SETTINGS = _rule("evaluation.settings", "Evaluation settings inconsistent", E,
      "An evaluation set's settings fit its metric: the metric's direction, a score and threshold from 0 to 1, "
      "a closed label set (evaluation.labels, each label once) for label_accuracy and for no other metric.")
EVALUATION_DATASET_MISSING = _rule("evaluation.dataset-missing", "Evaluation set missing", E,
      "The evaluation set a flavor names under evaluations/ is a regular file of the repository.")
EVALUATION_DATASET_PIN = _rule("evaluation.dataset-pin", "Evaluation set differs from its pin", E,
      "An evaluation set of the repository has the sha256 its flavor pins (`evaluation.dataset.sha256`): "
      "the set the conformance job scores and the evidence names is the one reviewed.")
EVALUATION_DATASET_JSON = _rule("evaluation.dataset-json", "Evaluation set line is not JSON", E,
      "Every non-blank line of an evaluation set is one JSON object (each key once, finite numbers); the "
      "finding points at the line and column where it stops being JSON.")
EVALUATION_DATASET_RECORD = _rule("evaluation.dataset-record", "Evaluation record malformed", E,
      "A record has a non-blank prompt and the reference its metric reads (a text, a regular expression, a "
      "JSON schema or one of the flavor's labels), an optional id, nothing else; a character that hides or "
      "reorders text is written as a \\u escape, not raw.")
EVALUATION_DATASET_ENCODING = _rule("evaluation.dataset-encoding", "Evaluation set is not UTF-8", E,
      "An evaluation set is UTF-8 text.")
EVALUATION_DATASET_EMPTY = _rule("evaluation.dataset-empty", "Evaluation set empty", E,
      "An evaluation set holds at least one record.")
EVALUATION_DATASET_TOO_LARGE = _rule("evaluation.dataset-too-large", "Evaluation set too large", E,
      "An evaluation set of the repository is at most 256 KiB (it travels in the conformance ConfigMap), one "
      "in S3 at most 16 MiB; at most 10,000 records.")

# ---------------------------------------------------------------- plan and render
PLAN_VLLM_ARGS = _rule("plan.vllm-args", "vLLM would refuse the command line", E,
      "Every rendered vLLM argument, the environment's extra_args included, is one the declared release's "
      "parser accepts: a flag it has (written in full), a value of its type and among its choices.")
PLAN_VLLM_OWNED_FLAG = _rule("plan.vllm-owned-flag", "extra_args repeat a flag kitchen writes", E,
      "The environment's extra_args set no vLLM option that kitchen writes from the catalog (the model, "
      "served names, adapters, LoRA slots and rank, port, parallelism, memory and length limits): vLLM "
      "reads the last occurrence, so a second --max-loras or --lora-modules would serve what no check read.")
PLAN_VLLM_ARG_NOT_ALLOWED = _rule("plan.vllm-arg-not-allowed", "extra_args set a vLLM option outside the allow-list", E,
      "Every option the environment's extra_args set is in the allow-list of policies/data.yaml "
      "(vllm_extra_args), with a value of the kind listed there (a switch, a bounded number, one of the "
      "listed words, a file below a folder of /mnt/models): an option that loads code, reaches other hosts, "
      "reads files kitchen does not pin or changes what is served is refused, and so is every option the "
      "allow-list does not name. Read by `kitchen check`, which reads policies/.")
PLAN_GPU_MEMORY = _rule("plan.gpu-memory", "Replica does not fit its GPUs", E,
      "Weights, LoRA slots, runtime overhead and a KV cache for one full-length sequence must fit the GPU "
      "memory of one replica.")
PLAN_EVALUATION_SETS_SIZE = _rule("plan.evaluation-sets-size", "Evaluation sets too large for the ConfigMap", E,
      "The evaluation sets of the repository that an environment serves hold at most 640 KiB together: they "
      "travel in the conformance ConfigMap, which Kubernetes holds to 1 MiB; larger sets go to S3.")
RENDER_VLLM_ARGS = _rule("render.vllm-args", "Rendered vLLM command line differs from the plan", E,
      "The templates render the vLLM command lines the plan computed, as they are: the serving runtime's "
      "container runs vLLM's OpenAI server with the runtime's arguments, an InferenceService's model the "
      "plan's arguments (no other container beside it), an LLMInferenceService's main container the "
      "arguments left to it. Every check reads the plan; vLLM reads the argv, the last occurrence of a flag "
      "winning, so a template's own --lora-modules, --max-loras or command would serve what no check read.")
RENDER_UNINTENDED_OBJECT = _rule("render.unintended-object", "Template renders another object than kitchen intends", E,
      "Each template renders exactly the one object kitchen intends for it (built in Python, "
      "kitchen_gitops/intended.py): a second document, no object, or another kind, apiVersion, name or "
      "namespace is refused at the template line that wrote it (docs/security.md#the-closed-world).")
RENDER_UNINTENDED_FIELD = _rule("render.unintended-field", "Template renders a field kitchen does not intend", E,
      "Every field of a rendered object is the one kitchen intends, with its value and type: a field added, "
      "dropped or changed is refused at the template line that wrote it, unless it is an addition that a "
      "customisation point of policies/data.yaml allows (docs/security.md#customisation-points).")
RENDER_STALE = _rule("render.stale", "Committed rendered output is stale", E,
      "The rendered/ tree in the repository differs from what the catalog renders, its admission policies "
      "(rendered/admission/) included: run `kitchen render` and commit. A file or folder beside the "
      "environments' folders that kitchen never writes is one too: remove it.")
RENDER_ADMISSION_FOLDER = _rule("render.admission-folder", "Environment named like the admission folder", E,
      "No environment is named `admission`: its output would be the folder of the admission policies "
      "(rendered/admission/, docs/policies.md#admission).")

# ---------------------------------------------------------------- waivers
POLICY_WAIVER_INVALID = _rule("policy.waiver-invalid", "Malformed waiver", E,
      "A waiver names a known rule, an object, an owner, a reason and an expiry date.")
POLICY_WAIVER_EXPIRED = _rule("policy.waiver-expired", "Expired waiver", W,
      "A waiver past its expiry date waives nothing; renew it or fix the findings.")
POLICY_WAIVER_STALE = _rule("policy.waiver-stale", "Waiver matches nothing", W,
      "A waiver that matches no finding is dead weight; remove it.")
POLICY_WAIVER_TOO_WIDE = _rule("policy.waiver-too-wide", "Waiver object is a pattern", E,
      "Where an environment's floor (policies/data.yaml gate_floors) sets waiver_wildcards: false, a waiver "
      "names one object exactly; a pattern such as `*` waives nothing there.")
POLICY_WAIVER_TOO_LONG = _rule("policy.waiver-too-long", "Waiver expires too far ahead", E,
      "A waiver expires at most waiver_max_days (policies/data.yaml, 90 by default) after today; "
      "one that runs longer waives nothing.")

POLICY_TEST = _rule("policy.test", "Policy unit test failed", E,
      "`kitchen policy test`: a `test_` rule of the policy library is not true, or does not evaluate.")

POLICY_DOCS_STALE = _rule("policy.docs-stale", "Generated policy docs are stale", E,
      "`kitchen policy docs --check`: docs/policies.md is not what the policy library and the built-in "
      "rules generate; run `kitchen policy docs` and commit.")

# ---------------------------------------------------------------- artifacts
ARTIFACTS_UNSUPPORTED_SOURCE = _rule("artifacts.unsupported-source", "Source cannot be read", E,
      "Artifacts are verified from s3:// and pvc:// sources.")
ARTIFACTS_STORAGE_ERROR = _rule("artifacts.storage-error", "Storage error", E,
      "The object store answered with an error for this artifact.")
ARTIFACTS_ACCESS_DENIED = _rule("artifacts.access-denied", "Access denied", E,
      "The environment's credentials cannot read this artifact's location.")
ARTIFACTS_BUCKET_MISSING = _rule("artifacts.bucket-missing", "Bucket missing", E,
      "The bucket named by the source does not exist.")
ARTIFACTS_CLAIM_MISSING = _rule("artifacts.claim-missing", "Claim missing", E,
      "The PVC named by the source is not in the PVC mirror.")
ARTIFACTS_MISSING_FILE = _rule("artifacts.missing-file", "Pinned file missing", E,
      "A file the catalog pins is not in storage.")
ARTIFACTS_READ_ERROR = _rule("artifacts.read-error", "File cannot be read", E,
      "A file in storage could not be read to the end.")
ARTIFACTS_CHECKSUM_MISMATCH = _rule("artifacts.checksum-mismatch", "sha256 differs from the pin", E,
      "The bytes in storage are not the bytes the catalog pins.")
ARTIFACTS_SIZE_MISMATCH = _rule("artifacts.size-mismatch", "Size differs from the pin", E,
      "The file in storage has another size than the catalog pins.")
ARTIFACTS_REQUIRED_FILE = _rule("artifacts.required-file", "Required file not pinned", E,
      "A base pins config.json, a tokenizer and its safetensors weights (every shard of its index).")
ARTIFACTS_INDEX_INVALID = _rule("artifacts.index-invalid", "Safetensors index invalid", E,
      "model.safetensors.index.json is readable and names the pinned shards.")
ARTIFACTS_SAFETENSORS_INVALID = _rule("artifacts.safetensors-invalid", "Safetensors header invalid", E,
      "A safetensors file has a readable header.")
ARTIFACTS_BASE_CONFIG = _rule("artifacts.base-config", "config.json differs from the catalog", E,
      "The architecture facts declared in the catalog are those of the base's config.json.")
ARTIFACTS_BASE_CONFIG_INVALID = _rule("artifacts.base-config-invalid", "config.json unreadable", E,
      "The base's config.json is JSON with the architecture facts.")
ARTIFACTS_BASE_PARAMETERS = _rule("artifacts.base-parameters", "Parameter count differs", W,
      "The parameters in the safetensors files match the catalog's parameters_billions.")
ARTIFACTS_ADAPTER_CONFIG_INVALID = _rule("artifacts.adapter-config-invalid", "adapter_config.json invalid", E,
      "The adapter's config is JSON a PEFT LoRA adapter would write.")
ARTIFACTS_ADAPTER_TYPE = _rule("artifacts.adapter-type", "Not a LoRA adapter vLLM serves", E,
      "vLLM serves PEFT LoRA adapters (not DoRA, not other PEFT types).")
ARTIFACTS_RANK_MISMATCH = _rule("artifacts.rank-mismatch", "Rank differs from the catalog", E,
      "The adapter's `r` is the flavor's declared rank.")
ARTIFACTS_ALPHA_MISMATCH = _rule("artifacts.alpha-mismatch", "Alpha differs from the catalog", E,
      "The adapter's lora_alpha is the flavor's declared alpha.")
ARTIFACTS_TARGET_MODULES = _rule("artifacts.target-modules", "Target modules differ", E,
      "The adapter targets the modules the flavor declares.")
ARTIFACTS_BASE_MISMATCH = _rule("artifacts.base-mismatch", "Adapter names another base", E,
      "The adapter's base_model_name_or_path is the flavor's base.")
ARTIFACTS_ADAPTER_SHAPE = _rule("artifacts.adapter-shape", "Adapter tensors do not fit the base", E,
      "Every LoRA tensor's shape fits the base's architecture (hidden size, heads, intermediate size) at "
      "the declared rank.")
ARTIFACTS_LOCK_STALE = _rule("artifacts.lock-stale", "Pin differs from storage", E,
      "`kitchen artifacts lock --check`: a pin would change; run `kitchen artifacts lock`.")
ARTIFACTS_OUTSIDE_MIRROR = _rule("artifacts.outside-mirror", "Path outside the PVC mirror", E,
      "A pvc:// claim or folder of the mirror links outside it: nothing outside the mirror is read or bundled.")
ARTIFACTS_LOCK_CONFLICT = _rule("artifacts.lock-conflict", "Environments disagree", E,
      "The same source holds different bytes in two environments; no single pin fits.")

# ---------------------------------------------------------------- promotion
POLICY_PROMOTION_EVIDENCE = _rule("policy.promotion-evidence", "Served without promotion evidence", E,
      "`kitchen check`, for environments whose floor (policies/data.yaml gate_floors) sets "
      "promotion_evidence: true: every flavor version the environment serves has an entry in "
      "evidence/<env>/index.json whose digest (adapter and base bytes, and the adapter's source URI) is "
      "the one served — a promotion whose signed record (a key of policies/evidence-keys.yaml) passed in "
      "the environment it promotes from, covers that digest and was at most evidence_max_age_days old "
      "when promoted, or the baseline, an entry whose digest the floor pins in promotion_baseline "
      "(docs/promotion.md). A flavor whose source differs from the one its "
      "entry records is a finding at its source line: a changed source needs new evidence.")
PROMOTION_EVIDENCE_MISSING = _rule("promotion.evidence-missing", "No evidence for the promotion", E,
      "`kitchen promote`: no signed conformance record of the environment promoted from covers this "
      "flavor version (or none was given: --evidence DIR or --from-s3).")
PROMOTION_DIGEST_MISMATCH = _rule("promotion.digest-mismatch", "Evidence for other bytes", E,
      "`kitchen promote`: the records that cover this flavor version name another flavor digest: another "
      "adapter, a re-upload under the same version, or another base than the promoted environment will serve.")
PROMOTION_EVIDENCE_FAILED = _rule("promotion.evidence-failed", "Evidence of a failed run", E,
      "`kitchen promote`: the record that covers these bytes is of a conformance run that did not pass.")
PROMOTION_EVIDENCE_EXPIRED = _rule("promotion.evidence-expired", "Evidence too old", E,
      "`kitchen promote`: the newest passing record for these bytes is older than evidence_max_age_days "
      "(policies/data.yaml), or dated in the future.")
PROMOTION_EVIDENCE_INVALID = _rule("promotion.evidence-invalid", "Evidence record refused", W,
      "`kitchen promote`: a file given as evidence is not a record signed by a key policies/evidence-keys.yaml "
      "trusts for its environment, or was changed after signing; it counts for nothing.")

# ---------------------------------------------------------------- rollback and history
ROLLBACK_UNPROVEN = _rule("rollback.unproven", "Rollback target not proven", E,
      "`kitchen rollback`: a flavor version the state to return to serves is not allowed by the evidence "
      "index of that commit as `kitchen check` would judge it today (no entry, other bytes than the catalog "
      "now pins, a record missing, rewritten or signed by a key no longer trusted, a failed run, evidence not "
      "fresh when promoted), or the catalog no longer defines it. Expiry since the promotion does not count "
      "(docs/operations.md).")
ROLLBACK_NO_PROVEN_STATE = _rule("rollback.no-proven-state", "No proven state to return to", E,
      "`kitchen rollback` without --to: no earlier first-parent commit serves the environment with evidence "
      "for every flavor version; the findings of the newest such state say why.")
ROLLBACK_MANUAL_EDIT = _rule("rollback.manual-edit", "Rollback needs a hand edit", E,
      "`kitchen rollback`: returning to the state needs an edit kitchen does not make (a tenant added to or "
      "removed from the environment since, an alias added or removed since); nothing is written.")
HISTORY_EVIDENCE_INVALID = _rule("history.evidence-invalid", "Evidence in the history does not verify", E,
      "`kitchen history`: an evidence index of a commit names a record that is missing, is not the one it "
      "pins (sha256), does not verify with a key policies/evidence-keys.yaml trusts today, or does not prove "
      "the digest the entry records; or the index itself is not readable.")
HISTORY_UNREADABLE = _rule("history.unreadable", "Tenant file unreadable at a commit", W,
      "`kitchen history` and `kitchen rollback`: a tenant file of a commit does not parse; the tenant is "
      "taken as the commit before it listed it.")

# ---------------------------------------------------------------- conformance
CONFORM = _rule("conform.", "Conformance check", E,
      "A post-sync conformance check failed or could not run: `conform.readiness` (every "
      "InferenceService Ready), `conform.inventory` (every flavor listed by /v1/models), "
      "`conform.smoke` (smoke prompts answered as expected), `conform.adapter-effect` (an "
      "adapter answers differently from its base), `conform.isolation` (concurrent requests "
      "are not answered by another model), `conform.evaluation.*` (each flavor's evaluation set "
      "scored on the live server), `conform.performance` (TTFT, TPOT, E2E, throughput "
      "and goodput within the environment's SLOs), `conform.evidence` (the signed evidence record "
      "of the run could not be stored), and the GPU checks `conform.gpu.*`.",
      family=True)
for _check, _title, _desc in (
    ("evaluation", "Evaluation set", "A flavor's evaluation set could not be scored (the server answered "
     "with an error, or the set could not be fetched or read)."),
    ("evaluation.dataset", "Evaluation set not the pinned one", "The evaluation set the conformance job "
     "received or fetched has another sha256 than the catalog pins, or is not a readable set."),
    ("evaluation.threshold", "Evaluation below threshold", "A flavor's score on its evaluation set, on the "
     "live server at temperature 0, meets its threshold in the metric's direction."),
    ("evaluation.drift", "Evaluation score drifted", "The live score is within the metric's drift tolerance "
     "(policies/data.yaml evaluation_metrics) of the score the catalog records: an error in strict "
     "environments, a warning elsewhere; a score better than recorded by more than the tolerance is a warning."),
    ("evaluation.no-gain", "Adapter does not help", "The flavor scores strictly better than its base model "
     "on the same evaluation set: an adapter that does nothing (all-zero weights) or harm is caught."),
    ("gpu.nvml", "NVML and driver", "NVML answers and the driver is at least the oldest accepted."),
    ("gpu.count", "GPU count", "The node has the GPUs the environment declares per node."),
    ("gpu.product", "GPU product", "The GPUs are the product the environment declares."),
    ("gpu.memory", "GPU memory", "Each GPU has the memory the environment declares."),
    ("gpu.ecc", "ECC errors", "No uncorrected ECC errors."),
    ("gpu.row-remap", "Row remapping", "No pending row remap (the GPU needs a reset)."),
    ("gpu.mig", "MIG mode", "MIG is on or off as the environment declares."),
    ("gpu.cuda", "CUDA workload", "A matrix multiplication runs on every GPU and gives the right result."),
):
    _rule(f"conform.{_check}", _title, E, _desc)


def describe(rule_id: str, extra: Mapping[str, RuleInfo] | None = None) -> RuleInfo | None:
    """The rule's description: from ``extra`` (the Rego library), the registry, or its family."""
    if extra and rule_id in extra:
        return extra[rule_id]
    if rule_id in REGISTRY:
        return REGISTRY[rule_id]
    best = None
    for rid, info in REGISTRY.items():
        if info.family and rule_id.startswith(rid) and (best is None or len(rid) > len(best.id)):
            best = info
    return best


def builtin_rules() -> Iterable[RuleInfo]:
    return sorted(REGISTRY.values(), key=lambda r: r.id)
