"""The report backend interface and its registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from acula_pipeline.reports.facts import Facts
from acula_pipeline.reports.prompts import Message


@dataclass(frozen=True)
class ReportRequest:
    """One report to write."""

    key: str  # cache key
    unit_id: str
    unit: str  # cycle | recording
    adapter: str
    modality: str
    facts: Facts  # allow-listed
    messages: list[Message]
    row: dict[str, Any] = field(default_factory=dict, compare=False)  # the unit row


@dataclass
class Generation:
    """What a backend returned for one request: text, or why there is none."""

    key: str
    text: str | None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class BackendConfigError(RuntimeError):
    """The backend cannot work at all (bad path, endpoint refusing credentials)."""


class ReportBackend(Protocol):
    """Writes reports. ``generate`` yields one Generation per request, in any order,
    as soon as each is done, so the caller can cache it before the next arrives."""

    name: str
    model: str
    is_llm: bool  # LLM output is retried once when it fails a check
    per_unit: bool  # output depends on the unit id, not only on the prompt

    def identity(self) -> dict[str, Any]:
        """Everything that changes the output (goes into the cache key)."""
        ...

    def generate(self, requests: Sequence[ReportRequest]) -> Iterator[Generation]:
        """Write the reports."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for the summary (requests, retries, tokens...)."""
        ...


BackendFactory = Callable[[Any], ReportBackend]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory under ``reports.backend: <name>``."""

    def deco(fn: BackendFactory) -> BackendFactory:
        BACKENDS[name] = fn
        return fn

    return deco
