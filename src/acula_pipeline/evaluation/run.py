"""The evaluate stage as plain functions (the Kedro nodes call these).

1. ``compared_encoders``: the SSL baseline, the SSL-only control, the aligned
   encoder, the no-learning reference (log-mel statistics) and any extra encoder
   configured under ``evaluate.encoders``.
2. ``embed_all``: frozen embeddings of every clip, per encoder, cached on disk by the
   encoder's weights and the clips (a rerun that only changes probe settings does not
   re-embed).
3. ``probe_all``: each task on each dataset of its adapter, each encoder, OPERA's
   linear probe (fixed subject-disjoint split, or leave-one-subject-out).
4. ``zero_shot_all`` and ``retrieval_all``: through the aligned model's heads and the
   frozen teacher.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm.auto import tqdm

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.evaluation.embed import embed_segments
from acula_pipeline.evaluation.metrics import auroc
from acula_pipeline.evaluation.probes import ProbeCfg, ProbeResult, run_loso, run_probe
from acula_pipeline.evaluation.splits import leakage_audit, require_no_leak
from acula_pipeline.evaluation.tasks import (
    TaskData,
    TaskSpec,
    check_names,
    log_skipped,
    task_data,
    unit_embeddings,
)
from acula_pipeline.evaluation.zero_shot import (
    SharedSpace,
    report_retrieval,
    zero_shot_scores,
)
from acula_pipeline.models import AudioEncoder, load_encoder
from acula_pipeline.runtime import path_fingerprint
from acula_pipeline.training.stages import (
    AlignParams,
    EncoderParams,
    PretrainParams,
    seed_models,
    start_artifact,
    student_encoder,
)

log = logging.getLogger(__name__)

Artifact = dict[str, Any]
# Rows every comparison has: the SSL baseline, the SSL-only control (align with
# lambda_align 0), the aligned encoder and the no-learning reference.
BASELINE, CONTROL, ALIGNED, REFERENCE = "baseline", "control", "aligned", "logmel_stats"
RESERVED_ENCODERS = frozenset({BASELINE, CONTROL, ALIGNED, REFERENCE})
# "aligned@2": the aligned encoder retrained with seed 2 (evaluate.train_seeds).
SEED_MARK = "@"


def split_seed(encoder: str) -> tuple[str, str]:
    """``"aligned@2"`` → ``("aligned", "2")``; the pipeline's own models have seed
    ``""``."""
    name, _, seed = encoder.partition(SEED_MARK)
    return name, seed


Embeddings = dict[str, dict[str, Any]]  # encoder → {"segment_ids", "vectors", "key"}


class EmbedCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=64, ge=1)
    device: str = "auto"
    progress: bool = True


class RetrievalCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    ks: list[int] = [1, 5, 10]


class EvaluateParams(BaseModel):
    """All of ``conf/base/parameters_evaluate.yml``."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[TaskSpec]
    probe: ProbeCfg = ProbeCfg()
    # datasets with fewer labelled subjects use leave-one-subject-out (split: auto)
    loso_below_subjects: int = Field(default=20, ge=3)
    embed: EmbedCfg = EmbedCfg()
    # Extra encoders compared beside the baseline and the aligned one, by name:
    # {name: {name: mae_vit | hf_audio | torchscript, path, options}}
    encoders: dict[str, EncoderParams] = {}
    zero_shot: bool = True
    retrieval: RetrievalCfg = RetrievalCfg()
    # The no-learning reference row: a linear probe on log-mel statistics (each
    # band's mean and std over time), beside the learned encoders.
    no_learning_reference: bool = True
    # Which split the fixed protocol scores: "test" (the result), or "val" while
    # choosing settings (probes still train on train and pick their epoch on val;
    # the test split is then never read, and retrieval, which scores test
    # subjects' held-out reports, is skipped). Leave-one-out tasks have no
    # validation split and are scored as always.
    score_on: Literal["test", "val"] = "test"
    # Training seeds besides the pipeline's own models: for each, the evaluate stage
    # retrains the baseline, the aligned model and the SSL-only control with
    # pretrain.train.seed and align.train.seed set to it (checkpointed, so a rerun
    # trains nothing), and every score, interval and verdict then spans the seeds.
    train_seeds: list[int] = []

    @model_validator(mode="after")
    def _names(self) -> EvaluateParams:
        if len(set(self.train_seeds)) != len(self.train_seeds):
            raise ValueError(f"evaluate.train_seeds repeats a seed: {self.train_seeds}")
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"evaluate.tasks: duplicate task names {dup}")
        check_names(self.tasks)  # no OPERA id or name shared by two tasks
        clash = sorted(set(self.encoders) & RESERVED_ENCODERS)
        if clash:
            raise ValueError(f"evaluate.encoders: {clash} are reserved names")
        marked = sorted(n for n in self.encoders if SEED_MARK in n)
        if marked:
            raise ValueError(
                f"evaluate.encoders: {marked}: {SEED_MARK!r} marks training seeds"
            )
        for name, enc in self.encoders.items():
            if enc.name == "baseline":
                raise ValueError(
                    f"evaluate.encoders.{name}: the baseline is always compared"
                )
        return self


def artifact_key(artifact: Artifact) -> str:
    """Hash of a saved model's config and exact weights."""
    h = hashlib.sha256(json.dumps(artifact["config"], sort_keys=True).encode())
    for name in sorted(artifact["state_dict"]):
        t = artifact["state_dict"][name]
        h.update(name.encode())
        h.update(
            t.detach()
            .cpu()
            .contiguous()
            .reshape(-1)
            .view(torch.uint8)
            .numpy()
            .tobytes()
        )
    return h.hexdigest()[:16]


def baseline_of(aligned: Artifact, baseline: Artifact, store: FeatureStore) -> Artifact:
    """What ``aligned`` is compared with: the ``pretrain`` stage's encoder when
    align started from it, else the student align started from (an OPERA
    checkpoint, …), rebuilt as align built it unless ``baseline`` is that start
    already (``pretrain`` skips itself and writes it)."""
    params = aligned["config"].get("params") or {}
    enc = params.get("encoder") or {}
    if enc.get("name", "baseline") == "baseline":
        return baseline
    start = EncoderParams(**enc)
    seed = int((params.get("train") or {}).get("seed", 0))
    cfg = baseline["config"]
    if (
        cfg.get("kind") == "start"
        and cfg.get("params") == {"encoder": start.model_dump(), "seed": seed}
        and cfg.get("encoder_source") == aligned["config"].get("encoder_source")
    ):
        return baseline
    log.info(
        "Baseline: encoder %r as align started from it (not the pretrain stage's)",
        start.name,
    )
    return start_artifact(start, store, seed)


def compared_encoders(
    baseline: Artifact,
    aligned: Artifact,
    control: Artifact | None,
    params: EvaluateParams,
    store: FeatureStore,
    seeds: Mapping[int, Mapping[str, Artifact]] | None = None,
) -> dict[str, tuple[AudioEncoder, str]]:
    """Each encoder under comparison with the key its embeddings are cached by: the
    baseline, the SSL-only control (unless it was not trained), the aligned encoder,
    the same three retrained under each extra training seed (``aligned@2``), the
    no-learning reference (unless switched off) and any extra encoder."""
    baseline = baseline_of(aligned, baseline, store)
    runs: dict[str, Mapping[str, Artifact | None]] = {
        "": {BASELINE: baseline, CONTROL: control, ALIGNED: aligned}
    }
    for seed, by_name in sorted((seeds or {}).items()):
        runs[f"{SEED_MARK}{seed}"] = dict(by_name)
    out: dict[str, tuple[AudioEncoder, str]] = {}
    for suffix, models in runs.items():
        for name in (BASELINE, CONTROL, ALIGNED):
            art = models.get(name)
            if art is None or art["config"].get("disabled"):
                continue
            out[name + suffix] = (load_encoder(art), artifact_key(art))
    extra = dict(params.encoders)
    if params.no_learning_reference:
        n_mels = int(store.meta["shape"][1])
        extra = {
            REFERENCE: EncoderParams(name=REFERENCE, options={"n_mels": n_mels}),
            **extra,
        }
    for name, p in extra.items():
        torch.manual_seed(0)  # a fresh (random) encoder is the same every run
        enc = student_encoder(p, None, store)
        spec = json.dumps(p.model_dump(), sort_keys=True)
        src = path_fingerprint(p.path) if p.path else "fresh-seed0"
        out[name] = (enc, hashlib.sha256(f"{spec}|{src}".encode()).hexdigest()[:16])
    return out


def retrain_with_seeds(
    store: FeatureStore,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    report_embeddings: dict[str, Any],
    pretrain_params: PretrainParams,
    align_params: AlignParams,
    seeds: list[int],
    checkpoint_dir: str | Path,
    allow_overlap: bool = False,
) -> dict[int, dict[str, Artifact]]:
    """``{seed: {baseline, aligned, control}}``: the three retrained per seed
    (checkpoints under ``checkpoint_dir/seed<N>``), each aligned model audited for
    leakage like the pipeline's own (``allow_overlap``: reports.leakage.paper_like)."""
    own = {pretrain_params.train.seed, align_params.train.seed}
    if len(own) == 1 and own & set(seeds):
        raise ValueError(
            f"evaluate.train_seeds {seeds} holds {own.pop()}, the seed the pipeline's "
            "own models were trained with (pretrain.train.seed, align.train.seed); "
            "the same run twice would count as two seeds and shrink the spread"
        )
    out = {}
    for seed in seeds:
        models = seed_models(
            store,
            segments,
            reports,
            report_embeddings,
            pretrain_params,
            align_params,
            seed,
            Path(checkpoint_dir) / f"seed{seed}",
        )
        audit = leakage_audit(
            splits,
            models["aligned"]["config"]["trained_subjects"],
            reports["subject_id"],
        )
        if not audit["ok"] and not allow_overlap:
            require_no_leak(audit)
        out[seed] = models
    return out


def _clips_key(store: FeatureStore, segment_ids: list[str]) -> str:
    """The clips' identity: the store's settings, its content (a digest of every
    file: shards, index; remembered by path, size and mtime) and the segment ids, so
    a rewritten shard is new clips even under the old settings."""
    h = hashlib.sha256(store.digest().encode())
    h.update("\n".join(segment_ids).encode())
    return h.hexdigest()[:16]


def embed_all(
    encoders: Mapping[str, tuple[AudioEncoder, str]],
    store: FeatureStore,
    segments: pd.DataFrame,
    cache_dir: str | Path,
    cfg: EmbedCfg,
) -> Embeddings:
    """Every clip's embedding under each encoder, from the cache when the same
    encoder (weights) already embedded the same clips."""
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(segments["segment_id"])
    clips = _clips_key(store, ids)
    out: Embeddings = {}
    for name, (encoder, key) in encoders.items():
        path = folder / f"{name}-{key}-{clips}.npy"
        if path.exists():
            vectors = np.load(path)
            log.info("Embeddings of %s: %d clips from %s", name, len(ids), path)
        else:
            log.info("Embedding %d clips with %s", len(ids), name)
            vectors = embed_segments(
                encoder, store, ids, cfg.batch_size, cfg.device, cfg.progress
            )
            for old in folder.glob(f"{name}-*.npy"):  # one cached set per encoder
                old.unlink()
            _save_atomic(path, vectors)
        out[name] = {"segment_ids": ids, "vectors": vectors, "key": key}
    return out


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` under a temporary name of its own, then a move: a killed run
    never leaves half a cache file that a later one would read."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class ProbeRecord:
    """One task on one dataset under one encoder."""

    spec: TaskSpec
    data: TaskData
    encoder: str
    result: ProbeResult | None
    scored: str = "test"  # the split scored: test, val, or loso (every subject)


def probe_all(
    recordings: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    embeddings: Embeddings,
    params: EvaluateParams,
) -> list[ProbeRecord]:
    """Every task × dataset × encoder. Skipped tasks keep a record with the reason."""
    records: list[ProbeRecord] = []
    jobs = []
    for enc, emb in embeddings.items():
        per_unit = {
            unit: unit_embeddings(unit, segments, emb["segment_ids"], emb["vectors"])
            for unit in ("recording", "cycle")
        }
        for spec in params.tasks:
            units = per_unit["cycle" if spec.unit == "cycle" else "recording"]
            for td in task_data(
                spec, recordings, segments, splits, units, params.loso_below_subjects
            ):
                jobs.append((spec, td, enc))
    # Skipped tasks are recorded at once: the bar counts (and times) real work only.
    work = [job for job in jobs if not job[1].skipped]
    log_skipped(
        {f"{s.name}/{td.dataset}": td.skipped for s, td, _ in jobs if td.skipped}
    )
    bar = tqdm(
        total=len(work), desc="probes", unit="probe", disable=not params.embed.progress
    )
    for spec, td, enc in jobs:
        scored = "loso" if td.protocol == "loso" else params.score_on
        result = _probe(spec, td, params.probe, scored)
        records.append(ProbeRecord(spec, td, enc, result, scored))
        if not td.skipped:
            bar.update(1)
    bar.close()
    return records


def _probe(
    spec: TaskSpec, td: TaskData, cfg: ProbeCfg, scored: str = "test"
) -> ProbeResult | None:
    if td.skipped:
        return None
    kind: Literal["classification", "regression"] = (
        "classification" if spec.is_classification else "regression"
    )
    if td.protocol == "loso":
        return run_loso(
            td.split("loso"),
            td.frame["subject"].to_numpy(),
            cfg,
            kind,
            spec.n_classes or None,
        )
    return run_probe(
        td.split("train"),
        td.split("val"),
        td.split(scored),
        cfg,
        kind,
        spec.n_classes or None,
    )


def zero_shot_all(
    records: list[ProbeRecord], space: SharedSpace, encode_text: Any
) -> list[dict[str, Any]]:
    """Zero-shot AUROC of the aligned encoder on each task with class descriptions:
    each unit's cosine similarity to every description, in the shared space."""
    rows = []
    for r in records:
        d = r.data
        if r.encoder != "aligned" or d.skipped or not r.spec.descriptions:
            continue
        test = d.split(r.scored)  # no training: every scored unit
        text = np.asarray(encode_text(r.spec.descriptions))
        scores = zero_shot_scores(space, test.x, text)
        probs = torch.softmax(torch.as_tensor(scores), dim=1).numpy()
        rows.append(
            {
                "task": r.spec.name,
                "dataset": d.dataset,
                "units": int(len(test.y)),
                "auroc": auroc(test.y, probs),
            }
        )
    return rows


def retrieval_all(
    reports: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    embeddings: Embeddings,
    space: SharedSpace,
    encode_text: Any,
    ks: list[int],
) -> list[dict[str, Any]]:
    """Audio→report retrieval among each dataset's test-split units: each unit's own
    report ranked against all of them."""
    aligned = embeddings["aligned"]
    units = {
        u: unit_embeddings(u, segments, aligned["segment_ids"], aligned["vectors"])
        for u in ("recording", "cycle")
    }
    pool = units["cycle"] | units["recording"]
    test = set(splits.loc[splits["split"] == "test", "subject_id"])
    rows = []
    for dataset, rep in reports[reports["subject_id"].isin(test)].groupby(
        "dataset", sort=True
    ):
        rep = rep.sort_values("unit_id")
        rep = rep[rep["unit_id"].isin(pool.keys())]
        if len(rep) < 2:
            continue
        audio = np.stack([pool[u] for u in rep["unit_id"]])
        text = np.asarray(encode_text(rep["report"].tolist()))
        m = report_retrieval(space, audio, text, list(range(len(rep))), ks)
        rows.append(
            {
                "dataset": str(dataset),
                "queries": len(rep),
                **m,
                **{f"chance_R@{k}": min(k, len(rep)) / len(rep) for k in ks},
            }
        )
    return rows


def task_tables(records: list[ProbeRecord]) -> dict[str, pd.DataFrame]:
    """``{task/dataset/encoder: units with split, label and embedding}`` (the
    embeddings per task and encoder written to 07_model_output)."""
    out = {}
    for r in records:
        d = r.data
        if d.skipped or not len(d.frame):
            continue
        frame = d.frame.copy()
        frame["embedding"] = list(d.x.astype(np.float32))
        out[f"{r.spec.name}/{d.dataset}/{r.encoder}"] = frame
    return out
