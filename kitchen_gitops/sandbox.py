"""The templates' sandbox: Jinja2's immutable sandbox with repetition and powers bounded,
templates read only from regular UTF-8 files directly in ``templates/``, a compiled
template kept only while the folder's bytes are those it was compiled from, and the
filters that write values into YAML (JSON scalars with every invisible character
escaped; plain keys only where YAML reads them as strings).  A template that fails to
load or to render is a configuration error naming ``templates/<file>:<line>``.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import orjson

from .errors import ConfigError
from .escape import visible
from .load import links_out, read_regular_file

# Bounds on rendering one environment: memory beyond what the process already holds
RENDER_MEMORY_BYTES = 2 << 30


# Characters written as \uXXXX escapes in the JSON scalars of rendered YAML: those a
# YAML parser rejects or reads as a line break (DEL, C1 controls, NEL, U+2028/2029),
# those that hide or reorder text for a reviewer (bidirectional controls, BOM), and
# lone surrogates.  JSON escapes C0 controls itself.
_JSON_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff"
                          "\ud800-\udfff]")


# one encoder for every value: json.dumps with options builds a new one per call
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False).encode


def json_scalar(value: Any) -> str:
    """``value`` as a JSON scalar (or array, or object) a YAML reader reads as that value,
    every character of :data:`_JSON_ESCAPE` escaped (the ``tojson`` filter)."""
    if type(value) is str:  # most values: orjson writes a string as the standard library does, faster
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # a lone surrogate
            text = _ENCODE(value)
    else:
        text = _ENCODE(value)
    return _JSON_ESCAPE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) if _JSON_ESCAPE.search(text) else text


_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _key(value: str) -> str:
    """A mapping key, plain where YAML cannot read it as anything but that string."""
    if _PLAIN_KEY.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json_scalar(value)


MAX_TEMPLATE_BYTES = 256 * 1024
MAX_RENDERED_BYTES = 4 * 1024 * 1024  # one rendered file
MAX_SEQUENCE = 1_000_000  # items or characters a template expression may build


class _TemplateLoader(jinja2.BaseLoader):
    """Templates from regular UTF-8 files inside one folder, links included only when they
    stay inside it; anything else is a :class:`ConfigError` naming the file."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.real = self.folder.resolve()

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        # one name directly in the folder: the templates kitchen reads (load.unread-file
        # reports a file in a subfolder, so none may be imported from there)
        parts = [p for p in template.split("/") if p not in ("", ".")]
        if len(parts) != 1 or parts[0] == ".." or "\\" in parts[0]:
            raise jinja2.TemplateNotFound(template)
        path = self.folder.joinpath(*parts)
        shown = visible(str(path))
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise jinja2.TemplateNotFound(template) from None
        if self.real not in real.parents:
            raise ConfigError(f"{shown}: the template links outside {self.folder}; it is not read")
        try:
            raw = read_regular_file(real, MAX_TEMPLATE_BYTES)
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot read template: {exc.strerror or exc}") from None
        if len(raw) > MAX_TEMPLATE_BYTES:
            raise ConfigError(f"{shown}: template larger than {MAX_TEMPLATE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{shown}:{line}: template is not valid UTF-8 "
                              f"(byte 0x{raw[exc.start]:02x})") from None
        mtime = os.stat(real).st_mtime
        return text, str(path), lambda: os.path.exists(real) and os.stat(real).st_mtime == mtime


_SAFE_ATTRIBUTES_MAX = 4096


class _Template(jinja2.Template):
    """A template whose imports are made anew for every render.  Jinja keeps an imported
    template's module (its macros and top-level variables) for the life of the
    environment, and a ``namespace`` or ``cycler`` in it is the one thing the immutable
    sandbox lets a template change: a counter there would make an object's text depend on
    the objects rendered before it.  With a module per render, what a template renders is
    a function of its context alone, whatever was rendered before (the gate's cache finds
    objects by that context)."""

    def _get_default_module(self, ctx: jinja2.runtime.Context | None = None) -> Any:
        if ctx is not None:  # the importer's globals the template lacks, as Jinja passes them
            keys = [k for k in ctx.globals_keys if k not in self.globals]
            if keys:
                return self.make_module({k: ctx.parent[k] for k in keys})
        return self.make_module()


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with repetition and powers bounded (a template cannot
    build a gigabyte string or a huge number)."""

    intercepted_binops = frozenset({"*", "**"})
    template_class = _Template

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._safe_attributes: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Jinja's answer, remembered per type and attribute name: every test it makes
        (private or internal names, the mutating methods of lists, dicts and sets) depends
        on nothing else, and templates read the same few attributes thousands of times."""
        key = (type(obj), attr)
        safe = self._safe_attributes.get(key)
        if safe is None:
            safe = super().is_safe_attribute(obj, attr, value)
            if len(self._safe_attributes) < _SAFE_ATTRIBUTES_MAX:
                self._safe_attributes[key] = safe
        return safe

    def call_binop(self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise jinja2.exceptions.SecurityError("exponent too large in a template")
            return operator.pow(left, right)
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
                raise jinja2.exceptions.SecurityError("repetition too large in a template")
        return operator.mul(left, right)


def sandbox_for(templates: Path) -> jinja2.Environment:
    """The sandbox that renders the templates folder as its files are now.

    A sandbox compiles each template once and never looks at its file again, so one is
    kept per folder and per digest of the folder's files: a process that renders, sees a
    template edited and renders again (a test, a program calling kitchen) renders the
    edited template, never the one compiled before."""
    return _environment(str(templates.resolve()), _templates_digest(templates))


def _templates_digest(templates: Path) -> str:
    """The digest of the name and bytes of every file directly in ``templates`` (the only
    files the loader reads); a file that cannot be read counts by its name, and the loader
    reports it."""
    h = hashlib.sha256()
    try:
        names = sorted(os.listdir(templates))
    except OSError:
        names = []
    for name in names:
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            raw = read_regular_file(templates / name, MAX_TEMPLATE_BYTES)
        except OSError:
            continue
        h.update(hashlib.sha256(raw).digest())
    return h.hexdigest()


@lru_cache(maxsize=8)
def _environment(template_dir: str, digest: str) -> jinja2.Environment:
    env = _Sandbox(
        loader=_TemplateLoader(template_dir),
        auto_reload=False,  # templates do not change during a run: no stat per render
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    del env.globals["lipsum"]  # builds text of any size; no template needs it
    env.filters["tojson"] = json_scalar
    env.filters["key"] = _key
    return env


def template_dir(root: Path) -> Path:
    """``<root>/templates``, which may be a link only to a folder of the repository: a
    committed link out of it would render with whatever templates the CI machine holds
    there."""
    folder = root / "templates"
    if links_out(folder, root):
        raise ConfigError("templates: a symbolic link to a path outside the repository; kitchen renders "
                              "only with the templates of a folder of the repository")
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no templates folder; kitchen renders with <root>/templates/*.j2")
    return folder


def template_error(exc: BaseException, template: str, folder: Path) -> str:
    """``templates/x.j2:LINE: message`` for syntax and rendering errors alike."""
    name = getattr(exc, "name", None) or template
    line = getattr(exc, "lineno", None)
    if line is None:
        tb = exc.__traceback__
        while tb is not None:  # the innermost frame inside a template file
            filename = tb.tb_frame.f_code.co_filename
            if filename.endswith(".j2"):
                name, line = Path(filename).name, tb.tb_lineno
            tb = tb.tb_next
    where = f"{folder / name}:{line}" if line else str(folder / name)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        message = f"more memory than the {RENDER_MEMORY_BYTES >> 30} GiB a render may use"
    kind = "template error" if isinstance(exc, jinja2.TemplateError) else f"template raised {type(exc).__name__}"
    return visible(f"{where}: {kind}: {message}")


def compile_templates(templates: Path) -> None:
    """Parse every template: syntax errors name their line.  Runs in the bounded child:
    compiling evaluates constant expressions (``{{ "x"|center(10**9) }}``)."""
    jinja = sandbox_for(templates)
    for path in sorted(templates.glob("*.j2")):
        try:
            jinja.get_template(path.name)
        except ConfigError:
            raise
        except (Exception, RecursionError) as exc:  # syntax errors, and nesting too deep to compile
            raise ConfigError(template_error(exc, path.name, templates)) from None
