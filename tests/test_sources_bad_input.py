"""Planted bad inputs: each yields a quarantine row (or a clear error) naming the file."""

from __future__ import annotations

import json
import logging

import pandas as pd

from acula_pipeline.audio.audit import audit_recordings
from acula_pipeline.audio.quality import QualityCfg
from acula_pipeline.sources import scan_source, scans_to_frames


def scan(adapter, root):
    return scans_to_frames([scan_source(adapter, root, adapter, False)])


def reasons(quarantine, name):
    return quarantine[quarantine["path"].str.endswith(name)]["reason"].tolist()


def test_icbhi_bad_annotation_and_files(real_copy):
    root = real_copy("icbhi2017")
    audio = root / "audio_and_txt_files"
    ann = audio / "101_1b1_Al_sc_Meditron.txt"
    lines = ann.read_text().splitlines()
    lines[6] = "\t".join(lines[6].split()[:3])
    ann.write_text("\n".join(lines) + "\n")
    (audio / "104_1b1_Ar_sc_Litt3200.txt").unlink()
    (audio / "999_1b1_Al_sc_Meditron.wav").write_bytes(
        (audio / "101_1b1_Pr_sc_Meditron.wav").read_bytes()
    )
    (audio / "notes.wav").write_text("not audio")
    (audio / "101_2b1_Al_sc_Meditron.wav").write_text(
        "text, not audio, behind a valid name"
    )
    (audio / "101_2b1_Al_sc_Meditron.txt").write_text("0.1\t1.0\t0\t0\n")
    rec, cycles, q = scan("icbhi2017", root)
    assert rec["recording_id"].tolist() == [
        "icbhi2017/101_1b1_Pr_sc_Meditron",
        "icbhi2017/104_1b1_Al_sc_Litt3200",
    ]
    assert reasons(q, "101_1b1_Al_sc_Meditron.txt") == [
        "ICBHI annotation 101_1b1_Al_sc_Meditron.txt line 7: expected 4 columns, got 3"
    ]
    assert reasons(q, "104_1b1_Ar_sc_Litt3200.wav") == [
        "annotation file 104_1b1_Ar_sc_Litt3200.txt is missing"
    ]
    assert (
        "patient 999 has no valid diagnosis"
        in reasons(q, "999_1b1_Al_sc_Meditron.wav")[0]
    )
    assert "does not follow" in reasons(q, "notes.wav")[0]
    assert "unreadable audio" in reasons(q, "101_2b1_Al_sc_Meditron.wav")[0]
    assert set(cycles["recording_id"]) == set(rec["recording_id"])


def test_icbhi_unknown_diagnosis(real_copy):
    root = real_copy("icbhi2017")
    diag = root / "patient_diagnosis.csv"
    diag.write_bytes(diag.read_bytes().replace(b"104,COPD", b"104,Flu"))
    rec, _, q = scan("icbhi2017", root)
    assert rec["subject_id"].unique().tolist() == ["icbhi2017:101"]
    assert "line 4: unknown diagnosis 'Flu'" in reasons(q, "patient_diagnosis.csv")[0]
    assert len(reasons(q, "_Litt3200.wav")) == 2


def test_icbhi_cycle_after_end_and_bad_split_line(real_copy):
    root = real_copy("icbhi2017")
    ann = root / "audio_and_txt_files" / "104_1b1_Al_sc_Litt3200.txt"
    ann.write_text(ann.read_text() + "15.0\t17.5\t0\t1\n16.0\t18.0\t1\t0\n")
    (root / "ICBHI_challenge_train_test.txt").write_text(
        "101_1b1_Al_sc_Meditron\ttrain\n104_1b1_Al_sc_Litt3200 maybe\n"
    )
    rec, cycles, q = scan("icbhi2017", root)
    rid = "icbhi2017/104_1b1_Al_sc_Litt3200"
    mine = cycles[cycles["recording_id"] == rid]
    # 6 annotated cycles + one cut at the end of the audio (15.856 s); one rejected.
    assert (
        len(mine) == 7
        and mine["end_s"].max() == rec.set_index("recording_id").loc[rid, "duration_s"]
    )
    rejected = q[q["record"] == f"{rid} cycle 7"]
    assert rejected["reason"].str.contains("starts at 16.0 s, after the end").all()
    assert len(rejected) == 1
    assert (
        "line 2: expected '<recording> train|test'"
        in reasons(q, "ICBHI_challenge_train_test.txt")[0]
    )
    assert pd.isna(rec.set_index("recording_id").loc[rid, "official_split"])


def test_circor_missing_murmur_and_unknown_label(real_copy):
    root = real_copy("circor2022")
    data = root / "training_data"
    p = data / "29045.txt"
    p.write_bytes(
        b"\r\n".join(
            ln for ln in p.read_bytes().split(b"\r\n") if not ln.startswith(b"#Murmur:")
        )
    )
    q2 = data / "49568.txt"
    q2.write_bytes(q2.read_bytes().replace(b"#Murmur: Absent", b"#Murmur: Maybe"))
    rec, _, q = scan("circor2022", root)
    assert not rec["subject_id"].isin(["circor2022:29045", "circor2022:49568"]).any()
    assert len(rec) == 23 - 8
    assert reasons(q, "29045.txt") == [
        "CirCor patient file 29045.txt: missing '#Murmur' field"
    ]
    assert len(reasons(q, "29045_AV.wav")) == 1
    assert "unknown #Murmur value 'Maybe'" in reasons(q, "49568_MV.wav")[0]


def test_circor_real_spellings_and_a_recording_without_segmentation(real_copy):
    """Real CirCor writes 'Young Adult' beside 'Young adult', and lists a few
    recordings without their .tsv ('MV 50782_MV_1.hea 50782_MV_1.wav'): both
    patients stay, with the canonical spelling and no segmentation count."""
    root = real_copy("circor2022")
    data = root / "training_data"
    p = data / "29045.txt"
    text = p.read_bytes()
    assert (
        b"#Age: Child" in text and b"MV 29045_MV.hea 29045_MV.wav 29045_MV.tsv" in text
    )
    p.write_bytes(
        text.replace(b"#Age: Child", b"#Age: Young Adult").replace(
            b"MV 29045_MV.hea 29045_MV.wav 29045_MV.tsv",
            b"MV 29045_MV.hea 29045_MV.wav",
        )
    )
    rec, _, q = scan("circor2022", root)
    assert len(rec) == 23 and not len(q)
    mine = rec[rec["subject_id"] == "circor2022:29045"].set_index("body_site")
    assert set(mine["age_group"]) == {"Young adult"}
    meta = {site: json.loads(m) for site, m in mine["metadata"].items()}
    assert meta["MV"]["segmentation_rows"] is None
    assert meta["AV"]["segmentation_rows"] > 0
    assert meta["AV"]["Age"] == "Young adult"


def test_circor_without_outcome_says_so_once(real_copy, caplog):
    """The v1.0.0 release (as in real_samples) has no '#Outcome' line: the recordings
    stay, without an outcome label, and ingest says once that the outcome task will
    be skipped; one patient file with the line (v1.0.3) silences it."""
    root = real_copy("circor2022")
    data = root / "training_data"
    assert not any(b"#Outcome" in p.read_bytes() for p in data.glob("*.txt"))
    with caplog.at_level(logging.WARNING, logger="acula_pipeline.sources.circor"):
        rec, _, q = scan("circor2022", root)
    assert len(rec) == 23 and not len(q)
    assert rec["outcome"].isna().all() and rec["murmur"].notna().all()
    assert [r.getMessage() for r in caplog.records] == [
        "circor2022: no outcome labels in this copy (no '#Outcome' line in any "
        "patient file: the v1.0.0 layout); the outcome task will be skipped"
    ]
    p = data / "29045.txt"
    p.write_bytes(
        p.read_bytes().replace(b"#Campaign:", b"#Outcome: Abnormal\r\n#Campaign:")
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="acula_pipeline.sources.circor"):
        rec, _, q = scan("circor2022", root)
    assert not caplog.records and not len(q)
    assert set(rec.loc[rec["outcome"].notna(), "subject_id"]) == {"circor2022:29045"}


def test_circor_truncated_and_orphan_wav(real_copy):
    root = real_copy("circor2022")
    data = root / "training_data"
    wav = data / "50757_AV.wav"
    wav.write_bytes(wav.read_bytes()[:5000])
    (data / "12345_AV.wav").write_bytes((data / "50757_MV.wav").read_bytes())
    rec, _, q = scan("circor2022", root)
    assert "truncated WAV" in reasons(q, "50757_AV.wav")[0]
    assert reasons(q, "12345_AV.wav") == ["recording not listed in any patient file"]
    assert len(rec) == 22


def test_coswara_bad_metadata(real_copy):
    root = real_copy("coswara")
    batch = root / "20200413"
    meta = batch / "vK2bLRNzllXNeyOMudnNSL5cfpG2" / "metadata.json"
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps(m | {"covid_status": "maybe"}))
    (batch / "bjA2KpSxneNskrLBeqi4bqoTDQl2" / "metadata.json").write_text("{not json")
    zero = batch / "0zexHIcM7tQDdnFiEj2Eb0v3g212" / "breathing-deep.wav"
    zero.write_bytes(b"")
    rec, _, q = scan("coswara", root)
    assert (
        "unknown covid_status 'maybe'"
        in reasons(q, "vK2bLRNzllXNeyOMudnNSL5cfpG2/cough-heavy.wav")[0]
    )
    assert (
        "invalid JSON"
        in reasons(q, "bjA2KpSxneNskrLBeqi4bqoTDQl2/breathing-deep.wav")[0]
    )
    assert (
        "unreadable audio"
        in reasons(q, "0zexHIcM7tQDdnFiEj2Eb0v3g212/breathing-deep.wav")[0]
    )
    assert len(rec) == 9 - 4
    assert len(q) == 5


def test_coswara_bad_quality_label_line(real_copy):
    root = real_copy("coswara")
    labels = root / "annotations" / "cough-heavy_labels.csv"
    labels.write_text(
        labels.read_text() + "vK2bLRNzllXNeyOMudnNSL5cfpG2_cough-heavy,excellent\n"
    )
    rec, _, q = scan("coswara", root)
    assert reasons(q, "cough-heavy_labels.csv") == [
        "line 7: expected '<participant>_<recording>,<0|1|2>', "
        "got FILENAME='vK2bLRNzllXNeyOMudnNSL5cfpG2_cough-heavy' QUALITY='excellent'"
    ]
    # The earlier valid label for that file still stands.
    rid = "coswara/vK2bLRNzllXNeyOMudnNSL5cfpG2/cough-heavy"
    assert rec.set_index("recording_id").loc[rid, "audio_quality_label"] == 2


def test_audit_rejects_silent_and_short(tmp_path):
    import numpy as np
    import pandas as pd
    import soundfile as sf

    sf.write(tmp_path / "silent.wav", np.zeros(8000), 4000)
    sf.write(tmp_path / "short.wav", 0.5 * np.ones(100), 4000)
    sf.write(
        tmp_path / "ok.wav", 0.1 * np.random.default_rng(0).standard_normal(8000), 4000
    )
    rec = pd.DataFrame(
        {
            "recording_id": ["s", "h", "o"],
            "dataset": "x",
            "path": [str(tmp_path / f) for f in ("silent.wav", "short.wav", "ok.wav")],
        }
    )
    accepted, quality, q = audit_recordings(rec, QualityCfg(), workers=1)
    assert accepted["recording_id"].tolist() == ["o"]
    assert q.set_index("record")["reason"].str.split(":").str[0].to_dict() == {
        "s": "all-silent",
        "h": "too short",
    }
    assert quality.set_index("recording_id").loc["s", "silence_fraction"] == 1.0
