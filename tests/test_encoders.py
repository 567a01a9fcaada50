"""The encoder registry end to end: hf_audio (five architectures), torchscript, and
the hf_encoder / hf_causal_lm teachers, through the real embed_reports and align
stages on a tiny feature store. Every model is built from a config here; nothing is
downloaded."""

from __future__ import annotations

import json
import logging
import pathlib

import numpy as np
import pytest
import torch

from acula_pipeline.models import build_encoder, load_encoder
from acula_pipeline.training.stages import (
    AlignParams,
    EncoderParams,
    align,
    embed_reports,
)

from .tiny_audio import N, make_store, tiny_hf_audio
from .tiny_lm import tiny_bert, tiny_causal_lm

ONE_EPOCH = {"epochs": 1, "batch_size": 4, "progress": False, "warmup_steps": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    store, segments, reports = make_store(root / "features")
    params = AlignParams()
    return store, segments, reports, embed_reports(reports, params, root / "tcache")


def run_align(tmp_path, corpus, encoder, **extra):
    store, segments, reports, emb = corpus
    params = AlignParams(encoder=EncoderParams(**encoder), train=ONE_EPOCH, **extra)
    return align(store, segments, reports, emb, None, params, tmp_path / "ckpt")


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "ast", "whisper", "clap"])
def test_hf_audio_aligns_end_to_end(tmp_path, corpus, kind, caplog):
    path = tiny_hf_audio(kind, tmp_path / kind)
    with caplog.at_level(logging.WARNING):
        artifact, curve = run_align(
            tmp_path, corpus, {"name": "hf_audio", "path": str(path)}
        )
    assert "no self-supervised loss" in caplog.text  # λ_ssl 1.0 → 0, said aloud
    assert artifact["config"]["lambda_ssl"] == 0.0
    assert len(curve) == 2 and np.isfinite(curve["loss"]).all()
    assert (curve["ssl"] == 0).all()
    # The artifact rebuilds the trained encoder (evaluation will do this).
    encoder = load_encoder(artifact).eval()
    fresh = build_encoder(artifact["config"]["encoder"])
    changed = [
        k
        for k, v in encoder.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, fresh.state_dict()[k])
    ]
    assert changed, "training left every weight as it was"
    store = corpus[0]
    x = encoder.preprocessor(16000)(store.get("rec0", waveforms=True))
    with torch.no_grad():
        emb = encoder.encode_audio({k: v[None] for k, v in x.items()})
    assert emb.shape == (1, encoder.embed_dim) and torch.isfinite(emb).all()


class LogMelNet(torch.nn.Module):
    """A scripted student with its contract and its own SSL loss."""

    def __init__(self) -> None:
        super().__init__()
        self.input_kind = "logmel"
        self.embed_dim = 16
        self.enc = torch.nn.Linear(64, 16)
        self.dec = torch.nn.Linear(16, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.enc(x)).mean(dim=1)

    @torch.jit.export
    def ssl_loss(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.dec(torch.relu(self.enc(x))) - x) ** 2).mean()


class WaveNet(torch.nn.Module):
    """A scripted waveform student that declares nothing (the contract is config)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 8, kernel_size=400, stride=160)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x[:, None])).mean(dim=-1)


def script(module, path):
    with pytest.warns(FutureWarning):  # TorchScript is deprecated but works
        torch.jit.script(module).save(str(path))
    return str(path)


def test_torchscript_logmel_with_own_ssl_loss(tmp_path, corpus):
    path = script(LogMelNet(), tmp_path / "net.pt")
    artifact, curve = run_align(tmp_path, corpus, {"name": "torchscript", "path": path})
    assert artifact["config"]["lambda_ssl"] == 1.0
    assert (curve["ssl"] > 0).all() and np.isfinite(curve["loss"]).all()
    assert artifact["config"][
        "encoder_source"
    ]  # the file's hash: a new file, a new run
    enc = load_encoder(artifact)
    assert enc.embed_dim == 16 and enc.has_ssl
    # Written as a model folder, it carries its own copy of the scripted file and
    # reads back from anywhere, the original gone.
    from acula_pipeline.catalog_datasets import ModelArtifactDataset
    from acula_pipeline.inference import ModelError, load_model

    folder = ModelArtifactDataset(str(tmp_path / "model"))
    folder.save(artifact)
    written = json.loads((tmp_path / "model/config.json").read_text())
    assert written["encoder"]["path"] == "encoder.pt"
    pathlib.Path(path).unlink()
    again = load_encoder(folder.load())
    x = torch.randn(2, 256, 64)
    with torch.no_grad():
        assert torch.equal(again.encode_audio(x), enc.encode_audio(x))
    assert load_model(tmp_path / "model").encoder.embed_dim == 16
    # A config naming a file outside its folder is refused before anything loads
    # (issue "Harden": torch.jit.load ran whatever path config.json named).
    for outside in (str(tmp_path / "elsewhere.pt"), "../elsewhere.pt"):
        written["encoder"]["path"] = outside
        (tmp_path / "model/config.json").write_text(json.dumps(written))
        with pytest.raises(ModelError, match="outside the model folder; refused"):
            load_model(tmp_path / "model")
        with pytest.raises(Exception) as caught:  # Kedro wraps it in DatasetError
            folder.load()
        assert "outside the model folder; refused" in str(caught.value.__cause__)


def test_torchscript_waveform_contract_from_config(tmp_path, corpus):
    path = script(WaveNet(), tmp_path / "wave.pt")
    enc = {
        "name": "torchscript",
        "path": path,
        "options": {"input": "waveform", "sample_rate": 8000},
    }
    artifact, curve = run_align(tmp_path, corpus, enc, lambda_ssl=0.0)
    encoder = load_encoder(artifact)
    assert encoder.embed_dim == 8  # measured: the module declares none
    clip = encoder.preprocessor(16000)(corpus[0].get("rec0", waveforms=True))
    assert clip.shape == (65520,)  # resampled 16 kHz → 8 kHz
    bad = dict(enc, options={"input": "logmel"})  # a Conv1d cannot read (256, 64)
    with pytest.raises(ValueError, match="fails on one logmel clip of shape"):
        run_align(tmp_path / "bad", corpus, bad, lambda_ssl=0.0)


def test_waveform_encoder_needs_kept_waveforms(tmp_path, corpus):
    store, segments, reports = make_store(tmp_path / "f", waveforms=False)
    path = script(WaveNet(), tmp_path / "wave.pt")
    params = AlignParams(
        encoder=EncoderParams(
            name="torchscript", path=path, options={"input": "waveform"}
        ),
        train=ONE_EPOCH,
        lambda_ssl=0.0,
    )
    with pytest.raises(ValueError, match="keep_waveforms: true"):
        align(store, segments, reports, corpus[3], None, params, tmp_path / "c")


def test_encoder_params_are_checked_before_running(tmp_path):
    with pytest.raises(ValueError, match="unknown encoder 'wav2vec'"):
        EncoderParams(name="wav2vec")
    with pytest.raises(ValueError, match="pooling_mode"):
        EncoderParams(name="hf_audio", path="x", options={"pooling_mode": "mean"})
    with pytest.raises(ValueError, match="depht"):  # builders with named fields too
        EncoderParams(name="mae_vit", options={"depht": 2})
    with pytest.raises(ValueError, match="samplerate"):
        EncoderParams(name="torchscript", path="x.pt", options={"samplerate": 8000})
    EncoderParams(name="mae_vit", options={"depth": 2})  # a real field passes
    with pytest.raises(ValueError, match="takes no path"):
        EncoderParams(name="baseline", path="x")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_encoder({"name": "hf_audio", "path": str(tmp_path)})


@pytest.mark.parametrize("teacher", ["hf_causal_lm", "hf_encoder"])
def test_hf_teachers_end_to_end(tmp_path, teacher):
    """A tiny causal LM / BERT reads the reports; align trains against them."""
    store, segments, reports = make_store(tmp_path / "f", waveforms=False)
    if teacher == "hf_causal_lm":
        path = tiny_causal_lm(tmp_path / "lm", hidden=40, layers=1)
    else:
        path = tiny_bert(tmp_path / "bert", hidden=40)
    params = AlignParams(
        teacher={"name": teacher, "path": str(path)},
        encoder=EncoderParams(
            name="mae_vit",
            options={
                "dim": 32,
                "depth": 1,
                "heads": 2,
                "decoder_dim": 16,
                "decoder_heads": 2,
            },
        ),
        train=ONE_EPOCH,
    )
    emb = embed_reports(reports, params, tmp_path / "tc")
    assert emb["teacher"]["dim"] == 40 and emb["vectors"].shape == (N, 40)
    artifact, curve = align(store, segments, reports, emb, None, params, tmp_path / "c")
    assert artifact["config"]["teacher"]["dim"] == 40
    assert artifact["state_dict"]["text_head.0.weight"].shape[1] == 40
    assert np.isfinite(curve["loss"]).all() and (curve["ssl"] > 0).all()


def test_a_model_folder_round_trips_and_is_a_hugging_face_folder(tmp_path):
    """Issue 21 #8: the folder carries model_type, the preprocessor and a card; the
    artifact read back is the one saved (config and weights, key for key)."""
    from acula_pipeline.catalog_datasets import ModelArtifactDataset
    from acula_pipeline.models import MAEViT, MAEViTCfg

    torch.manual_seed(0)
    model = MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_depth=1))
    meta = {
        "frontend": {"sample_rate": 16000, "clip_seconds": 8.19, "n_mels": 64},
        "pad_mode": "zeros",
        "dtype": "float16",
    }
    config = {"kind": "pretrain", "encoder": model.spec(), "params": {}, "data": "d"}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    from acula_pipeline.hub import preprocessor_config

    artifact = {
        "config": config,
        "state_dict": state,
        "preprocessor": preprocessor_config(meta),
    }
    folder = ModelArtifactDataset(str(tmp_path / "m"))
    folder.save(artifact)
    written = json.loads((tmp_path / "m/config.json").read_text())
    assert written["model_type"] == "acula_audio"
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m/model.safetensors"), "pt") as f:
        assert all(k.startswith("student.") for k in f.keys())
        assert f.metadata() == {"format": "pt"}
    pre = json.loads((tmp_path / "m/preprocessor_config.json").read_text())
    assert pre["clips"]["pad_mode"] == "zeros" and pre["sampling_rate"] == 16000
    assert (
        "# mae_vit: self-supervised baseline" in (tmp_path / "m/README.md").read_text()
    )
    back = folder.load()
    assert back["config"] == config  # fingerprints of it are unchanged
    assert back["preprocessor"] == artifact["preprocessor"]
    assert back["state_dict"].keys() == state.keys()
    assert all(torch.equal(back["state_dict"][k], v) for k, v in state.items())
