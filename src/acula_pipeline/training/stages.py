"""The pretrain and align stages as plain functions (the Kedro nodes call these)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models import HeadCfg, MAEViT, MAEViTCfg
from acula_pipeline.models.teachers import TEACHERS
from acula_pipeline.training.data import (
    ClipDataset,
    alignment_pairs,
    code_fingerprint,
    fingerprint,
    trainable_segments,
)
from acula_pipeline.training.engine import TrainCfg, Trainer
from acula_pipeline.training.objectives import AlignObjective, align_step, pretrain_step
from acula_pipeline.training.teacher_cache import EmbeddingCache

log = logging.getLogger(__name__)

Artifact = dict[str, Any]  # {"state_dict": ..., "config": ...}


class StudentParams(BaseModel):
    """``MAEViTCfg`` fields (see models/mae_vit.py)."""

    model_config = ConfigDict(extra="forbid")

    patch: int = 16
    dim: int = 192
    depth: int = 4
    heads: int = 3
    mlp_ratio: float = 4.0
    decoder_dim: int = 128
    decoder_depth: int = 1
    decoder_heads: int = 4
    mask_ratio: float = Field(default=0.7, gt=0, lt=1)


class PretrainParams(BaseModel):
    """All of ``conf/base/parameters_pretrain.yml``."""

    model_config = ConfigDict(extra="forbid")

    student: StudentParams = StudentParams()
    exclude_splits: list[str] = ["test"]  # held out for evaluation
    train: TrainCfg = TrainCfg()


class TeacherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "sentence_encoder"  # sentence_encoder | hf_encoder | hf_causal_lm
    path: str | None = None  # a local folder (default MiniLM: its package)
    pooling: Literal["mean", "last"] | None = None  # None → the teacher's default
    max_length: int = 256
    batch_size: int = 64


class AlignParams(BaseModel):
    """All of ``conf/base/parameters_align.yml``."""

    model_config = ConfigDict(extra="forbid")

    teacher: TeacherParams = TeacherParams()
    loss: str = "cka_feature"
    lambda_align: float = Field(default=1.0, ge=0)
    lambda_ssl: float = Field(default=1.0, ge=0)
    head: HeadCfg = HeadCfg()
    init_from: Literal["baseline", "scratch"] = "baseline"
    train: TrainCfg = TrainCfg()


def _student_cfg(p: StudentParams, store: FeatureStore) -> MAEViTCfg:
    n_frames, n_mels = store.meta["shape"]
    return MAEViTCfg(n_frames=n_frames, n_mels=n_mels, **p.model_dump())


def _artifact(model: torch.nn.Module, config: dict[str, Any]) -> Artifact:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {"state_dict": state, "config": config}


def pretrain(
    store: FeatureStore,
    segments: pd.DataFrame,
    params: PretrainParams,
    checkpoint_dir: str | Path,
) -> tuple[Artifact, pd.DataFrame]:
    """Self-supervised training of the student: the purely acoustic baseline."""
    ids = trainable_segments(segments, params.exclude_splits)
    cfg = _student_cfg(params.student, store)
    config = {
        "kind": "mae_vit",
        "student": cfg.__dict__,
        "params": params.model_dump(),
        "data": fingerprint(ids, store.meta),
        "code": code_fingerprint(),
        "is_synthetic": bool(store.meta.get("is_synthetic")),
    }
    torch.manual_seed(params.train.seed)
    model = MAEViT(cfg)
    log.info("Pretraining on %d clips", len(ids))
    trainer = Trainer(model, pretrain_step, params.train, checkpoint_dir, config)
    curve = trainer.fit(ClipDataset(store, ids))
    return _artifact(model, config), pd.DataFrame(curve)


def embed_reports(
    reports: pd.DataFrame, params: AlignParams, cache_dir: str | Path
) -> dict[str, Any]:
    """Teacher embeddings of every report, through the on-disk cache."""
    t = params.teacher
    if t.name not in TEACHERS:
        raise KeyError(f"unknown teacher {t.name!r}; known: {sorted(TEACHERS)}")
    kwargs: dict[str, Any] = {"max_length": t.max_length}
    if t.pooling:
        kwargs["pooling"] = t.pooling
    if t.path is None and t.name != "sentence_encoder":
        raise ValueError(f"align.teacher.path is required for teacher {t.name!r}")
    teacher = TEACHERS[t.name](t.path, **kwargs)
    cache = EmbeddingCache(cache_dir, teacher, teacher.pooling)
    vectors = cache.embed(reports["report"].tolist(), t.batch_size)
    return {
        "unit_id": reports["unit_id"].tolist(),
        "vectors": vectors,
        "teacher": {
            "name": t.name,
            "path": str(teacher.path),
            "key": cache.key,
            "dim": teacher.dim,
        },
        "teacher_forward_texts": cache.forward_texts,
    }


def align(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: Artifact | None,
    params: AlignParams,
    checkpoint_dir: str | Path,
) -> tuple[Artifact, pd.DataFrame]:
    """Joint training: alignment with the teacher plus the student's SSL loss."""
    pairs = alignment_pairs(segments, reports)
    row = {u: i for i, u in enumerate(embeddings["unit_id"])}
    targets = np.asarray(embeddings["vectors"])[[row[u] for u in pairs["unit_id"]]]
    if params.init_from == "baseline":
        if baseline is None:
            raise ValueError(
                "align.init_from is 'baseline' but no baseline encoder exists"
            )
        cfg = MAEViTCfg(**baseline["config"]["student"])
    else:
        cfg = _student_cfg(StudentParams(), store)
    config = {
        "kind": "acula_align",
        "student": cfg.__dict__,
        "teacher": embeddings["teacher"],
        "params": params.model_dump(),
        "data": fingerprint(
            pairs["segment_id"].tolist(), pairs["report"].tolist(), store.meta
        ),
        # The baseline's whole config (its params, data and code): a retrained
        # baseline means a fresh alignment run, not a resumed one.
        "baseline": None if baseline is None else fingerprint(baseline["config"]),
        "code": code_fingerprint(),
        "is_synthetic": bool(store.meta.get("is_synthetic")),
    }
    torch.manual_seed(params.train.seed)
    student = MAEViT(cfg)
    if params.init_from == "baseline" and baseline is not None:
        student.load_state_dict(baseline["state_dict"])
    model = AlignObjective(
        student,
        teacher_dim=int(embeddings["teacher"]["dim"]),
        loss=params.loss,
        head=params.head,
        lambda_align=params.lambda_align,
        lambda_ssl=params.lambda_ssl,
    )
    held_out = len(segments) - len(pairs)
    log.info(
        "Aligning on %d clips with %d distinct reports; %d clips have no report "
        "(subjects held out for evaluation, or reports dropped) and are not used",
        len(pairs),
        pairs["unit_id"].nunique(),
        held_out,
    )
    trainer = Trainer(model, align_step, params.train, checkpoint_dir, config)
    curve = trainer.fit(ClipDataset(store, pairs["segment_id"].tolist(), targets))
    return _artifact(model, config), pd.DataFrame(curve)
