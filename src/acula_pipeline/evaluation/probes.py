"""Linear probes on frozen embeddings, the OPERA protocol.

A single linear layer (weights N(0, 0.01), zero bias), cross-entropy plus an L2
penalty on the layer's parameters, Adam with the learning rate decayed ×0.97 per
epoch, the epoch with the best validation AUROC kept, repeated over seeds 0–4 and
reported as the mean ± std of the test AUROC (macro one-vs-rest for several
classes), with a bootstrap 95 % interval. Regression probes standardise the target,
train on MSE and keep the epoch with the best validation MAE. Small sets use
leave-one-subject-out (``run_loso``): every subject is predicted by a probe trained on
the others for all epochs, and the metric is taken over the pooled predictions.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from acula_pipeline.evaluation.metrics import auroc, bootstrap_ci, mae

log = logging.getLogger(__name__)


class ProbeCfg(BaseModel):
    """Probe training settings (OPERA's defaults where it has them)."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(default=1e-3, gt=0)
    lr_decay: float = Field(default=0.97, gt=0, le=1)  # per epoch
    l2: float = Field(default=5e-4, ge=0)  # × sum of squared head parameters
    epochs: int = Field(default=64, ge=1)
    batch_size: int = Field(default=64, ge=1)
    seeds: list[int] = [0, 1, 2, 3, 4]
    bootstrap: int = Field(default=1000, ge=0)  # resamples for the 95 % interval


@dataclass
class Split:
    """Embeddings and targets of one split."""

    x: np.ndarray  # (n, dim)
    y: np.ndarray  # (n,) class indices, or values for regression


@dataclass
class ProbeResult:
    """One task × encoder: per-seed test scores and their summary."""

    metric: Literal["auroc", "mae"]
    per_seed: list[float]
    mean: float
    std: float
    ci95: tuple[float, float] | None  # bootstrap over test examples, first seed
    best_epochs: list[int] = field(default_factory=list)
    test_scores: np.ndarray | None = None  # first seed's test outputs (ROC curves)
    test_y: np.ndarray | None = None  # the test targets, in the same order
    # per seed, the validation metric of the kept epoch (None under leave-one-out):
    # what model selection and tuning may look at, never the test split
    val_per_seed: list[float] | None = None


def _head(dim: int, out: int) -> nn.Linear:
    head = nn.Linear(dim, out)
    nn.init.normal_(head.weight, mean=0.0, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def _fit_one(
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
    if val is not None and not use_val:
        log.warning(
            "Probe: the validation split holds one class only; keeping the last epoch"
        )
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


def _summary(
    kind: Literal["classification", "regression"],
    y: np.ndarray,
    outputs: list[np.ndarray],
    epochs: list[int],
    cfg: ProbeCfg,
) -> ProbeResult:
    """Per-seed test metrics, mean ± std, and the first seed's bootstrap interval."""
    metric_fn = auroc if kind == "classification" else mae
    per_seed = [metric_fn(y, out) for out in outputs]
    ci = (
        bootstrap_ci(metric_fn, y, outputs[0], n=cfg.bootstrap)
        if cfg.bootstrap
        else None
    )
    return ProbeResult(
        metric="auroc" if kind == "classification" else "mae",
        per_seed=per_seed,
        mean=float(np.mean(per_seed)),
        std=float(np.std(per_seed)),
        ci95=ci,
        best_epochs=epochs,
        test_scores=outputs[0],
        test_y=np.asarray(y),
    )


def run_probe(
    train: Split,
    val: Split,
    test: Split,
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"] = "classification",
    n_classes: int | None = None,
) -> ProbeResult:
    """The probe over every seed; classification labels must be 0 … k−1
    (``n_classes`` defaults to the largest label seen plus one)."""
    if kind == "classification" and n_classes is None:
        n_classes = int(max(train.y.max(), val.y.max(), test.y.max())) + 1
    outputs, epochs, vals = [], [], []
    for seed in cfg.seeds:
        predict, ep, v = _fit_one(train, val, seed, cfg, kind, n_classes or 0)
        outputs.append(predict(test.x))
        epochs.append(ep)
        vals.append(v)
    result = _summary(kind, test.y, outputs, epochs, cfg)
    if all(v is not None for v in vals):
        result.val_per_seed = [float(v) for v in vals if v is not None]
    return result


def run_loso(
    data: Split,
    groups: np.ndarray,
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"] = "classification",
    n_classes: int | None = None,
) -> ProbeResult:
    """Leave-one-subject-out: for each subject, a probe trained on every other
    subject's units (all ``cfg.epochs``, no validation split to choose from) predicts
    that subject's units; the metric is taken over the pooled predictions.

    Classification folds weight the classes equally: otherwise each fold's bias
    tracks its class shares, which are lowest exactly when the held-out subject is
    positive, and pooled AUROC falls far below 0.5 on uninformative embeddings."""
    groups = np.asarray(groups)
    if kind == "classification" and n_classes is None:
        n_classes = int(data.y.max()) + 1
    outputs, epochs = [], []
    for seed in cfg.seeds:
        pred: np.ndarray | None = None
        for g in np.unique(groups):
            held = groups == g
            predict, ep, _ = _fit_one(
                Split(data.x[~held], data.y[~held]),
                None,
                seed,
                cfg,
                kind,
                n_classes or 0,
                balanced=True,
            )
            out = predict(data.x[held])
            if pred is None:
                pred = np.zeros((len(data.y), *out.shape[1:]), out.dtype)
            pred[held] = out
        assert pred is not None
        outputs.append(pred)
        epochs.append(cfg.epochs - 1)
    return _summary(kind, data.y, outputs, epochs, cfg)
