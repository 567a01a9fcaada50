"""Linear probes on frozen embeddings, the OPERA protocol.

A single linear layer (weights N(0, 0.01), zero bias) on the embeddings z-scored
with the training units' statistics (``standardize``), cross-entropy plus an L2
penalty on the layer's parameters, Adam with the learning rate decayed ×0.97 per
epoch, the epoch with the best validation AUROC kept, repeated over seeds 0–4 and
reported as the mean ± std of the test AUROC (macro one-vs-rest for several
classes). The seeds train together as one batched program (``_fit_seeds``), each
exactly as it would alone; their test outputs are kept so that ``uncertainty`` can
put a patient-level interval on them. Regression probes standardise the target,
train on MSE and keep the epoch with the best validation MAE. Small sets use
leave-one-subject-out (``run_loso``): every subject is predicted by a probe trained on
the others for all epochs, and the metric is taken over the pooled predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from acula_pipeline.evaluation.metrics import auroc, mae

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
    # z-score each embedding dimension with the training units' mean and std before
    # the head (an affine map: the same linear model class, but Adam's fixed step
    # no longer depends on the embedding's scale, which hand-made features such as
    # log-mel statistics do not share with a LayerNorm'd encoder)
    standardize: bool = True
    # subject-level bootstrap draws for the 95 % intervals (0: none)
    bootstrap: int = Field(default=1000, ge=0)


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
    best_epochs: list[int] = field(default_factory=list)
    # every seed's test outputs, (seeds, n[, classes]): the patient-level bootstrap
    # (``uncertainty``) rescores them; ROC curves use the first seed's
    outputs: np.ndarray | None = None
    test_y: np.ndarray | None = None  # the test targets, in the same order
    # per seed, the validation metric of the kept epoch (None under leave-one-out):
    # what model selection and tuning may look at, never the test split
    val_per_seed: list[float] | None = None

    @property
    def test_scores(self) -> np.ndarray | None:
        """The first seed's test outputs (ROC curves)."""
        return None if self.outputs is None else self.outputs[0]


def _head(dim: int, out: int) -> nn.Linear:
    head = nn.Linear(dim, out)
    nn.init.normal_(head.weight, mean=0.0, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def _fit_seeds(
    train: Split,
    val: Split | None,
    seeds: Sequence[int],
    cfg: ProbeCfg,
    kind: Literal["classification", "regression"],
    n_classes: int,
    balanced: bool = False,
) -> tuple[Callable[[np.ndarray], np.ndarray], list[int], list[float] | None]:
    """Train one probe per seed, all in one batched tensor program.

    Each seed's head, initial weights (N(0, 0.01), zero bias, drawn under
    ``torch.manual_seed(seed)``) and minibatch order are exactly those of a probe
    trained alone with that seed; the heads are stacked and trained together (Adam
    and the L2 penalty act on each head's own parameters only), so the result
    equals the one-seed-at-a-time loop at a fraction of its Python overhead.

    Returns the prediction function (``(seeds, n, classes)`` probabilities or
    ``(seeds, n)`` values), each seed's kept epoch (the best on validation, or the
    last without a usable validation split) and each seed's validation metric
    (AUROC or MAE; None without a usable validation split).
    """
    n_seeds = len(seeds)
    x_mean = np.zeros(np.asarray(train.x).shape[1], np.float32)
    x_scale = np.ones_like(x_mean)
    if cfg.standardize:
        x_mean = np.asarray(train.x, np.float64).mean(axis=0).astype(np.float32)
        sd = np.asarray(train.x, np.float64).std(axis=0)
        x_scale = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)

    def inputs(x: np.ndarray) -> torch.Tensor:
        return torch.tensor((np.asarray(x, np.float32) - x_mean) / x_scale)

    xtr = inputs(train.x)
    dim = xtr.shape[1]
    out_dim = n_classes if kind == "classification" else 1
    heads = []
    for seed in seeds:
        torch.manual_seed(seed)  # each head drawn as a probe trained alone draws it
        heads.append(_head(dim, out_dim))
    weight = nn.Parameter(torch.stack([h.weight.detach() for h in heads]))
    bias = nn.Parameter(torch.stack([h.bias.detach() for h in heads]))
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    class_weight: torch.Tensor | None = None
    if kind == "classification":
        ytr = torch.tensor(np.asarray(train.y), dtype=torch.long)
        if balanced:  # each class weighs the same whatever its share of the fold
            counts = torch.bincount(ytr, minlength=n_classes).float()
            class_weight = torch.where(counts > 0, len(ytr) / (n_classes * counts), 0.0)
        mu, sd = 0.0, 1.0
    else:
        mu, sd = float(train.y.mean()), float(train.y.std() or 1.0)
        ytr = torch.as_tensor((train.y - mu) / sd, dtype=torch.float32)
    opt = torch.optim.Adam([weight, bias], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # x (n, dim) shared, or (seeds, n, dim) per seed → (seeds, n, out)
        if x.dim() == 2:
            return torch.einsum("nd,sod->sno", x, w) + b[:, None, :]
        return torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))

    def loss_of(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over seeds of each seed's mean loss (so no seed's gradient mixes)."""
        if kind == "classification":
            flat = nn.functional.cross_entropy(
                out.reshape(-1, out_dim), target.reshape(-1), reduction="none"
            ).reshape(target.shape)
            if class_weight is None:
                return flat.mean(dim=1).sum()
            cw = class_weight[target]
            return ((flat * cw).sum(dim=1) / cw.sum(dim=1)).sum()
        return ((out[..., 0] - target) ** 2).mean(dim=1).sum()

    def outputs_of(x: np.ndarray, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = forward(inputs(x), w, b)
        if kind == "classification":
            return torch.softmax(out, dim=2).numpy()
        return out[..., 0].numpy() * sd + mu

    def scores(split: Split) -> np.ndarray:
        """Per seed; higher is better."""
        out = outputs_of(split.x, weight, bias)
        if kind == "classification":
            return np.array([auroc(split.y, o) for o in out])
        return np.array([-mae(split.y, o) for o in out])

    use_val = val is not None and (kind == "regression" or len(np.unique(val.y)) > 1)
    if val is not None and not use_val:
        log.warning(
            "Probe: the validation split holds one class only; keeping the last epoch"
        )
    best = np.full(n_seeds, -np.inf)
    best_epoch = np.full(n_seeds, -1)
    best_w, best_b = weight.detach().clone(), bias.detach().clone()
    n = len(xtr)
    for epoch in range(cfg.epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in gens])
        for i in range(0, n, cfg.batch_size):
            idx = order[:, i : i + cfg.batch_size]  # (seeds, batch)
            out = forward(xtr[idx], weight, bias)
            l2 = weight.pow(2).sum() + bias.pow(2).sum()
            loss = loss_of(out, ytr[idx]) + cfg.l2 * l2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        s = scores(val) if use_val and val is not None else np.full(n_seeds, epoch)
        better = s > best
        if better.any():
            keep = torch.as_tensor(better)
            best_w[keep] = weight.detach()[keep]
            best_b[keep] = bias.detach()[keep]
            best[better], best_epoch[better] = s[better], epoch
    val_metrics = None
    if use_val and val is not None:
        val_metrics = [float(v if kind == "classification" else -v) for v in best]

    def predict(x: np.ndarray) -> np.ndarray:
        return outputs_of(x, best_w, best_b)

    return predict, [int(e) for e in best_epoch], val_metrics


def _summary(
    kind: Literal["classification", "regression"],
    y: np.ndarray,
    outputs: np.ndarray,
    epochs: list[int],
) -> ProbeResult:
    """Per-seed test metrics and their mean ± std."""
    metric_fn = auroc if kind == "classification" else mae
    per_seed = [metric_fn(y, out) for out in outputs]
    return ProbeResult(
        metric="auroc" if kind == "classification" else "mae",
        per_seed=per_seed,
        mean=float(np.mean(per_seed)),
        std=float(np.std(per_seed)),
        best_epochs=epochs,
        outputs=np.asarray(outputs),
        test_y=np.asarray(y),
    )


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside: a probe's tensors are tiny (seeds × batch ×
    embedding), and a thread pool's synchronisation then costs more than it saves,
    many times more on a loaded machine (measured on 2 cores beside a training run:
    0.23 s against 1.1–2.0 s for one probe)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@one_thread()
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
    predict, epochs, vals = _fit_seeds(train, val, cfg.seeds, cfg, kind, n_classes or 0)
    result = _summary(kind, test.y, predict(test.x), epochs)
    result.val_per_seed = vals
    return result


@one_thread()
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
    pred: np.ndarray | None = None
    for g in np.unique(groups):
        held = groups == g
        predict, _, _ = _fit_seeds(
            Split(data.x[~held], data.y[~held]),
            None,
            cfg.seeds,
            cfg,
            kind,
            n_classes or 0,
            balanced=True,
        )
        out = predict(data.x[held])  # (seeds, held units[, classes])
        if pred is None:
            pred = np.zeros((out.shape[0], len(data.y), *out.shape[2:]), out.dtype)
        pred[:, held] = out
    assert pred is not None
    return _summary(kind, data.y, pred, [cfg.epochs - 1] * len(cfg.seeds))
