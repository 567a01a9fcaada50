"""A local causal language model (Hugging Face format) from a configured path.

Batched, left-padded greedy or sampled generation on CPU or GPU. On CUDA the weights
are loaded in bfloat16 (``dtype: auto``); autocast would only add a cast per operation.
Nothing is downloaded: the path must hold the config, weights and tokenizer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.reports.backends.base import (
    BackendConfigError,
    Generation,
    ReportRequest,
    register_backend,
)
from acula_pipeline.reports.prompts import Message
from acula_pipeline.runtime import model_folder_fingerprint, resolve_device

log = logging.getLogger(__name__)


class TransformersCfg(BaseModel):
    """``reports.transformers``."""

    model_config = ConfigDict(extra="forbid")

    model_path: str | None = None  # folder with config.json, weights, tokenizer
    device: str = "auto"  # auto → cuda if available, else cpu
    dtype: str = "auto"  # auto → bfloat16 on CUDA, float32 on CPU
    batch_size: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=160, ge=1)
    max_input_tokens: int = Field(default=1024, ge=16)
    do_sample: bool = False
    temperature: float = 0.7  # used only when do_sample
    seed: int = 0
    json_mode: bool = False  # small local models rarely keep to JSON


class TransformersBackend:
    """Batched generation with a local causal LM."""

    name = "transformers"
    is_llm = True
    per_unit = False
    # with json_mode, the report is this key of the answer; None: the whole answer
    answer_key: str | None = "report"

    def __init__(self, cfg: TransformersCfg) -> None:
        if not cfg.model_path:
            raise BackendConfigError(
                "reports.backend is 'transformers' but reports.transformers.model_path "
                "is not set; point it at a local model folder"
            )
        path = Path(cfg.model_path)
        if not (path / "config.json").is_file():
            raise BackendConfigError(
                f"reports.transformers.model_path {path}: no config.json there"
            )
        self.cfg = cfg
        self.path = path
        self.model = path.name
        self._fp = model_folder_fingerprint(path)
        self._lm: Any = None
        self._tok: Any = None
        self._stats = {"batches": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def identity(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "model": str(self.path.resolve()),
            "fingerprint": self._fp,
            "max_new_tokens": c.max_new_tokens,
            "max_input_tokens": c.max_input_tokens,
            "do_sample": c.do_sample,
            "temperature": c.temperature if c.do_sample else None,
            "seed": c.seed,
            "json_mode": c.json_mode,
        }

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = resolve_device(self.cfg.device)
        dtype = self.cfg.dtype
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        tok.padding_side = "left"  # generation continues at the right edge
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        lm = AutoModelForCausalLM.from_pretrained(
            self.path, local_files_only=True, dtype=getattr(torch, dtype)
        )
        self._lm = lm.to(self.device).eval()  # type: ignore[arg-type]
        self._tok = tok
        log.info("Loaded %s on %s (%s)", self.path, self.device, dtype)

    def render(self, messages: list[Message]) -> str:
        """The model's chat template when it has one, else a plain transcript."""
        if getattr(self._tok, "chat_template", None):
            return str(
                self._tok.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            )
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(lines) + "\n\nAssistant:"

    def _text(self, raw: str) -> str | None:
        raw = raw.strip()
        if not self.cfg.json_mode or self.answer_key is None:
            return raw
        try:
            report = json.loads(raw)[self.answer_key]
        except (ValueError, KeyError, TypeError):
            return None
        return report.strip() if isinstance(report, str) else None

    def generate(self, requests: Sequence[ReportRequest]) -> Iterator[Generation]:
        import torch

        if self._lm is None:
            self._load()
        torch.manual_seed(self.cfg.seed)
        bs = self.cfg.batch_size
        for i in range(0, len(requests), bs):
            batch = requests[i : i + bs]
            prompts = [self.render(r.messages) for r in batch]
            enc = self._tok(
                prompts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.cfg.max_input_tokens,
            ).to(self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": self.cfg.max_new_tokens,
                "do_sample": self.cfg.do_sample,
                "pad_token_id": self._tok.pad_token_id,
            }
            if self.cfg.do_sample:
                kwargs["temperature"] = self.cfg.temperature
            with torch.inference_mode():
                out = self._lm.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            self._stats["batches"] += 1
            for req, row, mask in zip(batch, new, enc["attention_mask"], strict=True):
                eos = self._tok.eos_token_id
                n_new = int((row != self._tok.pad_token_id).sum())
                if eos is not None and eos != self._tok.pad_token_id:
                    n_new = int(((row != self._tok.pad_token_id) & (row != eos)).sum())
                n_in = int(mask.sum())
                self._stats["prompt_tokens"] += n_in
                self._stats["completion_tokens"] += n_new
                text = self._text(self._tok.decode(row, skip_special_tokens=True))
                err = None if text is not None else "malformed JSON from local model"
                yield Generation(req.key, text, err, n_in, n_new)


@register_backend("transformers")
def make_transformers(cfg: Any) -> TransformersBackend:
    return TransformersBackend(cfg.transformers)
