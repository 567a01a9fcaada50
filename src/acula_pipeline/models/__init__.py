"""Students, teachers, projection heads and losses (open_clip-like API)."""

from acula_pipeline.models.heads import HeadCfg, ProjectionHead
from acula_pipeline.models.losses import LOSSES, clamp_temperatures, register_loss
from acula_pipeline.models.mae_vit import MAEViT, MAEViTCfg

__all__ = [
    "LOSSES",
    "HeadCfg",
    "MAEViT",
    "MAEViTCfg",
    "ProjectionHead",
    "clamp_temperatures",
    "register_loss",
]
