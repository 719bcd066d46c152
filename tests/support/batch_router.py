"""An HTTP front for two real vLLM servers whose answers differ only by numerics.

    with BatchRouter(single=fp32.base_url, batched=bf16.base_url) as router:
        ... router.base_url ...

A completion that arrives while no other is in flight goes to ``single``; one that arrives
while others are in flight goes to ``batched``; everything else (``/v1/models``,
``/metrics``) goes to ``single``.  With the same weights and adapters served in float32
behind ``single`` and in bfloat16 behind ``batched``, requests answered one at a time and
requests answered in a burst differ the way a GPU's batch-dependent bf16 kernels make them
differ: by rounding, flipping greedy tokens where two logits nearly tie — and never by
another model's weights.  Streams are passed through chunk by chunk.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from .vllm_server import free_port

__all__ = ["BatchRouter"]


class BatchRouter:
    def __init__(self, *, single: str, batched: str) -> None:
        self.single = single.rstrip("/")
        self.batched = batched.rstrip("/")
        self.port = free_port()
        self.routed = {"single": 0, "batched": 0}
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        completion = request.method == "POST" and request.path == "/v1/completions"
        upstream = self.single
        if completion:
            if self._in_flight:
                upstream = self.batched
            self._in_flight += 1
            self.routed["batched" if upstream == self.batched else "single"] += 1
        try:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("content-type", "authorization")}
            timeout = aiohttp.ClientTimeout(total=300)
            async with aiohttp.ClientSession(timeout=timeout) as http, http.request(
                    request.method, upstream + request.path_qs, data=body or None,
                    headers=headers) as r:
                out = web.StreamResponse(status=r.status, headers={
                    "Content-Type": r.headers.get("Content-Type", "application/json")})
                await out.prepare(request)
                async for chunk in r.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
                return out
        finally:
            if completion:
                self._in_flight -= 1

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve, name="batch-router", daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the batch router did not start")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)
