"""Projection heads mapping audio and text embeddings to the shared space."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class HeadCfg:
    """The authors' head: in → 1024 → 512, ReLU, dropout 0.2."""

    hidden: int = 1024  # width of the hidden layer
    out: int = 512  # shared embedding size
    dropout: float = 0.2  # after the hidden activation


class ProjectionHead(nn.Sequential):
    """``Linear → ReLU → Dropout → Linear``."""

    def __init__(self, in_dim: int, cfg: HeadCfg | None = None) -> None:
        cfg = cfg or HeadCfg()
        super().__init__(
            nn.Linear(in_dim, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.out),
        )
        self.in_dim, self.out_dim = in_dim, cfg.out
