"""The no-learning reference: log-mel statistics as the "embedding".

Each clip becomes the mean and the standard deviation over time of every mel band
of the stored log-mel features (``2 × n_mels`` numbers, nothing trained). A linear
probe on these is the row every table needs beside the learned encoders: if an
encoder does not beat it, the encoder has learned nothing a probe could use.
"""

from __future__ import annotations

from typing import Any

import torch

from acula_pipeline.models.base import AudioEncoder, register_encoder


class LogMelStats(AudioEncoder):
    """Per-band mean and standard deviation over the clip's frames."""

    name = "logmel_stats"
    input_kind = "logmel"

    def __init__(self, n_mels: int | None = None) -> None:
        super().__init__()
        self.n_mels = n_mels
        if n_mels is not None:
            self.embed_dim = 2 * n_mels

    def encode_audio(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(
                "logmel_stats reads log-mel clips (batch, frames, n_mels), got "
                + (
                    str(tuple(x.shape))
                    if isinstance(x, torch.Tensor)
                    else type(x).__name__
                )
            )
        x = x.float()
        return torch.cat([x.mean(dim=1), x.std(dim=1, unbiased=False)], dim=1)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "n_mels": self.n_mels}


@register_encoder("logmel_stats")
def logmel_stats(n_mels: int | None = None) -> LogMelStats:
    """The no-learning reference (``n_mels`` from the feature store unless given)."""
    return LogMelStats(n_mels)
