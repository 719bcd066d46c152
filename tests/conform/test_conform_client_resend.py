"""A request that fails before any response is sent again on a new connection, a bounded
number of times: a kept-alive connection the server closed a moment earlier must not make
a service count as "does not answer".  A real socket server drops the first connections.
Completions are POSTs, which aiohttp itself never sends twice."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import aiohttp
import pytest

from kitchen_gitops.conform.client import (
    RESEND_BEFORE_RESPONSE,
    OpenAIClient,
    Unreachable,
    stream_completion,
)

COMPLETION = json.dumps({"choices": [{"text": "hi", "token_ids": [7]}],
                         "usage": {"prompt_tokens": 2, "completion_tokens": 1}}).encode()
STREAM = (b'data: {"choices": [{"text": "hi", "token_ids": [7]}]}\n\n'
          b'data: {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}\n\n'
          b"data: [DONE]\n\n")


class DroppingServer:
    """Resets its first ``drops`` connections as soon as it accepts them; answers later
    ones with a one-token completion, streamed when asked."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.connections = 0
        self.answered = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(30)
            with conn:
                self.connections += 1
                if self.connections <= self.drops:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    continue  # closed with a reset, before reading anything
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        if json.loads(body).get("stream"):
            kind, payload = b"text/event-stream", STREAM
        else:
            kind, payload = b"application/json", COMPLETION
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n" + payload)
        self.answered += 1

    def __enter__(self) -> DroppingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_a_dropped_connection_is_sent_again_and_answers() -> None:
    with DroppingServer(drops=RESEND_BEFORE_RESPONSE) as s, OpenAIClient(s.url, timeout=30) as client:
        assert client.complete("tiny", "a prompt", 1).text == "hi"
    assert s.connections == RESEND_BEFORE_RESPONSE + 1
    assert s.answered == 1


def test_a_server_that_keeps_dropping_does_not_answer_after_the_bounded_resends() -> None:
    with (DroppingServer(drops=100) as s, OpenAIClient(s.url, timeout=30) as client,
          pytest.raises(Unreachable)):
        client.complete("tiny", "a prompt", 1)
    assert s.connections == RESEND_BEFORE_RESPONSE + 1
    assert s.answered == 0


def test_a_streamed_completion_is_sent_again_after_a_dropped_connection() -> None:
    async def one(url: str) -> tuple[str, list[int], str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            rec = await stream_completion(http, url, "tiny", "a prompt", 1)
        return rec.text, rec.token_ids, rec.error

    with DroppingServer(drops=1) as s:
        assert asyncio.run(one(s.url)) == ("hi", [7], "")
    assert s.connections == 2
