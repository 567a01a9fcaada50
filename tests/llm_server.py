"""A chat-completions server on 127.0.0.1 for the ``openai`` backend tests.

Answers come from a table keyed by the first user message; a per-key plan of
behaviours (``429``, ``500``, ``malformed_body``, ``malformed_json``, ``hang``,
``trickle`` (the whole answer one byte at a time), ``refusal``, ``ok``) scripts the successive attempts, so tests know exactly how many
requests each report should take.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    """Start with ``with FakeLLM(answers) as llm:``; ``llm.url`` is the base URL."""

    def __init__(
        self,
        answers: dict[str, str],
        plans: dict[str, list[str]] | None = None,
        latency_s: float = 0.0,
        hang_s: float = 2.0,
        trickle_s: float = 0.02,
        status: int | None = None,
        content_fn: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.answers = answers
        # request body → the message content, verbatim (a judge's JSON answer)
        self.content_fn = content_fn
        self.plans = plans or {}
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.trickle_s = trickle_s  # seconds per byte of a "trickle" answer
        self.status = status  # answer every request with this status
        self.attempts: Counter[str] = Counter()
        self.requests = 0
        self.inflight = 0
        self.max_inflight = 0
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self) -> FakeLLM:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _behaviour(self, key: str, retry: bool) -> str:
        with self._lock:
            n = self.attempts[key]
            self.attempts[key] += 1
            self.requests += 1
        plan = self.plans.get(key, [])
        if retry:
            return "ok"
        return plan[n] if n < len(plan) else "ok"

    @staticmethod
    def _payload(report: str, content: str | None = None) -> dict[str, Any]:
        """A chat-completions answer carrying ``content`` (default: the report as
        JSON)."""
        if content is None:
            content = json.dumps({"report": report})
        return {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like vLLM and hosted APIs

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without this, Nagle's
                # algorithm and delayed ACKs add ~40 ms to every kept-alive request.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, code: int, body: bytes, headers: dict | None = None
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with llm._lock:
                    llm.bodies.append(body)
                    llm.inflight += 1
                    llm.max_inflight = max(llm.max_inflight, llm.inflight)
                try:
                    self._answer(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with llm._lock:
                        llm.inflight -= 1

            def _answer(self, body: dict) -> None:
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "no such route"}')
                    return
                if llm.status:
                    with llm._lock:
                        llm.requests += 1
                    # as some servers do: the credentials echoed in the error
                    auth = self.headers.get("Authorization")
                    echo = {"error": f"scripted; credentials were {auth}"}
                    self._send(llm.status, json.dumps(echo).encode())
                    return
                msgs = body["messages"]
                key = next(m["content"] for m in msgs if m["role"] == "user")
                what = llm._behaviour(key, retry=len(msgs) > 2)
                time.sleep(llm.latency_s)
                if what == "429":
                    self._send(429, b'{"error": "rate"}', {"Retry-After": "0.01"})
                elif what == "500":
                    self._send(500, b'{"error": "boom"}')
                elif what == "malformed_body":
                    self._send(200, b'{"choices": [{"message": {"content": ')
                elif what == "hang":
                    time.sleep(llm.hang_s)
                    self._send(200, b"{}")
                elif what == "trickle":  # a whole answer, one byte at a time
                    body = json.dumps(llm._payload(llm.answers.get(key, ""))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(llm.trickle_s)
                else:
                    report = llm.answers.get(key, "")
                    if what == "refusal":
                        report = "I'm sorry, I cannot help with medical reports."
                    content = (
                        '{"report": "unterminated'
                        if what == "malformed_json"
                        else llm.content_fn(body)
                        if llm.content_fn
                        else json.dumps({"report": report})
                    )
                    payload = llm._payload(report, content)
                    self._send(200, json.dumps(payload).encode())

        return Handler


def serve_in_process(answers: dict[str, str], latency_s: float, urls: Any) -> None:
    """Run a FakeLLM until killed, putting its URL on ``urls`` (a queue).

    For benchmarks: a real endpoint is another process, so the client is measured
    without the server's work competing for the same interpreter lock.
    """
    with FakeLLM(answers, latency_s=latency_s) as llm:
        urls.put(llm.url)
        threading.Event().wait()
