"""Tiny, randomly initialised Hugging Face audio models saved to a folder (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acula_pipeline.audio.features import (
    FeatureShard,
    FeatureStore,
    write_feature_store,
)
from acula_pipeline.audio.frontend import FrontendCfg

N = 8  # clips in the tiny store


def tiny_hf_audio(kind: str, folder: Path) -> Path:
    """Save a 2-layer ``kind`` model (wav2vec2, hubert, ast, whisper, clap) with its
    feature extractor into ``folder``; returns the folder."""
    import transformers as tf

    torch.manual_seed(0)
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if kind in ("wav2vec2", "hubert"):
        conv = dict(
            hidden_size=32,
            conv_dim=(16, 16, 16, 16),
            conv_stride=(5, 4, 4, 4),  # 320 samples per frame, as in the real ones
            conv_kernel=(10, 8, 4, 4),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            **small,
        )
        cfg = (
            tf.Wav2Vec2Config(**conv) if kind == "wav2vec2" else tf.HubertConfig(**conv)
        )
        model = tf.AutoModel.from_config(cfg)
        fe = tf.Wav2Vec2FeatureExtractor(sampling_rate=16000)
    elif kind == "ast":
        cfg = tf.ASTConfig(
            hidden_size=32, num_mel_bins=32, max_length=128, patch_size=16, **small
        )
        model = tf.ASTModel(cfg)
        fe = tf.ASTFeatureExtractor(num_mel_bins=32, max_length=128)
    elif kind == "whisper":
        cfg = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            num_mel_bins=16,
            max_source_positions=1500,
            vocab_size=100,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
        model = tf.WhisperModel(cfg)
        fe = tf.WhisperFeatureExtractor(feature_size=16)
    elif kind == "clap":
        audio = dict(
            hidden_size=32,
            patch_embeds_hidden_size=16,
            depths=[1, 1],
            num_attention_heads=[2, 2],
            num_mel_bins=64,  # the extractor's fusion assumes 64 mel bins
            spec_size=128,
            window_size=4,
            patch_size=4,
            patch_stride=(4, 4),
            projection_dim=16,
            enable_fusion=True,  # the extractor's default truncation is "fusion"
        )
        text = dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            vocab_size=100,
            projection_dim=16,
        )
        cfg = tf.ClapConfig(audio_config=audio, text_config=text, projection_dim=16)
        model = tf.ClapModel(cfg)
        fe = tf.ClapFeatureExtractor(feature_size=64, max_length_s=1)
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    fe.save_pretrained(folder)
    return folder


def make_store(root: Path, waveforms: bool = True, n: int = N) -> tuple:
    """A feature store of ``n`` random clips (with 16 kHz waveforms), its segments
    table (one recording unit each) and one report per unit."""
    cfg = FrontendCfg()
    rng = np.random.default_rng(0)
    ids = [f"rec{i}" for i in range(n)]
    shard = FeatureShard(
        ids,
        rng.random((n, cfg.n_frames, cfg.n_mels)).astype(np.float16),
        (0.1 * rng.standard_normal((n, cfg.clip_samples))).astype(np.float16)
        if waveforms
        else None,
    )
    meta = {
        "frontend": cfg.to_dict(),
        "shape": [cfg.n_frames, cfg.n_mels],
        "dtype": "float16",
        "is_synthetic": True,
    }
    write_feature_store(root, [shard], meta)
    segments = pd.DataFrame(
        {
            "segment_id": ids,
            "recording_id": ids,
            "subject_id": [f"tiny:{k}" for k in range(n)],
            "unit": "recording",
            "split": "train",
        }
    )
    reports = pd.DataFrame(
        {
            "unit_id": ids,
            "report": [
                f"Report {k}: {'crackles' if k % 2 else 'normal'}." for k in range(n)
            ],
        }
    )
    return FeatureStore(root), segments, reports
