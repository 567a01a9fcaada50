"""Probe speed: one OPERA linear probe (5 seeds × 64 epochs, best validation AUROC,
1000-resample bootstrap) with our rank-based AUROC against the same probe scoring
with scikit-learn's ``roc_auc_score``, in the same run; prints both times, the ratio,
and checks that both give the same result.

    python benchmarks/probe_throughput.py [--n 300] [--dim 192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import numpy as np
from sklearn.metrics import roc_auc_score

from acula_pipeline.evaluation import metrics, probes
from acula_pipeline.evaluation.probes import ProbeCfg, Split, run_probe


def sklearn_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    y, scores = np.asarray(y), np.asarray(scores)
    if len(np.unique(y)) < 2:
        raise ValueError("AUROC needs two classes")
    if scores.ndim == 2:
        scores = scores[:, 1]
    return float(roc_auc_score(y, scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300, help="training examples")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, args.dim)

    def split(n: int) -> Split:
        x = rng.normal(0, 1, (n, args.dim)).astype(np.float32)
        return Split(x, (x @ w + rng.normal(0, 8, n) > 0).astype(np.int64))

    tr, va, te = split(args.n), split(args.n // 4), split(args.n // 4)
    cfg = ProbeCfg()
    ours, ref = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        t = time.perf_counter()
        a = run_probe(tr, va, te, cfg)
        ours.append(time.perf_counter() - t)
        with (
            mock.patch.object(probes, "auroc", sklearn_auroc),
            mock.patch.object(metrics, "auroc", sklearn_auroc),
        ):
            t = time.perf_counter()
            b = run_probe(tr, va, te, cfg)
            ref.append(time.perf_counter() - t)
    same = np.allclose(a.per_seed, b.per_seed, atol=1e-9) and np.allclose(
        a.ci95, b.ci95, atol=1e-9
    )
    mo, mr = statistics.median(ours), statistics.median(ref)
    print(f"probe, rank AUROC:    {mo:.2f} s (median of {args.repeats})")
    print(f"probe, scikit-learn:  {mr:.2f} s")
    print(f"speed-up: {mr / mo:.1f}x  (same per-seed AUROCs and interval: {same})")


if __name__ == "__main__":
    main()
