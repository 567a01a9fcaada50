"""What one training step optimises: SSL alone (pretrain) or AcuLa's joint loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from acula_pipeline.models import LOSSES, HeadCfg, MAEViT, ProjectionHead


class AlignObjective(nn.Module):
    """Student, projection heads and the alignment loss, trained together.

    ``L = λ_align · L_align(head(student(x)), head(teacher(report))) + λ_ssl · L_ssl``
    """

    def __init__(
        self,
        student: MAEViT,
        teacher_dim: int,
        loss: str = "cka_feature",
        head: HeadCfg | None = None,
        lambda_align: float = 1.0,
        lambda_ssl: float = 1.0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise KeyError(f"unknown alignment loss {loss!r}; known: {sorted(LOSSES)}")
        self.student = student
        self.audio_head = ProjectionHead(student.embed_dim, head)
        self.text_head = ProjectionHead(teacher_dim, head)
        self.loss = LOSSES[loss]()
        self.lambda_align, self.lambda_ssl = lambda_align, lambda_ssl


def align_step(model: AlignObjective, batch: Any) -> dict[str, torch.Tensor]:
    """One micro-batch of (log-mel clips, cached teacher embeddings)."""
    x, t = batch
    device = next(model.parameters()).device
    x, t = x.to(device, non_blocking=True), t.to(device, non_blocking=True)
    ssl = model.student.ssl_loss(x) if model.lambda_ssl else x.new_zeros(())
    align = model.loss(
        model.audio_head(model.student.encode_audio(x)), model.text_head(t)
    )
    return {
        "loss": model.lambda_align * align + model.lambda_ssl * ssl,
        "align": align,
        "ssl": ssl,
    }


def pretrain_step(model: MAEViT, batch: Any) -> dict[str, torch.Tensor]:
    """One micro-batch of log-mel clips, masked reconstruction only."""
    x = batch[0].to(next(model.parameters()).device, non_blocking=True)
    ssl = model.ssl_loss(x)
    return {"loss": ssl, "ssl": ssl}
