"""Linear probes on frozen embeddings, the OPERA protocol.

A single linear layer (weights N(0, 0.01), zero bias), cross-entropy plus an L2
penalty on the layer's parameters, Adam with the learning rate decayed ×0.97 per
epoch, the epoch with the best validation AUROC kept, repeated over seeds 0–4 and
reported as the mean ± std of the test AUROC (macro one-vs-rest for several
classes), with a bootstrap 95 % interval. Regression probes standardise the target,
train on MSE and keep the epoch with the best validation MAE.
"""

from __future__ import annotations

import copy
import logging
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


def _head(dim: int, out: int) -> nn.Linear:
    head = nn.Linear(dim, out)
    nn.init.normal_(head.weight, mean=0.0, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def _fit_one(
    train: Split,
    val: Split,
    test: Split,
    seed: int,
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"],
    n_classes: int,
) -> tuple[float, int, np.ndarray]:
    """Train one probe; returns (test metric, best epoch, test outputs)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xtr = torch.as_tensor(train.x, dtype=torch.float32)
    xva = torch.as_tensor(val.x, dtype=torch.float32)
    xte = torch.as_tensor(test.x, dtype=torch.float32)
    if kind == "classification":
        ytr = torch.as_tensor(train.y, dtype=torch.long)
        head = _head(xtr.shape[1], n_classes)
        loss_fn: nn.Module = nn.CrossEntropyLoss()
        mu, sd = 0.0, 1.0
    else:
        mu, sd = float(train.y.mean()), float(train.y.std() or 1.0)
        ytr = torch.as_tensor((train.y - mu) / sd, dtype=torch.float32)
        head = _head(xtr.shape[1], 1)
        loss_fn = nn.MSELoss()
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def outputs(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = head(x)
        if kind == "classification":
            return torch.softmax(out, dim=1).numpy()
        return out[:, 0].numpy() * sd + mu

    def score(split: Split, out: np.ndarray) -> float:
        """Higher is better."""
        if kind == "classification":
            return auroc(split.y, out)
        return -mae(split.y, out)

    val_defined = kind == "regression" or len(np.unique(val.y)) > 1
    if not val_defined:
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
        head.eval()
        s = score(val, outputs(xva)) if val_defined else float(epoch)
        if s > best:
            best, best_epoch, best_state = s, epoch, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    test_out = outputs(xte)
    metric = score(test, test_out)
    return (metric if kind == "classification" else -metric), best_epoch, test_out


def run_probe(
    train: Split,
    val: Split,
    test: Split,
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"] = "classification",
) -> ProbeResult:
    """The probe over every seed; classification labels must be 0 … k−1."""
    n_classes = 0
    if kind == "classification":
        n_classes = int(max(train.y.max(), val.y.max(), test.y.max())) + 1
    per_seed, epochs, first = [], [], None
    for seed in cfg.seeds:
        m, ep, out = _fit_one(train, val, test, seed, cfg, kind, n_classes)
        per_seed.append(m)
        epochs.append(ep)
        if first is None:
            first = out
    assert first is not None
    metric_fn = auroc if kind == "classification" else mae
    ci = (
        bootstrap_ci(metric_fn, test.y, first, n=cfg.bootstrap)
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
        test_scores=first,
    )
