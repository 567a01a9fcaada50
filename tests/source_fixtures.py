"""Small generated copies of twelve public datasets in their original layouts.

Each builder writes a fixture under a folder, with the dataset's file names,
delimiters, encodings and label conventions (the traps of ../shared/DATASETS.md
included), plants bad files, and returns what an adapter should make of it. Audio is
short noise at the dataset's native rate: these fixtures test reading, not acoustics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf


@dataclass
class Expect:
    """What a correct adapter reads from a fixture."""

    recordings: int
    sample_rate: int
    labels: dict[str, dict[str, object]]  # recording id → label column → value
    quarantined: dict[str, str]  # file name → a fragment of the reason
    subjects: int | None = None
    metadata: dict[str, dict[str, object]] = field(
        default_factory=dict
    )  # id → key → value


def wav(path: Path, sr: int, seconds: float = 1.0, seed: int = 0, channels: int = 1):
    """A short noise recording (16-bit PCM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((int(sr * seconds), channels))
    sf.write(path, x, sr, subtype="PCM_16")
    return path


def not_audio(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text behind an audio name")
    return path


# ----------------------------------------------------------------- PhysioNet 2016


def physionet2016(root: Path, n: int = 6, seconds: float = 1.0) -> Expect:
    """``training-a/`` and ``training-b/`` with REFERENCE.csv (1 abnormal, -1 normal)."""
    labels = {}
    for folder, prefix, quality in (
        ("training-a", "a", False),
        ("training-b", "b", True),
    ):
        d = root / folder
        rows = []
        for k in range(1, n + 1):
            name = f"{prefix}{k:04d}"
            wav(d / f"{name}.wav", 2000, seconds, seed=k)
            (d / f"{name}.hea").write_text(f"{name} 1 2000 {int(2000 * seconds)}\n")
            label = "1" if k % 2 else "-1"
            rows.append(f"{name},{label}" + (",1" if quality else ""))
            labels[f"physionet2016/{name}"] = {
                "diagnosis": "Abnormal" if label == "1" else "Normal"
            }
        if prefix == "a":
            rows.append("a0999,-1")  # listed, no file
            rows.append("a0998,0")  # 0 is not a label of this dataset
            rows.append("a0002,-1")  # an exact repeat: read once
            rows.append("a0003,-1")  # a repeat that contradicts line 3
        (d / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    del labels["physionet2016/a0003"]
    wav(root / "training-a" / "a0500.wav", 2000, seconds)  # not in REFERENCE.csv
    return Expect(
        recordings=2 * n - 1,
        sample_rate=2000,
        labels=labels,
        quarantined={
            "a0999.wav": "listed in training-a/REFERENCE.csv but missing",
            "a0500.wav": "no valid label",
            "REFERENCE.csv": "label 1 (abnormal) or -1 (normal), got 'a0998,0'",
            "a0003.wav": "listed more than once with different values: "
            "training-a/REFERENCE.csv line 3 vs training-a/REFERENCE.csv line 10 "
            "(label: '1' vs '-1')",
        },
        subjects=2 * n - 1,
    )


# ----------------------------------------------------------------- CoughVID

COUGHVID_HEADER = (
    ",uuid,datetime,cough_detected,latitude,longitude,age,gender,"
    "respiratory_condition,fever_muscle_pain,status,quality_1,cough_type_1,"
    "dyspnea_1,wheezing_1,stridor_1,choking_1,congestion_1,nothing_1,diagnosis_1,"
    "severity_1"
)


def _webm(path: Path, seconds: float, seed: int) -> None:
    import av

    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal(int(48000 * seconds))).astype(np.float32)[None]
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def coughvid(root: Path, seconds: float = 1.0) -> Expect:
    """``public_dataset/{uuid}.webm|.ogg`` + ``{uuid}.json`` + metadata_compiled.csv."""
    d = root / "public_dataset"
    d.mkdir(parents=True)
    rows, labels = [], {}
    people = [
        ("00039425-7f3a-42aa-ac13-834aaa2b6b92", "webm", "healthy", "male", "27"),
        ("0007c6f1-5441-40e6-9aaf-a761d8f2da3b", "ogg", "COVID-19", "female", "41"),
        ("00291cce-36a0-4a29-9e2d-c1d96ca17242", "webm", "symptomatic", "female", ""),
        ("003352cc-7bfb-4c18-b4ce-d8fbc46e5d6c", "ogg", "", "male", "60"),
    ]
    for k, (uuid, fmt, status, gender, age) in enumerate(people):
        if fmt == "webm":
            _webm(d / f"{uuid}.webm", seconds, k)
        else:
            rng = np.random.default_rng(k)
            sf.write(
                d / f"{uuid}.ogg",
                0.1 * rng.standard_normal(int(48000 * seconds)),
                48000,
                format="OGG",
                subtype="VORBIS",
            )
        meta = {
            "datetime": "2020-04-13T21:30:59.801831+00:00",
            "cough_detected": "0.9609",
            "age": age,
            "gender": gender,
            "respiratory_condition": "False",
            "fever_muscle_pain": "False",
            "status": status,
        }
        (d / f"{uuid}.json").write_text(json.dumps(meta))
        rows.append(
            f"{k},{uuid},{meta['datetime']},0.9609,,,{age},{gender},False,False,"
            f"{status},good,wet,False,False,False,False,False,False,healthy_cough,mild"
        )
        labels[f"coughvid/{uuid}"] = {
            "covid_status": status or None,
            "sex": gender,
            "age_years": float(age) if age else None,
        }
    # A JSON-only submission (no row in the compiled table): labels from its .json.
    json_only = "0047ff2a-5f8b-4a6e-9a31-f5c1a8e4f6a1"
    _webm(d / f"{json_only}.webm", seconds, 9)
    (d / f"{json_only}.json").write_text(
        json.dumps({"cough_detected": "0.5", "status": "healthy", "gender": "male"})
    )
    labels[f"coughvid/{json_only}"] = {"covid_status": "healthy", "sex": "male"}
    # Planted: an unknown status, a broken WebM, audio without any metadata, and a
    # listed uuid without audio.
    bad = "00b5d6c2-2c36-4a75-b1e6-3c1a9d54e3f0"
    _webm(d / f"{bad}.webm", seconds, 5)
    rows.append(f"9,{bad},,0.9,,,30,male,False,False,flu,,,,,,,,,,")
    broken = "00c0ffee-0000-4000-8000-000000000000"
    (d / f"{broken}.webm").write_bytes(b"\x1a\x45\xdf\xa3 not a real webm stream")
    rows.append(f"10,{broken},,0.9,,,30,male,False,False,healthy,,,,,,,,,,")
    orphan = "00deadbe-ef00-4000-8000-000000000000"
    sf.write(d / f"{orphan}.ogg", np.zeros(4800), 48000, format="OGG", subtype="VORBIS")
    rows.append("11,00aaaaaa-0000-4000-8000-000000000000,,0.9,,,30,male,,,healthy")
    # Listed twice: an exact repeat (read once) and a repeat that changes the status.
    rows.append(rows[0].replace("0,", "12,", 1))
    twice = "00f1f1f1-0000-4000-8000-000000000000"
    sf.write(d / f"{twice}.ogg", np.zeros(4800), 48000, format="OGG", subtype="VORBIS")
    rows.append(f"13,{twice},,0.9,,,30,male,False,False,healthy,,,,,,,,,,")
    rows.append(f"14,{twice},,0.9,,,30,male,False,False,COVID-19,,,,,,,,,,")
    rows.append("15,,,0.9,,,30,male,False,False,healthy,,,,,,,,,,")  # no uuid
    (root / "metadata_compiled.csv").write_text(
        COUGHVID_HEADER + "\n" + "\n".join(rows) + "\n"
    )
    return Expect(
        recordings=5,
        sample_rate=48000,
        labels=labels,
        quarantined={
            f"{bad}.webm": "unknown status 'flu'",
            f"{broken}.webm": "unreadable audio",
            f"{orphan}.ogg": "no row in metadata_compiled.csv and no .json",
            "00aaaaaa-0000-4000-8000-000000000000": "listed in metadata_compiled.csv",
            f"{twice}.ogg": "listed more than once with different values: "
            "metadata_compiled.csv line 10 vs metadata_compiled.csv line 11 "
            "(status: 'healthy' vs 'COVID-19')",
            "metadata_compiled.csv line 12": "line 12: no uuid",
        },
    )


# ----------------------------------------------------------------- UK COVID-19


def uk_covid19(root: Path, n: int = 6, seconds: float = 1.0) -> Expect:
    """participant_metadata.csv, audio_metadata.csv, train_test_splits.csv, audio/."""
    people = ["participant_identifier,submission_date,age,gender,covid_test_result"]
    audio = [
        "participant_identifier,exhalation_file_name,exhalation_size,cough_file_name"
    ]
    splits = ["participant_identifier,splits"]
    labels, metadata = {}, {}
    # The file's own split names, reduced to train/val/test ('test' in it → test).
    names = {0: "test", 1: "test", 2: "long_test", 3: "matched_validation"}
    for k in range(n):
        pid = f"P{k:05d}"
        result = "Positive" if k % 2 else "Negative"
        name = names.get(k, "train")
        split = "test" if "test" in name else "val" if "val" in name else "train"
        people.append(
            f"{pid},2021-03-0{k % 9 + 1},45-54,{'Male' if k % 3 else 'Female'},{result}"
        )
        exh, cough = f"{pid}_exhalation.wav", f"{pid}_cough.wav"
        wav(root / "audio" / exh, 48000, seconds, seed=k)
        wav(root / "audio" / cough, 48000, seconds, seed=100 + k)
        audio.append(f"{pid},{exh},123,{cough}")
        splits.append(f"{pid},{name}")
        for kind in ("exhalation", "cough"):
            labels[f"uk_covid19/{pid}/{kind}"] = {
                "covid_status": result.lower(),
                "official_split": split,
                "recording_type": kind,
            }
            metadata[f"uk_covid19/{pid}/{kind}"] = {"splits": name}
    people.append("P09999,2021-03-01,45-54,Male,Void")  # an unusable test result
    wav(root / "audio" / "P09999_cough.wav", 48000, seconds)
    audio.append("P09999,,0,P09999_cough.wav")
    audio.append("P08888,P08888_exhalation.wav,0,")  # not in participant_metadata
    audio.append("P00000,,0,P00000_missing.wav")  # listed, no file
    # listed twice: alike (read once), and with another file (quarantined)
    audio.append(audio[3])  # P00002 again
    wav(root / "audio" / "P00003_cough_b.wav", 48000, seconds, seed=7)
    audio.append("P00003,P00003_exhalation.wav,123,P00003_cough_b.wav")
    del labels["uk_covid19/P00003/cough"]
    del metadata["uk_covid19/P00003/cough"]
    wav(root / "audio" / "stray.wav", 48000, seconds)  # on disk, listed nowhere
    # A listed name in two folders: ambiguous, both copies quarantined.
    wav(root / "audio_backup" / f"P{n - 1:05d}_cough.wav", 48000, seconds)
    del labels[f"uk_covid19/P{n - 1:05d}/cough"]
    del metadata[f"uk_covid19/P{n - 1:05d}/cough"]
    (root / "participant_metadata.csv").write_text("\n".join(people) + "\n")
    (root / "audio_metadata.csv").write_text("\n".join(audio) + "\n")
    (root / "train_test_splits.csv").write_text("\n".join(splits) + "\n")
    return Expect(
        recordings=2 * n - 2,
        sample_rate=48000,
        labels=labels,
        quarantined={
            "uk_covid19/P00003/cough": "listed more than once with different values: "
            "audio_metadata.csv line 5 vs audio_metadata.csv line 12",
            "P09999_cough.wav": "covid_test_result 'Void'",
            "P08888_exhalation.wav": "is not in participant_metadata.csv",
            "P00000_missing.wav": "listed in audio_metadata.csv but missing",
            "stray.wav": "not listed in audio_metadata.csv",
            f"audio/P{n - 1:05d}_cough.wav": "is ambiguous: also at",
            f"audio_backup/P{n - 1:05d}_cough.wav": "is ambiguous: also at",
        },
        subjects=n,
        metadata=metadata,
    )


# ----------------------------------------------------------------- KAUH

KAUH_NAMES = [
    ("BP1", "Asthma", "E W", "P L L", 70, "M", "Asthma"),
    ("BP2", "asthma", "E W", "P R M", 52, "F", "Asthma"),
    ("BP3", "copd", "I C", "P L U", 63, "M", "COPD"),
    ("BP4", "COPD", "Crep", "A R M", 58, "M", "COPD"),
    ("BP5", "N", "N", "P L M", 26, "F", "Healthy"),
    ("BP6", "N", "N", "P R U", 31, "M", "Healthy"),
    ("BP7", "Plueral Effusion", "I C", "P R L", 49, "F", "Pleural effusion"),
    (
        "BP8",
        "Heart Failure + COPD",
        "I C E W",
        "P L L",
        77,
        "M",
        "Heart failure + COPD",
    ),
    (
        "BP9",
        "Asthma and lung fibrosis",
        "E W",
        "A L U",
        61,
        "F",
        "Asthma + Lung fibrosis",
    ),
    ("BP10", "N", "N", "P L L", 22, "M", "Healthy"),
    ("BP11", "Asthma", "E W", "P L L", 38, "F", "Asthma"),
    ("BP12", "COPD", "I C", "P R L", 66, "M", "COPD"),
]


def kauh(root: Path, seconds: float = 1.0, names=KAUH_NAMES) -> Expect:
    """``AudioFiles/{ID}_{Diagnosis},{Sound type},{Location},{Age},{Sex}.wav``:
    commas and spaces in names, mixed spellings, bell and diaphragm versions."""
    d = root / "AudioFiles"
    labels = {}
    for k, (rid, dx, sound, loc, age, sex, canonical) in enumerate(names):
        for filt in ("B", "D"):
            stem = f"{filt}{rid[1:]}_{dx},{sound},{loc},{age},{sex}"
            wav(d / f"{stem}.wav", 4000, seconds, seed=k)
            labels[f"kauh/{stem}"] = {
                "diagnosis": canonical,
                "sex": {"M": "male", "F": "female"}[sex],
                "age_years": float(age),
                "has_wheezes": "W" in sound.split(),
            }
    wav(d / "BP90_Tuberculosis,N,P L L,40,M.wav", 4000, seconds)
    wav(d / "BP91_Asthma,E W,P L L,forty,M.wav", 4000, seconds)
    wav(d / "BP92 Asthma.wav", 4000, seconds)
    not_audio(d / "BP93_Asthma,E W,P L L,40,M.wav")
    return Expect(
        recordings=2 * len(names),
        sample_rate=4000,
        labels=labels,
        quarantined={
            "BP90_Tuberculosis,N,P L L,40,M.wav": "unknown diagnosis 'Tuberculosis'",
            "BP91_Asthma,E W,P L L,forty,M.wav": "age 'forty'",
            "BP92 Asthma.wav": "does not follow",
            "BP93_Asthma,E W,P L L,40,M.wav": "unreadable audio",
        },
        subjects=len(names),
    )


# ----------------------------------------------------------------- SPRSound


def sprsound(root: Path, seconds: float = 1.0) -> Expect:
    """``{patient}_{age}_{gender}_{p1-p4}_{n}.wav`` + .json with ``record_annotation``
    and string times in ms."""
    d = root / "train_wav"
    js = root / "train_json"  # the release keeps them apart; stems pair them
    d.mkdir(parents=True)
    js.mkdir()
    records = [
        ("41133682_2.8_0_p1_1045", "Normal", [("Normal", "0", "1000")]),
        ("41133682_2.8_0_p2_1046", "CAS", [("Wheeze", "5778", "7419")]),
        ("65018453_6.1_1_p3_2151", "DAS", [("Fine Crackle", "120", "380")]),
        ("65018453_6.1_1_p4_2152", "CAS & DAS", [("Wheeze & Crackle", "10", "900")]),
        ("70044112_0.9_1_p1_3311", "Poor Quality", []),
    ]
    labels = {}
    for k, (stem, record, events) in enumerate(records):
        wav(d / f"{stem}.wav", 8000, seconds, seed=k)
        doc = {
            "record_annotation": record,
            "event_annotation": [
                {"start": s, "end": e, "type": t} for t, s, e in events
            ],
        }
        (js / f"{stem}.json").write_text(json.dumps(doc))
        labels[f"sprsound/{stem}"] = {
            "sound_class": record,
            "has_wheezes": record in ("CAS", "CAS & DAS"),
            "has_crackles": record in ("DAS", "CAS & DAS"),
            "sex": "male" if stem.split("_")[2] == "0" else "female",
        }
    # The README's spelling of the key is accepted too.
    stem = "70044112_0.9_1_p2_3312"
    wav(d / f"{stem}.wav", 8000, seconds, seed=9)
    (d / f"{stem}.json").write_text(
        json.dumps({"recording_annotation": "Normal", "event_annotation": []})
    )
    labels[f"sprsound/{stem}"] = {"sound_class": "Normal", "has_wheezes": False}
    wav(d / "80000001_3.0_0_p1_1.wav", 8000, seconds)
    (d / "80000001_3.0_0_p1_1.json").write_text(
        json.dumps(
            {
                "record_annotation": "CAS",
                "event_annotation": [{"start": "late", "end": "9", "type": "Wheeze"}],
            }
        )
    )
    wav(d / "80000002_3.0_0_p1_1.wav", 8000, seconds)
    (d / "80000002_3.0_0_p1_1.json").write_text(
        json.dumps({"record_annotation": "Odd"})
    )
    wav(d / "80000003_3.0_0_p1_1.wav", 8000, seconds)  # no .json
    (js / "80000004_3.0_0_p1_1.json").write_text(
        json.dumps({"record_annotation": "CAS"})
    )
    return Expect(
        recordings=6,
        sample_rate=8000,
        labels=labels,
        quarantined={
            "80000001_3.0_0_p1_1.wav": "event 0 needs start/end",
            "80000002_3.0_0_p1_1.wav": "record_annotation 'Odd'",
            "80000003_3.0_0_p1_1.wav": "80000003_3.0_0_p1_1.json is missing",
            "80000004_3.0_0_p1_1.json": "annotation without a matching .wav",
        },
        subjects=3,
    )


# ----------------------------------------------------------------- ZCHSound


def zchsound(root: Path, seconds: float = 1.0) -> Expect:
    """Clean and noisy folders with semicolon-separated details CSVs."""
    labels = {}
    for subset, start, dx in (
        ("clean", 1, ["NORMAL", "ASD", "PDA", "VSD"]),
        ("noisy", 101, ["PFO", "NORMAL"]),
    ):
        d = root / f"{subset.capitalize()} Heartsound Data"
        rows = ["fileName;gender;age;diagnosis"]
        for k, diagnosis in enumerate(dx):
            name = f"ZCH{start + k:04d}"
            wav(d / f"{name}.wav", 4000, seconds, seed=start + k)
            rows.append(f"{name}.wav;{'M' if k % 2 else 'F'};{k + 2};{diagnosis}")
            labels[f"zchsound/{name}"] = {"diagnosis": diagnosis}
        if subset == "clean":
            wav(d / "ZCH0050.wav", 4000, seconds)
            rows.append("ZCH0050.wav;F;3;TOF")  # not a class of this dataset
            rows.append("ZCH0051.wav;M;4;ASD")  # listed, no file
            rows.append("ZCH0001.wav;F;2;VSD")  # listed again, another diagnosis
            rows.append("ZCH0002.wav;M;3;ASD")  # an exact repeat: read once
        (root / f"{subset}_details.csv").write_text("\n".join(rows) + "\n")
    wav(root / "Clean Heartsound Data" / "ZCH0099.wav", 4000, seconds)
    del labels["zchsound/ZCH0001"]
    return Expect(
        recordings=5,
        sample_rate=4000,
        labels=labels,
        quarantined={
            "ZCH0050.wav": "diagnosis 'TOF'",
            "ZCH0051.wav": "listed in clean_details.csv but missing",
            "ZCH0099.wav": "not listed in any details CSV",
            "ZCH0001.wav": "listed more than once with different values: "
            "clean_details.csv line 2 vs clean_details.csv line 8 "
            "(diagnosis: 'NORMAL' vs 'VSD')",
        },
        subjects=5,
    )


# ----------------------------------------------------------------- Respiratory@TR


def respiratory_tr(root: Path, patients: int = 5, channels: int = 3, seconds=1.0):
    """``{patient}_{L|R}{1-6}.wav`` and a BOM-prefixed ``Labels.csv`` with trailing
    commas."""
    lines = ["Patient ID,Diagnosis,"]
    labels = {}
    for p in range(patients):
        pid = f"H{p + 1:03d}"
        dx = f"COPD{p % 5}"
        lines.append(f"{pid},{dx},")
        for c in range(channels):
            site = f"{'LR'[c % 2]}{c // 2 + 1}"
            wav(
                root / "RespiratoryDatabase@TR" / f"{pid}_{site}.wav",
                4000,
                seconds,
                seed=p,
            )
            labels[f"respiratory_tr/{pid}_{site}"] = {"diagnosis": dx}
    lines.append("H900,COPD7,")
    wav(root / "RespiratoryDatabase@TR" / "H900_L1.wav", 4000, seconds)
    wav(root / "RespiratoryDatabase@TR" / "H901_L1.wav", 4000, seconds)
    wav(root / "RespiratoryDatabase@TR" / "H001_L9.wav", 4000, seconds)
    (root / "Labels.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8-sig"))
    return Expect(
        recordings=patients * channels,
        sample_rate=4000,
        labels=labels,
        quarantined={
            "Labels.csv": "diagnosis 'COPD7' for patient 'H900'",
            "H900_L1.wav": "patient H900 has no valid diagnosis",
            "H901_L1.wav": "patient H901 has no valid diagnosis",
            "H001_L9.wav": "does not follow",
        },
        subjects=patients,
    )


# ----------------------------------------------------------------- HF_Lung V1


def hf_lung(root: Path, seconds: float = 1.0) -> Expect:
    """``steth_YYYYMMDD_hh_mm_ss.wav`` + ``…_label.txt`` (type start end)."""
    d = root / "train"
    files = {
        "steth_20190621_09_21_31": [
            "I 00:00:00.100000 00:00:00.400000",
            "E 00:00:00.450000 00:00:00.900000",
        ],
        "steth_20190621_09_26_12": [
            "I 00:00:00.100000 00:00:00.400000",
            "Wheeze 00:00:00.200000 00:00:00.350000",
        ],
        "steth_20190702_14_02_45": ["E 0.2 0.8", "D 0.3 0.4"],
    }
    labels = {}
    for k, (stem, lines) in enumerate(files.items()):
        wav(d / f"{stem}.wav", 4000, seconds, seed=k)
        (d / f"{stem}_label.txt").write_text("\n".join(lines) + "\n")
        kinds = {ln.split()[0] for ln in lines}
        labels[f"hf_lung/{stem}"] = {
            "has_wheezes": "Wheeze" in kinds,
            "has_crackles": "D" in kinds,
        }
    wav(d / "steth_20190703_10_00_00.wav", 4000, seconds)
    (d / "steth_20190703_10_00_00_label.txt").write_text("Crackle 0.1 0.2\n")
    wav(d / "steth_20190703_10_05_00.wav", 4000, seconds)  # no label file
    (d / "steth_20190703_10_09_00_label.txt").write_text("I 0.1 0.2\n")
    wav(d / "recording1.wav", 4000, seconds)
    return Expect(
        recordings=3,
        sample_rate=4000,
        labels=labels,
        quarantined={
            "steth_20190703_10_00_00_label.txt": "line 1: expected",
            "steth_20190703_10_05_00.wav": "is missing",
            "steth_20190703_10_09_00_label.txt": "without a matching .wav",
            "recording1.wav": "does not follow",
        },
        subjects=3,
    )


# ----------------------------------------------------------------- NoseMic


def nosemic(root: Path, users: int = 4, per_user: int = 2, seconds: float = 1.0):
    """``audio/{user}_{x}_{y}_{rr}.wav``."""
    labels = {}
    for u in range(users):
        for k in range(per_user):
            rr = 10 + 2 * u + k
            stem = f"u{u + 1}_{k}_{k + 1}_{rr}"
            wav(root / "audio" / f"{stem}.wav", 16000, seconds, seed=u * 10 + k)
            labels[f"nosemic/{stem}"] = {"respiratory_rate": float(rr)}
    wav(root / "audio" / "u9_0_1_fast.wav", 16000, seconds)
    wav(root / "audio" / "u9_0.wav", 16000, seconds)
    return Expect(
        recordings=users * per_user,
        sample_rate=16000,
        labels=labels,
        quarantined={
            "u9_0_1_fast.wav": "respiratory rate 'fast' in the file name is not a number",
            "u9_0.wav": "does not follow",
        },
        subjects=users,
    )


# ----------------------------------------------------------------- MMlung


def mmlung(root: Path, participants: int = 4, seconds: float = 1.0) -> Expect:
    """``All_path.xlsx`` with relative paths and FVC, FEV1, FEV1/FVC per participant."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["ID", "Deep_Breath_file", "O_Single_file", "FVC", "FEV1", "FEV1/FVC"])
    labels = {}
    for p in range(participants):
        pid = f"M{p + 1:02d}"
        deep = f"./Trimmed_Data_from_phone/{pid}/Deep_Breath.wav"
        vowel = f"./Trimmed_Data_from_phone/{pid}/O_Single.wav"
        wav(root / deep, 44100, seconds, seed=p)
        wav(root / vowel, 44100, seconds, seed=50 + p)
        fvc, fev1 = 3.0 + 0.2 * p, 2.4 + 0.1 * p
        ws.append([pid, deep, vowel, fvc, fev1, round(fev1 / fvc, 3)])
        for kind in ("deep_breath", "vowel_o"):
            labels[f"mmlung/{pid}/{kind}"] = {
                "fvc_l": fvc,
                "fev1_l": fev1,
                "fev1_fvc": round(fev1 / fvc, 3),
                "recording_type": kind,
            }
    ws.append(
        ["M90", "./Trimmed_Data_from_phone/M90/Deep_Breath.wav", "", "n/a", 2, 0.7]
    )
    ws.append(
        ["M91", "./Trimmed_Data_from_phone/M91/Deep_Breath.wav", "", 3.1, 2.5, 0.8]
    )
    ws.append(["M92", "", "", 3.1, 2.5, 0.8])  # no recording path
    # Traps: paths out of the root (relative and absolute); a participant listed
    # twice alike (read once) and twice with other values (quarantined); one file
    # listed for two participants (both quarantined, nothing is guessed).
    outside = root.parent / f"{root.name}_outside" / "secret.wav"
    wav(outside, 44100, seconds)
    ws.append(["M93", f"../{outside.parent.name}/secret.wav", "", 3.1, 2.5, 0.8])
    ws.append(["M94", str(outside), "", 3.1, 2.5, 0.8])
    first = [c.value for c in ws[2]]
    ws.append(first)  # M01 again, the same in every cell
    m95 = "./Trimmed_Data_from_phone/M95/Deep_Breath.wav"
    wav(root / m95, 44100, seconds, seed=95)
    ws.append(["M95", m95, "", 3.1, 2.5, 0.8])
    ws.append(["M95", m95, "", 3.3, 2.5, 0.76])
    ws.append(["M96", "./Trimmed_Data_from_phone/M02/Deep_Breath.wav", "", 3, 2, 0.7])
    del labels["mmlung/M02/deep_breath"]
    wb.save(root / "All_path.xlsx")
    return Expect(
        recordings=2 * participants - 1,
        sample_rate=44100,
        labels=labels,
        quarantined={
            "M90/Deep_Breath.wav": "is not three positive numbers",
            "M91/Deep_Breath.wav": "listed in All_path.xlsx line 7 but missing",
            "participant M92": "line 8: no recording path",
            "participant M93": "line 9: '../",
            "participant M94": "is outside the dataset root",
            "mmlung/M95/deep_breath": "listed more than once with different values: "
            "All_path.xlsx line 12 vs All_path.xlsx line 13",
            "mmlung/M02/deep_breath": "the same file is listed for "
            "mmlung/M02/deep_breath (All_path.xlsx line 3), mmlung/M96/deep_breath "
            "(All_path.xlsx line 14)",
            "mmlung/M96/deep_breath": "the same file is listed for",
        },
        subjects=participants,
    )


# ----------------------------------------------------------------- COVID-19 Sounds


def covid19_sounds(root: Path, seconds: float = 1.0) -> Expect:
    """``data_0426_en_task1.csv`` (semicolon-separated, the columns the release's
    own code reads: Uid, Sex, Age, Folder Name, Voice/Cough/Breath filename, split
    0/1/2, label 1 symptomatic) and ``0426_EN_used_task1/{Uid}/{Folder Name}/``;
    the web form's users under ``form-app-users/{Folder Name}/``."""
    header = (
        "Uid;Age;Sex;Medhistory;Smoking;Language;Date;Folder Name;Symptoms;"
        "Covid-Tested;Hospitalized;Voice filename;Cough filename;Breath filename;"
        "split;label"
    )
    audio = root / "task1" / "0426_EN_used_task1"
    lines = [header]
    labels, metadata = {}, {}
    web = "2020-05-01-10_00_00_000001"
    sessions = [  # uid, folder, split, label
        ("U001", "2020-10-10-07_16_14_523610", "0", "1"),
        ("U001", "2020-11-11-21_30_48_238899", "0", "1"),
        ("U002", "2020-11-26-17_01_30_885858", "1", "0"),
        ("U003", "2021-01-25-15_22_21_678409", "2", "1"),
        ("U004", "2020-04-24-13_32_40_298599", "2", "0"),
        ("U005", "2020-09-22-06_11_39_042452", "0", "0"),
        (web, web, "1", "1"),
    ]
    for k, (uid, folder, split, label) in enumerate(sessions):
        owner = "form-app-users" if uid == web else uid
        names = {}
        for kind in ("voice", "cough", "breath"):
            names[kind] = f"{kind}_{uid}_{k}.wav"
            wav(audio / owner / folder / names[kind], 16000, seconds, seed=10 * k)
        lines.append(
            f"{uid};20-29;{'Female' if k % 2 else 'Male'};None;never;en;"
            f"10-10-2020 08:16:49;{folder};drycough;neverThinkHadCOVIDNever;no;"
            f"{names['voice']};{names['cough']};{names['breath']};{split};{label}"
        )
        for kind in ("breath", "cough", "voice"):
            rid = f"covid19_sounds/{uid}/{folder}/{kind}"
            labels[rid] = {
                "symptom_status": "symptomatic" if label == "1" else "asymptomatic",
                "official_split": {"0": "train", "1": "val", "2": "test"}[split],
                "sex": "female" if k % 2 else "male",
                "recording_type": kind,
            }
            metadata[rid] = {"Folder Name": folder, "recording": kind}
    lines.append(lines[3])  # U002 listed twice, alike: read once
    # Traps: a label outside 0/1, a split outside 0/1/2, a missing cough file, and
    # a file on disk that no row lists.
    for uid, split, label in (("U006", "0", "2"), ("U007", "3", "0")):
        folder = "2020-06-01-00_00_00_000000"
        wav(audio / uid / folder / f"breath_{uid}.wav", 16000, seconds)
        lines.append(
            f"{uid};30-39;Male;None;never;en;x;{folder};None;never;no;;;"
            f"breath_{uid}.wav;{split};{label}"
        )
    folder = "2020-07-01-00_00_00_000000"
    wav(audio / "U008" / folder / "breath_U008.wav", 16000, seconds, seed=8)
    lines.append(
        f"U008;30-39;Female;None;never;en;x;{folder};None;never;no;;"
        f"cough_U008.wav;breath_U008.wav;0;0"
    )
    labels[f"covid19_sounds/U008/{folder}/breath"] = {
        "symptom_status": "asymptomatic",
        "official_split": "train",
        "recording_type": "breath",
    }
    wav(audio / "U009" / "x" / "breath_stray.wav", 16000, seconds)
    (root / "task1" / "data_0426_en_task1.csv").write_text("\n".join(lines) + "\n")
    return Expect(
        recordings=3 * len(sessions) + 1,
        sample_rate=16000,
        labels=labels,
        quarantined={
            "data_0426_en_task1.csv line 10": "label '2'; expected 1 (symptomatic)",
            "data_0426_en_task1.csv line 11": "split '3'; expected 0, 1 or 2",
            "cough_U008.wav": "listed in data_0426_en_task1.csv line 12 but missing",
            "breath_stray.wav": "not listed in data_0426_en_task1.csv",
        },
        subjects=7,
        metadata=metadata,
    )


# ----------------------------------------------------------------- SSBPR


def ssbpr(root: Path, seconds: float = 1.0) -> Expect:
    """``{female,male}/{A-B}/A-B-C.wav``: patient A-B, body position C (0–5)."""
    labels = {}
    positions = {
        "0": "supine",
        "1": "supine_head_left",
        "2": "supine_head_right",
        "3": "left_lateral",
        "4": "right_lateral",
        "5": "prone",
    }
    files = [
        ("female", "0001-0001", "0"),
        ("female", "0001-0001", "1"),
        ("female", "0001-0001", "3"),
        ("male", "0002-0001", "2"),
        ("male", "0002-0001", "4"),
        ("male", "0002-0001", "5"),
        ("male", "0002-0002", "0"),
        ("male", "0002-0002", "4"),
    ]
    for k, (sex, patient, c) in enumerate(files):
        rel = f"{sex}/{patient}/{patient}-{c}"
        wav(root / f"{rel}.wav", 16000, seconds, seed=k)
        labels[f"ssbpr/{rel}"] = {
            "body_position": positions[c],
            "sex": sex,
            "recording_type": "snoring",
        }
    wav(root / "male" / "0003-0001" / "0003-0001-7.wav", 16000, seconds)
    wav(root / "male" / "0003-0001" / "snore.wav", 16000, seconds)
    return Expect(
        recordings=len(files),
        sample_rate=16000,
        labels=labels,
        quarantined={
            "0003-0001-7.wav": "C a body position 0–5",
            "snore.wav": "does not follow A-B-C.wav",
        },
        subjects=3,
    )


BUILDERS: dict[str, Callable[..., Expect]] = {
    "physionet2016": physionet2016,
    "coughvid": coughvid,
    "uk_covid19": uk_covid19,
    "kauh": kauh,
    "sprsound": sprsound,
    "zchsound": zchsound,
    "respiratory_tr": respiratory_tr,
    "hf_lung": hf_lung,
    "nosemic": nosemic,
    "mmlung": mmlung,
    "covid19_sounds": covid19_sounds,
    "ssbpr": ssbpr,
}
