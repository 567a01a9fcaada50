"""Using a trained model outside the pipeline: embeddings, zero-shot, export, info.

Audio goes through exactly the pipeline's path: decoded, mixed to mono, resampled to
the frontend's rate, cut into the ingest windows (``ClipPolicy``: 8.19 s, 50 %
overlap, short clips repeated), turned into log-mel features, stored as float16 (as
the feature shards are) and embedded by the frozen encoder; a recording's embedding
is the mean of its windows' (OPERA-GT). The ``acula`` command line is a thin layer
over these functions in ``commands.py`` (not ``cli.py``: Kedro reserves that module
name for project CLI plugins).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from acula_pipeline.audio.features import clip_features, recording_clips
from acula_pipeline.audio.framing import ClipPolicy, window_starts
from acula_pipeline.audio.frontend import FrontendCfg
from acula_pipeline.audio.io import AudioReadError, audio_info
from acula_pipeline.evaluation.zero_shot import SharedSpace, zero_shot_scores
from acula_pipeline.hub import HUB_KEYS, read_preprocessor
from acula_pipeline.models import AudioEncoder, load_encoder
from acula_pipeline.models.base import UnsafeModelPath, encoder_spec_in_folder
from acula_pipeline.runtime import resolve_device
from acula_pipeline.training.engine import autocast

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".webm", ".m4a", ".mp4", ".aac")
DEFAULT_FEATURES = Path("data/03_primary/features")


class ModelError(ValueError):
    """A model folder is missing or incomplete; the message names what is missing."""


@dataclass
class Model:
    """A saved baseline or aligned model: its config, encoder and (aligned) heads."""

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    encoder: AudioEncoder
    space: SharedSpace | None = None
    # The frontend and clip policy from the folder's preprocessor_config.json
    frontend: tuple[FrontendCfg, ClipPolicy] | None = None

    @property
    def aligned(self) -> bool:
        return self.space is not None


def load_model(path: str | Path) -> Model:
    """Load ``config.json`` + ``model.safetensors`` from a model folder.

    Raises:
        ModelError: The folder or one of its files is missing or unreadable.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise ModelError(
                f"{path}: no {name}; expected a model folder written by the pipeline, "
                "e.g. data/06_models/aligned (run `make run` or `dvc repro` first)"
            )
    try:
        config = json.loads((path / "config.json").read_text())
        state = load_file(path / "model.safetensors")
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}/config.json: not JSON ({exc})") from exc
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise ModelError(
            f"{path}/model.safetensors: not a readable safetensors file "
            f"({_first_line(exc)})"
        ) from exc
    if not isinstance(config, dict) or "encoder" not in config:
        raise ModelError(f"{path}/config.json: no 'encoder' entry; not a model config")
    if isinstance(config["encoder"], dict):
        try:
            config["encoder"] = encoder_spec_in_folder(config["encoder"], path)
        except UnsafeModelPath as exc:
            raise ModelError(str(exc)) from exc
    try:
        frontend = read_preprocessor(path)
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    config = {k: v for k, v in config.items() if k not in HUB_KEYS}
    try:
        encoder = load_encoder({"config": config, "state_dict": state}).eval()
        space = None
        if any(k.startswith("audio_head.") for k in state):
            space = SharedSpace({"config": config, "state_dict": state})
    except KeyError as exc:
        raise ModelError(
            f"{path}/config.json: missing entry {exc} (the weights in "
            "model.safetensors need it)"
        ) from exc
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(
            f"{path}: config.json and model.safetensors do not make a model "
            f"({_first_line(exc)})"
        ) from exc
    return Model(path, config, state, encoder, space, frontend)


def _first_line(exc: BaseException) -> str:
    """An exception's message, one line (pydantic's run to several)."""
    text = " ".join(str(exc).split("\n")[:3]) if str(exc) else type(exc).__name__
    return text[:300]


def frontend_settings(
    features: str | Path | None = None, model: Model | None = None
) -> tuple[FrontendCfg, ClipPolicy]:
    """The log-mel settings and clip policy the model was trained with.

    In order: the feature store ``features`` names (its ``meta.json``); the model
    folder's ``preprocessor_config.json``; ``data/03_primary/features`` when it
    exists; the pipeline's defaults (a warning says so).
    """
    if features is None and model is not None and model.frontend is not None:
        return model.frontend
    folder = Path(features) if features is not None else DEFAULT_FEATURES
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        if features is not None:
            raise ModelError(f"{folder}: no meta.json; not a feature store folder")
        log.warning(
            "No %s and no preprocessor_config.json in the model folder: using the "
            "default frontend (16 kHz, 64 mels, 8.19 s clips)",
            meta_path,
        )
        return FrontendCfg(), _policy(FrontendCfg().clip_seconds, "repeat")
    try:
        meta = json.loads(meta_path.read_text())
        cfg = FrontendCfg(**meta["frontend"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{meta_path}: not a feature store's meta.json ({exc})"
        ) from exc
    return cfg, _policy(cfg.clip_seconds, meta.get("pad_mode", "repeat"))


def _policy(clip_seconds: float, pad_mode: str) -> ClipPolicy:
    # Window overlap and tail are not in the feature store's meta.json: ClipPolicy's
    # defaults are used, which are also ingest.clips' defaults.
    return ClipPolicy.model_validate(
        {"clip_seconds": clip_seconds, "pad_mode": pad_mode}
    )


def check_inputs(model: Model, cfg: FrontendCfg) -> None:
    """Fail early when ``model`` cannot read the clips ``cfg`` makes.

    Raises:
        ModelError: The encoder reads waveforms, or its log-mel shape differs from
            the frontend's (e.g. a model from a project with other settings).
    """
    encoder = model.encoder
    if encoder.input_kind != "logmel":
        raise ModelError(
            f"{model.path}: encoder {encoder.spec().get('name')} reads waveforms; "
            "acula embeds and exports log-mel encoders only"
        )
    enc = model.config.get("encoder", {})
    want = (enc.get("n_frames"), enc.get("n_mels"))
    have = (cfg.n_frames, cfg.n_mels)
    if None not in want and tuple(map(int, want)) != have:
        raise ModelError(
            f"{model.path}: the encoder reads {want[0]} frames x {want[1]} mels, but "
            f"the frontend makes {have[0]} x {have[1]}; give --features the feature "
            "store of the project that trained this model"
        )


def audio_inputs(items: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to the audio files below them (sorted).

    Raises:
        FileNotFoundError: An item does not exist, naming it.
    """
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
            )
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


@dataclass
class Clips:
    """One recording's encoder inputs and what was done to get them."""

    path: Path
    features: np.ndarray  # (windows, frames, n_mels) float32
    sample_rate: int  # native
    duration_s: float
    notices: list[str] = field(default_factory=list)


def file_windows(
    path: Path, cfg: FrontendCfg, policy: ClipPolicy
) -> tuple[np.ndarray, Any]:
    """One file's windows as raw audio ``(windows, clip_samples)`` at the
    frontend's rate, and its ``audio_info``.

    Raises:
        AudioReadError: The file cannot be decoded or holds no audio.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise AudioReadError(f"{path}: empty audio (0 samples)")
    starts = window_starts(info.duration_s, policy)
    spans = [(s, s + policy.clip_seconds) for s in starts]
    return recording_clips(str(path), spans, cfg, policy.pad_mode), info


def file_clips(path: Path, cfg: FrontendCfg, policy: ClipPolicy) -> Clips:
    """Decode, resample and window one file into log-mel clips.

    Raises:
        AudioReadError: The file cannot be decoded or holds no audio.
    """
    clips, info = file_windows(path, cfg, policy)
    notices = []
    if info.sample_rate != cfg.sample_rate:
        notices.append(f"resampled from {info.sample_rate} Hz to {cfg.sample_rate} Hz")
    if info.channels > 1:
        notices.append(f"{info.channels} channels mixed to mono")
    # float16 as in the feature shards, so embeddings equal the pipeline's.
    feats = clip_features(clips, cfg).astype(np.float16).astype(np.float32)
    return Clips(path, feats, info.sample_rate, info.duration_s, notices)


@torch.no_grad()
def encode_clips(
    encoder: AudioEncoder, feats: np.ndarray, batch_size: int, device: str
) -> np.ndarray:
    """Encoder embeddings ``(n, dim)`` of log-mel clips, batched, no grad."""
    dev = resolve_device(device)
    encoder.to(dev)
    out = []
    for i in range(0, len(feats), batch_size):
        x = torch.from_numpy(feats[i : i + batch_size]).to(dev)
        with autocast(dev):
            out.append(encoder.encode_audio(x).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


@dataclass
class Embedded:
    """Embeddings per file and the files that could not be read, with reasons."""

    table: pd.DataFrame  # path, sample_rate, duration_s, n_clips, notices, embedding
    failed: list[tuple[str, str]]


def embed_files(
    model: Model,
    files: Sequence[Path],
    cfg: FrontendCfg,
    policy: ClipPolicy,
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = True,
    projection: bool = False,
) -> Embedded:
    """One embedding per file: the mean of its windows' encoder embeddings.

    Args:
        projection: Also add ``projection``, the aligned audio head's L2-normalised
            output (the shared audio–text space).

    Raises:
        ModelError: The model cannot read these clips (:func:`check_inputs`), or
            ``projection`` was asked of a model that is not aligned; before any file
            is read.
    """
    from tqdm.auto import tqdm

    check_inputs(model, cfg)
    if projection and model.space is None:
        raise ModelError(f"{model.path}: not an aligned model (no projection heads)")
    rows, failed = [], []
    for path in tqdm(files, desc="embed", unit="file", disable=not progress):
        try:
            clips = file_clips(path, cfg, policy)
        except AudioReadError as exc:
            failed.append((str(path), str(exc)))
            log.error("Skipped %s", exc)
            continue
        for notice in clips.notices:
            log.info("%s: %s", path, notice)
        emb = encode_clips(model.encoder, clips.features, batch_size, device)
        rows.append(
            {
                "path": str(path),
                "sample_rate": clips.sample_rate,
                "duration_s": round(clips.duration_s, 4),
                "n_clips": len(clips.features),
                "notices": "; ".join(clips.notices),
                "embedding": emb.mean(axis=0),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "path",
            "sample_rate",
            "duration_s",
            "n_clips",
            "notices",
            "embedding",
        ],
    )
    if projection and len(table):
        assert model.space is not None  # checked above
        proj = model.space.project(np.stack(table["embedding"].to_list()), "audio")
        table["projection"] = list(proj)
    return Embedded(table, failed)


def text_teacher(model: Model) -> Any:
    """The frozen text teacher the model was aligned with (from its config)."""
    from acula_pipeline.training.stages import TeacherParams, build_teacher

    params = TeacherParams(**model.config["params"]["teacher"])
    return build_teacher(params)


def zero_shot(
    model: Model,
    embeddings: np.ndarray,
    descriptions: Sequence[str],
    temperature: float = 0.1,
) -> np.ndarray:
    """Class probabilities ``(n, classes)``: a softmax over the cosine similarities
    of each recording to each description in the shared space, divided by
    ``temperature``.

    Raises:
        ModelError: The model is not aligned (it has no text head).
    """
    if model.space is None:
        raise ModelError(
            f"{model.path}: zero-shot needs an aligned model (with projection heads), "
            "e.g. data/06_models/aligned"
        )
    if len(descriptions) < 2:
        raise ValueError("zero-shot needs at least two class descriptions")
    teacher = text_teacher(model)
    # One text per batch, as the pipeline embeds reports (no padding effects).
    text = teacher.encode(list(descriptions), batch_size=1).float().cpu().numpy()
    sims = zero_shot_scores(model.space, embeddings, text)
    return torch.softmax(torch.as_tensor(sims) / temperature, dim=1).numpy()


# ---------------------------------------------------------------- export


class _Embedder(torch.nn.Module):
    """``forward(x) → (batch, dim)`` for export: ``x`` is raw audio windows
    ``(batch, clip_samples)`` when a frontend is given (the log-mel frontend and
    the float16 rounding of the feature store run inside), else log-mel clips
    ``(batch, frames, n_mels)``."""

    def __init__(self, encoder: AudioEncoder, frontend: FrontendCfg | None) -> None:
        super().__init__()
        from acula_pipeline.audio.frontend import LogMelFrontend

        self.encoder = encoder
        self.frontend = LogMelFrontend(frontend) if frontend is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frontend is not None:
            x = self.frontend(x).to(torch.float16).float()
        return self.encoder.encode_audio(x)


def sample_inputs(
    model: Model, n: int = 3, seed: int = 0, frontend: FrontendCfg | None = None
) -> torch.Tensor:
    """Check inputs for an export: noise windows ``(n, clip_samples)`` for a
    raw-audio export (``frontend``), else log-mel-shaped clips in [0, 1].

    Raises:
        ModelError: The encoder does not read log-mel clips of a known shape.
    """
    enc = model.config["encoder"]
    if model.encoder.input_kind != "logmel" or not {"n_frames", "n_mels"} <= set(enc):
        raise ModelError(
            f"{model.path}: acula exports log-mel encoders with a fixed clip shape "
            f"only; this one is {enc.get('name')} ({model.encoder.input_kind})"
        )
    g = torch.Generator().manual_seed(seed)
    if frontend is not None:
        check_inputs(model, frontend)
        return 0.1 * torch.randn(n, frontend.clip_samples, generator=g)
    return torch.rand(n, int(enc["n_frames"]), int(enc["n_mels"]), generator=g)


def export_onnx(
    model: Model,
    out: Path,
    check_inputs: torch.Tensor | None = None,
    frontend: FrontendCfg | None = None,
) -> float:
    """Write the encoder (behind ``frontend`` when given: raw audio in) as one
    self-contained ONNX file (dynamic batch) and return the largest absolute
    difference between ONNX Runtime and PyTorch on ``check_inputs``."""
    import warnings

    import onnx
    import onnxruntime as ort

    module = _Embedder(model.encoder.cpu(), frontend).eval()
    x = (
        check_inputs
        if check_inputs is not None
        else sample_inputs(model, frontend=frontend)
    )
    name = "audio" if frontend is not None else "logmel"
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notices
        torch.onnx.export(
            module,
            (x[:2],),
            str(out),
            input_names=[name],
            output_names=["embedding"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            external_data=False,  # one file: weights inside the graph's file
            verbose=False,
        )
    proto = onnx.load(str(out))
    meta = model_summary(model)
    if frontend is not None:
        meta["input"] = {
            "name": name,
            "shape": ["batch", frontend.clip_samples],
            "sample_rate": frontend.sample_rate,
            "frontend": frontend.to_dict(),
        }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"acula.{key}", json.dumps(value, default=str)
    onnx.save(proto, str(out), save_as_external_data=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: x.numpy()})[0]
    with torch.no_grad():
        want = module(x).numpy()
    return float(np.abs(got - want).max())


class _quiet_exporter:
    """Silence ``torch.onnx``'s progress lines and its warnings about optional
    torchvision operators (logged, not warned) while exporting."""

    def __enter__(self) -> None:
        self._loggers = [
            logging.getLogger(n)
            for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")
        ]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for lg, level in zip(self._loggers, self._levels, strict=True):
            lg.setLevel(level)


def export_torchscript(
    model: Model,
    out: Path,
    check_inputs: torch.Tensor | None = None,
    frontend: FrontendCfg | None = None,
) -> float:
    """Write the encoder (behind ``frontend`` when given) as a traced TorchScript
    module and return its largest difference to PyTorch. A log-mel one is usable
    as the ``torchscript`` student."""
    import warnings

    module = _Embedder(model.encoder.cpu(), frontend).eval()
    x = (
        check_inputs
        if check_inputs is not None
        else sample_inputs(model, frontend=frontend)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in torch ≥ 2.9
        traced = torch.jit.trace(module, x[:2])
        traced.save(str(out))
        loaded = torch.jit.load(str(out))
        return float((loaded(x) - module(x)).abs().max())


# ---------------------------------------------------------------- info


def model_summary(
    model: Model, metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a model folder holds, for ``acula info`` and the ONNX metadata."""
    c = model.config
    params = c.get("params", {})
    n_params = sum(int(v.numel()) for v in model.state_dict.values())
    out: dict[str, Any] = {
        "path": str(model.path),
        "kind": c.get("kind", "pretrained encoder"),
        "encoder": c.get("encoder"),
        "embed_dim": int(model.encoder.embed_dim),
        "parameters": n_params,
        "aligned": model.aligned,
        "teacher": c.get("teacher"),
        "loss": params.get("loss"),
        "training_data_hash": c.get("data"),
        "code_hash": c.get("code"),
        "baseline_hash": c.get("baseline"),
        "trained_subjects": len(c.get("trained_subjects", [])),
        "synthetic_data": c.get("is_synthetic"),
    }
    if metrics is not None:
        # The evaluate stage's metrics.json: mean AUROC per encoder, and the
        # paired difference aligned − baseline with its interval.
        mean = {
            k: v
            for k, v in metrics.items()
            if k in ("aligned", "baseline", "control", "logmel")
            and isinstance(v, int | float)
        }
        out["mean_auroc"] = mean or None
        if all(
            isinstance(metrics.get(k), int | float)
            for k in ("delta", "delta_lo", "delta_hi")
        ):
            out["aligned_minus_baseline"] = (
                f"{metrics['delta']:+.3f} [{metrics['delta_lo']:+.3f}, "
                f"{metrics['delta_hi']:+.3f}]"
            )
    return {k: v for k, v in out.items() if v is not None}
