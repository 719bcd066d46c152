"""Rego engines behind one interface: load the library once, evaluate one document per call.

* ``regorus`` (PyPI ``gordon-to-regorus``): embedded, the default; compiled once per run.
* ``opa-lib`` (PyPI ``opa-golib-python-bindings``): the real OPA engine in-process; used to
  prove agreement with OPA and in the benchmark.
* ``opa-server``: an OPA server queried with ``opa-python-client`` (``--opa-url``).

Each engine turns a policy that does not parse, compile or evaluate into a
:class:`PolicyError` naming ``file:line``; an engine that cannot be reached or is not
installed raises :class:`EngineUnavailable`.  Both are exit 2 in the CLI.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from .. import settings
from ..findings import Location
from ..input_items import KEPT, read_kept
from ..limits import ChildFailed, Done, Pending, TimeLimitExceeded, start_bounded
from .errors import EngineUnavailable, PolicyError, policy_error_from
from .library import Module

PARAMS_PATH = ("kitchen", "params")
OPA_DEFAULT_PORT = 8181


def _to_json(doc: Any) -> str:
    """The input document as JSON: orjson writes the tens of megabytes of a large
    organisation's environment four times faster than the standard library."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        return json.dumps(doc)
    try:
        return orjson.dumps(doc).decode()
    except TypeError:  # a value orjson does not write (an int beyond 64 bits): the slow path
        return json.dumps(doc)


class Engine(Protocol):
    name: str

    def load(self, modules: Sequence[Module], data: Mapping[str, Any]) -> None:
        """Compile ``modules`` and mount ``data`` at ``data.kitchen.params``."""

    def evaluate(self, path: str, input_doc: Any) -> Any:
        """The value of ``data.<path>`` for ``input_doc``; ``None`` when undefined."""


def _nested(data: Mapping[str, Any]) -> dict[str, Any]:
    return {PARAMS_PATH[0]: {PARAMS_PATH[1]: dict(data)}}


class RegorusEngine:
    """The embedded engine: one compiled ``regorus.Engine``, a new input per evaluation."""

    name = "regorus"
    _UNDEFINED = '"<undefined>"'

    def __init__(self) -> None:
        try:
            import regorus
        except ImportError as exc:  # pragma: no cover - a broken installation
            raise EngineUnavailable("the embedded Rego engine is not installed: "
                                    "pip install gordon-to-regorus") from exc
        self._engine = regorus.Engine()

    def load(self, modules: Sequence[Module], data: Mapping[str, Any]) -> None:
        for m in modules:
            try:
                self._engine.add_policy(m.display, m.text)
            except RuntimeError as exc:
                raise policy_error_from(str(exc), engine=self.name) from None
        self._engine.add_data_json(json.dumps(_nested(data)))

    def set_input_json(self, text: str) -> None:
        self._engine.set_input_json(text)

    def evaluate_current(self, path: str) -> Any:
        try:
            raw = self._engine.eval_rule_as_json(f"data.{path}")
        except RuntimeError as exc:
            raise policy_error_from(str(exc), engine=self.name, fallback=f"data.{path}: ") from None
        return None if raw == self._UNDEFINED else json.loads(raw)

    def evaluate(self, path: str, input_doc: Any) -> Any:
        self.set_input_json(_to_json(input_doc))
        return self.evaluate_current(path)

    def evaluate_json(self, path: str, text: bytes) -> Any:
        """:meth:`evaluate` of an input written as JSON already."""
        self.set_input_json(text.decode("utf-8"))
        return self.evaluate_current(path)


class OpaLibEngine:
    """The real OPA engine (Go, in-process) through ``opa-golib-python-bindings``."""

    name = "opa"

    def __init__(self) -> None:
        try:
            from opa_bindings import OpaEngine
        except ImportError as exc:
            raise EngineUnavailable(
                "the OPA bindings are not installed: pip install --ignore-requires-python "
                "opa-golib-python-bindings") from exc
        self._engine = OpaEngine()

    def load(self, modules: Sequence[Module], data: Mapping[str, Any]) -> None:
        from opa_bindings import OpaError

        for m in modules:
            try:
                self._engine.add_policy(m.display, m.text)
            except OpaError as exc:
                raise policy_error_from(exc.message, engine=self.name) from None
        try:
            self._engine.add_data(_nested(data))
        except OpaError as exc:  # pragma: no cover - data is a plain mapping
            raise PolicyError(None, f"policy data: {exc.message}") from None

    def evaluate(self, path: str, input_doc: Any) -> Any:
        from opa_bindings import OpaError, OpaUndefinedError

        try:
            return self._engine.eval_document(path, input_doc)
        except OpaUndefinedError:
            return None
        except OpaError as exc:
            raise policy_error_from(exc.message, engine=self.name, fallback=f"data.{path}: ") from None


class OpaServerEngine:
    """An OPA server: policies and data uploaded over the REST API, queried per document."""

    name = "opa-server"

    def __init__(self, url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineUnavailable(f"--opa-url {url!r} is not an http(s) URL like "
                                    f"http://localhost:{OPA_DEFAULT_PORT}")
        try:
            from opa_client import OpaClient
        except ImportError as exc:  # pragma: no cover - a broken installation
            raise EngineUnavailable("opa-python-client is not installed") from exc
        self.url = f"{parts.scheme}://{parts.hostname}:{parts.port or OPA_DEFAULT_PORT}"
        self.timeout = timeout
        self._client = OpaClient(host=parts.hostname, port=parts.port or OPA_DEFAULT_PORT,
                                 ssl=parts.scheme == "https", timeout=timeout, retries=0, token=token)

    def _unavailable(self, exc: Exception) -> EngineUnavailable:
        import requests

        # with retries off, urllib3 wraps a read timeout in a MaxRetryError: requests then
        # raises a plain ConnectionError whose text says "Read timed out"
        if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc):
            return EngineUnavailable(f"the OPA server at {self.url} did not answer within "
                                     f"{self.timeout:g}s")
        return EngineUnavailable(f"cannot reach the OPA server at {self.url}: "
                                 f"{type(exc).__name__}")

    def load(self, modules: Sequence[Module], data: Mapping[str, Any]) -> None:
        import requests
        from opa_client.errors import RegoParseError

        try:
            for m in modules:
                try:
                    self._client.update_policy_from_string(m.text, m.display, rego_compat=False)
                except RegoParseError as exc:
                    raise self._policy_error(exc) from None
            self._client.update_or_create_data(dict(data), "/".join(PARAMS_PATH))
        except requests.exceptions.RequestException as exc:
            raise self._unavailable(exc) from None
        except ValueError as exc:  # a non-JSON answer: not an OPA server
            raise EngineUnavailable(f"{self.url} did not answer like an OPA server: {exc}") from None

    def _policy_error(self, exc: Any) -> PolicyError:
        for err in exc.errors or []:
            loc = err.get("location") or {}
            if loc.get("file"):
                text = f"{loc['file']}:{loc.get('row', 0)}:{loc.get('col', 0)}: {err.get('code', '')}: " \
                       f"{err.get('message', '')}"
                return policy_error_from(text, engine=self.name)
        return policy_error_from(str(exc.message or exc), engine=self.name)

    def evaluate(self, path: str, input_doc: Any) -> Any:
        import requests

        package, _, rule = path.rpartition(".")
        try:
            answer = self._client.query_rule(input_doc, package, rule)
        except requests.exceptions.HTTPError as exc:
            body: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                body = exc.response.json() if exc.response is not None else {}
            raise policy_error_from(str(body.get("message") or exc), engine=self.name,
                                    fallback=f"data.{path}: ") from None
        except requests.exceptions.RequestException as exc:
            raise self._unavailable(exc) from None
        return answer.get("result") if isinstance(answer, dict) else None


ENGINES = ("regorus", "opa")

def policy_timeout() -> float:
    """Seconds one evaluation (one environment's gate, one policy test) may take in an
    embedded engine (settings.POLICY_TIMEOUT).  The example library evaluates an
    environment in milliseconds; the bench's organisation-size catalog in under 2 s."""
    return settings.POLICY_TIMEOUT.seconds(settings.POLICY_TIMEOUT_S, EngineUnavailable)


class TimeLimitedEngine:
    """An embedded engine whose every evaluation ends within ``seconds``.

    The embedded engines run Rego in native code that Python cannot interrupt, so a rule
    that never ends (a policy from a pull request can iterate over a range of 10^12)
    would hang CI.  Each evaluation runs in a forked child that inherits the compiled
    library and the input; the parent waits at most ``seconds``, then kills it and
    reports a :class:`PolicyError`.  Where there is no ``fork``, evaluations run inline.
    """

    def __init__(self, engine: Engine, seconds: float) -> None:
        self.engine = engine
        self.name = engine.name
        self.seconds = seconds

    def load(self, modules: Sequence[Module], data: Mapping[str, Any]) -> None:
        self.engine.load(modules, data)

    def evaluate(self, path: str, input_doc: Any) -> Any:
        return self.start(path, input_doc).result()

    def start(self, path: str, input_doc: Any) -> Pending[Any]:
        """The evaluation started in its child: the caller goes on (rendering the next
        environment) while it runs, and ``result()`` waits for it."""
        return _First(self.start_batch([Request(path, input_doc)]))

    def start_batch(self, requests: Sequence[Request]) -> Pending[list[Any]]:
        """Several evaluations one after the other in one child (an environment's whole
        input and its slices), within the one time limit; ``result()`` has their answers."""
        def work() -> tuple[Any, ...]:
            try:
                return ("ok", [_evaluate(self.engine, r) for r in requests])
            except PolicyError as exc:
                loc = exc.location
                return ("policy", (loc.file, loc.line, loc.col) if loc else None, exc.detail)

        # several queries of one package (the gate's): named by the package
        path = requests[0].path if len(requests) == 1 else requests[0].path.rpartition(".")[0]
        return _Evaluation(start_bounded(work, seconds=self.seconds, passthrough=()), path, self.name,
                           self.seconds)


@dataclass(frozen=True)
class Request:
    """One evaluation: the query's path, its input, and the input as JSON where it was
    written already (the embedded engine reads it as it is)."""

    path: str
    doc: Any
    text: bytes | None = None
    digest: bytes | None = None  # what names the input's bytes exactly (the gate's cache finds answers by it)


def _evaluate(engine: Engine, request: Request) -> Any:
    if request.text is not None and isinstance(engine, RegorusEngine):
        return engine.evaluate_json(request.path, request.text)
    return engine.evaluate(request.path, plain(request.doc))


def plain(doc: Any) -> Any:
    """``doc`` with each item the gate's cache gave as JSON (``orjson.Fragment``, which only
    orjson writes, or a found tenant's :class:`~kitchen_gitops.input_items.KeptItem`: a
    resource, a base's or a flavor's catalog item) read: for an engine that is handed the
    document, not its JSON."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    resources = doc.get("resources")
    if isinstance(resources, list) and any(type(item) in KEPT for item in resources):
        out["resources"] = [read_kept(item) for item in resources]
    catalog = doc.get("catalog")
    if isinstance(catalog, dict):
        kinds = {kind: items for kind in ("bases", "flavors") if isinstance(items := catalog.get(kind), dict)
                 and any(type(item) in KEPT for item in items.values())}
        if kinds:
            out["catalog"] = {**catalog, **{kind: {k: read_kept(v) for k, v in items.items()}
                                            for kind, items in kinds.items()}}
    return out


class _First(Pending[Any]):
    def __init__(self, batch: Pending[list[Any]]) -> None:
        self.batch = batch

    def result(self) -> Any:
        return self.batch.result()[0]


class _Evaluation(Pending[Any]):
    """A time-limited evaluation under way; its answer, or its failure as a PolicyError."""

    def __init__(self, child: Pending[tuple[Any, ...]], path: str, engine: str, seconds: float) -> None:
        self.child, self.path, self.engine, self.seconds = child, path, engine, seconds

    def result(self) -> Any:
        try:
            kind, *rest = self.child.result()
        except TimeLimitExceeded:
            raise PolicyError(None, f"data.{self.path}: evaluation did not finish within "
                              f"{self.seconds:g}s (${settings.POLICY_TIMEOUT.name}); a rule may loop over "
                              f"a huge collection ({self.engine})") from None
        except ChildFailed as exc:
            raise PolicyError(None, f"data.{self.path}: the engine failed: {exc} ({self.engine})") from None
        if kind == "ok":
            return rest[0]
        where = Location(*rest[0]) if rest[0] else None
        raise PolicyError(where, rest[1])


def start_evaluation(engine: Engine, path: str, input_doc: Any) -> Pending[Any]:
    """``engine.evaluate(path, input_doc)``, under way in a child where the engine runs in
    one (the time-limited embedded engine), else computed now."""
    if isinstance(engine, TimeLimitedEngine):
        return engine.start(path, input_doc)
    return Done(engine.evaluate(path, input_doc))


def start_batch(engine: Engine, requests: Sequence[Request]) -> Pending[list[Any]]:
    """Every request's answer, in order: under way in one child where the engine runs in
    one, else computed now."""
    if not requests:
        return Done([])
    if isinstance(engine, TimeLimitedEngine):
        return engine.start_batch(requests)
    return Done([_evaluate(engine, r) for r in requests])


def make_engine(name: str = settings.DEFAULT_ENGINE, *, opa_url: str | None = None, timeout: float = 10.0,
                time_limit: float | None = None) -> Engine:
    """The engine to evaluate with.  The default embedded engine gets a time limit per
    evaluation (``time_limit``, default :func:`policy_timeout`); an OPA server has the
    HTTP ``timeout``; the in-process OPA library (agreement tests, benchmarks) has none."""
    if opa_url:
        return OpaServerEngine(opa_url, timeout=timeout)
    seconds = time_limit if time_limit is not None else policy_timeout()
    if name == "regorus":
        return TimeLimitedEngine(RegorusEngine(), seconds)
    if name == "opa":
        # Go's runtime does not survive fork(): the OPA library runs inline, unbounded
        return OpaLibEngine()
    raise EngineUnavailable(f"unknown engine {name!r}; one of {', '.join(ENGINES)}")
