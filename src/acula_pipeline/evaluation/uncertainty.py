"""Patient-level uncertainty: a cluster bootstrap over subjects, paired differences
between encoders scored on the same subjects, and a verdict read from the interval.

Recordings (and cycles) of one patient are not independent, so an interval that
resamples units is too narrow. Here each bootstrap draw resamples the *subjects* of
one dataset with replacement (a multinomial count per subject); every unit of a
subject drawn k times weighs k. All tasks and encoders scored on the same dataset and
protocol share the same draws, so a difference between two encoders, or a mean over
tasks, is taken draw by draw: the paired bootstrap.

The metrics take the draws as a ``(draws, units)`` weight matrix and are computed for
all draws at once (weighted Mann–Whitney AUROC over the distinct score values, a
weighted MAE): a draw with integer weights gives exactly the metric of the data with
each unit repeated that many times. A draw in which the metric is undefined (one
class only) is NaN and left out of the interval; how many were left out is counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

Verdict = Literal["helped", "hurt", "no evidence either way"]


def weighted_binary_auroc(
    positive: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """AUROC of ``scores`` for the boolean ``positive`` under each row of
    ``weights`` ``(draws, n)``: P(score of a positive > score of a negative), ties
    one half, each unit counted by its weight. NaN where a draw lacks a class."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    values, inverse = np.unique(scores, return_inverse=True)
    n = len(scores)
    # (n, distinct values) one-hot: sums each draw's weights per distinct score
    onehot = sparse.csr_matrix(
        (np.ones(n), (np.arange(n), inverse.ravel())), shape=(n, len(values))
    )
    pos = np.asarray((onehot.T @ (w * positive).T).T)  # (draws, values)
    neg = np.asarray((onehot.T @ (w * ~positive).T).T)
    below = np.cumsum(neg, axis=1) - neg  # negatives strictly below each value
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wins / np.where(total > 0, total, 1.0), np.nan)


def weighted_auroc(
    y: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``metrics.auroc`` under each row of ``weights``: binary from the positive
    column, macro one-vs-rest over the classes a draw holds for more classes."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    present = np.unique(y)
    if scores.ndim == 1:
        return weighted_binary_auroc(y == present[-1], scores, w)
    if scores.shape[1] == 2:
        return weighted_binary_auroc(y == 1, scores[:, 1], w)
    per_class = np.stack(
        [weighted_binary_auroc(y == c, scores[:, int(c)], w) for c in present]
    )
    # a class that a draw does not hold (or holds alone) is left out of its mean
    held = (~np.isnan(per_class)).sum(axis=0)
    total = np.nansum(per_class, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(held >= 2, total / np.maximum(held, 1), np.nan)


def weighted_mae(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean absolute error under each row of ``weights``."""
    err = np.abs(np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64))
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w @ err) / np.where(total > 0, total, 1.0), np.nan)


def metric_draws(
    metric: Literal["auroc", "mae"],
    y: np.ndarray,
    outputs: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """The metric of each probe seed's outputs under each draw, averaged over the
    seeds: ``outputs`` is ``(seeds, n[, classes])``; returns ``(draws,)``."""
    fn = weighted_auroc if metric == "auroc" else weighted_mae
    per_seed = np.stack([fn(y, out, weights) for out in np.asarray(outputs)])
    return per_seed.mean(axis=0)


def _stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class ClusterBootstrap:
    """Subject-level bootstrap draws, the same for every task and encoder scored on
    one pool (a dataset's test subjects, or all its subjects under leave-one-out).

    ``pool`` fixes the subjects and their order; draws are seeded by ``seed`` and
    the pool's name, so two runs (and two encoders) see the same draws."""

    draws: int = 1000
    seed: int = 0

    def counts(self, pool_name: str, pool: Sequence[str]) -> np.ndarray:
        """``(draws, len(pool))``: how often each subject is drawn (each row sums
        to the pool's size)."""
        g = len(pool)
        if g == 0:
            raise ValueError(f"bootstrap pool {pool_name!r} holds no subjects")
        rng = np.random.default_rng([self.seed, _stable_seed(pool_name)])
        return rng.multinomial(g, np.full(g, 1.0 / g), size=self.draws)

    def weights(
        self, pool_name: str, pool: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """``(draws, len(subjects))``: each unit weighs its subject's count."""
        index = {s: i for i, s in enumerate(pool)}
        missing = sorted({s for s in subjects if s not in index})
        if missing:
            raise ValueError(
                f"bootstrap pool {pool_name!r} lacks subjects {missing[:5]}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        cols = np.fromiter((index[s] for s in subjects), dtype=np.int64)
        return self.counts(pool_name, pool)[:, cols]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile interval over the usable draws."""

    point: float
    low: float
    high: float
    draws_used: int
    draws_undefined: int  # draws where the metric had no value (one class only)


def interval(point: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of ``draws`` (NaN draws left out and counted)."""
    draws = np.asarray(draws, dtype=np.float64)
    ok = draws[~np.isnan(draws)]
    if not len(ok):
        return Interval(point, float("nan"), float("nan"), 0, len(draws))
    lo, hi = np.quantile(ok, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(point, float(lo), float(hi), len(ok), len(draws) - len(ok))


def verdict(diff: Interval, higher_is_better: bool = True) -> Verdict:
    """Read a difference's interval, never its point: "helped" when the whole
    interval lies on the better side of zero, "hurt" when on the worse side."""
    if np.isnan(diff.low) or np.isnan(diff.high):
        return "no evidence either way"
    if diff.low > 0:
        return "helped" if higher_is_better else "hurt"
    if diff.high < 0:
        return "hurt" if higher_is_better else "helped"
    return "no evidence either way"
