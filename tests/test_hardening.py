"""Fault injection: each case a hostile user found (issue "Harden"), planted and
caught. Each test failed on the code before its fix."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from acula_pipeline.runtime import file_digest, model_folder_fingerprint
from acula_pipeline.training.teacher_cache import EmbeddingCache


class _Teacher:
    """A 3-d teacher whose vectors come from the bytes of its weight file, so new
    weights give new vectors; it counts the texts it encodes."""

    dim = 3

    def __init__(self, folder: pathlib.Path) -> None:
        self.path = folder
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += len(texts)
        w = np.frombuffer((self.path / "model.safetensors").read_bytes()[:3], np.uint8)
        return np.tile(w.astype(np.float32), (len(texts), 1))


def _teacher_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 3}')
    (folder / "model.safetensors").write_bytes(bytes([1, 2, 3]) * 100)
    return folder


def test_teacher_cache_follows_new_weights_of_the_same_size(tmp_path):
    """Defect 1: the key hashed weight names and sizes only; same-shape new weights
    gave zero teacher calls and the old vectors."""
    folder = _teacher_folder(tmp_path)
    teacher = _Teacher(folder)
    old = EmbeddingCache(tmp_path / "cache", teacher, "mean").embed(["a report"])
    (folder / "model.safetensors").write_bytes(bytes([9, 8, 7]) * 100)  # same size
    again = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    new = again.embed(["a report"])
    assert again.forward_texts == 1  # asked the teacher, not the cache
    assert not np.array_equal(old, new)
    assert new[0].tolist() == [9.0, 8.0, 7.0]


def test_a_weight_file_is_read_once_per_content(tmp_path, monkeypatch):
    """The digest is remembered by path, size and modification time, so an 8 GB
    teacher is not re-read on every run; a new file is read again."""
    folder = _teacher_folder(tmp_path)
    first = model_folder_fingerprint(folder, "mean")
    reads = []
    real_open = pathlib.Path.open

    def spy(self, *args, **kwargs):
        reads.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", spy)
    assert model_folder_fingerprint(folder, "mean") == first
    assert reads == []
    monkeypatch.undo()
    (folder / "model.safetensors").write_bytes(bytes([4, 5, 6]) * 100)
    monkeypatch.setattr(pathlib.Path, "open", spy)
    assert model_folder_fingerprint(folder, "mean") != first
    assert reads == ["model.safetensors"]


def test_the_digest_store_may_be_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("ACULA_CACHE_DIR", "/proc/no-such-place")
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 10)
    assert file_digest(f) == file_digest(f)  # computed each time, no error


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_teacher_cache_is_set_aside(tmp_path, caplog, damage):
    """Defect 11: a truncated ``.npz`` raised zipfile.BadZipFile, which the
    set-aside handler did not catch, and align crashed."""
    teacher = _Teacher(_teacher_folder(tmp_path))
    first = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    first.embed(["a", "b", "c"])
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    again = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    assert "unreadable" in caplog.text and str(first.path) in caplog.text
    assert first.path.with_suffix(".corrupt").exists()
    again.embed(["a"])
    assert again.forward_texts == 1


# ------------------------------------------------------------------ checkpoints


def _trainer(folder, model=None):
    from acula_pipeline.training.engine import TrainCfg, Trainer

    from .test_training import CFG, objective

    return Trainer(model or objective(), TrainCfg(**CFG), folder, {"x": 1})


class _Planted:
    """Unpickling this writes a file: what a crafted checkpoint could do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_carrying_code_is_refused_unrun(tmp_path):
    """Defect 3: checkpoints were loaded with weights_only=False; a crafted
    ``last.pt`` wrote a file and the run went on."""
    import torch

    from acula_pipeline.training.engine import CheckpointRefused

    from .test_training import data

    folder = tmp_path / "ckpt"
    folder.mkdir()
    marker = tmp_path / "pwned"
    torch.save(
        {"config": {"x": 1}, "step": 0, "x": _Planted(marker)}, folder / "last.pt"
    )
    with pytest.raises(CheckpointRefused, match=str(folder / "last.pt")):
        _trainer(folder).fit(data())
    assert not marker.exists()


def test_a_truncated_checkpoint_is_set_aside_and_the_previous_one_used(
    tmp_path, caplog
):
    caplog.set_level("INFO")
    """Defect 10: a truncated ``last.pt`` blocked every rerun with a bare
    PytorchStreamReader error. It is set aside, named, and the run resumes from the
    checkpoint before it (kept as previous.pt)."""
    from .test_training import data

    folder = tmp_path / "ckpt"
    first = _trainer(folder)
    first.fit(data())
    last = folder / "last.pt"
    assert (folder / "previous.pt").exists()
    last.write_bytes(last.read_bytes()[:1000])
    again = _trainer(folder)
    assert again.load_checkpoint()
    assert "unreadable" in caplog.text and str(last) in caplog.text
    assert last.with_suffix(".corrupt").exists()
    assert 0 < again.step <= first.step  # the checkpoint before the last
    assert f"Resumed from {folder / 'previous.pt'}" in caplog.text
    # no previous either: start afresh
    (folder / "previous.pt").write_bytes(b"")
    assert not _trainer(folder).load_checkpoint()


# ------------------------------------------------------------------ label values


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"age_years": -40.0}, "age_years -40.0 is outside [0, 120]"),
        ({"age_years": 400}, "age_years 400 is outside [0, 120]"),
        ({"fev1_fvc": 7.8}, "fev1_fvc 7.8 is outside [0.05, 1]"),
        ({"age_years": "old"}, "age_years 'old' is outside"),
    ],
)
def test_an_out_of_range_label_quarantines_its_recording(tmp_path, labels, reason):
    """A negative age (Coswara has -40) reached the labels and the reports' facts."""
    from acula_pipeline.sources.base import SourceScan, recording_row

    from .source_fixtures import wav

    path = tmp_path / "a.wav"
    wav(path, 16000, 0.5)
    scan = SourceScan()
    kw = dict(
        dataset="d",
        path=path,
        recording_id="d/a",
        subject_id="d:a",
        modality="cough",
        body_site=None,
        device=None,
        is_synthetic=False,
        metadata={},
    )
    assert recording_row(scan, **kw, labels=labels) is None
    assert scan.recordings == [] and reason in scan.quarantine[0]["reason"]
    assert recording_row(scan, **kw, labels={"age_years": float("nan")}) is not None


# ------------------------------------------------------------------ CSV cells


def test_csv_cells_cannot_be_formulas():
    import pandas as pd

    from acula_pipeline.runtime import spreadsheet_safe

    t = pd.DataFrame(
        {
            "path": ["=cmd|' /C calc'!A0.wav", "+1.wav", "ok.wav", "@SUM(1).wav"],
            "p": [0.1, -0.5, 0.2, 0.3],
        }
    )
    safe = spreadsheet_safe(t)
    assert safe["path"].tolist() == [
        "'=cmd|' /C calc'!A0.wav",
        "'+1.wav",
        "ok.wav",
        "'@SUM(1).wav",
    ]
    assert safe["p"].tolist() == t["p"].tolist()  # numbers untouched
    assert t["path"].iloc[0].startswith("=")  # the original is not changed


def test_audit_flags_csv_escapes_formulas(real_samples, tmp_path):
    """Report text comes from the user's corpus; flags.csv must not carry a
    formula a spreadsheet would run."""
    import pandas as pd

    from acula_pipeline.reports.audit import audit_reports, read_corpus, write_audit

    corpus = tmp_path / "c.csv"
    pd.DataFrame(
        {"pid": ["49595"], "text": ['=HYPERLINK("http://x") No murmur is audible.']}
    ).to_csv(corpus, index=False)
    audit = audit_reports(
        read_corpus(corpus, "pid", "text"), "circor2022", real_samples / "circor2022"
    )
    paths = write_audit(audit, tmp_path / "out")
    flags = pd.read_csv(paths["flags"], dtype=str)
    assert len(flags) and flags["report"].str.startswith("'=HYPERLINK").all()


# ------------------------------------------------------------------ evaluate's cache


def test_evaluate_embeddings_follow_rewritten_features(tmp_path, monkeypatch):
    """Defect 2: the cache was keyed by meta.json and the segment ids; a rewritten
    feature shard gave the old embeddings back."""
    import pandas as pd

    from acula_pipeline.audio.features import (
        FeatureShard,
        FeatureStore,
        write_feature_store,
    )
    from acula_pipeline.evaluation import run
    from acula_pipeline.evaluation.run import EmbedCfg, embed_all

    def mean_of_clip(encoder, store, ids, batch_size, device, progress):
        """An encoder whose embedding is the clip's mean value."""
        return np.stack([[store.get(i).astype(np.float32).mean()] for i in ids])

    monkeypatch.setattr(run, "embed_segments", mean_of_clip)
    ids = ["s0", "s1"]

    def store(value: float) -> FeatureStore:
        feats = np.full((2, 4, 3), value, np.float16)
        write_feature_store(tmp_path / "store", [FeatureShard(ids, feats)], {"v": 1})
        return FeatureStore(tmp_path / "store")

    segments = pd.DataFrame({"segment_id": ids})
    cfg = EmbedCfg(batch_size=2, device="cpu", progress=False)
    enc = {"m": (None, "k")}
    first = embed_all(enc, store(0.25), segments, tmp_path / "cache", cfg)
    again = embed_all(enc, store(0.75), segments, tmp_path / "cache", cfg)
    assert first["m"]["vectors"][:, 0].tolist() == [0.25, 0.25]
    assert again["m"]["vectors"][:, 0].tolist() == [0.75, 0.75]
    files = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(files) == 1 and files[0].startswith("m-k-")  # no temporary file left


# ------------------------------------------------------------------ resampling


@pytest.mark.parametrize("rate", [44101, 16001, 100100, 7999])
def test_any_sample_rate_resamples_in_bounded_memory(rate, monkeypatch):
    """Defect 8: resample(…, 44101, 16000) built a 44101-phase kernel (5.6 GB) and
    ingest died naming no file. No kernel over MAX_PHASES is built now, and a tone
    keeps its pitch."""
    import torch
    import torchaudio

    from acula_pipeline.audio import frontend

    built = []
    real = torchaudio.transforms.Resample

    def spy(orig, new, *a, **k):
        built.append(frontend._phases(orig, new))
        assert built[-1] <= frontend.MAX_PHASES, (orig, new)  # before allocating
        return real(orig, new, *a, **k)

    monkeypatch.setattr(frontend.torchaudio.transforms, "Resample", spy)
    frontend._resampler.cache_clear()
    t = torch.arange(rate) / rate  # one second of a 1 kHz tone
    out = frontend.resample(torch.sin(2 * torch.pi * 1000 * t), rate, 16000)
    assert abs(out.shape[-1] - 16000) <= 1
    peak = torch.fft.rfft(out[:16000]).abs().argmax().item()  # 1 Hz per bin
    assert abs(peak - 1000) <= 1
    frontend._resampler.cache_clear()


def test_the_evaluation_page_escapes_every_value():
    """Values on the evaluation page (an encoder's name, a task's reason for being
    skipped, a suite's name) are shown as text, never run."""
    import pandas as pd

    from acula_pipeline.evaluation.html import render_report

    evil = "<img src=x onerror=alert(1)>"
    page = render_report(
        synthetic=True,
        headline={"tasks": 1, evil: 0.5},
        results=pd.DataFrame({"task": [evil], "auroc": [0.5]}),
        skipped=[{"task": evil, "reason": evil}],
        figures=[],
        zero_shot=[{"task": evil}],
        retrieval=[],
        audit={"ok": True, "test_subjects": 1},
        validation={"success": True, "docs": evil, "suites": {"s": {"suite": evil}}},
        seeds=[0],
    )
    assert "<img src=x" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") == 7
    assert "<p>Not run (off, or no held-out reports).</p>" in page


def _long_wav(path: pathlib.Path, seconds: float, rate: int) -> pathlib.Path:
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


def test_a_long_recording_is_audited_in_bounded_memory(tmp_path):
    """Issue "Harden": a 1-hour 48 kHz file peaked at 5.8 GB in ingest (the whole
    file as float32 plus float64 copies). Six minutes here: 69 MB as float32."""
    import tracemalloc

    import pandas as pd

    from acula_pipeline.audio.audit import audit_recordings
    from acula_pipeline.audio.io import read_audio, to_mono
    from acula_pipeline.audio.quality import QualityCfg, quality_stats

    path = _long_wav(tmp_path / "long.wav", 360, 48_000)
    rec = pd.DataFrame({"recording_id": ["r"], "path": [str(path)], "dataset": ["d"]})
    tracemalloc.start()
    try:
        _, quality, quarantine = audit_recordings(rec, QualityCfg(), workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert quarantine.empty
    assert peak < 32e6, f"{peak / 1e6:.0f} MB"
    samples, sr = read_audio(path)
    whole = quality_stats(to_mono(samples), sr, QualityCfg())
    got = quality.iloc[0]
    for k, v in whole.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("rate", [44_100, 48_000, 8_000])
def test_a_long_recording_is_cut_a_window_at_a_time(tmp_path, monkeypatch, rate):
    """Features of a long recording read one window at a time, never the whole
    file, and the clips are those of the whole file, sample for sample."""
    from acula_pipeline.audio import features
    from acula_pipeline.audio.frontend import FrontendCfg

    cfg = FrontendCfg()
    path = str(_long_wav(tmp_path / "long.wav", 40, rate))
    spans = [(t, t + 8.19) for t in np.arange(0, 32, 4.1)] + [(35.0, 40.0)]
    whole = features.recording_clips(path, spans, cfg, "repeat", window_s=1e9)
    reads: list[int] = []
    real = features.read_frames

    def counting(p, start, stop):
        reads.append(stop - start)
        return real(p, start, stop)

    def never(*a, **k):
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(features, "read_frames", counting)
    monkeypatch.setattr(features, "read_audio", never)
    windowed = features.recording_clips(path, spans, cfg, "repeat", window_s=9.0)
    assert len(reads) > 3 and max(reads) < 9.5 * rate
    np.testing.assert_array_equal(windowed, whole)


def test_a_float_file_far_beyond_full_scale_is_quarantined(tmp_path):
    """Issue "Harden": a float WAV 100× beyond full scale got only a warning."""
    import pandas as pd
    import soundfile as sf

    from acula_pipeline.audio.audit import audit_recordings
    from acula_pipeline.audio.quality import QualityCfg

    t = np.arange(16_000 * 2) / 16_000
    loud = (100 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "loud.wav", loud, 16_000, subtype="FLOAT")
    sf.write(tmp_path / "ok.wav", loud / 80, 16_000, subtype="FLOAT")  # 1.25: kept
    rec = pd.DataFrame(
        {
            "recording_id": ["loud", "ok"],
            "path": [str(tmp_path / "loud.wav"), str(tmp_path / "ok.wav")],
            "dataset": ["d", "d"],
        }
    )
    accepted, _, quarantine = audit_recordings(rec, QualityCfg(), workers=1)
    assert accepted["recording_id"].tolist() == ["ok"]
    (reason,) = quarantine["reason"]
    assert "peak 100 > max_peak 2" in reason and quarantine["record"].iloc[0] == "loud"


def test_identical_audio_under_two_source_names_stays_on_one_side(real_samples, caplog):
    """Issue "Harden": the same dataset enabled under two source names put files in
    both train and test, with no warning. The audit now digests the decoded audio;
    the split keeps each group of identical recordings on one side; the leakage
    audit compares content, not only subject ids."""
    import logging

    from acula_pipeline.audio.audit import audit_recordings
    from acula_pipeline.audio.quality import QualityCfg
    from acula_pipeline.evaluation.splits import (
        SplitParams,
        identical_audio,
        keep_identical_audio_together,
        leakage_audit,
        make_splits,
    )
    from acula_pipeline.sources.base import scan_source, scans_to_frames

    root = real_samples / "circor2022"
    scans = [scan_source("circor2022", root, name, False) for name in ("a", "b")]
    scanned, _, _ = scans_to_frames(scans)
    recordings, _, _ = audit_recordings(scanned, QualityCfg(), workers=1)
    groups = identical_audio(recordings)
    assert len(groups) == len(recordings) // 2  # every file, once under each name
    assert all(g[0].startswith("a/") and g[1].startswith("b/") for g in groups)
    params = SplitParams(val_fraction=0.3, test_fraction=0.3, seed=1)
    plain = make_splits(recordings, params)
    with caplog.at_level(logging.WARNING):
        splits = keep_identical_audio_together(plain, recordings)
    assert "Identical audio" in caplog.text
    before = dict(zip(plain["subject_id"], plain["split"], strict=True))
    side = dict(zip(splits["subject_id"], splits["split"], strict=True))
    subject = recordings.set_index("recording_id")["subject_id"]
    assert any(len({before[subject[r]] for r in g}) > 1 for g in groups)
    for g in groups:
        assert len({side[subject[r]] for r in g}) == 1, g
    # The audit by content: train on "a"'s subjects and test on "b"'s.
    a_subjects = sorted(s for s in plain["subject_id"] if s.startswith("a:"))
    b_test = plain.assign(
        split=["test" if s.startswith("b:") else "train" for s in plain["subject_id"]]
    )
    by_name = leakage_audit(b_test, a_subjects, [])
    by_content = leakage_audit(b_test, a_subjects, [], recordings)
    assert by_name["ok"] and not by_content["ok"]
    assert set(by_content["test_subjects_in_alignment_audio"]) == {
        s.replace("a:", "b:", 1) for s in a_subjects
    }


def test_a_model_folder_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """Issue "Harden": weights and config were written as two files, so a run
    killed between them left new weights beside the old config."""
    import json

    import torch

    from acula_pipeline import hub
    from acula_pipeline.catalog_datasets import ModelArtifactDataset

    folder = ModelArtifactDataset(str(tmp_path / "model"))
    folder.save({"state_dict": {"w": torch.zeros(3)}, "config": {"v": 1}})

    def killed(*a, **k):
        raise KeyboardInterrupt  # the run dies between the two files

    monkeypatch.setattr(hub.json, "dumps", killed)  # the folder writer's
    with pytest.raises(KeyboardInterrupt):
        folder.save({"state_dict": {"w": torch.ones(3)}, "config": {"v": 2}})
    monkeypatch.undo()
    old = folder.load()
    assert old["config"] == {"v": 1} and torch.equal(
        old["state_dict"]["w"], torch.zeros(3)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers
    folder.save({"state_dict": {"w": torch.ones(3)}, "config": {"v": 2}})
    written = json.loads((tmp_path / "model/config.json").read_text())
    assert written["v"] == 2 and written["model_type"] == "acula_audio"


def test_a_table_folder_is_written_whole_or_not_at_all(tmp_path):
    import pandas as pd

    from acula_pipeline.catalog_datasets import TableFolderDataset

    tables = TableFolderDataset(str(tmp_path / "t"), file_format="csv")
    tables.save({"a": pd.DataFrame({"x": [1]}), "b/c": pd.DataFrame({"y": [2]})})

    class Broken(pd.DataFrame):
        def to_csv(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(Exception, match="disk full"):  # Kedro wraps it
        tables.save({"a": pd.DataFrame({"x": [9]}), "z": Broken({"y": [3]})})
    kept = tables.load()
    assert sorted(kept) == ["a", "b/c"] and kept["a"]["x"].tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_two_writers_of_a_feature_store_do_not_collide(tmp_path):
    """Two runs writing one store used one temporary folder: the second wiped the
    first one's half-written shards. Each writer now has its own."""
    from acula_pipeline.audio.features import (
        FeatureShard,
        FeatureStore,
        write_feature_store,
    )

    root = tmp_path / "features"

    def shard(name: str, value: float) -> FeatureShard:
        return FeatureShard([name], np.full((1, 4, 2), value, np.float16))

    def first():
        yield shard("a0", 0)
        write_feature_store(root, iter([shard("b0", 5)]), {"writer": "b"})
        yield shard("a1", 1)

    assert write_feature_store(root, first(), {"writer": "a"}) == 2
    store = FeatureStore(root)
    assert len(store) == 2 and float(store.get("a1")[0, 0]) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]
