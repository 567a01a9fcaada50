"""Typed ``reports`` parameters; Kedro validates them before any node runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acula_pipeline.reports.backends import BACKENDS
from acula_pipeline.reports.backends.file import FileCfg
from acula_pipeline.reports.backends.local_lm import TransformersCfg
from acula_pipeline.reports.backends.openai_compat import OpenAICfg
from acula_pipeline.reports.backends.template import TemplateCfg
from acula_pipeline.reports.checks import CheckCfg
from acula_pipeline.reports.facts import FACT_EXTRACTORS, FIELD_LABELS
from acula_pipeline.reports.judge import JudgeCfg
from acula_pipeline.reports.prompts import PromptCfg


class LeakageCfg(BaseModel):
    """Subjects reserved for evaluation stay out of alignment (``reports.leakage``)."""

    model_config = ConfigDict(extra="forbid")

    # Splits of the subject table (data/03_primary/splits.parquet) whose subjects'
    # reports are kept out of the alignment corpus.
    exclude_splits: list[str] = ["test"]
    exclude_subjects: list[str] = []  # explicit subject ids, e.g. icbhi2017:101
    # Reserved subjects still get a report, written to heldout_reports.parquet and
    # used only to score audio→report retrieval on the test split.
    heldout_reports: bool = True
    # true: no subject is reserved (as the paper's setup); test subjects' reports are
    # aligned on, and the evaluate stage's leakage audit reports the overlap instead
    # of failing. Probe numbers are then optimistic.
    paper_like: bool = False


class ReportsParams(BaseModel):
    """All of ``conf/base/parameters_reports.yml``."""

    model_config = ConfigDict(extra="forbid")

    backend: str = "template"
    fields: dict[str, list[str]]  # adapter → facts that may be sent (allow-list)
    prompts: PromptCfg
    checks: CheckCfg = CheckCfg()
    retry_failed: bool = True  # LLM backends: one more try with the reasons
    on_failure: Literal["fallback_template", "drop"] = "fallback_template"
    leakage: LeakageCfg = LeakageCfg()
    progress: bool = True
    template: TemplateCfg = TemplateCfg()
    openai: OpenAICfg = OpenAICfg()
    transformers: TransformersCfg = TransformersCfg()
    file: FileCfg = FileCfg()
    judge: JudgeCfg = JudgeCfg()  # a second model re-reads each report (off)
    limit: int | None = Field(
        default=None, ge=1
    )  # write only the first N units (smoke runs)

    @model_validator(mode="after")
    def _check(self) -> ReportsParams:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"reports.backend {self.backend!r} is not registered; "
                f"known: {sorted(BACKENDS)}"
            )
        for adapter, allow in self.fields.items():
            if adapter not in FACT_EXTRACTORS:
                raise ValueError(
                    f"reports.fields.{adapter}: no such source adapter; "
                    f"known: {sorted(FACT_EXTRACTORS)}"
                )
            unknown = [f for f in allow if f not in FIELD_LABELS]
            if unknown:
                raise ValueError(
                    f"reports.fields.{adapter}: unknown fields {unknown}; "
                    f"known: {sorted(FIELD_LABELS)}"
                )
        return self
