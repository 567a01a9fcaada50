"""Encoders compared on the same patients: scores with patient-level intervals,
paired differences and verdicts, per task and over the classification tasks.

Every probe record keeps each probe seed's test outputs. For each task on each
dataset, every encoder is rescored under the same subject-level bootstrap draws
(``uncertainty.ClusterBootstrap``; one pool per dataset and protocol, so two tasks of
one dataset share draws too). An encoder's score is the mean over probe seeds; its
interval is the percentile interval of that mean over the draws. A difference
(aligned − baseline, aligned − control, baseline − no-learning reference) is taken
draw by draw, and its verdict is read from its interval, never from the point. The
mean over classification tasks is the mean of the per-task draws. An encoder
retrained under several training seeds (``evaluate.train_seeds``) is one row whose
draws resample the seeds too, so the interval and the verdict include training
variance, not only patient sampling.
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
    split_seed,
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

    mean: float  # over probe seeds, then over training seeds
    std: float  # over probe seeds (averaged over training seeds)
    ci: Interval | None
    train_seeds: int = 1  # how many trained models the row averages
    train_std: float | None = None  # spread of the mean over training seeds


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
    protocol: str  # with the task's split file, if one decided: fixed (opera:…)
    scored: str  # the split scored: test, val, or loso
    n_units: int
    n_subjects: int
    scores: dict[str, Score]
    diffs: list[Difference] = field(default_factory=list)
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    label: str = ""  # as tables show the task: copd (T7)

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


def seed_picks(n_seeds: int, draws: int, seed: int = 0) -> np.ndarray:
    """``(draws, n_seeds)`` training-seed indices drawn with replacement, the same
    for every task and encoder with that many seeds (so differences stay paired:
    an aligned model and the baseline it started from share their seed)."""
    rng = np.random.default_rng([seed, n_seeds, 7919])
    return rng.integers(0, n_seeds, (draws, n_seeds))


def compare(
    records: Sequence[ProbeRecord], bootstrap: ClusterBootstrap, level: float = 0.95
) -> list[TaskComparison]:
    """One comparison per task × dataset that ran, in the records' order.

    Records of one encoder retrained with several training seeds (``aligned``,
    ``aligned@1``, …) form one row: its score is the mean over the seeds, and each
    bootstrap draw resamples the seeds as well as the patients (a two-level
    bootstrap), so the interval holds the training-seed spread too."""
    by_key: dict[tuple[str, str], dict[str, dict[str, ProbeRecord]]] = {}
    for r in records:
        if r.result is not None and r.result.outputs is not None:
            name, seed = split_seed(r.encoder)
            key = (r.spec.name, r.data.dataset)
            by_key.setdefault(key, {}).setdefault(name, {})[seed] = r
    # One pool of subjects per dataset and scored split: tasks on it share draws.
    pools: dict[str, set[str]] = {}
    for encs in by_key.values():
        first = next(iter(next(iter(encs.values())).values()))
        pool = f"{first.data.dataset}/{first.scored}"
        pools.setdefault(pool, set()).update(map(str, _scored_subjects(first)))
    sorted_pools = {k: sorted(v) for k, v in pools.items()}
    out = []
    for (task, dataset), encs in by_key.items():
        first = next(iter(next(iter(encs.values())).values()))
        subjects = [str(s) for s in _scored_subjects(first)]
        pool = f"{dataset}/{first.scored}"
        weights = (
            bootstrap.weights(pool, sorted_pools[pool], subjects)
            if bootstrap.draws
            else None
        )
        scores, draws = {}, {}
        for enc, by_seed in encs.items():
            runs = [by_seed[k] for k in sorted(by_seed, key=lambda k: (k != "", k))]
            results = [r.result for r in runs if r.result is not None]
            means = [res.mean for res in results]
            mean = float(np.mean(means))
            ci = None
            if weights is not None:
                per_seed = np.stack(
                    [
                        metric_draws(res.metric, res.test_y, res.outputs, weights)
                        for res in results
                        if res.test_y is not None and res.outputs is not None
                    ]
                )  # (training seeds, draws)
                picks = seed_picks(len(per_seed), per_seed.shape[1], bootstrap.seed)
                draws[enc] = per_seed[
                    picks, np.arange(per_seed.shape[1])[:, None]
                ].mean(axis=1)
                ci = interval(mean, draws[enc], level)
            scores[enc] = Score(
                mean,
                float(np.mean([res.std for res in results])),
                ci,
                train_seeds=len(results),
                train_std=float(np.std(means)) if len(results) > 1 else None,
            )
        metric = first.result.metric if first.result else "auroc"
        points = {e: sc.mean for e, sc in scores.items()}
        out.append(
            TaskComparison(
                task=task,
                dataset=dataset,
                metric=metric,
                protocol=first.data.protocol_label,
                scored=first.scored,
                n_units=len(subjects),
                n_subjects=len(set(subjects)),
                scores=scores,
                diffs=_differences(draws, points, metric == "auroc", level)
                if draws
                else [],
                draws=draws,
                label=first.spec.label,
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
        scores[e] = Score(points[e], std, ci, min(c.scores[e].train_seeds for c in cls))
    return Overall(len(cls), scores, _differences(draws, points, True, level))
