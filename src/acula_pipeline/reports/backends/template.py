"""The default backend: the deterministic template writer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from acula_pipeline.reports.backends.base import (
    Generation,
    ReportRequest,
    register_backend,
)
from acula_pipeline.reports.templates import template_fingerprint, write_report


class TemplateCfg(BaseModel):
    """``reports.template``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0  # changes every phrasing choice


class TemplateBackend:
    """Writes each report from the facts with seeded, varied phrasing."""

    name = "template"
    is_llm = False
    per_unit = True

    def __init__(self, cfg: TemplateCfg) -> None:
        self.cfg = cfg
        self.model = f"template-{template_fingerprint()}"
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return {"seed": self.cfg.seed, "phrasebook": template_fingerprint()}

    def write(self, req: ReportRequest) -> str:
        """The template report of one request (also the fallback of LLM backends)."""
        return write_report(
            req.facts, req.modality, req.unit_id, req.unit, self.cfg.seed
        )

    def generate(self, requests: Sequence[ReportRequest]) -> Iterator[Generation]:
        for req in requests:
            self.calls += 1
            yield Generation(req.key, self.write(req))

    def stats(self) -> dict[str, Any]:
        return {"calls": self.calls}


@register_backend("template")
def make_template(cfg: Any) -> TemplateBackend:
    return TemplateBackend(cfg.template)
