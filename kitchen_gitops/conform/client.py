"""A small client for vLLM's OpenAI-compatible API: models, completions, streaming, metrics.

Requests are deterministic (temperature 0, a fixed seed).  Streaming requests are timed the
way ``vllm bench serve`` times them: TTFT at the first streamed chunk that carries
``choices``, inter-token latencies between such chunks, latency at the last one, and the
token counts from the server's ``usage``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

SEED = 0


class Unreachable(Exception):
    """The server did not answer (connection refused, DNS, timeout)."""


class ApiError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def completion_body(model: str, prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens,
                            "temperature": 0.0, "seed": SEED}
    body.update(extra)
    return body


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


def _completion(data: dict[str, Any]) -> Completion:
    usage = data.get("usage") or {}
    return Completion(str(data["choices"][0].get("text") or ""),
                      int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0))


class OpenAIClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, headers=_headers(token))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"{self.base_url}{path}"
        try:
            r = self._http.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout,
                httpx.RemoteProtocolError) as exc:
            raise Unreachable(f"{url}: {type(exc).__name__}: {exc or 'no answer'}") from None
        if r.status_code != 200:
            raise ApiError(r.status_code, r.text)
        return r

    def models(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/v1/models").json()
        return [m for m in data.get("data", []) if isinstance(m, dict)]

    def complete(self, model: str, prompt: str, max_tokens: int, **extra: Any) -> Completion:
        body = completion_body(model, prompt, max_tokens, **extra)
        return _completion(self._request("POST", "/v1/completions", json=body).json())

    def metrics(self) -> str:
        return self._request("GET", "/metrics").text


@dataclass
class StreamRecord:
    model: str
    start: float = 0.0  # perf_counter at send
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def tpot(self) -> float:
        """(latency − TTFT) / (tokens − 1), 0 for a single token, as ``vllm bench serve``."""
        if self.output_tokens > 1:
            return (self.latency - self.ttft) / (self.output_tokens - 1)
        return 0.0


async def stream_completion(session: aiohttp.ClientSession, base_url: str, model: str,
                            prompt: str, max_tokens: int, **extra: Any) -> StreamRecord:
    """One streaming completion, timed.  aiohttp, as ``vllm bench serve`` uses: httpx's
    streaming costs about three times the CPU per chunk, which on a busy host delays
    chunks and inflates TTFT."""
    body = completion_body(model, prompt, max_tokens, stream=True,
                           stream_options={"include_usage": True}, **extra)
    rec = StreamRecord(model)
    st = time.perf_counter()
    rec.start = st
    last = st
    got_first = False
    buffer = b""
    try:
        async with session.post(f"{base_url.rstrip('/')}/v1/completions", json=body) as r:
            if r.status != 200:
                rec.error = f"HTTP {r.status}: {(await r.text())[:300]}"
                return rec
            async for chunk in r.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8").strip()
                    if not line or line.startswith(":"):
                        continue
                    data_text = line.removeprefix("data:").strip()
                    if data_text == "[DONE]":
                        continue
                    data = json.loads(data_text)
                    if choices := data.get("choices"):
                        now = time.perf_counter()
                        if not got_first:
                            got_first = True
                            rec.ttft = now - st
                        else:
                            rec.itl.append(now - last)
                        last = now
                        rec.text += choices[0].get("text") or ""
                    elif usage := data.get("usage"):
                        rec.output_tokens = int(usage.get("completion_tokens") or 0)
                        rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    except (aiohttp.ClientError, TimeoutError) as exc:
        rec.error = f"{type(exc).__name__}: {exc or 'no answer'}"
        return rec
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        rec.error = f"unreadable stream chunk: {exc}"
        return rec
    if not got_first:
        rec.error = "the stream carried no choices"
    rec.latency = last - st
    return rec
