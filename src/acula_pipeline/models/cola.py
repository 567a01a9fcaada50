"""COLA, the contrastive objective OPERA-CT and OPERA-CE were pretrained with.

Two crops of the same recording should be closer to each other than to the crops
of the other recordings in the batch: each crop's encoder embedding goes through the
projection ``g`` → layer norm → tanh, one side through a bilinear map ``linear``
(the similarity is ``W x₁ · x₂``), and the loss is the cross-entropy of each row of
the batch's similarity matrix against its own pair (Saeed et al., 2021, as in
OPERA's ``models_cola.Cola``). The module names (``g``, ``layer_norm``, ``linear``)
are OPERA's, so its published heads load key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ColaHead(nn.Module):
    """OPERA's COLA projection: ``dim_in`` → ``dim_out``, then the bilinear map."""

    def __init__(self, dim_in: int, dim_out: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.do = nn.Dropout(p=dropout)
        self.g = nn.Linear(dim_in, dim_out)
        self.layer_norm = nn.LayerNorm(dim_out)
        self.linear = nn.Linear(dim_out, dim_out, bias=False)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """``tanh(layer_norm(g(h)))``, with OPERA's dropouts."""
        x = self.do(self.g(self.do(h)))
        return self.do(torch.tanh(self.layer_norm(x)))

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """The COLA loss of two views' encoder embeddings ``(batch, dim_in)``."""
        return cola_loss(self.linear(self.project(h1)), self.project(h2))


def cola_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``z1 @ z2ᵀ`` (batch × batch) against the diagonal: row i's
    pair is column i."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"cola_loss needs two (batch, dim) views of one shape; got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    logits = z1 @ z2.t()
    return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))
