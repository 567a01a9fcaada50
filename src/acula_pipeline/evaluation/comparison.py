"""Encoders compared on the same patients: scores with patient-level intervals,
paired differences and verdicts, per task and over the classification tasks.

Every probe record keeps each probe seed's test outputs. For each task on each
dataset, every encoder is rescored under the same subject-level bootstrap draws
(``uncertainty.ClusterBootstrap``; one pool per dataset and protocol, so two tasks of
one dataset share draws too). An encoder's score is the mean over probe seeds; its
interval is the percentile interval of that mean over the draws. A difference
(aligned − baseline, aligned − control, baseline − no-learning reference) is taken
draw by draw, and its verdict is read from its interval, never from the point. The
mean over classification tasks is the mean of the per-task draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from acula_pipeline.evaluation.run import (
    ALIGNED,
    BASELINE,
    CONTROL,
    REFERENCE,
    ProbeRecord,
)
from acula_pipeline.evaluation.uncertainty import (
    ClusterBootstrap,
    Interval,
    Verdict,
    interval,
    metric_draws,
    verdict,
)

# The differences every table reads, as (minuend, subtrahend): did the encoder
# learn anything (baseline − reference), did alignment help (aligned − baseline),
# and was it the teacher rather than more SSL training (aligned − control).
DIFFERENCES: tuple[tuple[str, str], ...] = (
    (BASELINE, REFERENCE),
    (ALIGNED, BASELINE),
    (ALIGNED, CONTROL),
)


@dataclass
class Score:
    """One encoder on one task: mean ± std over probe seeds, and the patient-level
    interval of that mean."""

    mean: float
    std: float
    ci: Interval | None


@dataclass
class Difference:
    """``a − b`` on the same subjects, with its interval and verdict."""

    a: str
    b: str
    ci: Interval
    verdict: Verdict

    @property
    def name(self) -> str:
        return f"{self.a} − {self.b}"


@dataclass
class TaskComparison:
    """Every encoder on one task and dataset."""

    task: str
    dataset: str
    metric: str  # auroc (higher is better) or mae (lower is better)
    protocol: str
    scored: str  # the split scored: test, val, or loso
    n_units: int
    n_subjects: int
    scores: dict[str, Score]
    diffs: list[Difference] = field(default_factory=list)
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "auroc"


@dataclass
class Overall:
    """The mean over classification (AUROC) tasks, the paper's headline."""

    tasks: int
    scores: dict[str, Score]
    diffs: list[Difference]


def _scored_subjects(r: ProbeRecord) -> np.ndarray:
    """The subject of each scored unit, in the order the probe scored them."""
    frame = r.data.frame
    if r.scored == "loso":
        return frame["subject"].to_numpy()
    return frame.loc[frame["split"] == r.scored, "subject"].to_numpy()


def _differences(
    draws: dict[str, np.ndarray],
    points: dict[str, float],
    higher_is_better: bool,
    level: float,
) -> list[Difference]:
    out = []
    for a, b in DIFFERENCES:
        if a in draws and b in draws:
            ci = interval(points[a] - points[b], draws[a] - draws[b], level)
            out.append(Difference(a, b, ci, verdict(ci, higher_is_better)))
    return out


def compare(
    records: Sequence[ProbeRecord], bootstrap: ClusterBootstrap, level: float = 0.95
) -> list[TaskComparison]:
    """One comparison per task × dataset that ran, in the records' order."""
    by_key: dict[tuple[str, str], dict[str, ProbeRecord]] = {}
    for r in records:
        if r.result is not None and r.result.outputs is not None:
            by_key.setdefault((r.spec.name, r.data.dataset), {})[r.encoder] = r
    # One pool of subjects per dataset and protocol: tasks on it share the draws.
    pools: dict[str, set[str]] = {}
    for encs in by_key.values():
        first = next(iter(encs.values()))
        pool = f"{first.data.dataset}/{first.scored}"
        pools.setdefault(pool, set()).update(map(str, _scored_subjects(first)))
    sorted_pools = {k: sorted(v) for k, v in pools.items()}
    out = []
    for (task, dataset), encs in by_key.items():
        first = next(iter(encs.values()))
        subjects = [str(s) for s in _scored_subjects(first)]
        pool = f"{dataset}/{first.scored}"
        weights = (
            bootstrap.weights(pool, sorted_pools[pool], subjects)
            if bootstrap.draws
            else None
        )
        scores, draws = {}, {}
        for enc, r in encs.items():
            res = r.result
            assert res is not None and res.outputs is not None
            ci = None
            if weights is not None:
                assert res.test_y is not None
                draws[enc] = metric_draws(res.metric, res.test_y, res.outputs, weights)
                ci = interval(res.mean, draws[enc], level)
            scores[enc] = Score(res.mean, res.std, ci)
        metric = next(iter(encs.values())).result.metric  # type: ignore[union-attr]
        points = {e: s.mean for e, s in scores.items()}
        out.append(
            TaskComparison(
                task=task,
                dataset=dataset,
                metric=metric,
                protocol=str(first.data.protocol),
                scored=first.scored,
                n_units=len(subjects),
                n_subjects=len(set(subjects)),
                scores=scores,
                diffs=_differences(draws, points, metric == "auroc", level)
                if draws
                else [],
                draws=draws,
            )
        )
    return out


def overall(
    comparisons: Sequence[TaskComparison], level: float = 0.95
) -> Overall | None:
    """Mean AUROC over the classification tasks, per encoder present in all of
    them, with intervals and paired differences from the per-task draws."""
    cls = [c for c in comparisons if c.metric == "auroc"]
    if not cls:
        return None
    encoders = [e for e in cls[0].scores if all(e in c.scores for c in cls)]
    scores, draws, points = {}, {}, {}
    for e in encoders:
        points[e] = float(np.mean([c.scores[e].mean for c in cls]))
        std = float(np.mean([c.scores[e].std for c in cls]))
        ci = None
        if all(e in c.draws for c in cls):
            draws[e] = np.mean([c.draws[e] for c in cls], axis=0)
            ci = interval(points[e], draws[e], level)
        scores[e] = Score(points[e], std, ci)
    return Overall(len(cls), scores, _differences(draws, points, True, level))
