"""Synthetic coughs and deep breathing per participant, written in the Coswara layout."""

from __future__ import annotations

import json
import string
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
from acula_pipeline.sources.coswara import SYMPTOMS

SR = 48000
FILES = ("cough-heavy", "cough-shallow", "breathing-deep")
# Share of each status; the vocabulary (and SYMPTOMS) is the adapter's, so the two cannot drift.
COVID = {
    "healthy": 0.55,
    "positive_mild": 0.12,
    "positive_moderate": 0.05,
    "positive_asymp": 0.05,
    "resp_illness_not_identified": 0.13,
    "no_resp_illness_exposed": 0.1,
}
CSV_COLUMNS = (
    "id",
    "l_c",
    "a",
    "record_date",
    "covid_status",
    "iF",
    "ep",
    "g",
    "l_s",
    "dT",
    "l_l",
    "smoker",
    *SYMPTOMS,
)
STATES = ("Karnataka", "Maharashtra", "Gujarat", "Kerala", "Delhi", "Tamil Nadu")


def _cough_event(
    rng: np.random.Generator, female: bool, smoker: bool, covid: bool, strength: float
) -> np.ndarray:
    burst_len = rng.uniform(0.25, 0.45) + 0.1 * covid * strength
    n = int(burst_len * SR)
    t = np.arange(n) / SR
    noise = rng.standard_normal(n)
    tau = 0.05 + 0.04 * covid * strength
    body = bandpass(noise, 300, 6000, SR) * np.exp(-t / tau) * (1 - np.exp(-t / 0.004))
    for formant in (
        rng.uniform(500, 800),
        rng.uniform(1100, 1800),
        rng.uniform(2300, 3000),
    ):
        body += (
            0.6 * bandpass(noise, formant * 0.9, formant * 1.1, SR) * np.exp(-t / tau)
        )
    if smoker:
        # Wet, rattling cough: low-frequency amplitude modulation and more low energy.
        rattle = 1 + 0.8 * strength * np.sin(2 * np.pi * rng.uniform(18, 35) * t)
        body = body * rattle + strength * 0.8 * bandpass(noise, 80, 400, SR) * np.exp(
            -t / tau
        )
    f0 = rng.uniform(190, 240) if female else rng.uniform(100, 140)
    voiced_len = int(rng.uniform(0.08, 0.2) * SR)
    tv = np.arange(voiced_len) / SR
    jitter = (
        1 + (0.04 * covid * strength) * rng.standard_normal(voiced_len).cumsum() / 50
    )
    phase = 2 * np.pi * np.cumsum(f0 * jitter) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.exp(-tv / 0.08)
    start = int(0.06 * SR)
    place(body, strength * 0.5 * voiced, start)
    return body


def _cough_file(
    rng: np.random.Generator,
    shallow: bool,
    female: bool,
    smoker: bool,
    covid: bool,
    cfg: SyntheticCfg,
) -> np.ndarray:
    n_events = int(rng.integers(2, 6)) + int(
        covid and rng.random() < 0.5 * cfg.label_strength
    )
    seconds = n_events * rng.uniform(0.8, 1.4) + 1.0
    x = np.zeros(int(seconds * SR))
    t = rng.uniform(0.2, 0.6)
    for _ in range(n_events):
        ev = _cough_event(rng, female, smoker, covid, cfg.label_strength)
        place(x, ev * (0.4 if shallow else 1.0) * rng.uniform(0.7, 1.2), int(t * SR))
        t += rng.uniform(0.6, 1.2)
    return x


def _breathing_file(
    rng: np.random.Generator,
    female: bool,
    smoker: bool,
    asthma: bool,
    cfg: SyntheticCfg,
) -> np.ndarray:
    cycles = int(rng.integers(3, 6))
    period = rng.uniform(3.0, 4.5)
    n = int((cycles * period + 1.0) * SR)
    x = bandpass(rng.standard_normal(n), 200, 2200 if female else 1700, SR)
    t = np.arange(n) / SR
    x *= (
        0.5
        * (1 - np.cos(2 * np.pi * np.clip(t - 0.5, 0, None) / period))
        * (t < cycles * period + 0.5)
    )
    if (smoker and rng.random() < 0.5 * cfg.label_strength) or asthma:
        f = rng.uniform(300, 600)
        x += (
            0.15
            * cfg.label_strength
            * np.sin(2 * np.pi * f * t)
            * (np.sin(np.pi * t / period) ** 8)
        )
    return x


def _participant_id(rng: np.random.Generator) -> str:
    alphabet = np.array(list(string.ascii_letters + string.digits))
    return "".join(rng.choice(alphabet, size=28))


def write_participant(
    root: Path, index: int, cfg: SyntheticCfg, empty: bool
) -> dict[str, object]:
    """Generate one synthetic Coswara participant and write its folder.

    Args:
        root: The Coswara root (batch folders are created under it).
        index: Subject index.
        cfg: Corpus settings.
        empty: Write an empty ``breathing-deep.wav``, as some real participants have.

    Returns:
        The participant's metadata plus ``batch`` and per-file ``quality`` labels.
    """
    rng = subject_rng(cfg.seed, "coswara", index)
    pid = _participant_id(rng)
    batch = f"202004{13 + index % 3:02d}"
    covid_status = str(rng.choice(list(COVID), p=list(COVID.values())))
    female = rng.random() < 0.35
    smoker = rng.random() < 0.2
    covid = covid_status.startswith("positive")
    # Annotation noise on the self-reported labels.
    audio_smoker = smoker != (rng.random() < cfg.label_noise)
    audio_female = female != (rng.random() < cfg.label_noise)
    meta: dict[str, object] = {
        "id": pid,
        "a": int(rng.integers(18, 80)),
        "covid_status": covid_status,
        "iF": True,
        "ep": "y",
        "g": "female" if female else "male",
        "l_s": str(rng.choice(STATES)),
        "dT": "web",
        "l_c": "India",
        "record_date": f"{batch[:4]}-{batch[4:6]}-{batch[6:]}",
    }
    symptom_p = 0.5 if covid or covid_status == "resp_illness_not_identified" else 0.05
    for s in SYMPTOMS:
        if rng.random() < symptom_p:
            meta[s] = True
    if smoker:
        meta["smoker"] = True
    folder = root / batch / pid
    folder.mkdir(parents=True, exist_ok=True)
    quality = {}
    for name in FILES:
        if empty and name == "breathing-deep":
            write_audio(folder / f"{name}.wav", np.zeros(0), 16000, "PCM_16")
            quality[name] = 0
            continue
        if name.startswith("cough"):
            x = _cough_file(
                rng, name.endswith("shallow"), audio_female, audio_smoker, covid, cfg
            )
        else:
            x = _breathing_file(
                rng, audio_female, audio_smoker, bool(meta.get("asthma")), cfg
            )
        x = device_colouration(x, SR, 80.0, 8000.0, rng)
        snr = rng.uniform(*cfg.noise_snr_db)
        x = add_noise(x, snr, rng, exponent=1.0)
        write_audio(
            folder / f"{name}.wav",
            normalise_peak(x, rng.uniform(0.2, 0.95)),
            SR,
            "PCM_16",
        )
        quality[name] = 2 if snr > 10 else 1
    (folder / "metadata.json").write_text(json.dumps(meta, indent=4))
    return {**meta, "batch": batch, "quality": quality}


def write_shared_files(root: Path, participants: list[dict]) -> None:
    """Write per-batch CSVs and ``annotations/{file}_labels.csv`` of the Coswara layout."""
    for batch in sorted({p["batch"] for p in participants}):
        rows = [
            ",".join(_csv_value(p.get(c)) for c in CSV_COLUMNS)
            for p in participants
            if p["batch"] == batch
        ]
        (root / batch / f"{batch}.csv").write_text(
            "\n".join([",".join(CSV_COLUMNS), *rows]) + "\n"
        )
    (root / "annotations").mkdir(exist_ok=True)
    for name in FILES:
        rows = [f"{p['id']}_{name},{p['quality'][name]}" for p in participants]
        (root / "annotations" / f"{name}_labels.csv").write_text(
            "\n".join(["FILENAME, QUALITY", *rows]) + "\n"
        )


def _csv_value(v: object) -> str:
    return "" if v is None else str(v)
