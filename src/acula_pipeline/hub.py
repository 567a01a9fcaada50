"""A model folder as a Hugging Face model: config, weights, preprocessor and card.

Every model folder the pipeline writes (``data/06_models/{baseline_encoder,aligned,
ssl_control}``) is a ``transformers`` model of type ``acula_audio``:

- ``config.json``: the pipeline's own config (encoder spec, teacher, settings, data
  and code fingerprints, the subjects trained on) plus ``model_type`` and
  ``architectures``;
- ``model.safetensors``: the encoder under ``student.``, and for aligned models the
  projection heads under ``audio_head.`` and ``text_head.``;
- ``preprocessor_config.json``: the log-mel frontend and clip policy the model was
  trained with (:class:`AculaFeatureExtractor`), so the folder needs no project
  files to embed audio;
- ``README.md``: a model card generated from the config (:func:`model_card`).

Importing this module registers the type with ``AutoConfig``, ``AutoModel`` and
``AutoFeatureExtractor``; nothing runs code stored in the folder::

    import acula_pipeline.hub  # noqa: F401  (registers acula_audio)
    from transformers import AutoFeatureExtractor, AutoModel

    model = AutoModel.from_pretrained("data/06_models/aligned")
    fx = AutoFeatureExtractor.from_pretrained("data/06_models/aligned")
    inputs = fx(wave, sampling_rate=16000, return_tensors="pt")
    clip_embeddings = model(**inputs).embeddings   # one row per 8.19 s window

The pipeline itself reads and writes folders through
``catalog_datasets.ModelArtifactDataset``, which uses the layout helpers here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.utils import ModelOutput

from acula_pipeline.audio.framing import ClipPolicy, window_starts
from acula_pipeline.audio.frontend import FrontendCfg
from acula_pipeline.models.base import build_encoder, encoder_spec_in_folder
from acula_pipeline.models.heads import HeadCfg, ProjectionHead

MODEL_TYPE = "acula_audio"
PREPROCESSOR_FILE = "preprocessor_config.json"
CARD_FILE = "README.md"
# Keys Hugging Face adds to config.json; the pipeline's config is the rest.
HUB_KEYS = (
    "model_type",
    "architectures",
    "transformers_version",
    "dtype",
    "audio_head_in",
)
ALIGNED_KINDS = ("acula_align", "ssl_control")


# ---------------------------------------------------------------- folder layout


def has_heads(config: Mapping[str, Any]) -> bool:
    """Whether a model of this config carries projection heads."""
    return config.get("kind") in ALIGNED_KINDS and not config.get("disabled")


def hub_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as stored: an encoder-only state goes under ``student.``."""
    if any(k.startswith("student.") for k in state):
        return dict(state)
    return {f"student.{k}": v for k, v in state.items()}


def pipeline_state(
    state: Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The weights as the pipeline holds them: a model without heads (the
    pretrained baseline) is the bare encoder's state."""
    if has_heads(config):
        return dict(state)
    return {k.removeprefix("student."): v for k, v in state.items()}


def hub_config(
    config: Mapping[str, Any], state: Mapping[str, torch.Tensor]
) -> dict[str, Any]:
    """``config.json`` as written: the pipeline's config plus the type keys (and
    the audio head's input size, which some encoders know only once run)."""
    out = dict(config) | {
        "model_type": MODEL_TYPE,
        "architectures": [AculaAudioModel.__name__],
    }
    if "audio_head.0.weight" in state:
        out["audio_head_in"] = int(state["audio_head.0.weight"].shape[1])
    return out


def pipeline_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` as the pipeline reads it (the Hugging Face keys dropped, so
    fingerprints of a config are the same before saving and after loading)."""
    return {k: v for k, v in config.items() if k not in HUB_KEYS}


def preprocessor_config(store_meta: Mapping[str, Any]) -> dict[str, Any]:
    """``preprocessor_config.json`` for a model trained on a feature store: its
    frontend, and the clip policy (window overlap and tail are ``ClipPolicy``'s
    defaults, which are also ``ingest.clips``')."""
    cfg = FrontendCfg(**store_meta["frontend"])
    policy = ClipPolicy.model_validate(
        {
            "clip_seconds": cfg.clip_seconds,
            "pad_mode": str(store_meta.get("pad_mode", "repeat")),
        }
    )
    return {
        "feature_extractor_type": AculaFeatureExtractor.__name__,
        "sampling_rate": cfg.sample_rate,
        "frontend": cfg.to_dict(),
        "clips": policy.model_dump(),
        "feature_dtype": str(store_meta.get("dtype", "float16")),
    }


def read_preprocessor(folder: str | Path) -> tuple[FrontendCfg, ClipPolicy] | None:
    """The frontend and clip policy of a model folder; ``None`` when it has no
    ``preprocessor_config.json`` (folders written before it existed).

    Raises:
        ValueError: The file is there but is not one this module wrote, naming it.
    """
    path = Path(folder) / PREPROCESSOR_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return FrontendCfg(**data["frontend"]), ClipPolicy(**data["clips"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not an acula preprocessor config ({exc})") from exc


# ---------------------------------------------------------------- transformers


class AculaAudioConfig(PretrainedConfig):
    """The pipeline's model config; ``encoder`` is the student's spec."""

    model_type = MODEL_TYPE

    def __init__(self, encoder: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.encoder = dict(encoder or {})
        super().__init__(**kwargs)


@dataclass
class AculaAudioOutput(ModelOutput):
    """``embeddings``: (batch, embed_dim) encoder embeddings, the frozen-probe
    features. ``projection``: (batch, shared_dim) audio head output of an aligned
    model (the shared audio–text space, before L2 normalisation), else ``None``."""

    embeddings: torch.Tensor | None = None
    projection: torch.Tensor | None = None


class AculaAudioModel(PreTrainedModel):
    """A trained student (and, when aligned, its projection heads).

    ``forward(input_features)`` takes log-mel clips ``(batch, frames, n_mels)`` as
    :class:`AculaFeatureExtractor` makes them from raw audio.
    """

    config_class = AculaAudioConfig
    base_model_prefix = "student"
    main_input_name = "input_features"

    def __init__(self, config: AculaAudioConfig) -> None:
        super().__init__(config)
        spec = dict(config.encoder)
        folder = getattr(config, "name_or_path", "") or ""
        if folder and Path(folder).is_dir():
            spec = encoder_spec_in_folder(spec, folder)
        self.student = build_encoder(spec)
        self.audio_head: ProjectionHead | None = None
        self.text_head: ProjectionHead | None = None
        if has_heads(config.to_dict()):
            head = HeadCfg(**config.params["head"])
            dim = int(config.audio_head_in)
            self.audio_head = ProjectionHead(dim, head)
            self.text_head = ProjectionHead(int(config.teacher["dim"]), head)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Each part initialises itself when built; a loaded folder overwrites it.
        return

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        model = super().from_pretrained(*args, **kwargs)
        model.restore_buffers()
        return model

    def restore_buffers(self) -> None:
        """Recompute the student's non-persistent buffers (fixed positional tables:
        not in the weights file, and left empty by ``from_pretrained``'s
        allocation without initialisation) from a freshly built copy."""
        persistent = set(self.student.state_dict())
        with torch.device("cpu"):
            fresh = build_encoder(self.student.spec())
        for name, buf in fresh.named_buffers():
            if name in persistent:
                continue
            owner_name, _, leaf = name.rpartition(".")
            owner = (
                self.student.get_submodule(owner_name) if owner_name else self.student
            )
            current = getattr(owner, leaf)
            owner._buffers[leaf] = buf.to(device=current.device, dtype=current.dtype)

    def forward(self, input_features: torch.Tensor, **_: Any) -> AculaAudioOutput:
        emb = self.student.encode_audio(input_features)
        proj = self.audio_head(emb) if self.audio_head is not None else None
        return AculaAudioOutput(embeddings=emb, projection=proj)


class AculaFeatureExtractor(FeatureExtractionMixin):
    """Raw audio → the log-mel clips the model was trained on.

    A signal is resampled to the model's rate, cut into the pipeline's windows
    (8.19 s, 50 % overlap, short ones repeated) and turned into normalised log-mel
    clips, rounded to float16 as the feature store holds them. ``clip_owner`` gives,
    for each clip, the index of the signal it came from (a recording's embedding is
    the mean of its clips').
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        frontend: dict[str, Any] | None = None,
        clips: dict[str, Any] | None = None,
        feature_dtype: str = "float16",
        **kwargs: Any,
    ) -> None:
        self.frontend = FrontendCfg(**(frontend or {})).to_dict()
        self.clips = ClipPolicy(**(clips or {})).model_dump()
        self.feature_dtype = feature_dtype
        kwargs.pop("sampling_rate", None)
        super().__init__(**kwargs)

    @property
    def sampling_rate(self) -> int:
        return int(self.frontend["sample_rate"])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["sampling_rate"] = self.sampling_rate
        return out

    def __call__(
        self,
        audio: np.ndarray | list[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **_: Any,
    ) -> BatchFeature:
        from acula_pipeline.audio.features import clip_features, wave_clips

        if sampling_rate is None:
            raise ValueError(
                "sampling_rate is required (the model reads "
                f"{self.sampling_rate} Hz; other rates are resampled)"
            )
        signals = (
            [audio] if isinstance(audio, np.ndarray) and audio.ndim == 1 else audio
        )
        cfg, policy = FrontendCfg(**self.frontend), ClipPolicy(**self.clips)
        feats, owner = [], []
        for i, signal in enumerate(signals):
            wave = np.asarray(signal, dtype=np.float32)
            if wave.ndim != 1 or len(wave) == 0:
                raise ValueError(
                    f"audio[{i}]: expected a non-empty mono signal, got shape "
                    f"{wave.shape}"
                )
            starts = window_starts(len(wave) / sampling_rate, policy)
            spans = [(s, s + policy.clip_seconds) for s in starts]
            clips = wave_clips(wave, sampling_rate, spans, cfg, policy.pad_mode)
            feats.append(clip_features(clips, cfg).astype(self.feature_dtype))
            owner += [i] * len(spans)
        data = {
            "input_features": np.concatenate(feats).astype(np.float32),
            "clip_owner": np.asarray(owner, dtype=np.int64),
        }
        return BatchFeature(data, tensor_type=return_tensors)


AutoConfig.register(MODEL_TYPE, AculaAudioConfig, exist_ok=True)
AutoModel.register(AculaAudioConfig, AculaAudioModel, exist_ok=True)
AutoFeatureExtractor.register(AculaAudioConfig, AculaFeatureExtractor, exist_ok=True)


# ---------------------------------------------------------------- model card

_KIND_TITLES = {
    "pretrain": "self-supervised baseline encoder (no language)",
    "start": "the student align starts from, as loaded (no training here)",
    "converted": "a published checkpoint, converted (no training here)",
    "acula_align": "AcuLa-aligned audio encoder",
    "ssl_control": "SSL-only control (the align run with the teacher's term off)",
}


def _subjects_by_source(subjects: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in subjects:
        src = s.split(":", 1)[0] if ":" in s else "?"
        out[src] = out.get(src, 0) + 1
    return dict(sorted(out.items()))


def model_card(
    config: Mapping[str, Any],
    preprocessor: Mapping[str, Any] | None,
    n_parameters: int,
    metrics: Mapping[str, Any] | None = None,
    encoder_key: str = "aligned",
) -> str:
    """The folder's ``README.md``: what the model is, what it was trained on and
    with, how to load it, and (given ``metrics``, the evaluate stage's compact
    ``metrics.json``) its results for ``encoder_key``."""
    kind = str(config.get("kind", "?"))
    synthetic = bool(config.get("is_synthetic"))
    enc = dict(config.get("encoder") or {})
    params = dict(config.get("params") or {})
    train = dict(params.get("train") or {})
    teacher = dict(config.get("teacher") or {})
    tags = ["audio", "medical-audio", "acula", "acula_audio", f"kind:{kind}"]
    if synthetic:
        tags.append("synthetic-data")
    lines = [
        "---",
        "library_name: transformers",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
        f"# {enc.get('name', 'encoder')}: {_KIND_TITLES.get(kind, kind)}",
        "",
        "Written by acula-pipeline (an open implementation of AcuLa, "
        "arXiv 2512.04847). Generated from this folder's `config.json`.",
        "",
    ]
    if synthetic:
        lines += [
            "> **Trained on the SYNTHETIC corpus.** It proves the code runs; it says "
            "nothing about real patients.",
            "",
        ]
    lines += ["## Model", ""]
    lines.append(
        f"- Student: `{enc.get('name')}` "
        + ", ".join(f"{k}={v}" for k, v in sorted(enc.items()) if k != "name")
    )
    lines.append(f"- Parameters in this folder: {n_parameters:,}")
    if has_heads(config):
        lines.append(
            f"- Teacher (frozen, not in this folder): `{teacher.get('name')}` from "
            f"`{teacher.get('path')}`, {teacher.get('dim')}-d"
        )
        lines.append(
            f"- Loss: `{params.get('loss')}`, λ_align={params.get('lambda_align')}, "
            f"λ_ssl={config.get('lambda_ssl', params.get('lambda_ssl'))}; "
            f"projection heads {params.get('head')}"
        )
        start = (params.get("encoder") or {}).get("name")
        lines.append(f"- Started from: `{start}`")
    lines.append(
        "- Training: "
        + ", ".join(
            f"{k}={train[k]}"
            for k in ("epochs", "batch_size", "lr", "weight_decay", "seed")
            if k in train
        )
    )
    lines += ["", "## Training data", ""]
    subjects = list(config.get("trained_subjects") or [])
    if subjects:
        by = ", ".join(f"{n} {s}" for s, n in _subjects_by_source(subjects).items())
        lines.append(f"- {len(subjects)} subjects ({by}); the test split excluded")
    else:
        lines.append(
            f"- Every clip outside the excluded splits "
            f"({', '.join(params.get('exclude_splits') or ['test'])})"
        )
    lines.append(
        f"- Data fingerprint `{config.get('data')}`, code fingerprint "
        f"`{config.get('code')}`"
    )
    lines += ["", "## Input", ""]
    if preprocessor:
        fe = preprocessor["frontend"]
        clips = preprocessor["clips"]
        lines.append(
            f"- {fe['sample_rate']} Hz mono, cut into {clips['clip_seconds']} s "
            f"windows ({clips['overlap']:.0%} overlap, short ones padded by "
            f"{clips['pad_mode']})"
        )
        lines.append(
            f"- Log-mel: {fe['n_mels']} mels {fe['f_min']}–{fe['f_max']} Hz, "
            f"n_fft {fe['n_fft']}, hop {fe['hop_length']}, top_db {fe['top_db']}, "
            "per-clip min-max to [0, 1], stored as "
            f"{preprocessor.get('feature_dtype', 'float16')}"
        )
    else:
        lines.append("- No `preprocessor_config.json` in this folder")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import acula_pipeline.hub  # registers the acula_audio type; runs no stored code",
        "from transformers import AutoFeatureExtractor, AutoModel",
        "",
        'model = AutoModel.from_pretrained("path/to/this/folder").eval()',
        'fx = AutoFeatureExtractor.from_pretrained("path/to/this/folder")',
        'inputs = fx(wave, sampling_rate=16000, return_tensors="pt")',
        "clips = model(input_features=inputs.input_features).embeddings",
        "recording_embedding = clips.mean(0)",
        "```",
        "",
        "Or `acula embed FOLDER recordings/ -o embeddings.parquet`; "
        "`acula export FOLDER -o encoder.onnx` writes one ONNX file that takes raw "
        f"{(preprocessor or {}).get('sampling_rate', 16000)} Hz audio windows.",
        "",
        "## Results",
        "",
    ]
    lines += _results_lines(metrics, encoder_key)
    lines += [
        "",
        "## Limitations",
        "",
        "- A research artefact, not a medical device: its outputs are not diagnoses.",
        "- The results hold for the data and split above; check intervals before "
        "reading a difference as a gain.",
        "",
    ]
    return "\n".join(lines)


def _results_lines(metrics: Mapping[str, Any] | None, key: str) -> list[str]:
    if not metrics:
        return [
            "Not evaluated when this folder was written. The evaluate stage's "
            "`metrics.json` holds the frozen-probe results; `acula package` writes a "
            "copy of this folder whose card includes them."
        ]
    out = []
    if metrics.get("synthetic"):
        out.append("SYNTHETIC corpus: these numbers prove the code runs, nothing more.")
        out.append("")
    out += [
        "Frozen-embedding linear probes; patient-level 95 % intervals "
        f"(leakage audit ok: {metrics.get('leakage_audit_ok')}).",
        "",
        "| task | metric | value [95 % CI] |",
        "|---|---|---|",
    ]
    for task, row in sorted((metrics.get("tasks") or {}).items()):
        cell = row.get(key) if isinstance(row, Mapping) else None
        if not isinstance(cell, Mapping):
            continue
        name = next((k for k in cell if k not in ("lo", "hi")), None)
        if name is None:
            continue
        out.append(
            f"| {task} | {name} | {cell[name]:.3f} [{cell.get('lo', float('nan')):.3f}, "
            f"{cell.get('hi', float('nan')):.3f}] |"
        )
    mean = (metrics.get("mean_auroc") or {}).get(key)
    if isinstance(mean, Mapping) and "auroc" in mean:
        out.append(
            f"| **mean** | auroc | {mean['auroc']:.3f} [{mean.get('lo', float('nan')):.3f}, "
            f"{mean.get('hi', float('nan')):.3f}] |"
        )
    return out


def with_preprocessor(artifact: dict[str, Any], store: Any) -> dict[str, Any]:
    """``artifact`` with the preprocessor of the feature store it was trained on
    (a disabled control has none)."""
    if artifact["config"].get("disabled"):
        return artifact
    return artifact | {"preprocessor": preprocessor_config(store.meta)}


def load_model_folder(path: str | Path) -> dict[str, Any]:
    """A model folder as the pipeline's artifact ``{"state_dict", "config"}`` (and
    ``"preprocessor"`` when the folder has one), exactly as it was saved."""
    from safetensors.torch import load_file

    from acula_pipeline.models.base import encoder_spec_in_folder

    path = Path(path)
    config = pipeline_config(json.loads((path / "config.json").read_text()))
    if isinstance(config.get("encoder"), dict):
        config["encoder"] = encoder_spec_in_folder(config["encoder"], path)
    out = {
        "state_dict": pipeline_state(load_file(path / "model.safetensors"), config),
        "config": config,
    }
    pre = path / PREPROCESSOR_FILE
    if pre.is_file():
        out["preprocessor"] = json.loads(pre.read_text())
    return out


def save_model_folder(path: str | Path, data: Mapping[str, Any]) -> None:
    """Weights, config, preprocessor, card (and a TorchScript student's file,
    copied in) as one folder, whole or not at all."""
    from safetensors.torch import save_file

    from acula_pipeline.models.base import spec_for_folder
    from acula_pipeline.runtime import atomic_folder

    config = dict(data["config"])
    state = data["state_dict"]
    preprocessor = data.get("preprocessor")
    with atomic_folder(Path(path)) as tmp:
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = spec_for_folder(config["encoder"], tmp)
        save_file(hub_state(state), tmp / "model.safetensors", {"format": "pt"})
        (tmp / "config.json").write_text(
            json.dumps(hub_config(config, state), indent=2, sort_keys=True, default=str)
        )
        if preprocessor is not None:
            (tmp / PREPROCESSOR_FILE).write_text(
                json.dumps(preprocessor, indent=2, sort_keys=True)
            )
        if not config.get("disabled"):
            n = sum(int(v.numel()) for v in state.values())
            (tmp / CARD_FILE).write_text(model_card(config, preprocessor, n))
