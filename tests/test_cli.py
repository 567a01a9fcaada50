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
    acula(project, "export", "data/06_models/aligned", "-o", str(ts_path))
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
    metrics.write_text(json.dumps({"synthetic": True, "mean_auroc": {"aligned": 0.7}}))
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
    assert info["metrics"]["mean_auroc"] == {"aligned": 0.7}
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
