"""A loopback stand-in for the `opa` binary, which cannot be had here.

It implements the OPA REST endpoints that ``opa-python-client`` uses —
``PUT /v1/policies/<id>``, ``PUT /v1/data/<path>``, ``POST /v1/data/<path>`` and
``GET /health`` — on the real OPA engine (OPA 1.20.2 compiled into
``opa-golib-python-bindings``), so the OPA-server backend of kitchen is exercised end to
end over HTTP: the client, the wire format, the error bodies.  It binds 127.0.0.1 only
and is always stopped by the fixture that starts it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

_LOC = re.compile(r"(?P<file>[^\s:]+\.rego):(?P<row>\d+)(?::(?P<col>\d+))?:\s*(?P<code>[a-z_]+):\s*(?P<msg>[^\n]+)")


class _State:
    def __init__(self) -> None:
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.engine = OpaEngine()

    def build(self, policies: dict[str, str]) -> OpaEngine:
        engine = OpaEngine()
        for pid, text in policies.items():
            engine.add_policy(pid, text)
        if self.data:
            engine.add_data(self.data)
        engine.eval_query("true")  # compiles every module, as OPA does on upload
        return engine


def _error_body(exc: OpaError) -> dict[str, Any]:
    errors = [{"code": m.group("code"), "message": m.group("msg"),
               "location": {"file": m.group("file"), "row": int(m.group("row")),
                            "col": int(m.group("col") or 0)}}
              for m in _LOC.finditer(exc.message)]
    return {"code": "invalid_parameter", "message": "error(s) occurred while compiling module(s)",
            "errors": errors}


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any = None) -> None:
            raw = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            self._send(200, {}) if self.path.startswith("/health") else self._send(404, {"code": "not_found"})

        def do_PUT(self) -> None:
            body = self._body()
            with state.lock:
                if self.path.startswith("/v1/policies/"):
                    pid = self.path.removeprefix("/v1/policies/")
                    policies = {**state.policies, pid: body.decode()}
                    try:
                        state.engine = state.build(policies)
                    except OpaError as exc:
                        self._send(400, _error_body(exc))
                        return
                    state.policies = policies
                    self._send(200, {})
                elif self.path.startswith("/v1/data/"):
                    parts = [p for p in self.path.removeprefix("/v1/data/").split("/") if p]
                    node = state.data
                    for p in parts[:-1]:
                        node = node.setdefault(p, {})
                    node[parts[-1]] = json.loads(body)
                    state.engine = state.build(state.policies)
                    self._send(204)
                else:
                    self._send(404, {"code": "not_found"})

        def do_POST(self) -> None:
            if not self.path.startswith("/v1/data/"):
                self._send(404, {"code": "not_found"})
                return
            path = self.path.removeprefix("/v1/data/").split("?")[0].strip("/").replace("/", ".")
            doc = json.loads(self._body() or b"{}")
            with state.lock:
                try:
                    self._send(200, {"result": state.engine.eval_document(path, doc.get("input"))})
                except OpaUndefinedError:
                    self._send(200, {})
                except OpaError as exc:
                    self._send(500, {"code": "internal_error", "message": exc.message})

    return Handler


@contextmanager
def opa_standin() -> Iterator[str]:
    """Serve on 127.0.0.1 on a free port; yields the URL; always shuts down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(_State()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
