"""The admission section of docs/policies.md: what is enforced where, generated from the
admission policies kitchen writes (kitchen_gitops/admission.py) and the rule registry."""

from __future__ import annotations

from collections.abc import Iterable

from ..admission import DEFAULT_ACTIONS, Settings, policies

ADMISSION_HEADER = """\
## Admission

`kitchen check` holds what CI syncs. Whoever writes to the cluster another way (`kubectl`,
a controller, a second Argo CD) meets no check, so `kitchen render` also writes, for each
environment, `rendered/admission/<env>/`: Kubernetes `ValidatingAdmissionPolicy` objects
(CEL, `admissionregistration.k8s.io/v1`, Kubernetes 1.30 or later) and a
`ValidatingAdmissionPolicyBinding` each, generated from the same sources as the gate — the
floors and allow-lists of `policies/data.yaml`, the environment's registries, the vLLM
options kitchen writes (`plan.KITCHEN_FLAGS`) and the allow-list of `extra_args`. They are
security's (CODEOWNERS), separate from the environments, with their own kustomization and
Argo CD Application (`kitchen-admission-<env>`, sync wave −1: synced before the
environment's Application, which has none, wherever an app of apps syncs both; it deploys
cluster-scoped objects, which its Argo CD project must allow). `kitchen check` fails
(`render.stale`) when the committed folder differs from what the policies and the catalog
generate.

**Design.** One policy per environment and concern, the environment's values written into
the expressions, no parameter objects: a reviewer reads what prod admits in prod's files,
an environment's admission changes only with a change to its own output, and nothing the
policy reads can be edited in the cluster apart from the policy. (Parameters would need a
CRD or ConfigMaps of strings for lists of registries and flags, and one binding per
environment anyway.) Each binding selects the namespaces labelled
`kitchen-gitops.io/environment: <env>` — the tenant namespaces and the conformance
namespace kitchen renders — so two environments sharing a cluster keep their own floors.
Policies use `failurePolicy: Fail`: an expression that cannot be evaluated (or exceeds its
cost limit) denies. Every message names the environment, the object and the rule id the
gate reports: `[prod] policy.image-pinned: InferenceService cs-llm/llama-3-1-8b-instruct
pulls an image from a registry other than registry.prod.kitchen.internal:5000`.

**Pod Security.** Every namespace kitchen renders (tenants and `kitchen-conformance`) carries
`pod-security.kubernetes.io/enforce`, `warn` and `audit: restricted`: the pods KServe
creates are held to the restricted profile whatever wrote their owner. KServe's own
containers (the storage initializer, an agent) must then run restricted too: configure
their `securityContext` in KServe's `inferenceservice-config` before syncing.

**Rolling out.** `admission_actions` in `policies/data.yaml` is every binding's
`validationActions`. Start with `[Warn, Audit]`: nothing is refused, every object that would
be appears as a warning to whoever applies it and in the audit log
(`validation.policy.admission.k8s.io/validation_failure`); when both are quiet for a release,
switch to `[Deny]` (or `[Deny, Audit]`). Kubernetes refuses a binding with both `Deny` and
`Warn`, and so does kitchen.

**Agreement.** `tests/policy/test_admission.py` evaluates every generated expression with
the CEL reference implementation (cel-expr-python) on the rendered objects of the example,
of the test catalogs and of every acceptance folder of a rule admission enforces: the
example is admitted, and a folder marked `admission: deny` is denied on exactly the objects
the gate refuses — the Rego rules on regorus and on OPA, the built-in checks in Python; a
folder marked `ci-only` says why only the gate can tell, and admission denies nothing there
that the gate admits. The expressions are plain CEL (`has`, `all`, `exists`, `filter`,
`map`, `in`, `size`, `startsWith`, `contains`, `matches`, `string`), no Kubernetes
extension library.

**Cost.** The API server stops an expression past 1,000,000 cost units (`PerCallLimit`) and
all of one request's past 10,000,000. The largest expression is the vLLM option check: per
argument about 3 units for the first test plus one `startsWith` or list lookup per allowed
spelling (72 in the example: kitchen's own options and the allow-list, with `-`/`_`
and `--no-` spellings), so about 300 units an argument; the example's largest
InferenceService passes 18 arguments (about 5,500 units), the container checks cost a few
hundred per container. An object would need over 3,000 option arguments to reach the limit
— and then it is denied (`failurePolicy: Fail`), not admitted.

**What stays in CI.** A rule that needs more than the one object — the catalog, the plan,
another object, the environment file, history — is decided by `kitchen check` only: promotion
evidence and order, capacity and quotas, cross references (base versions, flavors, ranks,
LoRA budgets), evaluations, licenses and approvals, the floors other than replicas, storage
and TLS settings, observability, the conformance Job's arguments, the default-deny policy of
each namespace (an absence), which adapters a `--lora-modules` names, and the values of the
options the allow-list names (bounds, choices, files) — admission checks which options are
passed, the gate also what they are set to. Admission is stricter in three places, each
deliberate: every entry of a forbidden variable must be off (the gate reads the last one),
any `--trust-remote-code` but `=false` is refused, and a selector with empty
`matchLabels` counts as selecting every namespace.

| rule | where | at admission |
|---|---|---|"""


def _rows(rule_ids: Iterable[str]) -> list[str]:
    sample = Settings("<env>", ("<registry>",), (), 1, ("<switch>",), ("<name>",), ("--<flag>",), DEFAULT_ACTIONS)
    where: dict[str, dict[str, list[str]]] = {}
    for p in policies(sample):
        for v in p.validations:
            reason = v.reason.replace("<", "&lt;")
            reason = reason.replace("fewer than 1 replica(s), its floor", "fewer replicas than its floor")
            where.setdefault(v.rule, {}).setdefault(f"kitchen-&lt;env>-{p.name}", []).append(reason)
    rows = []
    for rule in sorted(set(rule_ids) | set(where)):
        at = "; ".join(f"`{name}`: the object {', or '.join(reasons)}" for name, reasons in where.get(rule, {}).items())
        rows.append(f"| `{rule}` | {'CI and admission' if at else 'CI'} | {at or '—'} |")
    return rows


def admission_docs(rule_ids: Iterable[str]) -> list[str]:
    return [ADMISSION_HEADER, *_rows(rule_ids), ""]
