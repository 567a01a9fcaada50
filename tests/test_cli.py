"""The ``acula`` command line on a small pipeline run's outputs (``small_run``): embeddings equal to
the pipeline's own, zero-shot probabilities, ONNX and TorchScript exports checked
against PyTorch, ``info``, and the clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from acula_pipeline.commands import main


@pytest.fixture(scope="module")
def project(small_run: Path) -> Path:
    return small_run


def acula(project: Path, *args: str, ok: bool = True):
    """Run ``acula`` in the project folder (in process)."""
    import logging
    import os

    cwd, logger = os.getcwd(), logging.getLogger("acula_pipeline")
    level = logger.level  # the command sets it; later tests read these logs
    os.chdir(project)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(cwd)
        logger.setLevel(level)
    assert (result.exit_code == 0) == ok, result.output
    return result


def _circor_wavs(project: Path) -> list[Path]:
    return sorted((project / "data/01_raw/synthetic/circor2022").rglob("*.wav"))


def test_the_entry_point_is_installed():
    exe = Path(sys.executable).parent / "acula"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("embed", "zero-shot", "export", "info"):
        assert command in out.stdout


@pytest.mark.slow
def test_embed_equals_the_pipeline_embeddings(project):
    from acula_pipeline.audio.features import FeatureStore
    from acula_pipeline.evaluation.embed import embed_segments, pool_by
    from acula_pipeline.inference import load_model

    folder = project / "data/01_raw/synthetic/circor2022"
    res = acula(
        project,
        "-v",
        "embed",
        "data/06_models/aligned",
        str(folder),
        "-o",
        "e.parquet",
        "--no-progress",
        "--projection",
    )
    table = pd.read_parquet(project / "e.parquet")
    wavs = _circor_wavs(project)
    # CirCor is 4 kHz: every file is resampled, with a notice.
    assert f"note: {len(wavs)} file(s) resampled to 16000 Hz" in res.output
    assert (table["notices"] == "resampled from 4000 Hz to 16000 Hz").all()
    assert len(table) == len(wavs) and (table["sample_rate"] == 4000).all()
    assert (
        len(table["embedding"].iloc[0]) == 192
        and len(table["projection"].iloc[0]) == 512
    )
    # The same vectors as the pipeline's: its stored clips through the same encoder.
    segments = pd.read_parquet(project / "data/03_primary/segments.parquet")
    segments = segments[segments["dataset"] == "synthetic_circor2022"]
    encoder = load_model(project / "data/06_models/aligned").encoder
    store = FeatureStore(project / "data/03_primary/features")
    vec = embed_segments(
        encoder, store, segments["segment_id"].tolist(), progress=False
    )
    keys, pooled = pool_by(segments["recording_id"].tolist(), vec)
    ours = {
        f"synthetic_circor2022/{Path(p).stem}": np.asarray(v)
        for p, v in zip(table["path"], table["embedding"], strict=True)
    }
    assert len(keys) > 0
    for key, want in zip(keys, pooled, strict=True):
        np.testing.assert_allclose(ours[key], want, atol=1e-4)


@pytest.mark.slow
def test_embed_skips_unreadable_files_and_fails_clearly(project, tmp_path):
    wav = _circor_wavs(project)[0]
    (tmp_path / "good.wav").write_bytes(wav.read_bytes())
    (tmp_path / "bad.wav").write_text("not audio")
    res = acula(
        project,
        "embed",
        "data/06_models/aligned",
        str(tmp_path),
        "-o",
        "x.parquet",
        "--no-progress",
    )
    assert "skipped" in res.output and "bad.wav: unreadable audio" in res.output
    assert len(pd.read_parquet(project / "x.parquet")) == 1
    res = acula(
        project,
        "embed",
        "data/06_models/aligned",
        str(tmp_path / "bad.wav"),
        "-o",
        "y.parquet",
        ok=False,
    )
    assert "none of the 1 file(s) could be read" in res.output
    res = acula(
        project, "embed", "no/such/model", str(wav), "-o", "z.parquet", ok=False
    )
    assert "no/such/model: no config.json" in res.output
    res = acula(
        project,
        "embed",
        "data/06_models/aligned",
        "missing.wav",
        "-o",
        "z.parquet",
        ok=False,
    )
    assert "missing.wav: no such file or folder" in res.output
    # A feature store with other settings than the model's, or a broken meta.json:
    # stopped before any file is decoded, naming the problem.
    other = tmp_path / "other_store"
    other.mkdir()
    meta = json.loads((project / "data/03_primary/features/meta.json").read_text())
    meta["frontend"]["n_mels"] = 32
    for text, message in (
        (
            json.dumps(meta),
            "the encoder reads 256 frames x 64 mels, but the frontend makes 256 x 32",
        ),
        ("{not json", "meta.json: not a feature store's meta.json"),
    ):
        (other / "meta.json").write_text(text)
        res = acula(
            project,
            "embed",
            "data/06_models/aligned",
            str(wav),
            "-o",
            "z.parquet",
            "--features",
            str(other),
            ok=False,
        )
        assert message in res.output


@pytest.mark.slow
def test_zero_shot_gives_a_probability_per_class(project, tmp_path):
    wavs = [str(p) for p in _circor_wavs(project)[:4]]
    classes = ["No heart murmur is heard.", "A heart murmur is heard."]
    res = acula(
        project,
        "zero-shot",
        "data/06_models/aligned",
        *wavs,
        "-c",
        classes[0],
        "-c",
        classes[1],
        "-o",
        str(tmp_path / "z.csv"),
        "--no-progress",
    )
    assert "cka_feature" in res.output  # the default loss: the notice is given
    table = pd.read_csv(tmp_path / "z.csv")
    assert list(table.columns) == ["path", *classes, "predicted"]
    assert len(table) == 4
    np.testing.assert_allclose(table[classes].sum(axis=1), 1.0, atol=1e-5)
    assert set(table["predicted"]) <= set(classes)
    res = acula(
        project, "zero-shot", "data/06_models/aligned", wavs[0], "-c", "x", ok=False
    )
    assert "at least two class descriptions" in res.output
    res = acula(
        project,
        "zero-shot",
        "data/06_models/baseline_encoder",
        wavs[0],
        "-c",
        "a",
        "-c",
        "b",
        ok=False,
    )
    assert "needs an aligned model" in res.output


@pytest.mark.slow
def test_onnx_and_torchscript_exports_match_pytorch(project, tmp_path):
    import onnxruntime as ort

    from acula_pipeline.inference import file_clips, frontend_settings, load_model
    from acula_pipeline.models import build_encoder

    wav = _circor_wavs(project)[0]
    onnx_path = tmp_path / "encoder.onnx"
    res = acula(
        project,
        "export",
        "data/06_models/aligned",
        "-o",
        str(onnx_path),
        "--input",
        "logmel",
        "--check-audio",
        str(wav),
    )
    assert "largest difference to PyTorch" in res.output
    model = load_model(project / "data/06_models/aligned")
    cfg, policy = frontend_settings(project / "data/03_primary/features")
    x = np.concatenate(
        [
            file_clips(wav, cfg, policy).features,
            np.random.default_rng(1).random((3, 256, 64)),
        ]
    ).astype(np.float32)
    with torch.no_grad():
        want = model.encoder.encode_audio(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"logmel": x})[0]
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["acula.training_data_hash"]) == model.config["data"]
    # TorchScript: usable as the pipeline's torchscript student.
    ts_path = tmp_path / "encoder.pt"
    acula(
        project,
        "export",
        "data/06_models/aligned",
        "-o",
        str(ts_path),
        "--input",
        "logmel",
    )
    student = build_encoder(
        {"name": "torchscript", "path": str(ts_path), "input": "logmel"}
    )
    with torch.no_grad():
        got_ts = student.encode_audio(torch.from_numpy(x)).numpy()
    assert np.abs(got_ts - want).max() <= 1e-4
    res = acula(
        project,
        "export",
        "data/06_models/aligned",
        "-o",
        str(tmp_path / "e.onnx"),
        "--tolerance",
        "-1",
        ok=False,
    )
    assert "nothing written" in res.output and not (tmp_path / "e.onnx").exists()
    (tmp_path / "bad.wav").write_text("not audio")
    res = acula(
        project,
        "export",
        "data/06_models/aligned",
        "-o",
        str(tmp_path / "f.onnx"),
        "--check-audio",
        str(tmp_path / "bad.wav"),
        ok=False,
    )
    assert "--check-audio:" in res.output and "bad.wav: unreadable audio" in res.output


@pytest.mark.slow
def test_info_describes_the_model_and_its_metrics(project, tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps(
            {
                "aligned": 0.7,
                "baseline": 0.6,
                "delta": 0.1,
                "delta_lo": -0.05,
                "delta_hi": 0.25,
            }
        )
    )
    res = acula(
        project, "info", "data/06_models/aligned", "--metrics", str(metrics), "--json"
    )
    info = json.loads(res.output)
    config = json.loads((project / "data/06_models/aligned/config.json").read_text())
    assert info["training_data_hash"] == config["data"] and info["aligned"] is True
    assert (
        info["encoder"]["name"] == "mae_vit"
        and info["teacher"]["name"] == "sentence_encoder"
    )
    assert info["mean_auroc"] == {"aligned": 0.7, "baseline": 0.6}
    assert info["aligned_minus_baseline"] == "+0.100 [-0.050, +0.250]"
    text = acula(project, "info", "data/06_models/baseline_encoder").output
    assert "aligned: False" in text and "SYNTHETIC" in text
    assert "mean_auroc" in text  # this project's own model: its last run's metrics
    copy = tmp_path / "elsewhere"
    shutil.copytree(project / "data/06_models/baseline_encoder", copy)
    assert "mean_auroc" not in acula(project, "info", str(copy)).output
    metrics.write_text("{broken")
    res = acula(
        project, "info", "data/06_models/aligned", "--metrics", str(metrics), ok=False
    )
    assert "metrics.json: not a metrics JSON file" in res.output


def _broken_copy(project: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(project / "data/06_models/aligned", folder)
    return folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("random_weights", "model.safetensors: not a readable safetensors file"),
        ("truncated_weights", "model.safetensors: not a readable safetensors file"),
        ("unknown_encoder_option", "config.json and model.safetensors do not make"),
        ("teacher_without_dim", "config.json: missing entry 'dim'"),
    ],
)
def test_a_broken_model_folder_is_one_line_and_exit_2(
    project, tmp_path, damage, message
):
    """Hardening defect 12: each of these printed a traceback."""
    folder = _broken_copy(project, tmp_path, damage)
    weights, config = folder / "model.safetensors", folder / "config.json"
    cfg = json.loads(config.read_text())
    if damage == "random_weights":
        weights.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:5000])
    elif damage == "unknown_encoder_option":
        cfg["encoder"]["no_such_option"] = 3
        config.write_text(json.dumps(cfg))
    else:
        del cfg["teacher"]["dim"]
        config.write_text(json.dumps(cfg))
    result = acula(project, "info", str(folder), ok=False)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line, result.output
    assert message in line and str(folder) in line, line


def test_an_output_that_is_a_folder_is_refused(project, tmp_path):
    wav = _circor_wavs(project)[0]
    for command in (
        ["embed", "data/06_models/aligned", str(wav), "-o", str(tmp_path)],
        ["export", "data/06_models/aligned", "-o", str(tmp_path)],
    ):
        res = acula(project, *command, ok=False)
        assert res.exit_code == 2 and "is a directory" in res.output, res.output


@pytest.mark.slow
def test_the_model_folder_is_a_hugging_face_model(project, tmp_path, monkeypatch):
    """Issue 21 #8: AutoModel, AutoConfig and AutoFeatureExtractor load a model
    folder from any working directory; embeddings equal the pipeline's encoder's;
    save_pretrained writes a folder the pipeline reads back."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    import acula_pipeline.hub  # noqa: F401  (registers acula_audio)
    from acula_pipeline.inference import load_model

    wave = 0.1 * np.random.default_rng(0).standard_normal(16000 * 12)
    for name, heads in (("aligned", True), ("baseline_encoder", False)):
        folder = project / "data/06_models" / name
        monkeypatch.chdir(tmp_path)  # nothing of the project around
        assert AutoConfig.from_pretrained(folder).model_type == "acula_audio"
        model = AutoModel.from_pretrained(folder).eval()
        fx = AutoFeatureExtractor.from_pretrained(folder)
        inputs = fx(wave.astype(np.float32), sampling_rate=16000, return_tensors="pt")
        assert inputs["input_features"].shape == (2, 256, 64)  # 12 s: two windows
        with torch.no_grad():
            out = model(**inputs)
        ours = load_model(folder)
        with torch.no_grad():
            want = ours.encoder.encode_audio(inputs["input_features"])
        assert torch.equal(out.embeddings, want)
        assert (out.projection is not None) == heads
        # The feature extractor's clips are the pipeline's (the feature store's).
        clips_8k = fx(
            wave[::2].astype(np.float32), sampling_rate=8000, return_tensors="np"
        )["input_features"]
        assert clips_8k.shape == (2, 256, 64)
        copy = tmp_path / f"resaved_{name}"
        model.save_pretrained(copy)
        again = load_model(copy)
        with torch.no_grad():
            assert torch.equal(
                again.encoder.encode_audio(want.new_zeros(1, 256, 64)),
                ours.encoder.encode_audio(want.new_zeros(1, 256, 64)),
            )
        card = (folder / "README.md").read_text()
        assert "library_name: transformers" in card and "SYNTHETIC" in card
        assert "## Training data" in card and "Data fingerprint" in card
    card = (project / "data/06_models/aligned/README.md").read_text()
    config = json.loads((project / "data/06_models/aligned/config.json").read_text())
    assert f"Loss: `{config['params']['loss']}`" in card
    assert f"{len(config['trained_subjects'])} subjects" in card


@pytest.mark.slow
def test_embed_elsewhere_needs_no_project_files(project, tmp_path, caplog):
    """The folder's preprocessor_config.json gives the frontend: embedding from
    another directory equals embedding in the project, with no fallback warning."""
    wav = _circor_wavs(project)[0]
    folder = tmp_path / "shipped"
    shutil.copytree(project / "data/06_models/aligned", folder)
    here = acula(
        project,
        "embed",
        "data/06_models/aligned",
        str(wav),
        "-o",
        str(tmp_path / "a.parquet"),
    )
    assert "default frontend" not in here.output
    with caplog.at_level("WARNING"):
        res = acula(
            tmp_path, "embed", str(folder), str(wav), "-o", str(tmp_path / "b.parquet")
        )
    assert "default frontend" not in caplog.text + res.output
    # Without its preprocessor_config.json the folder would fall back, and say so.
    (folder / "preprocessor_config.json").unlink()
    with caplog.at_level("WARNING"):
        res = acula(
            tmp_path, "embed", str(folder), str(wav), "-o", str(tmp_path / "c.parquet")
        )
    assert "default frontend" in caplog.text + res.output
    a = np.stack(pd.read_parquet(tmp_path / "a.parquet")["embedding"].to_list())
    b = np.stack(pd.read_parquet(tmp_path / "b.parquet")["embedding"].to_list())
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_onnx_export_reads_raw_audio_of_real_recordings(
    project, tmp_path, real_samples
):
    """One self-contained ONNX file, the frontend inside: real CirCor recordings'
    windows embed within 1e-4 of the pipeline's PyTorch path (log-mel in float16,
    then the encoder)."""
    import onnxruntime as ort

    from acula_pipeline.inference import (
        file_clips,
        file_windows,
        frontend_settings,
        load_model,
    )

    wavs = sorted((real_samples / "circor2022").rglob("*.wav"))[:3]
    out = tmp_path / "out" / "model.onnx"
    res = acula(
        tmp_path,  # another working directory: the folder is enough
        "export",
        str(project / "data/06_models/aligned"),
        "-o",
        str(out),
        *[a for w in wavs for a in ("--check-audio", str(w))],
    )
    assert "reads raw 16000 Hz audio windows" in res.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no .data
    model = load_model(project / "data/06_models/aligned")
    cfg, policy = frontend_settings(None, model)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "audio"
    for wav in wavs:
        windows, _ = file_windows(wav, cfg, policy)
        got = session.run(None, {"audio": windows.astype(np.float32)})[0]
        feats = file_clips(wav, cfg, policy).features
        with torch.no_grad():
            want = model.encoder.encode_audio(torch.from_numpy(feats)).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4, wav
    # TorchScript reads raw audio the same way
    ts = tmp_path / "out" / "model.pt"
    acula(tmp_path, "export", str(project / "data/06_models/aligned"), "-o", str(ts))
    windows, _ = file_windows(wavs[0], cfg, policy)
    with torch.no_grad():
        got_ts = torch.jit.load(str(ts))(torch.from_numpy(windows)).numpy()
    feats = file_clips(wavs[0], cfg, policy).features
    with torch.no_grad():
        want = model.encoder.encode_audio(torch.from_numpy(feats)).numpy()
    assert np.abs(got_ts - want).max() <= 1e-4


@pytest.mark.slow
def test_package_writes_a_card_with_results_and_the_onnx_file(project, tmp_path):
    dist = tmp_path / "dist"
    res = acula(project, "package", "data/06_models/aligned", "-o", str(dist))
    assert "results from data/08_reporting/results.json" in res.output
    names = {p.name for p in dist.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
        "model.onnx",
    } <= names
    card = (dist / "README.md").read_text()
    results = json.loads((project / "data/08_reporting/results.json").read_text())
    task, row = next(iter(sorted(results["tasks"].items())))
    cell = row["aligned"]
    metric = next(k for k in cell if k not in ("lo", "hi"))
    assert f"| {task} | {metric} | {cell[metric]:.3f} [" in card
    res = acula(project, "package", "data/06_models/aligned", "-o", str(dist), ok=False)
    assert "already exists" in res.output
    # a baseline copied under another name: its card shows the baseline's row
    other = tmp_path / "my_encoder"
    shutil.copytree(project / "data/06_models/baseline_encoder", other)
    acula(
        project,
        "package",
        str(other),
        "-o",
        str(tmp_path / "dist2"),
        "--results",
        "data/08_reporting/results.json",
        "--no-onnx",
    )
    cell = row["baseline"]
    card = (tmp_path / "dist2/README.md").read_text()
    assert f"| {task} | {metric} | {cell[metric]:.3f} [" in card
    assert not (tmp_path / "dist2/model.onnx").exists()
