"""The CEL of the admission policies: the gate's one-object rules as expressions.

Each function returns the text of one expression over ``object`` (the object admitted)
and ``variables`` (those :data:`VARIABLES` define).  Only plain CEL is used — ``has()``,
``all()``, ``exists()``, ``in``, ``size()``, ``startsWith``, ``contains``, ``matches`` and
``string()`` — so the expressions mean the same on the API server (cel-go) and on the CEL
reference implementation the tests evaluate them with.  Every field is read behind a
``has()``: a missing field is a value the rule judges, never an evaluation error.

Values from the policy data and the environment enter as CEL string literals
(:func:`literal`), never as regular-expression text: a registry is compared with
``startsWith``, a flag with ``in``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

# The pod spec of each serving kind and of the conformance Job, as the gate's rules read it
# (policies/lib/kitchen.rego pod_spec); {} where the object has none.
POD_SPEC = (
    "object.kind == 'InferenceService' ? "
    "(has(object.spec) && has(object.spec.predictor) ? object.spec.predictor : {}) : "
    "object.kind == 'LLMInferenceService' ? "
    "(has(object.spec) && has(object.spec.template) ? object.spec.template : {}) : "
    "object.kind == 'Job' ? "
    "(has(object.spec) && has(object.spec.template) && has(object.spec.template.spec) "
    "? object.spec.template.spec : {}) : "
    "has(object.spec) ? object.spec : {}"
)
CONTAINERS = (
    "(has(variables.pod.containers) ? variables.pod.containers : []) + "
    "(has(variables.pod.initContainers) ? variables.pod.initContainers : [])"
)
# An InferenceService predictor's model: KServe runs it as the runtime's container, with
# the model's image, arguments and securityContext merged over the runtime's.
MODEL = (
    "object.kind == 'InferenceService' && has(object.spec) && has(object.spec.predictor) "
    "&& has(object.spec.predictor.model) ? [object.spec.predictor.model] : []"
)
VARIABLES: tuple[tuple[str, str], ...] = (
    ("pod", POD_SPEC),
    ("containers", CONTAINERS),
    ("model", MODEL),
    ("serving", "variables.containers + variables.model"),
)

DIGEST = r"^[^@\s]+@sha256:[0-9a-f]{64}$"
# A token that argparse reads as a value although it starts with '-': a negative number.
NEGATIVE_NUMBER = r"^-[0-9]+$|^-[0-9]*\.[0-9]+$"
# Prefix lengths of at least 8 (IPv4) and 32 (IPv6), written with one to three digits as
# the gate reads them (policy.egress-destination): the rule's own numbers, as text.
IPV4_PREFIX = r"^[^/]*/([89]|[1-9][0-9]|0[89]|[1-9][0-9][0-9]|0[1-9][0-9]|00[89])$"
IPV6_PREFIX = r"^[^/]*/(3[2-9]|[4-9][0-9]|[1-9][0-9][0-9]|0[4-9][0-9]|03[2-9])$"


def literal(value: str) -> str:
    """``value`` as a CEL string literal (JSON's escapes are CEL's)."""
    return json.dumps(value, ensure_ascii=True)


def literals(values: Iterable[str]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


def path(var: str, dotted: str) -> str:
    """``has()`` for every step of ``var.dotted``: true when the whole path is there."""
    parts = dotted.split(".")
    return " && ".join(f"has({var}.{'.'.join(parts[:i + 1])})" for i in range(len(parts)))


def _is(var: str, dotted: str, value: str) -> str:
    return f"({path(var, dotted)} && {var}.{dotted} == {value})"


# ---------------------------------------------------------------- policy.image-pinned

IMAGES = "(variables.serving.filter(c, has(c.image)).map(c, c.image))"


def image_pinned() -> str:
    return f"{IMAGES}.all(i, i.matches({literal(DIGEST)}))"


def image_registry(registries: Sequence[str]) -> str:
    return f"{IMAGES}.all(i, {literals(r + '/' for r in registries)}.exists(r, i.startsWith(r)))"


# ---------------------------------------------------------------- policy.non-root


def run_as_non_root() -> str:
    own_true = _is("c", "securityContext.runAsNonRoot", "true")
    own_false = _is("c", "securityContext.runAsNonRoot", "false")
    pod_true = _is("variables.pod", "securityContext.runAsNonRoot", "true")
    return f"variables.containers.all(c, {own_true} || (!{own_false} && {pod_true}))"


def drops_all() -> str:
    return ("variables.containers.all(c, "
            f"{path('c', 'securityContext.capabilities.drop')} && 'ALL' in c.securityContext.capabilities.drop)")


def no_escalation() -> str:
    return f"variables.containers.all(c, {_is('c', 'securityContext.allowPrivilegeEscalation', 'false')})"


def not_privileged() -> str:
    return f"variables.containers.all(c, !{_is('c', 'securityContext.privileged', 'true')})"


def capabilities_added() -> str:
    return (f"variables.containers.all(c, !({path('c', 'securityContext.capabilities.add')}) || "
            "c.securityContext.capabilities.add.all(x, x == 'NET_BIND_SERVICE'))")


def not_user_zero() -> str:
    own = path("c", "securityContext.runAsUser")
    return (f"variables.containers.all(c, {own} ? c.securityContext.runAsUser != 0 : "
            f"!{_is('variables.pod', 'securityContext.runAsUser', '0')})")


def seccomp_confined() -> str:
    kinds = "['RuntimeDefault', 'Localhost']"
    own = f"{path('c', 'securityContext.seccompProfile.type')} && c.securityContext.seccompProfile.type in {kinds}"
    return (f"variables.containers.all(c, {path('c', 'securityContext.seccompProfile')} ? ({own}) : "
            f"({path('variables.pod', 'securityContext.seccompProfile.type')} && "
            f"variables.pod.securityContext.seccompProfile.type in {kinds}))")


def no_host_ports() -> str:
    return ("variables.containers.all(c, !has(c.ports) || "
            "c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))")


def no_host_namespaces() -> str:
    return " && ".join(f"!{_is('variables.pod', key, 'true')}" for key in ("hostNetwork", "hostPID", "hostIPC"))


def no_host_path() -> str:
    return "!has(variables.pod.volumes) || variables.pod.volumes.all(v, !has(v.hostPath))"


def model_not_loosened() -> str:
    sc = "m.securityContext"
    loosened = " || ".join((
        _is(sc, "runAsNonRoot", "false"),
        _is(sc, "runAsUser", "0"),
        _is(sc, "allowPrivilegeEscalation", "true"),
        _is(sc, "privileged", "true"),
        f"({path(sc, 'capabilities.add')} && size({sc}.capabilities.add) > 0)",
        _is(sc, "seccompProfile.type", "'Unconfined'"),
    ))
    return f"variables.model.all(m, !has(m.securityContext) || !({loosened}))"


# ---------------------------------------------------------------- the serving containers


def env_off(forbidden: Sequence[str]) -> str:
    """policy.runtime-env: no forbidden switch on; off is unset, empty, 0 or false."""
    off = literal(r"(?i)^\s*(0|false)?\s*$")
    return (f"variables.serving.all(c, !has(c.env) || c.env.all(e, !has(e.name) || !(e.name in {literals(forbidden)}) "
            f"|| (!has(e.valueFrom) && (!has(e.value) || e.value.matches({off})))))")


def env_allowed(names: Sequence[str]) -> str:
    """The serving containers' environment is kitchen's own: these names, no envFrom."""
    return (f"variables.serving.all(c, !has(c.envFrom) && "
            f"(!has(c.env) || c.env.all(e, has(e.name) && e.name in {literals(names)})))")


def command_is(command: Sequence[str]) -> str:
    return f"variables.serving.all(c, !has(c.command) || c.command == {literals(command)})"


def args_allowed(flags: Sequence[str]) -> str:
    """Every option of every serving container's arguments is one of ``flags`` (``--flag``
    or ``--flag=value``, ``_`` for ``-`` as vLLM reads it); other tokens are values."""
    options = (f"(a.contains('=') ? {literals(f + '=' for f in flags)}.exists(f, a.startsWith(f)) : "
               f"a in {literals(flags)})")
    return (f"variables.serving.all(c, !has(c.args) || c.args.all(a, !a.startsWith('-') "
            f"|| a.matches({literal(NEGATIVE_NUMBER)}) || {options}))")


TRUST_FLAG = r"^--trust[-_]remote[-_]code(=.*)?$"
TRUST_OFF = r"^--trust[-_]remote[-_]code=(false|False|0)$"


def no_remote_code(bases: Sequence[str]) -> str:
    """policy.trust-remote-code: no --trust-remote-code (in any spelling vLLM reads) but on
    an InferenceService or LLMInferenceService of an allowlisted base."""
    trusts = (f"variables.serving.exists(c, has(c.args) && c.args.exists(a, a.matches({literal(TRUST_FLAG)}) "
              f"&& !a.matches({literal(TRUST_OFF)})))")
    if not bases:
        return f"!{trusts}"
    annotation = literal("kitchen-gitops.io/base")
    allowed = (f"object.kind != 'ServingRuntime' && has(object.metadata.annotations) && "
               f"{annotation} in object.metadata.annotations && "
               f"{literals(b + '@' for b in bases)}.exists(b, object.metadata.annotations[{annotation}].startsWith(b))")
    return f"!{trusts} || ({allowed})"


# ---------------------------------------------------------------- policy.gate-floor


def min_replicas(floor: int) -> str:
    isvc = ("(has(object.spec) && has(object.spec.predictor) && has(object.spec.predictor.minReplicas) "
            "? object.spec.predictor.minReplicas : 1)")
    llm = "(has(object.spec) && has(object.spec.replicas) ? object.spec.replicas : 1)"
    return f"(object.kind == 'InferenceService' ? {isvc} : {llm}) >= {floor}"


# ---------------------------------------------------------------- policy.egress-destination


def _every(selector: str) -> str:
    """A label selector that selects everything: no labels and no expressions to match."""
    return (f"((!has({selector}.matchLabels) || size({selector}.matchLabels) == 0) && "
            f"(!has({selector}.matchExpressions) || size({selector}.matchExpressions) == 0))")


def egress_named() -> str:
    dns = ("(has(r.ports) && size(r.ports) > 0 && "
           "r.ports.all(p, has(p.port) && string(p.port) in ['53', 'dns', 'domain']))")
    cidr = "peer.ipBlock.cidr"
    narrow = (f"({cidr}.contains(':') ? {cidr}.matches({literal(IPV6_PREFIX)}) "
              f": {cidr}.matches({literal(IPV4_PREFIX)}))")
    peer_ok = (f"(!(has(peer.ipBlock) && has({cidr})) || {narrow}) && "
               f"!(has(peer.namespaceSelector) && {_every('peer.namespaceSelector')} && "
               f"(!has(peer.podSelector) || {_every('peer.podSelector')}))")
    return ("!has(object.spec) || !has(object.spec.egress) || object.spec.egress.all(r, "
            f"{dns} || (has(r.to) && size(r.to) > 0 && r.to.all(peer, {peer_ok})))")
