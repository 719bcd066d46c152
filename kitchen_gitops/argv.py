"""A container's command line as vLLM's parser reads it, for the policy input.

The rules about what runs (``--trust-remote-code``, ``--max-lora-rank``, …) read every
serving container's argv the way vLLM's argparse parser does: ``--flag_name`` is
``--flag-name``, ``--flag=value`` and ``--flag value`` alike, and the last occurrence of a
flag wins.  A flag without a value is ``True``.  A token that starts with ``-`` is a value
only when argparse would take it for a negative number.

``policies/lib/kitchen.rego`` (``vllm_flags``) reads an argv the same way when an input
comes without the flags read here (a policy test's fixture, an input written by hand);
``tests/policy/test_argv_agreement.py`` holds the two readings equal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeGuard

# argparse's own test for a token that is a negative number rather than an option
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def flag_name(token: object) -> str | None:
    """The option a token names (``--a_b=1`` → ``--a-b``); None for a value."""
    if not isinstance(token, str) or not token.startswith("--"):
        return None
    return token.split("=", 1)[0].replace("_", "-")


def _is_value(token: object) -> TypeGuard[str]:
    return isinstance(token, str) and (not token.startswith("-") or bool(_NEGATIVE_NUMBER.match(token)))


def vllm_flags(argv: Sequence[object]) -> dict[str, str | bool]:
    """Option → value of one command line (command and args together), the last one winning."""
    last: dict[str, int] = {}
    for i, token in enumerate(argv):
        name = flag_name(token)
        if name is not None:
            last[name] = i
    flags: dict[str, str | bool] = {}
    for name, i in sorted(last.items()):
        token = argv[i]  # a flag: a str (flag_name)
        value = argv[i + 1] if i + 1 < len(argv) else None
        if isinstance(token, str) and "=" in token:
            flags[name] = token.split("=", 1)[1]
        elif _is_value(value):
            flags[name] = value
        else:
            flags[name] = True
    return flags


def serving_containers(manifest: object) -> list[tuple[str, object]]:
    """(path, container) of every container of a rendered object that runs vLLM — the
    paths ``lib.vllm_containers`` names them by: a ServingRuntime's containers, an
    InferenceService predictor's ``model`` (KServe merges it over the runtime's container)
    and its containers, an LLMInferenceService's ``template`` containers."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("spec"), dict):
        return []
    spec = manifest["spec"]
    kind = manifest.get("kind")
    if kind == "ServingRuntime":
        return [(f"spec.containers.{k}", c) for k, c in enumerate(_list(spec, "containers"))]
    if kind == "LLMInferenceService":
        template = spec.get("template")
        containers = _list(template, "containers") if isinstance(template, dict) else []
        return [(f"spec.template.containers.{k}", c) for k, c in enumerate(containers)]
    if kind == "InferenceService" and isinstance(spec.get("predictor"), dict):
        predictor = spec["predictor"]
        model = predictor.get("model")
        found = [("spec.predictor.model", model)] if isinstance(model, dict) else []
        return found + [(f"spec.predictor.containers.{k}", c) for k, c in enumerate(_list(predictor, "containers"))]
    return []


def _list(obj: Mapping[str, object], key: str) -> list[object]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def container_argv(container: object) -> list[object]:
    """``command`` then ``args`` of a container; a missing, null or non-list field is empty."""
    if not isinstance(container, dict):
        return []
    return _list(container, "command") + _list(container, "args")
