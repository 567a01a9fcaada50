"""Any TorchScript module as the student, with a declared input contract.

The contract: ``forward(x)`` maps a batch of log-mel clips ``(batch, frames,
n_mels)`` or of waveforms ``(batch, samples)`` to ``(batch, dim)`` embeddings. It is
declared in ``align.encoder`` (``input``, ``sample_rate``, ``embed_dim``) or as
attributes of the scripted module with the same names (``input_kind``,
``sample_rate``, ``embed_dim``); the configuration wins. A module that exports an
``ssl_loss(x)`` method (``@torch.jit.export``) brings its own self-supervised loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acula_pipeline.models.base import (
    AudioEncoder,
    Batch,
    InputKind,
    Resampled,
    register_encoder,
    to_float_tensor,
)


class TorchScriptEncoder(AudioEncoder):
    """A ``torch.jit`` archive, trained in place (its parameters are ordinary)."""

    name = "torchscript"

    def __init__(
        self,
        path: str | Path,
        input: InputKind | None = None,
        sample_rate: int | None = None,
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"torchscript encoder: no file at {self.path}")
        with warnings.catch_warnings():
            # torch ≥ 2.9 marks TorchScript deprecated; loading still works.
            warnings.simplefilter("ignore", FutureWarning)
            try:
                self.module = torch.jit.load(str(self.path), map_location="cpu")
            except RuntimeError as e:
                raise ValueError(
                    f"torchscript encoder {self.path}: not a TorchScript archive: {e}"
                ) from e
        kind = input or getattr(self.module, "input_kind", "logmel")
        if kind not in ("logmel", "waveform"):
            raise ValueError(
                f"torchscript encoder {self.path}: input must be logmel or waveform, "
                f"got {kind!r}"
            )
        self.input_kind = kind
        rate: Any = sample_rate or getattr(self.module, "sample_rate", 16000)
        self.sample_rate = int(rate)
        declared: Any = embed_dim or getattr(self.module, "embed_dim", None)
        if declared is not None:  # else check_input() measures it
            self.embed_dim = int(declared)
        self._options = {"input": input, "sample_rate": sample_rate}

    def preprocessor(self, source_rate: int) -> Callable[[np.ndarray], Batch]:
        if self.input_kind == "waveform":
            return Resampled(source_rate, self.sample_rate)
        return to_float_tensor

    def encode_audio(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    @property
    def has_ssl(self) -> bool:
        return hasattr(self.module, "ssl_loss")

    def ssl_loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.ssl_loss(x)

    def spec(self) -> dict[str, Any]:
        # The measured width once check_input() ran: the artifact rebuilds as is.
        dim = getattr(self, "embed_dim", None)
        return {
            "name": self.name,
            "path": str(self.path),
            **self._options,
            "embed_dim": dim,
        }


@register_encoder("torchscript")
def torchscript(
    path: str | Path | None = None,
    input: InputKind | None = None,
    sample_rate: int | None = None,
    embed_dim: int | None = None,
) -> TorchScriptEncoder:
    """A scripted module from a local ``.pt`` file (explicit options, so a misspelt
    one is caught when the parameters are validated)."""
    if path is None:
        raise ValueError(
            "the torchscript encoder needs align.encoder.path (a .pt file)"
        )
    return TorchScriptEncoder(path, input, sample_rate, embed_dim)
