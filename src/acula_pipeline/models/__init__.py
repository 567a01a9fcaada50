"""Students, teachers, projection heads and losses (open_clip-like API)."""

from acula_pipeline.models import (  # noqa: F401  (registration)
    hf_audio,
    opera,
    reference,
    torchscript,
)
from acula_pipeline.models.base import (
    ENCODERS,
    AudioEncoder,
    build_encoder,
    load_encoder,
    register_encoder,
)
from acula_pipeline.models.heads import HeadCfg, ProjectionHead
from acula_pipeline.models.losses import LOSSES, clamp_temperatures, register_loss
from acula_pipeline.models.mae_vit import MAEViT, MAEViTCfg

__all__ = [
    "ENCODERS",
    "LOSSES",
    "AudioEncoder",
    "HeadCfg",
    "MAEViT",
    "MAEViTCfg",
    "ProjectionHead",
    "build_encoder",
    "clamp_temperatures",
    "load_encoder",
    "register_encoder",
    "register_loss",
]
