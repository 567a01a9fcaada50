"""Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp, hosted).

Requests run on a thread pool (``concurrency`` at a time) under an overall rate limit.
429, 5xx, timeouts, dropped connections and malformed answers are retried with
exponential backoff and full jitter (honouring ``Retry-After``), at most
``max_attempts`` times per report; other HTTP errors fail that report only, except
401/403/404, which mean the endpoint or key is wrong and stop the run.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from acula_pipeline.reports.backends.base import (
    BackendConfigError,
    Generation,
    ReportRequest,
    register_backend,
)

log = logging.getLogger(__name__)


class OpenAICfg(BaseModel):
    """``reports.openai``."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "http://127.0.0.1:8000/v1"  # up to and including /v1
    model: str = "local-model"
    api_key_env: str = "OPENAI_API_KEY"  # read first
    credentials_file: str = "conf/local/credentials.yml"  # then <key>.api_key here
    credentials_key: str = "openai_compatible"
    json_mode: bool = True  # response_format json_object; the report is in "report"
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)  # the whole request, not each read
    max_response_bytes: int = Field(default=1_000_000, ge=1_000)  # larger: refused
    max_attempts: int = Field(default=5, ge=1)  # per report, first try included
    backoff_s: float = Field(default=0.5, ge=0)  # exponential backoff multiplier
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_requests_per_s: float = Field(default=0.0, ge=0)  # overall; 0 = unlimited
    temperature: float = 0.2
    max_tokens: int = Field(default=256, ge=1)
    seed: int | None = 0  # sent where the server supports it
    extra_body: dict[str, Any] = {}  # passed through (e.g. vLLM options)


class TransientError(RuntimeError):
    """Worth retrying: rate limited, server error, timeout, malformed answer."""

    def __init__(self, msg: str, retry_after: float | None = None) -> None:
        super().__init__(msg)
        self.retry_after = retry_after


class RequestFailed(RuntimeError):
    """This report cannot be written by the endpoint (e.g. 400 prompt too long)."""


class RateLimiter:
    """At most ``rate`` request starts per second across threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def resolve_api_key(cfg: OpenAICfg) -> str | None:
    """The key from the environment, else ``credentials_file``; None if neither."""
    if os.environ.get(cfg.api_key_env):
        return os.environ[cfg.api_key_env]
    path = Path(cfg.credentials_file)
    if path.is_file():
        creds = yaml.safe_load(path.read_text()) or {}
        entry = creds.get(cfg.credentials_key) or {}
        if isinstance(entry, dict) and entry.get("api_key"):
            return str(entry["api_key"])
    return None


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None


class OpenAIBackend:
    """Concurrent, rate-limited, retrying chat-completions client."""

    name = "openai"
    is_llm = True
    per_unit = False
    # with json_mode, the report is this key of the answer; None: the whole answer
    answer_key: str | None = "report"

    def __init__(self, cfg: OpenAICfg) -> None:
        self.cfg = cfg
        self.model = cfg.model
        key = resolve_api_key(cfg)
        self._secret = key or ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout_s),
            limits=httpx.Limits(max_connections=cfg.concurrency),
        )
        self._limiter = RateLimiter(cfg.max_requests_per_s)
        self._lock = threading.Lock()
        self._stats = {
            "http_requests": 0,
            "retries": 0,
            "failed": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
        }

    def identity(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "base_url": c.base_url,
            "model": c.model,
            "json_mode": c.json_mode,
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "seed": c.seed,
            "extra_body": c.extra_body,
        }

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def _post(self, req: ReportRequest) -> Generation:
        c = self.cfg
        body: dict[str, Any] = {
            "model": c.model,
            "messages": req.messages,
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            **c.extra_body,
        }
        if c.seed is not None:
            body["seed"] = c.seed
        if c.json_mode:
            body["response_format"] = {"type": "json_object"}
        self._limiter.acquire()
        self._count("http_requests")
        try:
            resp, raw = self._exchange(body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout after {c.timeout_s} s") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"connection error: {self._redact(str(exc))}") from exc
        # a server may echo the request (and the key) in an error body
        text = self._redact(raw.decode("utf-8", errors="replace"))
        if resp.status_code in (401, 403, 404):
            raise BackendConfigError(
                f"{c.base_url}/chat/completions answered {resp.status_code} "
                f"({text[:200]!r}); check reports.openai.base_url, model and "
                f"the API key ({c.api_key_env} or {c.credentials_file})"
            )
        if resp.status_code in (408, 409, 425, 429) or resp.status_code >= 500:
            raise TransientError(f"HTTP {resp.status_code}", _retry_after(resp))
        if resp.status_code != 200:
            raise RequestFailed(f"HTTP {resp.status_code}: {text[:200]}")
        try:
            payload = json.loads(raw)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TransientError(f"malformed response: {text[:120]!r}") from exc
        text = self._parse_content(content)
        usage = payload.get("usage") or {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if pt:
            self._count("prompt_tokens", int(pt))
        if ct:
            self._count("completion_tokens", int(ct))
        return Generation(req.key, text, None, pt, ct)

    def _redact(self, text: str) -> str:
        """``text`` without the API key, whatever the server echoed."""
        return text.replace(self._secret, "[API key]") if self._secret else text

    def _exchange(self, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
        """POST and read the answer under one deadline (``timeout_s`` for the whole
        request: a server trickling bytes cannot hold a worker) and a size cap
        (``max_response_bytes``: a huge answer is refused, never cached)."""
        c = self.cfg
        deadline = time.monotonic() + c.timeout_s
        with self._client.stream("POST", "/chat/completions", json=body) as resp:
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > c.max_response_bytes:
                    raise RequestFailed(
                        f"answer larger than reports.openai.max_response_bytes = "
                        f"{c.max_response_bytes}"
                    )
                if time.monotonic() > deadline:
                    raise TransientError(f"no complete answer within {c.timeout_s} s")
                chunks.append(chunk)
        return resp, b"".join(chunks)

    def _parse_content(self, content: Any) -> str:
        if not isinstance(content, str):
            raise TransientError(f"malformed content: {content!r:.120}")
        if not self.cfg.json_mode or self.answer_key is None:
            return content.strip()
        try:
            obj = json.loads(content)
            report = obj[self.answer_key]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(f"malformed JSON content: {content[:120]!r}") from exc
        if not isinstance(report, str):
            raise TransientError(
                f"{self.answer_key!r} is not a string: {report!r:.120}"
            )
        return report.strip()

    def _wait(self, state: RetryCallState) -> float:
        base = wait_random_exponential(
            multiplier=self.cfg.backoff_s, max=self.cfg.backoff_max_s
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        return min(max(base, after or 0.0), self.cfg.backoff_max_s)

    def _one(self, req: ReportRequest) -> Generation:
        def before_sleep(state: RetryCallState) -> None:
            self._count("retries")
            exc = state.outcome.exception() if state.outcome else None
            log.debug("%s: retrying after %s", req.unit_id, exc)

        retrying = Retrying(
            stop=stop_after_attempt(self.cfg.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._post, req)
        except (TransientError, RequestFailed) as exc:
            self._count("failed")
            return Generation(req.key, None, f"{type(exc).__name__}: {exc}")

    def generate(self, requests: Sequence[ReportRequest]) -> Iterator[Generation]:
        """Yields each generation as soon as it is done (completion order)."""
        ahead = 2 * self.cfg.concurrency
        todo = iter(requests)
        pending: set[Future[Generation]] = set()
        pool = ThreadPoolExecutor(self.cfg.concurrency, "acula-llm")
        try:
            for req in todo:
                pending.add(pool.submit(self._one, req))
                if len(pending) >= ahead:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        finally:
            # On an interrupt, drop the queued requests and let the running ones
            # (at most one per worker, bounded by the timeout) finish, so no request
            # of this run reaches the server after it has returned.
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._client.close()


@register_backend("openai")
def make_openai(cfg: Any) -> OpenAIBackend:
    return OpenAIBackend(cfg.openai)
