"""Synthetic heart sounds (S1/S2, graded murmurs), written in the CirCor 2022 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acula_pipeline.audio.io import write_audio
from acula_pipeline.audio.synthetic.common import (
    SyntheticCfg,
    add_noise,
    bandpass,
    device_colouration,
    envelope,
    normalise_peak,
    place,
    subject_rng,
)

SR = 4000
SITES = ("AV", "PV", "TV", "MV")
AGE_HR = {
    "Neonate": 140,
    "Infant": 125,
    "Child": 95,
    "Adolescent": 78,
    "Young adult": 70,
}
AGE_SIZE = {  # (height cm, weight kg) means
    "Neonate": (50, 3.5),
    "Infant": (68, 8.0),
    "Child": (115, 22.0),
    "Adolescent": (160, 50.0),
    "Young adult": (170, 65.0),
}
SYS_TIMING = {
    "Early-systolic": (0.0, 0.45),
    "Mid-systolic": (0.25, 0.75),
    "Late-systolic": (0.55, 1.0),
    "Holosystolic": (0.0, 1.0),
}
DIA_TIMING = {
    "Early-diastolic": (0.0, 0.4),
    "Mid-diastolic": (0.3, 0.7),
    "Holodiastolic": (0.0, 1.0),
}
PITCH_BAND = {"Low": (60.0, 200.0), "Medium": (150.0, 400.0), "High": (300.0, 700.0)}
SYS_GRADES = ("I/VI", "II/VI", "III/VI", "IV/VI", "V/VI", "VI/VI")
DIA_GRADES = ("I/IV", "II/IV", "III/IV")
HEADER_KEYS = (
    "Age",
    "Sex",
    "Height",
    "Weight",
    "Pregnancy status",
    "Murmur",
    "Murmur locations",
    "Most audible location",
    "Systolic murmur timing",
    "Systolic murmur shape",
    "Systolic murmur grading",
    "Systolic murmur pitch",
    "Systolic murmur quality",
    "Diastolic murmur timing",
    "Diastolic murmur shape",
    "Diastolic murmur grading",
    "Diastolic murmur pitch",
    "Diastolic murmur quality",
    "Outcome",
    "Campaign",
    "Additional ID",
)
CSV_COLUMNS = ("Patient ID", "Locations", *HEADER_KEYS)


def _heart_sound(rng: np.random.Generator, f0: float, dur: float) -> np.ndarray:
    n = int(dur * SR)
    t = np.arange(n) / SR
    env = np.exp(-0.5 * ((t - dur * 0.35) / (dur * 0.18)) ** 2)
    tone = sum(
        a * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3))
        for k, a in ((1.0, 1.0), (1.7, 0.5), (2.6, 0.25))
    )
    return env * tone


def _murmur(
    rng: np.random.Generator, n: int, shape: str, pitch: str, quality: str
) -> np.ndarray:
    lo, hi = PITCH_BAND[pitch]
    if quality == "Musical":
        t = np.arange(n) / SR
        f0 = (lo + hi) / 2 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        x = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    else:
        noise = rng.standard_normal(n + 400)
        width = (0.6, 1.6) if quality == "Harsh" else (0.9, 1.2)
        x = bandpass(noise, lo * width[0], hi * width[1], SR)[400:]
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12)
    return x * envelope(shape, n)


def _murmur_fields(rng: np.random.Generator) -> dict[str, str]:
    sys_grade = SYS_GRADES[min(int(rng.exponential(1.1)), 5)]
    fields = {
        "Systolic murmur timing": str(
            rng.choice(list(SYS_TIMING), p=[0.3, 0.15, 0.05, 0.5])
        ),
        "Systolic murmur shape": str(
            rng.choice(
                ["Crescendo", "Decrescendo", "Diamond", "Plateau"],
                p=[0.1, 0.2, 0.2, 0.5],
            )
        ),
        "Systolic murmur grading": sys_grade,
        "Systolic murmur pitch": str(rng.choice(list(PITCH_BAND), p=[0.5, 0.3, 0.2])),
        "Systolic murmur quality": str(
            rng.choice(["Blowing", "Harsh", "Musical"], p=[0.5, 0.4, 0.1])
        ),
    }
    diastolic = rng.random() < 0.12
    for key in ("timing", "shape", "grading", "pitch", "quality"):
        fields[f"Diastolic murmur {key}"] = "nan"
    if diastolic:
        fields |= {
            "Diastolic murmur timing": str(rng.choice(list(DIA_TIMING))),
            "Diastolic murmur shape": str(rng.choice(["Decrescendo", "Plateau"])),
            "Diastolic murmur grading": DIA_GRADES[min(int(rng.exponential(0.8)), 2)],
            "Diastolic murmur pitch": str(rng.choice(list(PITCH_BAND))),
            "Diastolic murmur quality": str(rng.choice(["Blowing", "Harsh"])),
        }
    return fields


ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}


def _grade_amplitude(grade: str, strength: float) -> float:
    # Each grade step is about 4 dB louder; grade I sits near the noise floor.
    return strength * 0.08 * 1.6 ** (ROMAN[grade.split("/")[0]] - 1)


def synth_recording(
    rng: np.random.Generator,
    seconds: float,
    hr: float,
    murmur: dict[str, str] | None,
    site_gain: float,
    cfg: SyntheticCfg,
) -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """One phonocardiogram and its CirCor state segmentation (start, end, state)."""
    n = int(seconds * SR)
    x = np.zeros(n)
    states: list[tuple[float, float, int]] = []
    t = rng.uniform(0.05, 0.4)
    if t > 0:
        states.append((0.0, t, 0))
    f_s1, f_s2 = rng.uniform(35, 55), rng.uniform(50, 80)
    while True:
        period = 60.0 / (hr * rng.normal(1.0, 0.03))
        systole = 0.09 + 0.25 * period
        s1, s2 = 0.12, 0.10
        if t + period > seconds:
            break
        place(x, _heart_sound(rng, f_s1, s1), int(t * SR))
        place(x, 0.7 * _heart_sound(rng, f_s2, s2), int((t + s1 + systole) * SR))
        sys_lo, sys_hi = t + s1, t + s1 + systole
        dia_lo, dia_hi = sys_hi + s2, t + period
        if murmur is not None:
            for phase, (lo, hi), timing in (
                ("Systolic", (sys_lo, sys_hi), SYS_TIMING),
                ("Diastolic", (dia_lo, dia_hi), DIA_TIMING),
            ):
                when = murmur[f"{phase} murmur timing"]
                if when == "nan":
                    continue
                a, b = timing[when]
                m_lo, m_hi = lo + a * (hi - lo), lo + b * (hi - lo)
                seg = _murmur(
                    rng,
                    int((m_hi - m_lo) * SR),
                    murmur[f"{phase} murmur shape"],
                    murmur[f"{phase} murmur pitch"],
                    murmur[f"{phase} murmur quality"],
                )
                amp = _grade_amplitude(
                    murmur[f"{phase} murmur grading"], cfg.label_strength
                )
                place(x, seg * amp * site_gain, int(m_lo * SR))
        states += [
            (t, sys_lo, 1),
            (sys_lo, sys_hi, 2),
            (sys_hi, dia_lo, 3),
            (dia_lo, dia_hi, 4),
        ]
        t = dia_hi
    states.append((t, seconds, 0))
    x = device_colouration(x, SR, 20.0, 900.0, rng)
    x = add_noise(x, rng.uniform(*cfg.noise_snr_db), rng, exponent=2.0)
    return normalise_peak(x, rng.uniform(0.3, 0.9)), states


def _patient_header(
    rng: np.random.Generator, cfg: SyntheticCfg
) -> tuple[dict[str, str], bool]:
    age = str(rng.choice(list(AGE_HR), p=[0.05, 0.2, 0.55, 0.15, 0.05]))
    h, w = AGE_SIZE[age]
    status = str(rng.choice(["Present", "Absent", "Unknown"], p=[0.32, 0.6, 0.08]))
    audible = status == "Present"
    # Annotation noise: the recorded label disagrees with the audio for a few patients.
    if status != "Unknown" and rng.random() < cfg.label_noise:
        audible = not audible
    head = {
        "Age": age,
        "Sex": str(rng.choice(["Female", "Male"])),
        "Height": f"{max(40.0, rng.normal(h, h * 0.08)):.1f}",
        "Weight": f"{max(2.0, rng.normal(w, w * 0.15)):.1f}",
        "Pregnancy status": str(
            age in ("Adolescent", "Young adult") and rng.random() < 0.05
        ),
        "Murmur": status,
        "Murmur locations": "nan",
        "Most audible location": "nan",
    }
    murmur = _murmur_fields(rng) if status == "Present" else {}
    head |= {k: murmur.get(k, "nan") for k in HEADER_KEYS if "murmur " in k}
    abnormal = rng.random() < (0.8 if status == "Present" else 0.35)
    head |= {
        "Outcome": "Abnormal" if abnormal else "Normal",
        "Campaign": str(rng.choice(["CC2014", "CC2015"])),
        "Additional ID": "nan",
    }
    return head, audible


def write_patient(root: Path, index: int, cfg: SyntheticCfg) -> dict[str, str]:
    """Generate one synthetic CirCor patient and write its files.

    Args:
        root: The ``training_data`` folder.
        index: Subject index (with the seed, fixes every random choice).
        cfg: Corpus settings.

    Returns:
        The patient's row of ``training_data.csv``.
    """
    rng = subject_rng(cfg.seed, "circor2022", index)
    pid = str(10000 + index * 7 + int(rng.integers(0, 7)))
    head, audible = _patient_header(rng, cfg)
    sites = sorted(
        rng.choice(SITES, size=int(rng.integers(2, 5)), replace=False), key=SITES.index
    )
    heard = [s for s in sites if rng.random() < 0.75] or [sites[0]]
    loudest = str(rng.choice(heard))
    if head["Murmur"] == "Present":
        head["Murmur locations"] = "+".join(heard)
        head["Most audible location"] = loudest
    murmur = None
    if audible:
        murmur = head if head["Murmur"] == "Present" else _murmur_fields(rng)
    hr = AGE_HR[head["Age"]] * rng.normal(1.0, 0.08)
    lines = [f"{pid} {len(sites)} {SR}"]
    for site in sites:
        stem = f"{pid}_{site}"
        lines.append(f"{site} {stem}.hea {stem}.wav {stem}.tsv")
        gain = 0.0
        if murmur is not None:
            gain = 1.0 if site == loudest else (0.5 if site in heard else 0.12)
        seconds = float(rng.uniform(10.0, 30.0))
        x, states = synth_recording(rng, seconds, hr, murmur, gain, cfg)
        write_audio(root / f"{stem}.wav", x, SR, "PCM_16")
        (root / f"{stem}.hea").write_text(
            f"{stem} 1 {SR} {x.size}\n{stem}.wav 16+44 1 16 0 0 0 0 {site}\n"
        )
        (root / f"{stem}.tsv").write_text(
            "".join(f"{a:.5g}\t{b:.5g}\t{s}\n" for a, b, s in states)
        )
    lines += [f"#{k}: {head[k]}" for k in HEADER_KEYS]
    # Real CirCor patient files use CRLF and have no newline after the last line.
    (root / f"{pid}.txt").write_bytes("\r\n".join(lines).encode())
    return {"Patient ID": pid, "Locations": "+".join(sites), **head}
