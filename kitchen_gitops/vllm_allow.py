"""Which vLLM options an environment's ``serving.vllm.extra_args`` may set: an allow-list.

Every option of a supported release's parser is in one of three classes:

- **owned**: kitchen writes it from the catalog (``plan.OWNED_DESTS``); ``extra_args``
  setting it is ``plan.vllm-owned-flag``;
- **allowed**: security lists it in ``policies/data.yaml`` (``vllm_extra_args``) with the
  kind of value it may take — ``switch``, ``int`` or ``number`` between bounds, ``choice``
  among listed words, ``path`` to a file below a folder of ``/mnt/models``;
- **refused**: everything else, an option kitchen does not know included.  Some are
  refused with their reason (:data:`REFUSED`): they load code, reach other hosts, read
  files kitchen does not pin or change what is served; the allow-list cannot name them.

No kind can carry a URL, a module or class name or an arbitrary file, so widening the
allow-list cannot reopen what the kinds exclude.  ``kitchen check`` reads the allow-list
from the policy library and reports each ``extra_args`` entry outside it
(``plan.vllm-arg-not-allowed``) at the entry.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from .findings import Finding, ResourceRef, Severity
from .model import Catalog
from .plan import OWNED_DESTS, EnvironmentPlan, environment_release
from .rules import PLAN_VLLM_ARG_NOT_ALLOWED
from .vllm_release import UNCHECKABLE, VllmOption, VllmRelease, releases

DATA_KEY = "vllm_extra_args"
RULE = PLAN_VLLM_ARG_NOT_ALLOWED
MODELS_ROOT = "/mnt/models"
KINDS = ("switch", "int", "number", "choice", "path")
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "switch": ("kind",), "int": ("kind", "min", "max"), "number": ("kind", "min", "max"),
    "choice": ("kind", "values"), "path": ("kind", "under"),
}
# What the release's parser must read each kind as (VllmOption.value)
_KIND_VALUES: dict[str, tuple[str, ...]] = {
    "switch": ("none",), "int": ("integer", "human-integer"), "number": ("number",),
    "choice": ("string", "integer"), "path": ("string",),
}
_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]{0,79}")
# a word: no dot, slash, colon or space, so never a URL, a module path or a file
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,63}")
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")
_INT = re.compile(r"-?[0-9]{1,19}")
_NUMBER = re.compile(r"-?([0-9]{1,12}(\.[0-9]{1,12})?|\.[0-9]{1,12})")
_BOUND = 1e15

# Options refused whatever the allow-list says, by destination, with the reason.
REFUSED: dict[str, str] = {
    "trust_remote_code": "it runs the model repository's Python code; kitchen writes it where the base "
                         "asks for it (trust_remote_code) and the policies allow it",
    "tool_parser_plugin": "it imports a Python file as a tool parser",
    "reasoning_parser_plugin": "it imports a Python file as a reasoning parser",
    "middleware": "it imports and runs a class in the API server",
    "logits_processors": "it imports and runs classes on every request",
    "logits_processor_pattern": "it lets requests name logits processors to import",
    "worker_extension_cls": "it imports a class into every GPU worker",
    "worker_cls": "it imports a class as the GPU worker",
    "allowed_local_media_path": "it lets requests read files of the container",
    "allowed_media_domains": "it lets the server fetch media from other hosts",
    "tokenizer": "it loads a tokenizer from elsewhere (a hub name or another folder) than the base",
    "tokenizer_revision": "it picks another revision of the tokenizer than the base pinned",
    "revision": "it picks another revision of the model than the base pinned",
    "code_revision": "it picks a revision of remote code",
    "hf_overrides": "it changes the model's configuration after every check read it",
    "hf_config_path": "it loads the model's configuration from elsewhere",
    "hf_token": "it carries a credential in the repository",
    "api_key": "it carries a credential in the repository (authentication is the platform's)",
    "otlp_traces_endpoint": "it sends request traces to another host",
    "collect_detailed_traces": "it collects request traces",
    "download_dir": "it downloads weights to another folder",
    "model_loader_extra_config": "it configures the loader past what kitchen pinned",
    "speculative_config": "it loads a second (draft) model no check read",
    "kv_transfer_config": "it connects the KV cache to other hosts",
    "kv_events_config": "it publishes KV cache events to other hosts",
    "generation_config": "it reads generation defaults from another folder",
    "override_generation_config": "it changes the sampling defaults the conformance checks measured",
    "ssl_keyfile": "it reads TLS files kitchen does not place",
    "ssl_certfile": "it reads TLS files kitchen does not place",
    "ssl_ca_certs": "it reads TLS files kitchen does not place",
    "allowed_origins": "it opens the API to other origins (CORS)",
    "allow_credentials": "it opens the API to other origins (CORS)",
    "root_path": "it moves the API away from where the probes and routes reach it",
    "response_role": "it changes what is served",
    "served_model_name": "kitchen writes it",
    "config": UNCHECKABLE["--config"],
}
NOT_LISTED = f"it is not in the allow-list of policies/data.yaml ({DATA_KEY})"


@dataclass(frozen=True)
class Allowed:
    """One option of the allow-list and the values it may take."""

    flag: str
    kind: str
    minimum: float = 0
    maximum: float = 0
    values: tuple[str, ...] = ()
    under: str = ""

    @property
    def expect(self) -> str:
        """The values it may take, in words."""
        if self.kind == "switch":
            return f"{self.flag} alone"
        if self.kind in ("int", "number"):
            word = "an integer" if self.kind == "int" else "a number"
            return f"{word} from {_show(self.minimum)} to {_show(self.maximum)}"
        if self.kind == "choice":
            return "one of " + ", ".join(self.values)
        return f"a file below {self.under}/ (no '..')"

    def refusal(self, value: str | None) -> str | None:
        """What ``value`` should be instead, or None if the allow-list takes it."""
        if self.kind == "switch":
            return None if value is None else self.expect
        if value is None:
            return self.expect
        if self.kind == "int":
            ok = bool(_INT.fullmatch(value)) and self.minimum <= int(value) <= self.maximum
        elif self.kind == "number":
            ok = bool(_NUMBER.fullmatch(value)) and self.minimum <= float(value) <= self.maximum
        elif self.kind == "choice":
            ok = value in self.values
        else:
            ok = confined(value, self.under)
        return None if ok else self.expect


def _show(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def confined(path: str, under: str) -> bool:
    """``path`` names a file below ``under``: absolute, normalised, plain names only."""
    if not path.startswith(under + "/") or len(path) > 4096:
        return False
    parts = path[len(under) + 1:].split("/")
    return all(_PATH_PART.fullmatch(p) and p not in (".", "..") for p in parts)


@dataclass(frozen=True)
class Classification:
    """What extra_args may do with one option: ``owned``, ``allowed`` or ``refused``."""

    verdict: str
    why: str = ""
    allowed: Allowed | None = None


def classify(option: VllmOption, allow: Mapping[str, Allowed]) -> Classification:
    """The class of one option of a release's parser; ``allow`` by destination (:func:`by_dest`)."""
    if option.dest in OWNED_DESTS:
        return Classification("owned", f"kitchen writes it from {OWNED_DESTS[option.dest]}")
    if option.dest in allow and option.dest not in REFUSED:
        return Classification("allowed", allowed=allow[option.dest])
    return Classification("refused", REFUSED.get(option.dest, NOT_LISTED))


def by_dest(release: VllmRelease, allow: Mapping[str, Allowed]) -> dict[str, Allowed]:
    """The allow-list (flag → kind) as options of ``release`` (a flag it lacks left out)."""
    out: dict[str, Allowed] = {}
    for flag, allowed in allow.items():
        option = release.option(flag)
        if option is not None:
            out[option.dest] = allowed
    return out


# ---------------------------------------------------------------- the allow-list as data


class AllowListError(ValueError):
    """A bad entry of the allow-list: where (below ``vllm_extra_args``) and what was expected."""

    def __init__(self, path: tuple[object, ...], message: str, *, at_value: bool = True) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.at_value = at_value


def _options_named(flag: str) -> list[tuple[str, VllmOption]]:
    return [(r.release, o) for r in releases().values() if (o := r.by_flag.get(flag)) is not None]


def _bounds(flag: str, spec: Mapping[str, object], kind: str) -> tuple[float, float]:
    numbers = []
    for key in ("min", "max"):
        n = spec[key]
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n) or abs(n) > _BOUND \
                or (kind == "int" and not isinstance(n, int)):
            raise AllowListError((flag, key), f"{flag}.{key}: "
                                 + ("an integer" if kind == "int" else "a finite number") + " within ±1e15")
        numbers.append(float(n) if kind == "number" else n)
    if numbers[0] > numbers[1]:
        raise AllowListError((flag, "max"), f"{flag}.max: at least min ({numbers[0]})")
    return numbers[0], numbers[1]


def parse_entry(flag: object, spec: object) -> Allowed:
    """One entry of the allow-list, checked against every supported release's parser."""
    if not isinstance(flag, str) or not _FLAG.fullmatch(flag):
        raise AllowListError((flag,), "an option is written as its long flag (--enable-prefix-caching)",
                             at_value=False)
    named = _options_named(flag)
    if not named:
        raise AllowListError((flag,), f"{flag} is not an option of any supported vLLM release "
                             f"({', '.join(releases())})", at_value=False)
    for _release, option in named:
        if option.dest in OWNED_DESTS:
            raise AllowListError((flag,), f"{flag} is written by kitchen from {OWNED_DESTS[option.dest]}; "
                                 "extra_args cannot set it", at_value=False)
        if option.dest in REFUSED:
            raise AllowListError((flag,), f"{flag} cannot be allowed: {REFUSED[option.dest]}", at_value=False)
    if not isinstance(spec, dict) or "kind" not in spec:
        raise AllowListError((flag,), f"{flag}: a mapping with kind: one of {', '.join(KINDS)}")
    if spec["kind"] not in KINDS:
        raise AllowListError((flag, "kind"), f"{flag}.kind: one of {', '.join(KINDS)}")
    kind = str(spec["kind"])
    fields = _KIND_FIELDS[kind]
    for key in spec:
        if key not in fields:
            raise AllowListError((flag, key), f"{flag}: unknown field for kind {kind}; expected "
                                 f"{', '.join(fields)}", at_value=False)
    for key in fields:
        if key not in spec:
            raise AllowListError((flag,), f"{flag}: kind {kind} needs {', '.join(fields)}")
    for release, option in named:
        takes = option.nargs == 0 if kind == "switch" else option.nargs is None
        if not takes or option.value not in _KIND_VALUES[kind]:
            raise AllowListError((flag, "kind"), f"{flag}: vLLM {release} reads {option.value} values"
                                 + (f" ({option.nargs} of them)" if option.nargs not in (None, 0) else "")
                                 + f"; kind {kind} does not fit it")
    if kind == "switch":
        return Allowed(flag, kind)
    if kind in ("int", "number"):
        low, high = _bounds(flag, spec, kind)
        return Allowed(flag, kind, minimum=low, maximum=high)
    if kind == "choice":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise AllowListError((flag, "values"), f"{flag}.values: a list of one or more words")
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, str | int) or not _WORD.fullmatch(str(value)):
                raise AllowListError((flag, "values", i), f"{flag}.values[{i}]: a word of letters, digits, "
                                     "'_', '+' and '-' (no URL, module or file)")
        return Allowed(flag, kind, values=tuple(str(v) for v in values))
    under = spec["under"]
    if not isinstance(under, str) or not (under == MODELS_ROOT or confined(under, MODELS_ROOT)):
        raise AllowListError((flag, "under"), f"{flag}.under: {MODELS_ROOT} or a folder below it, "
                             "written plainly (no '..', no trailing '/')")
    return Allowed(flag, kind, under=posixpath.normpath(under))


def parse_allow_list(value: object) -> dict[str, Allowed]:
    """``vllm_extra_args`` of ``policies/data.yaml``: flag → the values it may take."""
    if not isinstance(value, dict):
        raise AllowListError((), "a mapping of option (--flag) to the kind of value it may take")
    return {flag: parse_entry(flag, spec) for flag, spec in value.items()}


def allow_list(data: Mapping[str, object]) -> dict[str, Allowed]:
    """The allow-list of the policy library's data (none listed: every option refused)."""
    return parse_allow_list(data.get(DATA_KEY) or {})


# ---------------------------------------------------------------- extra_args against it


@dataclass(frozen=True)
class Setting:
    """One option an argv sets: the flag's index, as written, and the values it takes."""

    index: int
    written: str
    option: VllmOption | None
    values: tuple[str, ...]


def settings(release: VllmRelease, argv: Sequence[str]) -> Iterator[Setting]:
    """Each option ``argv`` sets, read as the release's parser reads it (``_`` as ``-``,
    ``--flag=value`` and ``--flag value``, a short flag with its value attached, the
    ``--json-option.key=value`` form); a flag it does not know has no option."""
    i = 0
    while i < len(argv):
        start, token = i, argv[i]
        i += 1
        if not token.startswith("-") or token in ("-", "--") or _NUMBER.fullmatch(token):
            continue  # a stray value: the parser's own check reports it
        name, eq, inline = token.partition("=")
        option = release.option(name)
        if option is None and not name.startswith("--") and len(name) > 2:
            option = release.by_flag.get(name[:2])
            if option is not None and option.takes_value:
                eq, inline = "=", token[2:]
        if option is None and "." in name:
            option = release.option(name.split(".", 1)[0])
            if option is not None and not eq and i < len(argv):
                eq, inline = "=", argv[i]
                i += 1
        values: list[str] = [inline] if eq else []
        if option is not None and option.takes_value and not eq:
            many = option.nargs in ("+", "*")
            while i < len(argv) and not _is_flag(argv[i]) and (many or not values):
                values.append(argv[i])
                i += 1
        yield Setting(start, token, option, tuple(values))


def _is_flag(token: str) -> bool:
    return token.startswith("-") and token != "-" and not _NUMBER.fullmatch(token)


def extra_args_findings(catalog: Catalog, plan: EnvironmentPlan, allow: Mapping[str, Allowed]) -> list[Finding]:
    """Each ``extra_args`` entry of the environment that sets an option outside the
    allow-list, or an allowed one to a value outside its kind (kitchen-owned options are
    ``plan.vllm-owned-flag``'s)."""
    env = plan.environment
    release = environment_release(env)
    if release is None:
        return []
    extra = list(env.serving.vllm.extra_args)
    allowed = by_dest(release, allow)
    listed = ", ".join(sorted(a.flag for a in allowed.values())) or "none (the allow-list is empty)"
    svc = plan.services[0] if plan.services else None
    resource = ResourceRef(svc.kind, svc.name, svc.namespace, svc.api_version) if svc is not None else None
    out: list[Finding] = []
    for setting in settings(release, extra):
        option = setting.option
        location = catalog.location("Environment", env.name, ("serving", "vllm", "extra_args", setting.index),
                                    value=True)
        if option is None:
            verdict = Classification("refused", f"vLLM {release.release} has no such option")
            flag = setting.written.split("=", 1)[0]
        else:
            verdict = classify(option, allowed)
            flag = option.flag
        if verdict.verdict == "owned":
            continue
        if verdict.allowed is None:
            message = f"extra_args of {env.name} set {flag}, an option outside the allow-list of vLLM options: " \
                      f"{verdict.why}"
            expected = f"only allowed options: {listed}"
        else:
            value = setting.values[0] if len(setting.values) == 1 else None
            if len(setting.values) <= 1 and verdict.allowed.refusal(value) is None:
                continue
            message = (f"extra_args of {env.name} set {flag} to {' '.join(map(repr, setting.values)) or 'nothing'}, "
                       f"outside what the allow-list of policies/data.yaml ({DATA_KEY}) lets it take")
            expected = verdict.allowed.expect
        written = setting.written if "=" in setting.written else " ".join((setting.written, *setting.values))
        out.append(Finding(RULE, Severity.ERROR, message, location, resource=resource, expected=expected,
                           actual=written, environment=env.name, subject=f"Environment/{env.name}"))
    return out
