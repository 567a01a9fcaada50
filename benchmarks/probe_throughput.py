"""Probe and interval speed, each against a plain baseline measured in the same run.

1. One OPERA linear probe over 5 seeds × 64 epochs: all seeds trained at once (the
   batched program ``run_probe`` uses) against the same probe run seed by seed.
2. The patient-level bootstrap (1000 draws of subjects, AUROC of every probe seed in
   every draw): the vectorised weighted AUROC against rescoring each draw's repeated
   units with the plain rank AUROC.

Prints both times, the ratio, and whether both give the same numbers.

    python benchmarks/probe_throughput.py [--n 300] [--dim 192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from acula_pipeline.evaluation.metrics import auroc
from acula_pipeline.evaluation.probes import ProbeCfg, Split, run_probe
from acula_pipeline.evaluation.uncertainty import ClusterBootstrap, metric_draws


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
    run_probe(tr, va, te, cfg)  # warm-up: torch's first batched calls set up kernels
    batched, looped = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        t = time.perf_counter()
        a = run_probe(tr, va, te, cfg)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = [
            run_probe(tr, va, te, cfg.model_copy(update={"seeds": [s]})).per_seed[0]
            for s in cfg.seeds
        ]
        looped.append(time.perf_counter() - t)
    same = np.allclose(a.per_seed, b, atol=1e-4)
    mb, ml = statistics.median(batched), statistics.median(looped)
    print(f"probe, seeds batched:      {mb:.2f} s (median of {args.repeats})")
    print(f"probe, seed by seed:       {ml:.2f} s")
    print(f"speed-up: {ml / mb:.1f}x  (same per-seed AUROCs: {same})")

    # Test units in clusters of 3 (patients), the bootstrap over patients.
    subjects = [f"p{i // 3}" for i in range(len(te.y))]
    pool = sorted(set(subjects))
    assert a.outputs is not None
    boot = ClusterBootstrap(draws=cfg.bootstrap, seed=0)
    t = time.perf_counter()
    weights = boot.weights("bench", pool, subjects)
    fast = metric_draws("auroc", te.y, a.outputs, weights)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = []
    for row in weights:
        rep = np.repeat(np.arange(len(te.y)), row.astype(int))
        try:
            slow.append(np.mean([auroc(te.y[rep], out[rep]) for out in a.outputs]))
        except ValueError:  # one class in this draw
            slow.append(np.nan)
    t_slow = time.perf_counter() - t
    same = np.allclose(fast, slow, equal_nan=True)
    print(
        f"bootstrap, vectorised:     {t_fast:.3f} s ({cfg.bootstrap} draws × 5 seeds)"
    )
    print(f"bootstrap, draw by draw:   {t_slow:.3f} s")
    print(f"speed-up: {t_slow / t_fast:.1f}x  (same draws: {same})")


if __name__ == "__main__":
    main()
