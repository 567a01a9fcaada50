"""Alignment losses between audio and text embeddings, behind a registry.

Each loss is a module whose ``forward(audio, text)`` returns a scalar; learnable
temperatures live in log space (open_clip's habit) and are clamped by the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register an alignment loss under ``align.loss: <name>``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        LOSSES[name] = cls
        return cls

    return deco


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=0, keepdim=True)


@register_loss("cka_feature")
class CKAFeatureLoss(nn.Module):
    """The authors' alignment term: 1 − cosine of the centred feature Gram matrices.

    ``XᵀX`` and ``YᵀY`` (d × d, after centring over the batch) are compared as
    vectors, so both sides must have the same width (true after projection heads).
    """

    def forward(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if audio.shape[1] != text.shape[1]:
            raise ValueError(
                f"cka_feature needs equal widths, got {audio.shape[1]} and "
                f"{text.shape[1]}; project both sides to one size"
            )
        x, y = _centre(audio.float()), _centre(text.float())
        gx, gy = x.T @ x, y.T @ y
        return 1.0 - F.cosine_similarity(gx.flatten(), gy.flatten(), dim=0)


@register_loss("cka_linear")
class CKALinearLoss(nn.Module):
    """1 − linear CKA (Kornblith et al. 2019): ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)."""

    def forward(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x, y = _centre(audio.float()), _centre(text.float())
        cross = torch.linalg.matrix_norm(y.T @ x) ** 2
        norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
        return 1.0 - cross / norm.clamp_min(1e-12)


@register_loss("clip")
class ClipLoss(nn.Module):
    """Symmetric InfoNCE with a learnable temperature (init 1/0.07, capped at 100)."""

    max_log_scale = math.log(100.0)

    def __init__(self, init_scale: float = 1 / 0.07) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def logits(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        a, t = F.normalize(audio.float(), dim=-1), F.normalize(text.float(), dim=-1)
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        return scale * a @ t.T

    def ground_truth(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.arange(n, device=device)

    def forward(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        logits = self.logits(audio, text)
        labels = self.ground_truth(len(logits), logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@register_loss("siglip")
class SigLipLoss(nn.Module):
    """Pairwise sigmoid loss (Zhai et al. 2023): scale init 10 (log space), bias −10."""

    max_log_scale = math.log(100.0)

    def __init__(self, init_scale: float = 10.0, init_bias: float = -10.0) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(init_bias))

    def ground_truth(self, n: int, device: torch.device) -> torch.Tensor:
        return 2 * torch.eye(n, device=device) - 1

    def forward(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        a, t = F.normalize(audio.float(), dim=-1), F.normalize(text.float(), dim=-1)
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        logits = scale * a @ t.T + self.logit_bias
        labels = self.ground_truth(len(logits), logits.device)
        return -F.logsigmoid(labels * logits).sum() / len(logits)


def clamp_temperatures(loss: nn.Module) -> None:
    """Cap learnable log-temperatures at ln 100 (call after each optimiser step)."""
    scale = getattr(loss, "logit_scale", None)
    if isinstance(scale, nn.Parameter):
        with torch.no_grad():
            scale.clamp_(max=math.log(100.0))
