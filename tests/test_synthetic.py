"""The synthetic corpus: real layouts, determinism, and labels that are audible."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from acula_pipeline.audio.synthetic import SyntheticCfg, SyntheticCorpus
from acula_pipeline.sources import scan_source, scans_to_frames


def digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layouts_read_by_the_real_adapters(tiny_corpus):
    scans = [
        scan_source(a, tiny_corpus / a, f"synthetic_{a}", True)
        for a in ("icbhi2017", "circor2022", "coswara")
    ]
    rec, cycles, q = scans_to_frames(scans)
    assert q.empty
    assert rec["is_synthetic"].all()
    assert rec.groupby("dataset")["subject_id"].nunique().to_dict() == {
        "synthetic_circor2022": 3,
        "synthetic_coswara": 3,
        "synthetic_icbhi2017": 3,
    }
    assert rec["subject_id"].str.startswith("synthetic_").all()
    assert len(cycles) > 0
    icbhi = rec[rec["dataset"] == "synthetic_icbhi2017"]
    assert set(icbhi["sample_rate"]) <= {4000, 10000, 44100}
    assert set(rec[rec["dataset"] == "synthetic_circor2022"]["sample_rate"]) == {4000}
    assert set(rec[rec["dataset"] == "synthetic_coswara"]["sample_rate"]) <= {
        48000,
        16000,
    }
    assert (tiny_corpus / "SYNTHETIC.txt").read_text().startswith("SYNTHETIC DATA")
    # The planted empty recording is there, to be quarantined by the audit.
    assert (rec["duration_s"] == 0).sum() == 1


def test_circor_files_follow_the_real_format(tiny_corpus):
    data = tiny_corpus / "circor2022" / "training_data"
    ptxt = sorted(data.glob("*.txt"))[0]
    raw = ptxt.read_bytes()
    assert b"\r\n" in raw and not raw.endswith(b"\n")
    first = raw.split(b"\r\n")[0].split()
    assert len(first) == 3 and first[2] == b"4000"
    hea = next(data.glob("*.hea")).read_text().splitlines()
    assert hea[0].split()[1:3] == ["1", "4000"]
    csv = pd.read_csv(tiny_corpus / "circor2022" / "training_data.csv")
    assert {"Patient ID", "Murmur", "Outcome", "Systolic murmur grading"} <= set(
        csv.columns
    )


def test_deterministic_and_independent_of_workers(tmp_path):
    subjects = {"icbhi2017": 2, "circor2022": 2, "coswara": 2}
    a = SyntheticCorpus(SyntheticCfg(seed=3, subjects=subjects, workers=1))
    b = SyntheticCorpus(SyntheticCfg(seed=3, subjects=subjects, workers=2))
    c = SyntheticCorpus(SyntheticCfg(seed=4, subjects=subjects, workers=2))
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    c.write(tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        SyntheticCorpus(SyntheticCfg(subjects={"physionet": 2}))


def _systole_over_diastole(wav, tsv):
    x, sr = sf.read(wav)
    states = np.loadtxt(tsv, ndmin=2)

    def energy(state):
        parts = [x[int(a * sr) : int(b * sr)] for a, b, s in states if s == state]
        return np.mean(np.concatenate(parts) ** 2)

    return energy(2) / energy(4)


def clean_corpus(root, dataset, subjects):
    """A corpus of one dataset without label noise and with little background noise."""
    cfg = SyntheticCfg(
        subjects={dataset: subjects}, label_noise=0.0, noise_snr_db=(20, 25)
    )
    SyntheticCorpus(cfg).write(root)
    return scans_to_frames([scan_source(dataset, root / dataset, "s", True)])


def test_vocabulary_is_the_adapters():
    from acula_pipeline.audio.synthetic import cough
    from acula_pipeline.sources import coswara

    assert set(cough.COVID) <= coswara.COVID_STATUS
    assert cough.SYMPTOMS == coswara.SYMPTOMS


def test_murmurs_are_audible(tmp_path):
    """Present-murmur recordings carry more systolic energy than absent ones."""
    rec, _, _ = clean_corpus(tmp_path, "circor2022", 24)
    ratios = {"Present": [], "Absent": []}
    for r in rec.itertuples():
        if r.murmur in ratios and (r.murmur == "Absent" or r.murmur_at_site):
            ratios[r.murmur].append(
                _systole_over_diastole(r.path, r.path.replace(".wav", ".tsv"))
            )
    assert len(ratios["Present"]) >= 3 and len(ratios["Absent"]) >= 3
    assert np.median(ratios["Present"]) > 1.5 * np.median(ratios["Absent"])


def test_crackles_and_wheezes_are_audible(tmp_path):
    """Cycles annotated with adventitious sounds have more energy above 150 Hz transients/tones."""
    rec, cycles, _ = clean_corpus(tmp_path, "icbhi2017", 16)
    paths = dict(zip(rec["recording_id"], rec["path"], strict=True))
    flagged, clean = [], []
    for c in cycles.itertuples():
        x, sr = sf.read(paths[c.recording_id])
        seg = x[int(c.start_s * sr) : int(c.end_s * sr)]
        spec = np.abs(np.fft.rfft(seg)) ** 2
        f = np.fft.rfftfreq(seg.size, 1 / sr)
        share = spec[(f > 150) & (f < 1000)].sum() / spec[(f > 50) & (f < 1000)].sum()
        (flagged if (c.crackles or c.wheezes) else clean).append(share)
    assert len(flagged) >= 5 and len(clean) >= 5
    assert np.median(flagged) > np.median(clean)
