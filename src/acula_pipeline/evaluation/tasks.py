"""Benchmark tasks: which units, which target, which split protocol, which metric.

A task names an adapter (``circor2022``, ``icbhi2017``, ``coswara``, …), the unit it
is scored on (a recording, an annotated respiratory cycle, or a subject), the label
column, its kind (``binary``, ``multiclass`` with a class map; ``regression``) and
its split protocol. It runs on every dataset that adapter produced (the synthetic
corpus and a real copy are separate rows of the results). A task with nothing to run
on says why instead of vanishing.

Split protocols: ``fixed`` uses the subject-disjoint train/val/test table;
``loso`` leaves one subject out at a time over every labelled unit (for small
sets); ``auto`` picks ``loso`` when the dataset has fewer labelled subjects than
``loso_below_subjects`` or the fixed split lacks a class somewhere, else ``fixed``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from acula_pipeline.evaluation.embed import pool_by
from acula_pipeline.evaluation.probes import Split

log = logging.getLogger(__name__)

Unit = Literal["recording", "cycle", "subject"]


class TaskSpec(BaseModel):
    """One entry of ``evaluate.tasks``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    adapter: str
    target: str
    unit: Unit = "recording"
    kind: Literal["binary", "multiclass", "regression"] = "binary"
    classes: dict[str, int] | None = None  # label value → class index 0 … k−1
    split: Literal["auto", "fixed", "loso"] = "auto"
    metric: Literal["auroc", "mae"] | None = None  # None: auroc, or mae for regression
    descriptions: list[str] | None = None  # zero-shot: one sentence per class index
    units_label: str = ""  # regression: the target's unit, for tables ("years")
    # Only recordings whose column holds one of the values, e.g.
    # {recording_type: [cough-shallow]} (Coswara T8/T9) or {modality: [breath]}.
    where: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        regression = self.kind == "regression"
        expected: Literal["auroc", "mae"] = "mae" if regression else "auroc"
        if self.metric is None:
            self.metric = expected
        elif self.metric != expected:
            raise ValueError(
                f"task {self.name!r}: a {self.kind} task is scored by {expected}, "
                f"not {self.metric}"
            )
        if regression:
            if self.classes or self.descriptions:
                raise ValueError(
                    f"task {self.name!r}: regression takes no classes or descriptions"
                )
            return self
        if not self.classes:
            raise ValueError(f"task {self.name!r}: {self.kind} needs classes")
        idx = sorted(set(self.classes.values()))
        if idx != list(range(len(idx))):
            raise ValueError(
                f"task {self.name!r}: class indices must be 0 … k−1, got {idx}"
            )
        if (self.kind == "binary") != (len(idx) == 2):
            raise ValueError(
                f"task {self.name!r}: kind {self.kind} with {len(idx)} classes"
            )
        if self.descriptions is not None and len(self.descriptions) != len(idx):
            raise ValueError(
                f"task {self.name!r}: {len(self.descriptions)} descriptions for "
                f"{len(idx)} classes (one sentence per class index)"
            )
        return self

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    @property
    def n_classes(self) -> int:
        return len(set(self.classes.values())) if self.classes else 0


@dataclass
class TaskData:
    """A task on one dataset: its labelled units and how they are split, or why it
    cannot run."""

    task: str
    dataset: str
    protocol: Literal["fixed", "loso"] | None
    frame: pd.DataFrame  # key, subject, split, y (one row per unit, aligned with x)
    x: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    def split(self, name: str) -> Split:
        m = (self.frame["split"] == name).to_numpy()
        return Split(self.x[m], self.frame.loc[m, "y"].to_numpy())


def unit_embeddings(
    unit: Literal["recording", "cycle"],
    segments: pd.DataFrame,
    segment_ids: Sequence[str],
    vectors: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-unit embeddings from per-clip ones: a recording's is the mean of its
    clips' (OPERA-GT framing), a cycle's is its own clip's."""
    seg = segments.set_index("segment_id").loc[list(segment_ids)]
    if unit == "cycle":
        m = (seg["unit"] == "cycle").to_numpy()
        return dict(zip(seg.index[m], vectors[m], strict=True))
    keys, pooled = pool_by(seg["recording_id"].tolist(), vectors)
    return dict(zip(keys, pooled, strict=True))


def _units(spec: TaskSpec, recordings: pd.DataFrame, segments: pd.DataFrame):
    """Rows to score: ``key`` (recording or segment id), subject, dataset, label."""
    rec = recordings[recordings["adapter"] == spec.adapter]
    for column, values in spec.where.items():
        if column not in rec:
            raise KeyError(
                f"task {spec.name!r}: 'where' names {column!r}, not a recordings column"
            )
        rec = rec[rec[column].astype("string").isin([str(v) for v in values])]
    if spec.unit != "cycle":
        if spec.target not in rec:
            raise KeyError(
                f"task {spec.name!r}: recordings have no column {spec.target!r}"
            )
        return rec.assign(key=rec["recording_id"], label=rec[spec.target])
    cols = ["recording_id", "adapter", "dataset", "subject_id"]
    cyc = (
        segments[segments["unit"] == "cycle"]
        .drop(columns=[c for c in cols[1:] if c in segments])
        .merge(rec[cols], on="recording_id")
    )
    if spec.target not in cyc:
        raise KeyError(f"task {spec.name!r}: segments have no column {spec.target!r}")
    return cyc.assign(key=cyc["segment_id"], label=cyc[spec.target])


def _labels(spec: TaskSpec, values: pd.Series) -> pd.Series:
    if spec.is_classification:
        assert spec.classes is not None
        return values.astype("string").map(spec.classes).astype(float)
    return pd.to_numeric(values, errors="coerce")


def task_data(
    spec: TaskSpec,
    recordings: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    embeddings: Mapping[str, np.ndarray],
    loso_below_subjects: int = 20,
    fixed_splits: tuple[str, ...] = ("train", "val", "test"),
) -> list[TaskData]:
    """The task's units on each dataset of its adapter, split by its protocol.

    ``fixed_splits`` are the splits the fixed protocol needs, each with every class
    (tuning, which never reads the test split, asks for train and val only).

    ``embeddings`` maps unit keys (recording ids; segment ids for cycle tasks) to
    vectors. Units without a label in the class map, or without an embedding (no clip
    survived ingest), are left out and counted.
    """
    rows = _units(spec, recordings, segments)
    if rows.empty:
        why = f"no {spec.unit}s from adapter {spec.adapter!r} (source not enabled)"
        if spec.where and (recordings["adapter"] == spec.adapter).any():
            why = f"no {spec.unit}s from adapter {spec.adapter!r} match {spec.where}"
        log.debug("Task %s skipped: %s", spec.name, why)
        return [
            TaskData(spec.name, "-", None, pd.DataFrame(), np.zeros((0, 0)), {}, why)
        ]
    split_of = splits.set_index("subject_id")["split"]
    out = []
    for dataset, group in rows.groupby("dataset", sort=True):
        y = _labels(spec, group["label"])
        keep = (y.notna() & group["key"].isin(embeddings.keys())).to_numpy()
        counts = {"left_out": int((~keep).sum())}
        group, y = group[keep], y[keep]
        frame = pd.DataFrame(
            {"key": group["key"].to_numpy(), "subject": group["subject_id"].to_numpy()}
        )
        frame["y"] = y.to_numpy()
        x = (
            np.stack([embeddings[k] for k in frame["key"]]).astype(np.float32)
            if len(frame)
            else np.zeros((0, 0), np.float32)
        )
        if spec.unit == "subject" and len(frame):
            keys, x = pool_by(frame["subject"].tolist(), x)
            frame = (
                frame.groupby("subject", sort=True)
                .agg(y=("y", "first"))
                .loc[keys]
                .reset_index()
            )
            frame.insert(0, "key", frame["subject"])
        frame["split"] = frame["subject"].map(split_of).fillna("unassigned")
        if spec.is_classification:
            frame["y"] = frame["y"].astype(np.int64)
        protocol, reason = _protocol(spec, frame, loso_below_subjects, fixed_splits)
        if protocol == "loso":
            frame["split"] = "loso"
        counts |= {
            str(k): int(v) for k, v in frame["split"].value_counts(sort=False).items()
        }
        counts["subjects"] = int(frame["subject"].nunique())
        if reason:
            log.debug("Task %s on %s skipped: %s", spec.name, dataset, reason)
        else:
            log.debug(
                "Task %s on %s: %s protocol, %s",
                spec.name,
                dataset,
                protocol,
                ", ".join(f"{k} {v}" for k, v in counts.items()),
            )
        out.append(
            TaskData(
                spec.name,
                str(dataset),
                None if reason else protocol,
                frame,
                x,
                counts,
                reason,
            )
        )
    return out


def _enough(spec: TaskSpec, y: np.ndarray) -> str | None:
    """Why these targets cannot be scored, or None."""
    if spec.is_classification and len(np.unique(y)) < 2:
        return f"{len(np.unique(y))} class(es)"
    if not spec.is_classification and len(y) < 2:
        return f"{len(y)} example(s)"
    return None


def _protocol(
    spec: TaskSpec,
    frame: pd.DataFrame,
    loso_below: int,
    fixed_splits: tuple[str, ...] = ("train", "val", "test"),
) -> tuple[Literal["fixed", "loso"], str | None]:
    """The protocol the task runs under on this dataset, and a reason if it cannot."""
    if why := _enough(spec, frame["y"].to_numpy()):
        return "fixed", f"the labelled units hold {why}"
    n_subjects = frame["subject"].nunique()
    fixed_gap = None
    for name in fixed_splits:
        part = frame.loc[frame["split"] == name, "y"].to_numpy()
        if why := _enough(spec, part):
            fixed_gap = f"the {name} split holds {why}"
            break
    if spec.split == "fixed":
        return "fixed", fixed_gap
    if spec.split == "loso" or n_subjects < loso_below or fixed_gap:
        if n_subjects < 3:
            return "loso", f"only {n_subjects} labelled subject(s)"
        if fixed_gap and spec.split == "auto" and n_subjects >= loso_below:
            log.info(
                "Task %s: %s; falling back to leave-one-subject-out",
                spec.name,
                fixed_gap,
            )
        return "loso", None
    return "fixed", None


NOT_ENABLED = "source not enabled"


def _adapter(reason: str) -> str:
    found = re.search(r"adapter '([^']+)'", reason)
    return found.group(1) if found else "?"


def log_skipped(skipped: Mapping[str, str], what: str = "Evaluation") -> None:
    """One line for the task × dataset pairs that did not run (``{"task/dataset":
    reason}``; each reason at DEBUG): INFO when only their sources are not
    enabled, WARNING when a task of enabled data could not run."""
    if not skipped:
        return
    absent = sorted(
        f"{k.split('/')[0]} ({_adapter(r)})"
        for k, r in skipped.items()
        if NOT_ENABLED in r
    )
    other = {k: r for k, r in skipped.items() if NOT_ENABLED not in r}
    parts = []
    if absent:
        parts.append(f"{len(absent)} of sources not enabled: {', '.join(absent)}")
    if other:
        parts.append(
            f"{len(other)} that could not run: "
            + "; ".join(f"{k}: {r}" for k, r in sorted(other.items()))
        )
    log.log(
        logging.WARNING if other else logging.INFO,
        "%s skipped %d task(s): %s (each is listed in results.md and the report)",
        what,
        len(skipped),
        "; ".join(parts),
    )
