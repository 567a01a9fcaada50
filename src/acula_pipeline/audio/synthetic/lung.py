"""Synthetic lung sounds (breath cycles, crackles, wheezes), written in the ICBHI 2017 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acula_pipeline.audio.io import write_audio
from acula_pipeline.audio.synthetic.common import (
    SyntheticCfg,
    add_noise,
    bandpass,
    device_colouration,
    normalise_peak,
    place,
    subject_rng,
)

# Device → (sample rate, PCM subtype, pass band): the ICBHI mix of 4 kHz to 44.1 kHz.
DEVICES = {
    "Meditron": (44100, "PCM_24", (40.0, 2000.0)),
    "AKGC417L": (44100, "PCM_24", (60.0, 4000.0)),
    "LittC2SE": (10000, "PCM_16", (30.0, 1500.0)),
    "Litt3200": (4000, "PCM_16", (20.0, 1000.0)),
}
LOCATIONS = ("Tc", "Al", "Ar", "Pl", "Pr", "Ll", "Lr")
# Diagnosis → (share of patients, P(crackles in a cycle), P(wheezes in a cycle), child?)
DIAGNOSES = {
    "COPD": (0.35, 0.45, 0.35, False),
    "Healthy": (0.25, 0.03, 0.02, False),
    "URTI": (0.12, 0.10, 0.05, True),
    "Asthma": (0.05, 0.10, 0.60, False),
    "Pneumonia": (0.07, 0.55, 0.10, False),
    "Bronchiectasis": (0.06, 0.60, 0.15, False),
    "Bronchiolitis": (0.06, 0.40, 0.40, True),
    "LRTI": (0.04, 0.40, 0.15, True),
}


def _crackle(rng: np.random.Generator, sr: int, fine: bool) -> np.ndarray:
    dur = rng.uniform(0.004, 0.008) if fine else rng.uniform(0.012, 0.02)
    f = rng.uniform(500, 900) if fine else rng.uniform(180, 350)
    t = np.arange(int(dur * sr)) / sr
    return (
        np.sin(2 * np.pi * f * t) * np.exp(-t / (dur / 3)) * (1 - np.exp(-t / 0.0005))
    )


def _wheeze(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    n = int(dur * sr)
    t = np.arange(n) / sr
    f0 = rng.uniform(150, 700) * (1 + rng.uniform(-0.15, 0.15) * t / max(dur, 1e-3))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(a * np.sin(k * phase) for k, a in ((1, 1.0), (2, 0.45), (3, 0.2)))
    return tone * np.sin(np.pi * np.linspace(0, 1, n)) ** 0.5


def synth_recording(
    rng: np.random.Generator,
    seconds: float,
    device: str,
    location: str,
    rate_bpm: float,
    p_crackle: float,
    p_wheeze: float,
    cfg: SyntheticCfg,
) -> tuple[np.ndarray, list[tuple[float, float, int, int]]]:
    """One lung recording and its cycle annotations ``(start, end, crackles, wheezes)``."""
    sr, _, band = DEVICES[device]
    n = int(seconds * sr)
    breath = bandpass(
        rng.standard_normal(n + 2000), 100, 900 if location != "Tc" else 1500, sr
    )[2000:]
    env = np.zeros(n)
    x = np.zeros(n)
    cycles = []
    t = rng.uniform(0.0, 0.8)
    fine = rng.random() < 0.5
    while True:
        period = 60.0 / (rate_bpm * rng.normal(1.0, 0.08))
        if t + period > seconds:
            break
        insp = period * rng.uniform(0.35, 0.45)
        a, b, c = int(t * sr), int((t + insp) * sr), int((t + period) * sr)
        env[a:b] = np.sin(np.linspace(0, np.pi / 2, b - a))
        env[b:c] = np.cos(np.linspace(0, np.pi / 2, c - b)) ** 2 * 0.7
        crackles, wheezes = rng.random() < p_crackle, rng.random() < p_wheeze
        if crackles:
            for _ in range(int(rng.integers(3, 10))):
                at = t + rng.uniform(0.1, 0.95) * insp
                place(
                    x,
                    _crackle(rng, sr, fine)
                    * rng.uniform(0.6, 1.4)
                    * cfg.label_strength,
                    int(at * sr),
                )
        if wheezes:
            dur = min(period - insp, rng.uniform(0.25, 1.0))
            at = t + insp + rng.uniform(0, max(period - insp - dur, 0.0))
            place(x, _wheeze(rng, sr, dur) * 0.35 * cfg.label_strength, int(at * sr))
        # Annotators miss or invent an adventitious sound now and then.
        if rng.random() < cfg.label_noise:
            crackles, wheezes = (
                (not crackles, wheezes)
                if rng.random() < 0.5
                else (crackles, not wheezes)
            )
        cycles.append((t, t + period, int(crackles), int(wheezes)))
        t += period
    x += breath * env * 0.4
    x = device_colouration(x, sr, *band, rng)
    x = add_noise(x, rng.uniform(*cfg.noise_snr_db), rng, exponent=1.0)
    return normalise_peak(x, rng.uniform(0.2, 0.9)), cycles


def write_patient(root: Path, index: int, cfg: SyntheticCfg) -> dict[str, object]:
    """Generate one synthetic ICBHI patient's recordings and annotation files.

    Args:
        root: The ``ICBHI_final_database`` folder.
        index: Subject index.
        cfg: Corpus settings.

    Returns:
        Patient facts for the shared files: ``patient``, ``diagnosis``, demographics,
        and the recording ``stems``.
    """
    rng = subject_rng(cfg.seed, "icbhi2017", index)
    pid = 101 + index
    names = list(DIAGNOSES)
    diagnosis = str(rng.choice(names, p=[DIAGNOSES[d][0] for d in names]))
    _, p_crackle, p_wheeze, child = DIAGNOSES[diagnosis]
    age = float(rng.uniform(0.5, 12) if child else rng.uniform(25, 85))
    rate = rng.uniform(24, 36) if age < 12 else rng.uniform(12, 20)
    device = str(rng.choice(list(DEVICES)))
    stems = []
    for k in range(int(rng.integers(1, 4))):
        loc = str(rng.choice(LOCATIONS))
        mode = "sc" if rng.random() < 0.7 else "mc"
        stem = f"{pid}_{k + 1}b1_{loc}_{mode}_{device}"
        x, cycles = synth_recording(
            rng,
            float(rng.choice([20.0, rng.uniform(12, 30)])),
            device,
            loc,
            rate,
            p_crackle,
            p_wheeze,
            cfg,
        )
        sr, subtype, _ = DEVICES[device]
        write_audio(root / f"{stem}.wav", x, sr, subtype)
        (root / f"{stem}.txt").write_text(
            "".join(f"{a:.3f}\t{b:.3f}\t{c}\t{w}\n" for a, b, c, w in cycles)
        )
        stems.append(stem)
    adult = age >= 18
    return {
        "patient": pid,
        "diagnosis": diagnosis,
        "age": round(age, 2),
        "sex": str(rng.choice(["F", "M"])),
        "adult_bmi": round(float(rng.normal(26, 4)), 2) if adult else None,
        "child_weight": None if adult else round(float(4 + age * 2.5), 1),
        "child_height": None if adult else round(float(60 + age * 6), 1),
        "stems": stems,
    }


def write_shared_files(
    root: Path, patients: list[dict], rng: np.random.Generator
) -> None:
    """Write the diagnosis, demographics and official-split files of the ICBHI layout."""
    base = root.parent
    # Kaggle copy: no header, comma separated, CRLF, no trailing newline.
    diag = "\r\n".join(f"{p['patient']},{p['diagnosis']}" for p in patients)
    (base / "patient_diagnosis.csv").write_bytes(diag.encode())

    def na(v: object) -> str:
        return "NA" if v is None else str(v)

    demo = "\r\n".join(
        f"{p['patient']} {p['age']} {p['sex']} {na(p['adult_bmi'])} "
        f"{na(p['child_weight'])} {na(p['child_height'])}"
        for p in patients
    )
    (base / "demographic_info.txt").write_bytes(demo.encode())
    test = {p["patient"] for p in patients if rng.random() < 0.4}
    split = "".join(
        f"{stem}\t{'test' if p['patient'] in test else 'train'}\n"
        for p in patients
        for stem in p["stems"]
    )
    (base / "ICBHI_challenge_train_test.txt").write_text(split)
