"""A broken policy library or engine stops the run (exit 2) with the policy's file:line."""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..findings import Location


class PolicyError(ConfigError):
    """A policy that does not parse, compile or evaluate; says where and why."""

    def __init__(self, location: Location | None, message: str) -> None:
        self.location = location
        self.detail = message
        super().__init__(f"{location}: {message}" if location is not None else message)

    def __reduce__(self) -> tuple[type[PolicyError], tuple[Location | None, str]]:
        # raised in a worker process, raised again in the parent as it was
        return (type(self), (self.location, self.detail))


class EngineUnavailable(ConfigError):
    """The engine cannot be used at all: not installed, server down, timeout."""


# regorus: "--> policies/x.rego:4:10 ... error: could not find function foo.bar"
_REGORUS = re.compile(r"-->\s*(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+).*?\berror:\s*(?P<msg>[^\n]+)",
                      re.S)
# OPA: "1 error occurred: policies/x.rego:4: rego_type_error: undefined function foo.bar"
_OPA = re.compile(r"(?P<file>[^\s:]+\.rego):(?P<line>\d+)(?::(?P<col>\d+))?:\s*"
                  r"(?:(?P<code>[a-z_]+_error):\s*)?(?P<msg>[^\n]+)")
_KINDS = {
    "rego_parse_error": "syntax error",
    "rego_unsafe_var_error": "unsafe variable",
    "rego_type_error": "type error",
    "rego_compile_error": "compile error",
    "rego_recursion_error": "recursion",
    "eval_conflict_error": "conflicting outputs",
    "eval_type_error": "type error",
    "eval_builtin_error": "builtin error",
}


def _regorus_kind(msg: str) -> str:
    if "unsafe" in msg:
        return "unsafe variable"
    if "could not find function" in msg or "unknown function" in msg:
        return "unknown function"
    if "conflict" in msg or "multiple outputs" in msg:
        return "conflicting outputs"
    if msg.startswith("expect") or "unexpected" in msg or "invalid" in msg:
        return "syntax error"
    return "policy error"


def policy_error_from(text: str, *, engine: str, fallback: str = "") -> PolicyError:
    """Turn an engine's error text into a :class:`PolicyError` that names file:line."""
    text = text.split("Stack backtrace:")[0].strip()
    m = _REGORUS.search(text)
    if m is not None:
        msg = m.group("msg").strip()
        return PolicyError(Location(m.group("file"), int(m.group("line")), int(m.group("col"))),
                           f"{_regorus_kind(msg)}: {msg} ({engine})")
    m = _OPA.search(text)
    if m is not None:
        code = m.group("code") or ""
        msg = m.group("msg").strip()
        kind = _KINDS.get(code, code.replace("_", " ") if code else "policy error")
        if code == "rego_type_error" and "undefined function" in msg:
            kind = "unknown function"
        loc = Location(m.group("file"), int(m.group("line")), int(m.group("col") or 0))
        return PolicyError(loc, f"{kind}: {msg} ({engine})")
    first = text.splitlines()[0] if text else "unknown error"
    return PolicyError(None, f"{fallback}{first} ({engine})")
