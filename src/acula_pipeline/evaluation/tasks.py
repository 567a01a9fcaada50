"""Benchmark tasks: which recordings, which target, which metric.

A task names an adapter (``circor2022``, ``icbhi2017``, ``coswara``, …), the label
column, and either a class map (label value → class index; other values are left
out and counted) or ``regression``. It runs on every dataset that adapter produced
(the synthetic corpus and a real copy are separate rows of the results), at the
recording or the subject level (a subject's embedding: the mean of its
recordings'). A task with nothing to run on says why instead of vanishing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from acula_pipeline.evaluation.embed import pool_by
from acula_pipeline.evaluation.probes import Split

log = logging.getLogger(__name__)


class TaskSpec(BaseModel):
    """One entry of ``evaluate.tasks``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    adapter: str
    target: str
    kind: Literal["classification", "regression"] = "classification"
    classes: dict[str, int] | None = None  # classification: label → class index
    unit: Literal["recording", "subject"] = "recording"

    @model_validator(mode="after")
    def _classes(self) -> TaskSpec:
        if self.kind == "classification":
            if not self.classes:
                raise ValueError(f"task {self.name!r}: classification needs classes")
            if sorted(set(self.classes.values())) != list(
                range(len(set(self.classes.values())))
            ):
                raise ValueError(
                    f"task {self.name!r}: class indices must be 0 … k−1, "
                    f"got {sorted(set(self.classes.values()))}"
                )
        return self


@dataclass
class TaskData:
    """A task on one dataset: its splits, or why it cannot run."""

    task: str
    dataset: str
    splits: dict[str, Split] | None
    counts: dict[str, int]  # examples per split (and "left_out")
    skipped: str | None = None


def task_data(
    spec: TaskSpec,
    recordings: pd.DataFrame,
    splits: pd.DataFrame,
    embeddings: dict[str, np.ndarray],
) -> list[TaskData]:
    """The task's train/val/test splits on each dataset of its adapter.

    ``embeddings`` maps recording ids to vectors; recordings without one (no clip
    survived ingest) are left out and counted.
    """
    mine = recordings[recordings["adapter"] == spec.adapter]
    if mine.empty:
        why = f"no recordings from adapter {spec.adapter!r} (source not enabled)"
        log.info("Task %s skipped: %s", spec.name, why)
        return [TaskData(spec.name, "-", None, {}, why)]
    split_of = splits.set_index("subject_id")["split"]
    out = []
    for dataset, rec in mine.groupby("dataset", sort=True):
        y = rec[spec.target]
        if spec.kind == "classification":
            assert spec.classes is not None
            y = y.astype("string").map(spec.classes)
        keep = y.notna() & rec["recording_id"].isin(embeddings.keys())
        left_out = int((~keep).sum())
        rec, y = rec[keep], y[keep].astype(float)
        ids = rec["recording_id"].tolist()
        x = np.stack([embeddings[r] for r in ids]) if ids else np.zeros((0, 1))
        keys = rec["subject_id"] if spec.unit == "subject" else rec["recording_id"]
        frame = pd.DataFrame({"key": keys.to_numpy(), "subject": rec["subject_id"]})
        frame["y"] = y.to_numpy()
        if spec.unit == "subject":
            ukeys, x = pool_by(frame["key"].tolist(), x)
            frame = frame.groupby("key", sort=True).first().loc[ukeys].reset_index()
        frame["split"] = frame["subject"].map(split_of)
        data: dict[str, Split] = {}
        counts = {"left_out": left_out}
        reason: str | None = None
        for name in ("train", "val", "test"):
            m = (frame["split"] == name).to_numpy()
            yy = frame.loc[m, "y"].to_numpy()
            data[name] = Split(
                x[m], yy.astype(np.int64) if spec.kind == "classification" else yy
            )
            counts[name] = int(m.sum())
            if spec.kind == "classification" and len(np.unique(yy)) < 2:
                reason = (
                    reason or f"the {name} split holds {len(np.unique(yy))} class(es)"
                )
            if spec.kind == "regression" and len(yy) < 2:
                reason = reason or f"the {name} split holds {len(yy)} example(s)"
        if reason:
            log.warning("Task %s on %s skipped: %s", spec.name, dataset, reason)
        out.append(
            TaskData(spec.name, str(dataset), None if reason else data, counts, reason)
        )
    return out
