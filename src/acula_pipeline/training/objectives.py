"""What one training step optimises: SSL alone (pretrain) or AcuLa's joint loss.

Each objective is a module whose ``forward(batch)`` returns the loss terms, so the
trainer can wrap it in DDP unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from acula_pipeline.models import LOSSES, AudioEncoder, HeadCfg, ProjectionHead
from acula_pipeline.training.distributed import gather_global


class AlignObjective(nn.Module):
    """Student, projection heads and the alignment loss, trained together.

    ``L = λ_align · L_align(head(student(x)), head(teacher(report))) + λ_ssl · L_ssl``

    Under DDP the alignment loss sees the global batch (every rank's embeddings), as
    contrastive negatives and CKA statistics need; the SSL loss is per clip, so its
    per-rank means are averaged by DDP.
    """

    def __init__(
        self,
        student: AudioEncoder,
        teacher_dim: int,
        loss: str = "cka_feature",
        head: HeadCfg | None = None,
        lambda_align: float = 1.0,
        lambda_ssl: float = 1.0,
        loss_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise KeyError(f"unknown alignment loss {loss!r}; known: {sorted(LOSSES)}")
        if lambda_ssl and not student.has_ssl:
            raise ValueError(
                f"encoder {student.name!r} has no self-supervised loss; "
                "set lambda_ssl: 0"
            )
        self.student = student
        self.audio_head = ProjectionHead(student.embed_dim, head)
        self.text_head = ProjectionHead(teacher_dim, head)
        self.loss = LOSSES[loss](**(loss_options or {}))
        self.lambda_align, self.lambda_ssl = lambda_align, lambda_ssl

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """One micro-batch of (clips, cached teacher embeddings)."""
        x, t = batch
        ssl = self.student.ssl_loss(x) if self.lambda_ssl else t.new_zeros(())
        if self.lambda_align:
            audio = gather_global(self.audio_head(self.student.encode_audio(x)))
            text = gather_global(self.text_head(t))
            align = self.loss(audio, text)
        else:  # the SSL-only control: the heads and the loss would not move the student
            align = t.new_zeros(())
        return {
            "loss": self.lambda_align * align + self.lambda_ssl * ssl,
            "align": align,
            "ssl": ssl,
        }


class PretrainObjective(nn.Module):
    """The encoder's own self-supervised loss alone."""

    def __init__(self, encoder: AudioEncoder) -> None:
        super().__init__()
        if not encoder.has_ssl:
            raise ValueError(f"encoder {encoder.name!r} has no self-supervised loss")
        self.encoder = encoder

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        ssl = self.encoder.ssl_loss(batch[0])
        return {"loss": ssl, "ssl": ssl}
