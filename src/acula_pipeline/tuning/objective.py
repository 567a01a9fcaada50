"""What a trial optimises: the mean validation AUROC of linear probes on the
student's frozen embeddings, over the configured classification tasks.

The test split is never read: its subjects' clips are not embedded, their labels not
looked at. Each trial aligns on the ``train`` split's reports only, so the
validation subjects are as unseen by the trial as the test subjects are by the final
``align`` run. Fixed-split tasks score the probe's validation AUROC at its kept
epoch; a dataset with too few subjects (or a split missing a class) falls back to
leave-one-subject-out over the train and validation subjects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.evaluation.embed import embed_segments
from acula_pipeline.evaluation.probes import ProbeCfg, run_loso, run_probe
from acula_pipeline.evaluation.tasks import (
    TaskData,
    TaskSpec,
    task_data,
    unit_embeddings,
)
from acula_pipeline.models import AudioEncoder

log = logging.getLogger(__name__)

# The splits a trial may look at: it trains on "train", is scored on "val".
TUNING_SPLITS = ("train", "val")


class NothingToScoreError(ValueError):
    """No configured task can be scored on the validation split."""


@dataclass
class Score:
    """One scoring of an encoder: the mean and its parts."""

    value: float
    per_task: dict[str, float]  # "task/dataset" → validation AUROC
    protocols: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # "task/dataset" → why


class ValidationScorer:
    """Scores an encoder on the validation split of every configured task."""

    def __init__(
        self,
        store: FeatureStore,
        recordings: pd.DataFrame,
        segments: pd.DataFrame,
        splits: pd.DataFrame,
        tasks: list[TaskSpec],
        probe: ProbeCfg,
        loso_below_subjects: int = 20,
        batch_size: int = 64,
    ) -> None:
        kept = set(splits.loc[splits["split"].isin(TUNING_SPLITS), "subject_id"])
        self.store = store
        self.recordings = recordings[recordings["subject_id"].isin(kept)]
        self.segments = segments[segments["subject_id"].isin(kept)]
        self.splits = splits[splits["subject_id"].isin(kept)]
        self.tasks = [t for t in tasks if t.is_classification]
        if not self.tasks:
            raise NothingToScoreError(
                "tune.objective.tasks holds no classification task (the objective is "
                "a mean AUROC)"
            )
        self.probe = probe
        self.loso_below = loso_below_subjects
        self.batch_size = batch_size
        self.segment_ids = sorted(self.segments["segment_id"])
        self._scored = 0
        log.info(
            "Tuning objective: %d task(s) on %d train/val subjects (%d clips); the "
            "test split's %d subjects are not read",
            len(self.tasks),
            len(kept),
            len(self.segment_ids),
            int((splits["split"] == "test").sum()),
        )

    def __call__(self, encoder: AudioEncoder, device: str = "auto") -> Score:
        # The tasks' protocols and counts are logged at the first scoring only.
        quiet = logging.getLogger(task_data.__module__)
        level = quiet.level
        if self._scored:
            quiet.setLevel(logging.ERROR)
        try:
            return self._score(encoder, device)
        finally:
            quiet.setLevel(level)
            self._scored += 1

    def _score(self, encoder: AudioEncoder, device: str) -> Score:
        vectors = embed_segments(
            encoder,
            self.store,
            self.segment_ids,
            self.batch_size,
            device,
            progress=False,
        )
        units = {
            unit: unit_embeddings(unit, self.segments, self.segment_ids, vectors)
            for unit in ("recording", "cycle")
        }
        per_task: dict[str, float] = {}
        protocols: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for spec in self.tasks:
            for td in task_data(
                spec,
                self.recordings,
                self.segments,
                self.splits,
                units["cycle" if spec.unit == "cycle" else "recording"],
                self.loso_below,
                fixed_splits=TUNING_SPLITS,
            ):
                key = f"{spec.name}/{td.dataset}"
                if td.skipped:
                    skipped[key] = td.skipped
                    continue
                per_task[key] = self._probe(spec, td)
                protocols[key] = td.protocol or "fixed"
        if not per_task:
            raise NothingToScoreError(
                "no configured task could be scored on the validation split: "
                + "; ".join(f"{k}: {v}" for k, v in skipped.items())
            )
        value = float(np.mean(list(per_task.values())))
        return Score(value, per_task, protocols, skipped)

    def _probe(self, spec: TaskSpec, td: TaskData) -> float:
        kind: Literal["classification"] = "classification"
        n_classes = spec.n_classes or None
        if td.protocol == "loso":
            groups = td.frame["subject"].to_numpy()
            return run_loso(td.split("loso"), groups, self.probe, kind, n_classes).mean
        # The validation split stands in for the test split: the metric taken is
        # the validation AUROC of each seed's kept epoch.
        val = td.split("val")
        result = run_probe(td.split("train"), val, val, self.probe, kind, n_classes)
        assert result.val_per_seed is not None  # both splits hold every class
        return float(np.mean(result.val_per_seed))
