"""The adapters on the real excerpts in ../shared/real_samples: exact counts, labels, rates."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from acula_pipeline.audio.audit import audit_recordings
from acula_pipeline.audio.quality import QualityCfg
from acula_pipeline.sources import SourceError, scan_source, scans_to_frames


def frames(adapter, root, dataset=None):
    rec, cyc, q = scans_to_frames(
        [scan_source(adapter, root, dataset or adapter, False)]
    )
    return rec.set_index("recording_id", drop=False), cyc, q


def test_icbhi(real_samples):
    rec, cycles, quarantine = frames("icbhi2017", real_samples / "icbhi2017")
    assert quarantine.empty
    assert list(rec.index) == [
        "icbhi2017/101_1b1_Al_sc_Meditron",
        "icbhi2017/101_1b1_Pr_sc_Meditron",
        "icbhi2017/104_1b1_Al_sc_Litt3200",
        "icbhi2017/104_1b1_Ar_sc_Litt3200",
    ]
    assert rec["subject_id"].tolist() == ["icbhi2017:101"] * 2 + ["icbhi2017:104"] * 2
    assert rec["diagnosis"].tolist() == ["URTI", "URTI", "COPD", "COPD"]
    assert rec["sample_rate"].tolist() == [44100, 44100, 4000, 4000]
    assert rec["duration_s"].round(3).tolist() == [20.0, 20.0, 15.856, 25.584]
    assert rec["device"].tolist() == ["Meditron"] * 2 + ["Litt3200"] * 2
    assert rec["body_site"].tolist() == ["Al", "Pr", "Al", "Ar"]
    assert rec["modality"].eq("lung").all() and not rec["is_synthetic"].any()
    assert rec.loc["icbhi2017/104_1b1_Al_sc_Litt3200", "age_years"] == 70.0
    assert rec["sex"].tolist() == ["female"] * 4
    per_rec = cycles.groupby("recording_id").size()
    assert per_rec.to_dict() == {
        "icbhi2017/101_1b1_Al_sc_Meditron": 12,
        "icbhi2017/101_1b1_Pr_sc_Meditron": 11,
        "icbhi2017/104_1b1_Al_sc_Litt3200": 6,
        "icbhi2017/104_1b1_Ar_sc_Litt3200": 14,
    }
    first = cycles[cycles["recording_id"] == "icbhi2017/104_1b1_Al_sc_Litt3200"].iloc[0]
    assert (first["start_s"], first["end_s"]) == (0.0, 1.8771)
    assert (
        rec["has_crackles"].sum()
        == cycles.groupby("recording_id")["crackles"].any().sum()
    )
    meta = json.loads(rec.loc["icbhi2017/101_1b1_Al_sc_Meditron", "metadata"])
    assert meta["equipment"] == "Meditron" and meta["child_weight"] == 19.0


def test_circor(real_samples):
    rec, cycles, quarantine = frames("circor2022", real_samples / "circor2022")
    assert quarantine.empty and cycles.empty
    assert len(rec) == 23 and rec["subject_id"].nunique() == 7
    murmur = rec.groupby("subject_id")["murmur"].first().to_dict()
    assert murmur == {
        "circor2022:29045": "Present",
        "circor2022:49568": "Absent",
        "circor2022:49595": "Present",
        "circor2022:49607": "Unknown",
        "circor2022:49842": "Absent",
        "circor2022:49854": "Absent",
        "circor2022:50757": "Present",
    }
    assert rec["sample_rate"].eq(4000).all() and rec["modality"].eq("heart").all()
    assert rec.loc["circor2022/29045_AV", "duration_s"] == pytest.approx(22.896)
    assert rec.loc["circor2022/49607_MV", "duration_s"] == pytest.approx(43.888)
    # v1.0.0 headers carry no #Outcome.
    assert rec["outcome"].isna().all()
    assert rec.loc["circor2022/29045_TV", "age_group"] == "Child"
    assert rec.loc["circor2022/29045_TV", "murmur_at_site"] is True
    assert rec.loc["circor2022/49568_AV", "murmur_at_site"] is False
    assert pd.isna(rec.loc["circor2022/49607_MV", "murmur_at_site"])
    meta = json.loads(rec.loc["circor2022/29045_AV", "metadata"])
    assert (
        meta["Systolic murmur grading"] == "II/VI"
        and meta["Diastolic murmur timing"] is None
    )


def test_coswara_and_empty_recordings_quarantined(real_samples):
    rec, _, quarantine = frames("coswara", real_samples / "coswara")
    assert quarantine.empty
    assert len(rec) == 9 and rec["subject_id"].nunique() == 5
    assert rec["modality"].value_counts().to_dict() == {"cough": 5, "breath": 4}
    healthy = rec[rec["covid_status"] == "healthy"]["subject_id"].nunique()
    assert healthy == 3
    pid = "coswara/L7S8iIPKgiO6QWLC3mGkROCMa0s1"
    assert rec.loc[f"{pid}/breathing-deep", "audio_quality_label"] == 1
    assert rec.loc[f"{pid}/cough-heavy", "symptoms"] == "asthma,diabetes"
    assert rec.loc[f"{pid}/cough-heavy", "age_years"] == 40.0
    assert rec["sex"].eq("male").all() and not rec["smoker"].any()
    assert (
        rec.loc["coswara/0zexHIcM7tQDdnFiEj2Eb0v3g212/cough-heavy", "sample_rate"]
        == 48000
    )
    accepted, quality, audit_q = audit_recordings(
        rec.reset_index(drop=True), QualityCfg(), workers=1
    )
    assert len(accepted) == 7
    assert sorted(audit_q["record"]) == [
        "coswara/9XKj7fAmvwPUas9GFPZuTpev7T03/breathing-deep",
        "coswara/9XKj7fAmvwPUas9GFPZuTpev7T03/cough-heavy",
    ]
    assert audit_q["reason"].str.contains("empty recording").all()
    assert len(quality) == 9 and quality["peak"].between(0, 1).all()


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        scan_source("icbhi2017", tmp_path / "nowhere", "icbhi2017", False)
    with pytest.raises(SourceError, match="unknown source adapter"):
        scan_source("nope", tmp_path, "nope", False)
