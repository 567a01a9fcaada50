"""Metrics of the paper's protocol: AUROC, MAE, retrieval ranks (patient-level
intervals are in ``uncertainty``).

AUROC is the Mann–Whitney statistic on SciPy's tie-averaged ranks (macro one-vs-rest
for several classes): the same number as scikit-learn's ``roc_auc_score`` (tested,
ties included) at a tenth of its cost, which matters inside the probe's per-epoch
checkpoint selection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import mean_absolute_error


def auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of class scores: ``scores`` is ``(n,)`` (positive class) or ``(n, k)``.

    Two classes use the positive column; more use the macro one-vs-rest average over
    the classes present in ``y``. Raises ``ValueError`` when ``y`` holds one class.
    """
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=np.float64)
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError(f"AUROC needs two classes in y, got {present.tolist()}")
    if scores.ndim == 1:
        return _binary_auroc(y == present[-1], scores)
    if scores.shape[1] == 2:
        return _binary_auroc(y == 1, scores[:, 1])
    per_class = [_binary_auroc(y == c, scores[:, int(c)]) for c in present]
    return float(np.mean(per_class))


def _binary_auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    ranks = rankdata(scores)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        raise ValueError("AUROC needs positives and negatives")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(mean_absolute_error(np.asarray(y), np.asarray(pred)))


def retrieval_ranks(similarity: np.ndarray, match: Sequence[int]) -> np.ndarray:
    """1-based rank of each query's correct item: ``similarity`` is (queries, items),
    ``match[i]`` the index of query ``i``'s item. Ties count against the query."""
    sim = np.asarray(similarity, dtype=np.float64)
    right = sim[np.arange(len(sim)), np.asarray(match)]
    return (sim >= right[:, None]).sum(axis=1)


def retrieval_metrics(
    similarity: np.ndarray, match: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k for each ``k`` and the median rank."""
    ranks = retrieval_ranks(similarity, match)
    out = {f"R@{k}": float((ranks <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    return out
