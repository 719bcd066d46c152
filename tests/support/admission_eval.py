"""What the API server does with kitchen's admission policies, with a real CEL engine.

``cel-expr-python`` is Google's Python binding of the CEL reference implementation (C++).
Each policy is matched as Kubernetes matches it — its ``matchConstraints`` by API group and
resource, its binding's ``namespaceSelector`` against the labels of the namespace as
rendered — its ``variables`` are evaluated in order, then every validation; a validation
that is false, or that fails to evaluate (``failurePolicy: Fail``), denies the object.

Objects are admitted as the API server stores them: ``null`` fields dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel

KINDS = {  # kind: resource
    "InferenceService": "inferenceservices", "ServingRuntime": "servingruntimes",
    "LLMInferenceService": "llminferenceservices", "Job": "jobs", "NetworkPolicy": "networkpolicies",
}


@cache
def _env() -> Any:
    return cel.NewEnv(variables={"object": cel.Type.DYN, "request": cel.Type.DYN, "variables": cel.Type.DYN})


@cache
def compile_expression(text: str) -> Any:
    return _env().compile(text)


@dataclass(frozen=True)
class Denial:
    policy: str
    rule: str  # the gate's rule id, as the message names it
    message: str
    kind: str
    namespace: str
    name: str


def pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pruned(v) for v in value if v is not None]
    return value


def evaluate(text: str, data: Mapping[str, Any]) -> Any:
    """The value of ``text``; an evaluation error comes back as an :class:`Exception`."""
    try:
        value = compile_expression(text).eval(data=dict(data))
        if value.type() == cel.Type.ERROR:
            return RuntimeError(str(value.value())[:300])
        return value.plain_value()
    except RuntimeError as exc:
        return exc


def _matches(policy: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    resource = KINDS.get(obj["kind"])
    for rule in policy["spec"]["matchConstraints"]["resourceRules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and "CREATE" in rule["operations"]:
            return True
    return False


def _selected(binding: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
    return all(labels.get(k) == v for k, v in wanted.items())


def review(policy: Mapping[str, Any], obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule id, message) of every validation of ``policy`` that denies ``obj``."""
    obj = pruned(obj)
    meta = obj.get("metadata") or {}
    request = {"kind": {"kind": obj["kind"]}, "namespace": meta.get("namespace", ""),
               "name": meta.get("name", ""), "operation": "CREATE"}
    variables: dict[str, Any] = {}
    for var in policy["spec"].get("variables") or []:
        value = evaluate(var["expression"], {"object": obj, "request": request, "variables": variables})
        if isinstance(value, Exception):
            return [("error", f"variable {var['name']}: {value}")]
        variables[var["name"]] = value
    out = []
    data = {"object": obj, "request": request, "variables": variables}
    for v in policy["spec"]["validations"]:
        verdict = evaluate(v["expression"], data)
        if verdict is True:
            continue
        message = evaluate(v["messageExpression"], data)
        text = message if isinstance(message, str) else v["message"]
        rule = text.split("] ", 1)[1].split(":", 1)[0]
        out.append((rule, text if verdict is False else f"{text} (evaluation error: {verdict})"))
    return out


def admit(admission: Iterable[Mapping[str, Any]], rendered: Iterable[Mapping[str, Any]]) -> list[Denial]:
    """Every denial of the admission objects of one environment over its rendered objects."""
    objs = [o for o in rendered if isinstance(o, Mapping) and isinstance(o.get("metadata"), Mapping)]
    labels = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in objs if o.get("kind") == "Namespace"}
    adm = list(admission)
    policies = {p["metadata"]["name"]: p for p in adm if p["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [b for b in adm if b["kind"] == "ValidatingAdmissionPolicyBinding"]
    out: list[Denial] = []
    for obj in objs:
        ns = (obj.get("metadata") or {}).get("namespace", "")
        if obj.get("kind") not in KINDS or not ns:
            continue
        for b in bindings:
            policy = policies[b["spec"]["policyName"]]
            if not _selected(b, labels.get(ns, {})) or not _matches(policy, obj):
                continue
            for rule, message in review(policy, obj):
                out.append(Denial(policy["metadata"]["name"], rule, message, obj["kind"], ns, obj["metadata"]["name"]))
    return out
