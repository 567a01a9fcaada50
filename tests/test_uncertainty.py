"""Patient-level uncertainty and the batched probes: the cluster bootstrap against
hand-computed and exhaustively enumerated cases, the weighted metrics against the
plain ones on repeated data, verdicts that follow the interval, and the batched
probes against a plain one-seed-at-a-time reference."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import pytest
import torch
from torch import nn

from acula_pipeline.evaluation.metrics import auroc, mae
from acula_pipeline.evaluation.probes import (
    ProbeCfg,
    Split,
    _fit_seeds,
    _head,
    run_loso,
    run_probe,
)
from acula_pipeline.evaluation.uncertainty import (
    ClusterBootstrap,
    Interval,
    interval,
    metric_draws,
    verdict,
    weighted_auroc,
    weighted_mae,
)


def test_weighted_metrics_equal_the_plain_metrics_on_repeated_units():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.random(40), 1)  # ties
    w = rng.integers(0, 4, (6, 40))
    w[:, 0], w[:, 1] = 1, 1  # both classes in every draw
    y[0], y[1] = 0, 1
    got = weighted_auroc(y, s, w)
    for b in range(len(w)):
        rep = np.repeat(np.arange(40), w[b])
        assert got[b] == pytest.approx(auroc(y[rep], s[rep]))
    # unit weights: the plain metric, for two-column and several-class scores
    assert weighted_auroc(y, np.stack([1 - s, s], 1), np.ones((1, 40)))[0] == (
        pytest.approx(auroc(y, s))
    )
    y3 = rng.integers(0, 3, 60)
    p3 = rng.dirichlet(np.ones(3), 60)
    assert weighted_auroc(y3, p3, np.ones((1, 60)))[0] == pytest.approx(auroc(y3, p3))
    # a draw holding one class has no AUROC
    assert np.isnan(weighted_auroc(y, s, (y == 1)[None].astype(float))[0])
    yr, pr = rng.normal(size=30), rng.normal(size=30)
    wr = rng.integers(0, 3, (4, 30))
    for b in range(4):
        rep = np.repeat(np.arange(30), wr[b])
        assert weighted_mae(yr, pr, wr)[b] == pytest.approx(mae(yr[rep], pr[rep]))


def test_cluster_bootstrap_against_a_hand_computed_case():
    """Three patients: A (two positive recordings, scores .9 and .8), B (one
    negative, .1), C (a positive .2 and a negative .3). Every resample of the three
    patients with replacement is enumerated with its multinomial probability; the
    bootstrap's mean AUROC over defined draws must match the exact expectation."""
    y = np.array([1, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    subjects = np.array(["A", "A", "B", "C", "C"])
    pool = ["A", "B", "C"]
    # hand-computed: each subject once (the sample itself): positives .9 .8 .2,
    # negatives .1 .3 → pairs right: .9>.1 .9>.3 .8>.1 .8>.3 .2>.1 = 5 of 6
    assert weighted_auroc(y, s, np.ones((1, 5)))[0] == pytest.approx(5 / 6)
    # A twice and C once: positives .9 .9 .8 .8 .2, negative .3 → 4 of 5
    assert weighted_auroc(y, s, np.array([[2, 2, 0, 1, 1]]))[0] == pytest.approx(0.8)
    exact, p_defined = 0.0, 0.0
    for counts in itertools.product(range(4), repeat=3):
        if sum(counts) != 3:
            continue
        p = math.factorial(3) / math.prod(map(math.factorial, counts)) / 27
        w = np.array([counts[0], counts[0], counts[1], counts[2], counts[2]])
        v = weighted_auroc(y, s, w[None].astype(float))[0]
        if not np.isnan(v):
            exact += p * v
            p_defined += p
    exact /= p_defined
    boot = ClusterBootstrap(draws=20000, seed=0)
    draws = weighted_auroc(y, s, boot.weights("toy", pool, subjects))
    assert np.isnan(draws).mean() == pytest.approx(1 - p_defined, abs=0.01)
    assert np.nanmean(draws) == pytest.approx(exact, abs=0.005)
    # units of one subject always move together
    w = boot.weights("toy", pool, subjects)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 4]).all()
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()


def test_clustered_intervals_are_wider_than_unit_intervals():
    """Twenty patients of ten recordings each whose score is mostly the patient's
    own: resampling recordings as if independent gives a far narrower interval."""
    rng = np.random.default_rng(1)
    n_sub, per = 20, 10
    subjects = np.repeat([f"p{i}" for i in range(n_sub)], per)
    label = np.repeat(rng.integers(0, 2, n_sub), per)
    label[:per], label[per : 2 * per] = 0, 1
    s = np.repeat(rng.normal(size=n_sub), per) + label * 0.5 + rng.normal(0, 0.1, 200)
    pool = sorted(set(subjects))
    boot = ClusterBootstrap(draws=2000, seed=0)
    clustered = interval(0, weighted_auroc(label, s, boot.weights("d", pool, subjects)))
    units = [f"u{i}" for i in range(len(s))]
    naive = interval(0, weighted_auroc(label, s, boot.weights("d", units, units)))
    assert clustered.high - clustered.low > 2 * (naive.high - naive.low)


def test_draws_are_shared_per_pool_and_reproducible():
    boot = ClusterBootstrap(draws=50, seed=3)
    a = boot.counts("circor2022/test", ["s1", "s2", "s3", "s4"])
    assert (a == boot.counts("circor2022/test", ["s1", "s2", "s3", "s4"])).all()
    assert (a.sum(axis=1) == 4).all()
    assert not (a == boot.counts("icbhi2017/test", ["s1", "s2", "s3", "s4"])).all()
    with pytest.raises(ValueError, match="lacks subjects"):
        boot.weights("circor2022/test", ["s1"], ["s1", "s9"])


def test_verdicts_follow_the_interval_not_the_point():
    assert verdict(Interval(0.01, 0.002, 0.03, 1000, 0)) == "helped"
    assert verdict(Interval(0.10, -0.01, 0.2, 1000, 0)) == "no evidence either way"
    assert verdict(Interval(-0.10, -0.2, -0.01, 1000, 0)) == "hurt"
    # lower is better (MAE): a difference below zero helped
    assert verdict(Interval(-1.0, -2.0, -0.5, 1000, 0), higher_is_better=False) == (
        "helped"
    )
    assert verdict(Interval(0.0, float("nan"), float("nan"), 0, 10)) == (
        "no evidence either way"
    )


def test_metric_draws_average_the_probe_seeds():
    y = np.array([0, 1, 0, 1])
    outs = np.array([[0.1, 0.9, 0.2, 0.8], [0.9, 0.1, 0.2, 0.8]])  # AUROC 1 and 0.25
    w = np.ones((3, 4))
    assert metric_draws("auroc", y, outs, w).tolist() == [0.625] * 3


REF_CFG = ProbeCfg(epochs=12, seeds=[0, 1, 2], batch_size=16, lr=1e-2)


def fit_one_reference(
    train: Split,
    val: Split | None,
    seed: int,
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"],
    n_classes: int,
    balanced: bool = False,
) -> tuple[Callable[[np.ndarray], np.ndarray], int, float | None]:
    """Train one probe; returns its prediction function, the epoch kept (the best on
    validation, or the last when there is no usable validation split) and its
    validation metric (AUROC or MAE; None without a usable validation split)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xtr = torch.tensor(np.asarray(train.x), dtype=torch.float32)
    if kind == "classification":
        ytr = torch.tensor(np.asarray(train.y), dtype=torch.long)
        head = _head(xtr.shape[1], n_classes)
        weight: torch.Tensor | None = None
        if balanced:  # each class weighs the same whatever its share of the fold
            counts = torch.bincount(ytr, minlength=n_classes).float()
            weight = torch.where(counts > 0, len(ytr) / (n_classes * counts), 0.0)
        loss_fn: nn.Module = nn.CrossEntropyLoss(weight=weight)
        mu, sd = 0.0, 1.0
    else:
        mu, sd = float(train.y.mean()), float(train.y.std() or 1.0)
        ytr = torch.as_tensor((train.y - mu) / sd, dtype=torch.float32)
        head = _head(xtr.shape[1], 1)
        loss_fn = nn.MSELoss()
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def outputs(x: np.ndarray) -> np.ndarray:
        head.eval()
        with torch.no_grad():
            out = head(torch.tensor(np.asarray(x), dtype=torch.float32))
        if kind == "classification":
            return torch.softmax(out, dim=1).numpy()
        return out[:, 0].numpy() * sd + mu

    def score(split: Split) -> float:
        """Higher is better."""
        out = outputs(split.x)
        if kind == "classification":
            return auroc(split.y, out)
        return -mae(split.y, out)

    use_val = val is not None and (kind == "regression" or len(np.unique(val.y)) > 1)
    best, best_epoch, best_state = -np.inf, -1, copy.deepcopy(head.state_dict())
    for epoch in range(cfg.epochs):
        head.train()
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            out = head(xtr[idx])
            target = ytr[idx] if kind == "classification" else ytr[idx][:, None]
            l2 = sum(p.pow(2).sum() for p in head.parameters())
            loss = loss_fn(out, target) + cfg.l2 * l2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        s = score(val) if use_val and val is not None else float(epoch)
        if s > best:
            best, best_epoch, best_state = s, epoch, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    val_metric = None
    if use_val and val is not None:
        val_metric = best if kind == "classification" else -best
    return outputs, best_epoch, val_metric


def _blobs(n: int, k: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1.5, (k, 8))
    y = rng.integers(0, k, n)
    return Split(centres[y] + rng.normal(0, 1, (n, 8)), y)


@pytest.mark.parametrize(
    ("kind", "k", "balanced", "with_val", "standardize"),
    [
        ("classification", 2, False, True, False),
        ("classification", 2, False, True, True),
        ("classification", 3, True, False, True),
        ("regression", 0, False, True, True),
    ],
)
def test_batched_probes_equal_one_seed_at_a_time(
    kind, k, balanced, with_val, standardize
):
    """The batched probe against the plain loop (on inputs z-scored by hand with
    the training statistics when ``standardize``)."""
    train, val, test = (
        _blobs(70, max(k, 2), 1),
        _blobs(30, max(k, 2), 2),
        _blobs(40, max(k, 2), 3),
    )
    if kind == "regression":
        train, val, test = (
            Split(sp.x, sp.x @ np.arange(8.0) + 3.0) for sp in (train, val, test)
        )
    v = val if with_val else None
    cfg = REF_CFG.model_copy(update={"standardize": standardize})
    predict, epochs, vals = _fit_seeds(train, v, cfg.seeds, cfg, kind, k, balanced)
    batched = predict(test.x)
    mu, sd = (train.x.mean(0), train.x.std(0)) if standardize else (0.0, 1.0)

    def z(sp):
        return Split((sp.x - mu) / sd, sp.y)

    rv = z(val) if with_val else None
    for i, seed in enumerate(cfg.seeds):
        one, ep, vm = fit_one_reference(z(train), rv, seed, cfg, kind, k, balanced)
        np.testing.assert_allclose(batched[i], one(z(test).x), rtol=1e-4, atol=1e-5)
        assert epochs[i] == ep
        if with_val:
            assert vals is not None and vals[i] == pytest.approx(vm, rel=1e-5)
        else:
            assert vals is None


def test_probe_results_keep_every_seeds_outputs():
    train, val, test = _blobs(60, 2, 1), _blobs(30, 2, 2), _blobs(40, 2, 3)
    res = run_probe(train, val, test, REF_CFG)
    assert res.outputs is not None and res.outputs.shape == (3, 40, 2)
    assert res.per_seed == pytest.approx([auroc(test.y, o) for o in res.outputs])
    groups = np.repeat(np.arange(10), 6)
    loso = run_loso(_blobs(60, 2, 4), groups, REF_CFG)
    assert loso.outputs is not None and loso.outputs.shape == (3, 60, 2)
