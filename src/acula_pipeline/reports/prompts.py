"""Prompt building: a clinician-voiced system prompt per modality and the facts."""

from __future__ import annotations

import hashlib
import json
from string import Template
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from acula_pipeline.reports.facts import FIELD_LABELS, Facts

Message = dict[str, str]


class PromptCfg(BaseModel):
    """Prompt templates (``reports.prompts``); ``$facts`` and ``$modality`` fill in."""

    model_config = ConfigDict(extra="forbid")

    system: dict[str, str]
    user: str
    json_instruction: str = (
        'Answer with a JSON object of the form {"report": "<the report>"} and nothing '
        "else."
    )
    retry: str = (
        "The report above was rejected because: $reasons. Write it again, stating "
        "every listed fact correctly and nothing that is not listed."
    )

    @model_validator(mode="after")
    def _check(self) -> PromptCfg:
        if "$facts" not in self.user:
            raise ValueError("reports.prompts.user must contain $facts")
        return self

    def fingerprint(self) -> str:
        """Hash of every template, recorded with each report."""
        return sha256_json(self.model_dump())[:16]


MODALITY_NAMES = {
    "heart": "heart sound",
    "lung": "lung sound",
    "cough": "cough",
    "breath": "breathing",
    "voice": "voice",
}


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def render_value(value: Any) -> str:
    """A fact value as prompt text."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def render_facts(facts: Facts) -> str:
    """One ``- Label: value`` line per fact."""
    return "\n".join(
        f"- {FIELD_LABELS.get(k, k)}: {render_value(v)}" for k, v in facts.items()
    )


def build_messages(
    cfg: PromptCfg, modality: str, facts: Facts, json_mode: bool
) -> list[Message]:
    """The chat messages for one unit.

    Raises:
        KeyError: No system prompt for the modality.
    """
    if modality not in cfg.system:
        raise KeyError(
            f"reports.prompts.system has no entry for modality {modality!r}; "
            f"has {sorted(cfg.system)}"
        )
    user = Template(cfg.user).safe_substitute(
        facts=render_facts(facts), modality=MODALITY_NAMES.get(modality, modality)
    )
    if json_mode:
        user = f"{user.rstrip()}\n{cfg.json_instruction}"
    return [
        {"role": "system", "content": cfg.system[modality].strip()},
        {"role": "user", "content": user},
    ]


def retry_messages(
    cfg: PromptCfg, messages: list[Message], previous: str, reasons: str
) -> list[Message]:
    """The conversation for a second attempt: the rejected answer and why."""
    note = Template(cfg.retry).safe_substitute(reasons=reasons)
    return [
        *messages,
        {"role": "assistant", "content": previous},
        {"role": "user", "content": note},
    ]
