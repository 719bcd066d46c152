"""A small client for vLLM's OpenAI-compatible API: models, completions, streaming, scoring,
metrics.

Requests are deterministic (temperature 0, a fixed seed).  Streaming requests are timed the
way ``vllm bench serve`` times them: TTFT at the first streamed chunk that carries
``choices``, inter-token latencies between such chunks, latency at the last one, and the
token counts from the server's ``usage``.  Completions ask for their token ids
(``return_token_ids``), so that an answer can be scored token by token under another model
(``score``: teacher forcing with ``prompt_logprobs``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

SEED = 0


class Unreachable(Exception):
    """The server did not answer (connection refused, DNS, timeout)."""


class ApiError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


# A kept-alive connection the server has just closed (uvicorn closes idle ones after 5 s)
# fails the next request before any response: "Can not write request body", "Server
# disconnected".  Such a request never reached the model, so it is sent again on a new
# connection, at most this many times, before the server counts as not answering.
RESEND_BEFORE_RESPONSE = 2
_NOT_SENT = (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)


async def send_resending(session: aiohttp.ClientSession, method: str, url: str,
                         body: Mapping[str, object] | None) -> aiohttp.ClientResponse:
    """``session.request``, sent again on a new connection while it fails before any
    response (``RESEND_BEFORE_RESPONSE`` times at most)."""
    attempt = 0
    while True:
        try:
            return await session.request(method, url, json=body)
        except _NOT_SENT:
            if attempt == RESEND_BEFORE_RESPONSE:
                raise
            attempt += 1


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


Prompt = str | list[int]  # text, or token ids (vLLM's completions API takes both)


def completion_body(model: str, prompt: Prompt, max_tokens: int, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "prompt": prompt, "max_tokens": max_tokens,
                               "temperature": 0.0, "seed": SEED}
    body.update(extra)
    return body


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    token_ids: tuple[int, ...] = ()  # of the answer (vLLM's return_token_ids)
    prompt_token_ids: tuple[int, ...] = ()


def _completion(data: dict[str, Any]) -> Completion:
    usage = data.get("usage") or {}
    choice = data["choices"][0]
    return Completion(str(choice.get("text") or ""),
                      int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0),
                      tuple(int(t) for t in choice.get("token_ids") or ()),
                      tuple(int(t) for t in choice.get("prompt_token_ids") or ()))


@dataclass(frozen=True)
class TokenScore:
    """One answer token under teacher forcing: its log-probability and the best one's."""

    token: int
    logprob: float
    top_logprob: float
    rank: int

    @property
    def deficit(self) -> float:
        """How far the token is from the model's greedy choice, in nats (0 when it is it)."""
        return max(self.top_logprob - self.logprob, 0.0)


def token_scores(prompt_logprobs: list[Any], answer: tuple[int, ...]) -> list[TokenScore]:
    """The scores of the last ``len(answer)`` prompt positions (vLLM's ``prompt_logprobs``
    with 1: each position maps token id -> {logprob, rank}, holding the prompt's own token
    and the top-1 one)."""
    out = []
    tail = prompt_logprobs[len(prompt_logprobs) - len(answer):] if answer else []
    for token, pos in zip(answer, tail, strict=True):
        entries = {int(k): v for k, v in (pos or {}).items()}
        own = entries.get(token)
        if own is None:
            raise ApiError(200, f"prompt_logprobs carry no entry for token {token}")
        top = max(float(v["logprob"]) for v in entries.values())
        out.append(TokenScore(token, float(own["logprob"]), top, int(own.get("rank") or 0)))
    return out


class OpenAIClient:
    """The OpenAI-compatible API of one served InferenceService, called one request at a
    time.  aiohttp on a loop of its own: one HTTP stack for every conformance request (the
    timed load streams through the same library, as ``vllm bench serve`` does)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._session = self._loop.run_until_complete(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                     headers=_headers(self.token))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.run_until_complete(self._session.close())
        self._loop.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: Mapping[str, object] | None = None) -> str:
        url = f"{self.base_url}{path}"

        async def send() -> tuple[int, str]:
            async with await send_resending(self._session, method, url, body) as r:
                return r.status, await r.text()

        try:
            status, text = self._loop.run_until_complete(send())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{url}: {type(exc).__name__}: {exc or 'no answer'}") from None
        if status != 200:
            raise ApiError(status, text)
        return text

    def models(self) -> list[dict[str, Any]]:
        data = json.loads(self._request("GET", "/v1/models"))
        return [m for m in data.get("data", []) if isinstance(m, dict)]

    def complete(self, model: str, prompt: Prompt, max_tokens: int, **extra: object) -> Completion:
        body = completion_body(model, prompt, max_tokens, return_token_ids=True, **extra)
        return _completion(json.loads(self._request("POST", "/v1/completions", body)))

    def score(self, model: str, prompt_ids: tuple[int, ...],
              answer_ids: tuple[int, ...]) -> list[TokenScore]:
        """Teacher forcing: the prompt followed by the answer, as token ids, in one prefill
        of ``model``; every answer token's log-probability next to the greedy one's."""
        body = completion_body(model, [*prompt_ids, *answer_ids], 1, prompt_logprobs=1)
        data = json.loads(self._request("POST", "/v1/completions", body))
        return token_scores(data["choices"][0].get("prompt_logprobs") or [], answer_ids)

    def metrics(self) -> str:
        return self._request("GET", "/metrics")


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
    token_ids: list[int] = field(default_factory=list)
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
                            prompt: Prompt, max_tokens: int, **extra: object) -> StreamRecord:
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
        url = f"{base_url.rstrip('/')}/v1/completions"
        async with await send_resending(session, "POST", url, body) as r:
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
                        rec.token_ids += choices[0].get("token_ids") or ()
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
