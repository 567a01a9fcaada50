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

A task can carry the id of OPERA's benchmark task it reproduces (``opera_id: T7``):
the id and OPERA's own task name (``opera:icbhi``) are then aliases of the task
wherever a task is named (``tune.objective.tasks``), and tables show ``copd (T7)``.
A ``split_file`` (a CSV of the source's own subject ids and train/val/test, or
``opera:<name>`` for a split OPERA publishes, shipped in ``opera_splits/``) replaces
the pipeline's split for that task.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from acula_pipeline.evaluation.embed import pool_by
from acula_pipeline.evaluation.probes import Split
from acula_pipeline.evaluation.split_files import (
    read_split_file,
    source_id,
    split_file_path,
)

log = logging.getLogger(__name__)

Unit = Literal["recording", "cycle", "subject"]


class OperaTask(NamedTuple):
    """One task of OPERA's benchmark (evelyn0414/OPERA, ``scripts/eval_all.sh``)."""

    name: str  # OPERA's ``linear_eval.py --task`` (with its modality and label)
    dataset: str
    modality: str
    target: str


# OPERA's 19 tasks, by the ids its paper's tables use.
OPERA_TASKS: dict[str, OperaTask] = {
    "T1": OperaTask("coviduk-exhalation", "UK COVID-19", "exhalation", "COVID-19"),
    "T2": OperaTask("coviduk-cough", "UK COVID-19", "cough", "COVID-19"),
    "T3": OperaTask("covid19sounds-breath", "COVID-19 Sounds", "breath", "symptoms"),
    "T4": OperaTask("covid19sounds-cough", "COVID-19 Sounds", "cough", "symptoms"),
    "T5": OperaTask("coughvidcovid", "CoughVID", "cough", "COVID-19"),
    "T6": OperaTask("coughvidsex", "CoughVID", "cough", "sex"),
    "T7": OperaTask("icbhi", "ICBHI", "lung sounds", "COPD"),
    "T8": OperaTask("coswarasmoker", "Coswara", "cough-shallow", "smoker"),
    "T9": OperaTask("coswarasex", "Coswara", "cough-shallow", "sex"),
    "T10": OperaTask("kauh", "KAUH", "lung sounds", "obstructive disease"),
    "T11": OperaTask("copd", "Respiratory@TR", "lung sounds", "COPD severity"),
    "T12": OperaTask("snoring", "SSBPR", "snoring", "body position"),
    "T13": OperaTask("spirometry-breath-FVC", "MMlung", "deep breath", "FVC"),
    "T14": OperaTask("spirometry-breath-FEV1", "MMlung", "deep breath", "FEV1"),
    "T15": OperaTask("spirometry-breath-FEV1_FVC", "MMlung", "deep breath", "FEV1/FVC"),
    "T16": OperaTask("spirometry-vowels-FVC", "MMlung", "vowel o", "FVC"),
    "T17": OperaTask("spirometry-vowels-FEV1", "MMlung", "vowel o", "FEV1"),
    "T18": OperaTask("spirometry-vowels-FEV1_FVC", "MMlung", "vowel o", "FEV1/FVC"),
    "T19": OperaTask("rr", "NoseMic", "nasal breathing", "respiratory rate"),
}


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
    opera_id: str | None = None  # OPERA's benchmark task this reproduces (T1 … T19)
    # The task's own train/val/test: a CSV (id,split) of the source's subject ids,
    # or opera:<name> for one shipped in opera_splits/ (README "OPERA's benchmark").
    split_file: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        if self.split_file is not None and self.split_file.startswith("opera:"):
            split_file_path(self.split_file)  # a name not shipped fails here
        if self.opera_id is not None and self.opera_id not in OPERA_TASKS:
            raise ValueError(
                f"task {self.name!r}: opera_id {self.opera_id!r} is not one of "
                f"OPERA's tasks T1 … T19"
            )
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
    def aliases(self) -> tuple[str, ...]:
        """Other names of the task: its OPERA id and ``opera:<OPERA's name>``."""
        if self.opera_id is None:
            return ()
        return (self.opera_id, f"opera:{OPERA_TASKS[self.opera_id].name}")

    @property
    def label(self) -> str:
        """The task as tables show it: ``copd (T7)``."""
        return f"{self.name} ({self.opera_id})" if self.opera_id else self.name

    @property
    def n_classes(self) -> int:
        return len(set(self.classes.values())) if self.classes else 0


def check_names(tasks: Sequence[TaskSpec]) -> None:
    """Every task name and alias names one task only."""
    owner: dict[str, str] = {}
    for t in tasks:
        for n in (t.name, *t.aliases):
            key = n.lower()
            if key in owner and owner[key] != t.name:
                raise ValueError(
                    f"evaluate.tasks: {n!r} names both {owner[key]!r} and {t.name!r} "
                    "(task names and OPERA ids must be unique)"
                )
            owner[key] = t.name


def find_tasks(
    tasks: Sequence[TaskSpec], names: Iterable[str], what: str = "tasks"
) -> list[TaskSpec]:
    """The tasks named, by name, OPERA id (``T7``, any case) or OPERA name
    (``opera:icbhi``), in the order given; an unknown name is an error listing
    the known ones."""
    check_names(tasks)
    known = {n.lower(): t for t in tasks for n in (t.name, *t.aliases)}
    names = list(names)
    missing = [n for n in names if n.lower() not in known]
    if missing:
        listed = ", ".join(
            t.name + (f" ({'/'.join(t.aliases)})" if t.aliases else "") for t in tasks
        )
        raise ValueError(
            f"{what}: {missing} are not in evaluate.tasks (known: {listed})"
        )
    out: list[TaskSpec] = []
    for n in names:
        if known[n.lower()] not in out:
            out.append(known[n.lower()])
    return out


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
    split_source: str | None = None  # the task's split_file, where it decided

    @property
    def protocol_label(self) -> str:
        """The protocol as tables show it: ``fixed (opera:coughvid_covid)``."""
        if self.split_source and self.protocol:
            return f"{self.protocol} ({self.split_source})"
        return str(self.protocol)

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
        split_source = None
        if spec.split_file is not None and len(frame):
            keep_file = _apply_split_file(spec, frame, str(dataset))
            if keep_file is not None:
                split_source = spec.split_file
                counts["not_in_split_file"] = int((~keep_file).sum())
                frame = frame[keep_file].reset_index(drop=True)
                x = x[keep_file]
        if spec.is_classification:
            frame["y"] = frame["y"].astype(np.int64)
        # A split file is the task's fixed split: never traded for LOSO.
        rule = spec.model_copy(update={"split": "fixed"}) if split_source else spec
        protocol, reason = _protocol(rule, frame, loso_below_subjects, fixed_splits)
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
                split_source,
            )
        )
    return out


def _apply_split_file(
    spec: TaskSpec, frame: pd.DataFrame, dataset: str
) -> np.ndarray | None:
    """Set ``frame.split`` from the task's split file and return the rows it names,
    or None when it names none of this dataset's subjects (a synthetic corpus, or
    another release: the pipeline's split stays, and the log says so).

    A subject the file holds out for test must be held out by the pipeline's split
    too, or alignment may have trained on it: that is an error naming the fix."""
    assert spec.split_file is not None
    table = read_split_file(spec.split_file)
    ids = frame["subject"].map(lambda s: source_id(str(s), dataset))
    named = ids.isin(table.keys()).to_numpy()
    if not named.any():
        log.info(
            "Task %s on %s: split file %s names none of its %d subjects; the "
            "pipeline's split is used",
            spec.name,
            dataset,
            spec.split_file,
            frame["subject"].nunique(),
        )
        return None
    split = ids[named].map(table)
    leaked = sorted(
        set(
            frame.loc[named, "subject"][
                (split == "test") & frame.loc[named, "split"].isin(["train", "val"])
            ]
        )
    )
    if leaked:
        raise ValueError(
            f"task {spec.name!r} on {dataset}: split file {spec.split_file} tests "
            f"{len(leaked)} subject(s) the pipeline's split gave to training or "
            f"validation (alignment may have used them), e.g. {leaked[:3]}. Add the "
            f"file to ingest.split.held_out.{spec.adapter} so that its test subjects "
            "are held out from alignment too."
        )
    frame.loc[named, "split"] = split.to_numpy()
    return named


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
