"""What every audio encoder (the student) declares, and the encoder registry.

An encoder is an ``nn.Module`` that says which input it reads (``logmel``: the feature
store's ``(frames, n_mels)`` clips; ``waveform``: the 16 kHz clips ingest keeps when
``ingest.features.keep_waveforms`` is on), its embedding size, how one clip is turned
into model input on the CPU (``preprocessor``, run inside the data loader), how a
batch becomes one vector per clip (``encode_audio``) and, optionally, its own
self-supervised loss (``ssl_loss``). ``spec()`` is the JSON that rebuilds it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

InputKind = Literal["logmel", "waveform"]
Batch = torch.Tensor | dict[str, torch.Tensor]


def to_float_tensor(clip: np.ndarray) -> torch.Tensor:
    """A stored clip (float16 memory map) as a float32 tensor."""
    return torch.from_numpy(np.asarray(clip, dtype=np.float32))


class Resampled:
    """A stored waveform as float32, resampled to the model's rate (picklable)."""

    def __init__(self, source_rate: int, rate: int) -> None:
        self.source_rate, self.rate = int(source_rate), int(rate)

    def __call__(self, clip: np.ndarray) -> torch.Tensor:
        from acula_pipeline.audio.frontend import resample

        return resample(to_float_tensor(clip), self.source_rate, self.rate)


class AudioEncoder(nn.Module):
    """Base class of the students; subclasses register with ``register_encoder``."""

    name: ClassVar[str] = ""
    input_kind: InputKind = "logmel"
    embed_dim: int

    def preprocessor(self, source_rate: int) -> Callable[[np.ndarray], Batch]:
        """A picklable function from one stored clip to this model's input.

        ``source_rate`` is the sample rate of stored waveforms (waveform encoders
        resample from it); log-mel encoders take the stored features as they are.
        """
        return to_float_tensor

    def encode_audio(self, x: Any) -> torch.Tensor:
        """(batch, embed_dim) embeddings."""
        raise NotImplementedError

    @property
    def has_ssl(self) -> bool:
        """Whether ``ssl_loss`` exists (the joint loss needs it when λ_ssl > 0)."""
        return False

    def ssl_loss(self, x: Any) -> torch.Tensor:
        raise NotImplementedError(f"encoder {self.name!r} has no self-supervised loss")

    def check_input(self, example: Batch) -> None:
        """Run one preprocessed clip through: a clear error when the stored input
        does not fit the model, and the embedding size where none was declared."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                batch = (
                    {k: v[None] for k, v in example.items()}
                    if isinstance(example, dict)
                    else example[None]
                )
                out = self.encode_audio(batch)
        except Exception as e:
            shape = (
                {k: tuple(v.shape) for k, v in example.items()}
                if isinstance(example, dict)
                else tuple(example.shape)
            )
            raise ValueError(
                f"encoder {self.spec()} fails on one {self.input_kind} clip of shape "
                f"{shape}: {type(e).__name__}: {e}"
            ) from e
        finally:
            self.train(was_training)
        if out.dim() != 2 or len(out) != 1:
            raise ValueError(
                f"encoder {self.spec()} must return (batch, dim) embeddings; "
                f"got shape {tuple(out.shape)} for one clip"
            )
        declared = getattr(self, "embed_dim", None)
        if declared is None:
            self.embed_dim = int(out.shape[1])
        elif declared != out.shape[1]:
            raise ValueError(
                f"encoder {self.spec()} declares embed_dim {declared} but returns "
                f"{out.shape[1]}-d embeddings"
            )

    def spec(self) -> dict[str, Any]:
        """``{"name": ..., options}``: ``build_encoder(spec)`` makes the same model."""
        raise NotImplementedError


ENCODERS: dict[str, Callable[..., AudioEncoder]] = {}


def register_encoder(name: str) -> Callable[[Any], Any]:
    """Register an encoder builder under ``align.encoder.name: <name>``."""

    def deco(fn: Any) -> Any:
        ENCODERS[name] = fn
        return fn

    return deco


def build_encoder(spec: dict[str, Any]) -> AudioEncoder:
    """The encoder a ``spec`` describes (fresh weights or the ones at its path)."""
    opts = dict(spec)
    name = opts.pop("name", None)
    if name not in ENCODERS:
        raise KeyError(f"unknown encoder {name!r}; known: {sorted(ENCODERS)}")
    return ENCODERS[name](**opts)


# Encoders whose file holds code that runs when loaded (TorchScript), and the name
# their file takes inside a model folder: a folder carries its own copy, and a
# folder's config may name no file outside it.
CODE_FILES = {"torchscript": "encoder.pt"}


class UnsafeModelPath(ValueError):
    """A model folder's config names a code file outside the folder."""


def encoder_spec_in_folder(spec: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """``spec`` as read from ``folder/config.json``, its code file resolved inside
    ``folder``.

    Raises:
        UnsafeModelPath: The path is absolute or leads outside the folder (a
            ``config.json`` from elsewhere could point ``torch.jit.load`` at any
            file on the machine).
    """
    name = spec.get("name")
    if name not in CODE_FILES or spec.get("path") is None:
        return spec
    folder = Path(folder).resolve()
    given = Path(str(spec["path"]))
    resolved = (folder / given).resolve()
    if given.is_absolute() or not resolved.is_relative_to(folder):
        raise UnsafeModelPath(
            f"{folder}/config.json: the {name} encoder's path {str(given)!r} is outside "
            f"the model folder; refused (a model folder carries its own "
            f"{CODE_FILES[name]}: rewrite it with the pipeline, or copy the file into "
            f"the folder and name it relative to it)"
        )
    return spec | {"path": str(resolved)}


def spec_for_folder(spec: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """``spec`` as written into ``folder``: a code file is copied in (as
    ``CODE_FILES[name]``) and named relative to the folder."""
    name = spec.get("name")
    if name not in CODE_FILES or spec.get("path") is None:
        return spec
    target = Path(folder) / CODE_FILES[name]
    source = Path(str(spec["path"]))
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return spec | {"path": CODE_FILES[name]}


def load_encoder(artifact: dict[str, Any]) -> AudioEncoder:
    """The encoder inside a saved artifact (baseline or aligned model), weights loaded.

    Aligned artifacts hold the heads too; their encoder weights sit under
    ``student.``.
    """
    encoder = build_encoder(artifact["config"]["encoder"])
    state = artifact["state_dict"]
    if any(k.startswith("student.") for k in state):
        state = {k[8:]: v for k, v in state.items() if k.startswith("student.")}
    encoder.load_state_dict(state)
    return encoder
