"""A Hugging Face audio model from a local folder as the student.

AST, wav2vec 2.0, HuBERT, the Whisper encoder, the CLAP audio tower and anything else
``AutoModel`` loads with an ``AutoFeatureExtractor``: the extractor runs on each clip
inside the data loader (stored 16 kHz waveforms, resampled to the extractor's rate),
the model's last hidden state is pooled to one vector. Nothing is downloaded.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from acula_pipeline.audio.frontend import resample
from acula_pipeline.models.base import AudioEncoder, register_encoder

Pooling = Literal["auto", "mean", "cls", "pooler"]


class HFPreprocess:
    """One stored waveform → the extractor's tensors (picklable, CPU)."""

    def __init__(self, extractor: Any, source_rate: int, keys: tuple[str, ...]) -> None:
        self.extractor, self.source_rate, self.keys = extractor, source_rate, keys
        self.rate = int(extractor.sampling_rate)
        # Whisper pads every clip to 30 s; its mask tells pooling where audio ends.
        self.kwargs = (
            {"return_attention_mask": True} if hasattr(extractor, "n_samples") else {}
        )

    def __call__(self, clip: np.ndarray) -> dict[str, torch.Tensor]:
        wave = torch.from_numpy(np.asarray(clip, dtype=np.float32))
        out = self.extractor(
            resample(wave, self.source_rate, self.rate).numpy(),
            sampling_rate=self.rate,
            return_tensors="np",
            **self.kwargs,
        )
        return {
            k: torch.from_numpy(np.asarray(out[k])[0])
            for k in self.keys + ("attention_mask",)
            if k in out
        }


class HFAudioEncoder(AudioEncoder):
    """``AutoModel`` + ``AutoFeatureExtractor`` from ``path``, pooled to one vector.

    Pooling: ``mean`` over time (only the frames holding audio when the extractor
    pads, e.g. Whisper's 30 s window), ``cls`` (first token), ``pooler`` (the model's
    own pooled output: AST, CLAP), or ``auto`` (``pooler`` where the model has one,
    else ``mean``).
    """

    name = "hf_audio"
    input_kind = "waveform"

    def __init__(self, path: str | Path, pooling: Pooling = "auto") -> None:
        super().__init__()
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(
                f"hf_audio encoder path {self.path}: no config.json there "
                "(a local Hugging Face model folder is required; nothing is downloaded)"
            )
        config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(
                self.path, local_files_only=True
            )
        except (OSError, ValueError) as e:
            raise FileNotFoundError(
                f"hf_audio encoder path {self.path}: no usable feature extractor "
                f"(preprocessor_config.json): {e}"
            ) from e
        model = AutoModel.from_pretrained(self.path, local_files_only=True)
        if getattr(config, "is_encoder_decoder", False):
            model = model.get_encoder()  # Whisper: the audio encoder only
        elif config.model_type == "clap":
            model = model.audio_model  # the CLAP audio tower
        self.model = model
        self.pooling = pooling
        accepted = set(inspect.signature(model.forward).parameters)
        self.input_keys = tuple(
            k
            for k in (*self.extractor.model_input_names, "attention_mask")
            if k in accepted
        )
        self.embed_dim = self._probe_dim()

    def _probe_dim(self) -> int:
        """Width of the pooled output, from one forward pass on a second of silence."""
        rate = int(self.extractor.sampling_rate)
        x = HFPreprocess(self.extractor, rate, self.input_keys)(np.zeros(rate))
        was_training = self.training
        self.eval()
        with torch.no_grad():
            dim = self.encode_audio({k: v[None] for k, v in x.items()}).shape[-1]
        self.train(was_training)
        return int(dim)

    def preprocessor(self, source_rate: int) -> HFPreprocess:
        return HFPreprocess(self.extractor, source_rate, self.input_keys)

    def encode_audio(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.model(**{k: v for k, v in x.items() if k in self.input_keys})
        pooled = getattr(out, "pooler_output", None)
        if self.pooling == "pooler" or (self.pooling == "auto" and pooled is not None):
            if pooled is None:
                raise ValueError(
                    f"hf_audio model at {self.path} has no pooled output; "
                    "use pooling: mean or cls"
                )
            return pooled.flatten(1)
        hidden = out.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = x.get("attention_mask")
        if mask is None:
            return hidden.mean(dim=1)
        # The mask is at input resolution; keep the same share of output frames.
        n = hidden.shape[1]
        valid = (mask.sum(-1).float() * n / mask.shape[-1]).ceil().clamp(1, n)
        keep = torch.arange(n, device=hidden.device)[None] < valid[:, None]
        m = keep[..., None].to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "pooling": self.pooling}


@register_encoder("hf_audio")
def hf_audio(
    path: str | Path | None = None, pooling: Pooling = "auto"
) -> HFAudioEncoder:
    """A local Hugging Face audio model (AST, wav2vec 2.0, HuBERT, Whisper, CLAP)."""
    if path is None:
        raise ValueError(
            "the hf_audio encoder needs align.encoder.path (a local folder)"
        )
    return HFAudioEncoder(path, pooling)
