"""ICBHI 2017 Respiratory Sound Database (official and Kaggle layouts)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    nan_to_none,
    recording_row,
    register,
    to_float,
)
from acula_pipeline.sources.vocab import (
    AGE_YEARS,
    CRACKLES,
    SEX,
    TEXT,
    WHEEZES,
    Fact,
    Facts,
    Value,
    clean,
    num,
    present,
    register_vocabulary,
)
from acula_pipeline.sources.vocab import (
    DIAGNOSES as RESPIRATORY,
)

DIAGNOSES = frozenset(RESPIRATORY)  # the values of sources.vocab.DIAGNOSES
STEM = re.compile(
    r"^(?P<patient>\d{3})_(?P<index>\w+?)_(?P<loc>Tc|Al|Ar|Pl|Pr|Ll|Lr)_(?P<mode>sc|mc)_"
    r"(?P<device>AKGC417L|LittC2SE|Litt3200|Meditron)$"
)
AUDIO_DIRS = ("audio_and_txt_files", "ICBHI_final_database")
DEMOGRAPHIC_FILES = (
    "demographic_info.txt",
    "ICBHI_Challenge_demographic_information.txt",
)
DIAGNOSIS_FILES = ("patient_diagnosis.csv", "ICBHI_Challenge_diagnosis.txt")
# Documentation and table files that may sit next to the recordings.
KNOWN_TXT = frozenset(
    {
        "filename_format",
        "filename_differences",
        "demographic_info",
        "ICBHI_challenge_train_test",
        "ICBHI_Challenge_diagnosis",
        "ICBHI_Challenge_demographic_information",
    }
)


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    return None


def _audio_dir(root: Path) -> Path:
    for name in AUDIO_DIRS:
        hit = _find(root, (name,))
        if hit is not None and hit.is_dir():
            return hit
    if any(root.glob("*.wav")):
        return root
    raise SourceError(
        f"ICBHI: no {' or '.join(AUDIO_DIRS)} folder with .wav files under {root}"
    )


def _read_diagnoses(path: Path, dataset: str, scan: SourceScan) -> dict[str, str]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in re.split(r"[,\t]", line)]
        if len(parts) != 2:
            scan.reject(
                dataset,
                path,
                f"line {n}: expected 2 columns (patient, diagnosis), got {len(parts)}",
                record=f"line {n}",
            )
        elif parts[1] not in DIAGNOSES:
            scan.reject(
                dataset,
                path,
                f"line {n}: unknown diagnosis {parts[1]!r}; expected one "
                f"of {sorted(DIAGNOSES)}",
                record=f"patient {parts[0]}",
            )
        else:
            out[parts[0]] = parts[1]
    return out


def _read_demographics(
    path: Path | None, dataset: str, scan: SourceScan
) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if path is None:
        return out
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            scan.reject(
                dataset,
                path,
                f"line {n}: expected 6 columns, got {len(parts)}",
                record=f"line {n}",
            )
            continue
        pid, age, sex, bmi, weight, height = parts
        try:
            out[pid] = {
                "age": to_float(age),
                "sex": nan_to_none(sex),
                "adult_bmi": to_float(bmi),
                "child_weight": to_float(weight),
                "child_height": to_float(height),
            }
        except ValueError as exc:
            scan.reject(dataset, path, f"line {n}: {exc}", record=f"patient {pid}")
    return out


def _read_split(path: Path | None, dataset: str, scan: SourceScan) -> dict[str, str]:
    out: dict[str, str] = {}
    if path is None:
        return out
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("train", "test"):
            scan.reject(
                dataset,
                path,
                f"line {n}: expected '<recording> train|test', got {line.strip()!r}",
                record=f"line {n}",
            )
            continue
        out[parts[0]] = parts[1]
    return out


def parse_annotation(path: Path) -> list[tuple[float, float, int, int]]:
    """Parse a cycle annotation file (``start end crackles wheezes`` per line).

    Raises:
        ValueError: naming the file and line that is malformed.
    """
    cycles = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise ValueError(
                f"ICBHI annotation {path.name} line {n}: expected 4 columns, "
                f"got {len(parts)}"
            )
        try:
            start, end = float(parts[0]), float(parts[1])
            crackles, wheezes = int(parts[2]), int(parts[3])
        except ValueError as exc:
            raise ValueError(f"ICBHI annotation {path.name} line {n}: {exc}") from exc
        if crackles not in (0, 1) or wheezes not in (0, 1) or not 0 <= start < end:
            raise ValueError(
                f"ICBHI annotation {path.name} line {n}: expected 0 <= start < end "
                f"and 0/1 flags, got {line.strip()!r}"
            )
        cycles.append((start, end, crackles, wheezes))
    if not cycles:
        raise ValueError(f"ICBHI annotation {path.name}: no respiratory cycles")
    return cycles


@register("icbhi2017", {"diagnosis": DIAGNOSES})
def scan_icbhi(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read an ICBHI 2017 copy: recordings, per-cycle labels and patient diagnoses."""
    scan = SourceScan()
    audio_dir = _audio_dir(root)
    diag_file = _find(root, DIAGNOSIS_FILES)
    if diag_file is None:
        raise SourceError(f"ICBHI: none of {DIAGNOSIS_FILES} found under {root}")
    diagnoses = _read_diagnoses(diag_file, dataset, scan)
    demo = _read_demographics(_find(root, DEMOGRAPHIC_FILES), dataset, scan)
    split = _read_split(_find(root, ("ICBHI_challenge_train_test.txt",)), dataset, scan)
    wav_stems = {p.stem for p in audio_dir.glob("*.wav")}
    for txt in sorted(audio_dir.glob("*.txt")):
        if txt.stem not in wav_stems and txt.stem not in KNOWN_TXT:
            scan.reject(dataset, txt, "annotation file without a matching .wav")
    for wav in sorted(audio_dir.glob("*.wav")):
        m = STEM.match(wav.stem)
        if m is None:
            scan.reject(
                dataset,
                wav,
                "file name does not follow "
                "{patient}_{index}_{location}_{mode}_{equipment}",
            )
            continue
        pid = m["patient"]
        if pid not in diagnoses:
            scan.reject(
                dataset,
                wav,
                f"patient {pid} has no valid diagnosis in {diag_file.name}",
            )
            continue
        txt = wav.with_suffix(".txt")
        try:
            cycles = parse_annotation(txt)
        except FileNotFoundError:
            scan.reject(dataset, wav, f"annotation file {txt.name} is missing")
            continue
        except ValueError as exc:
            scan.reject(dataset, txt, str(exc))
            continue
        person = demo.get(pid, {})
        rec_id = f"{dataset}/{wav.stem}"
        meta = {
            "patient": pid,
            "recording_index": m["index"],
            "chest_location": m["loc"],
            "acquisition_mode": m["mode"],
            "equipment": m["device"],
            "diagnosis": diagnoses[pid],
            **person,
            "n_cycles": len(cycles),
            "n_crackle_cycles": sum(c[2] for c in cycles),
            "n_wheeze_cycles": sum(c[3] for c in cycles),
        }
        sex = {"F": "female", "M": "male"}.get(person.get("sex") or "")
        row = recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=rec_id,
            subject_id=f"{dataset}:{pid}",
            modality="lung",
            body_site=m["loc"],
            device=m["device"],
            is_synthetic=is_synthetic,
            metadata=meta,
            labels={
                "diagnosis": diagnoses[pid],
                "has_crackles": meta["n_crackle_cycles"] > 0,
                "has_wheezes": meta["n_wheeze_cycles"] > 0,
                "official_split": split.get(wav.stem),
                "sex": sex,
                "age_years": person.get("age"),
            },
        )
        if row is not None:
            _add_cycles(scan, row, cycles, txt)
    return scan


def _add_cycles(
    scan: SourceScan,
    row: dict,
    cycles: list[tuple[float, float, int, int]],
    txt: Path,
) -> None:
    """Keep the cycles that lie in the audio; a cycle starting after its end is rejected.

    Real annotations sometimes run a little past the end of the file: such a cycle is
    cut at the end of the audio rather than padded with silence.
    """
    duration = row["duration_s"]
    for i, (start, end, crackles, wheezes) in enumerate(cycles):
        if start >= duration:
            scan.reject(
                row["dataset"],
                txt,
                f"cycle {i} starts at {start} s, after the end of the audio "
                f"({duration:.3f} s)",
                record=f"{row['recording_id']} cycle {i}",
            )
            continue
        scan.cycles.append(
            {
                "recording_id": row["recording_id"],
                "cycle_index": i,
                "start_s": start,
                "end_s": min(end, duration),
                "crackles": bool(crackles),
                "wheezes": bool(wheezes),
            }
        )


# ---------------------------------------------------------------- vocabulary

CHEST_LOCATION = Fact(
    "location",
    {
        "Tc": Value("trachea", codes=("Tc",)),
        "Al": Value("anterior left chest", codes=("Al",)),
        "Ar": Value("anterior right chest", codes=("Ar",)),
        "Pl": Value("posterior left chest", codes=("Pl",)),
        "Pr": Value("posterior right chest", codes=("Pr",)),
        "Ll": Value("lateral left chest", codes=("Ll",)),
        "Lr": Value("lateral right chest", codes=("Lr",)),
    },
)
DEVICE = Fact(
    "text",
    {
        "AKGC417L": Value("AKG C417L microphone"),
        "LittC2SE": Value("Littmann Classic II SE stethoscope"),
        "Litt3200": Value("Littmann 3200 electronic stethoscope"),
        "Meditron": Value("Meditron electronic stethoscope"),
    },
)
VOCABULARY = {
    "diagnosis": Fact("label", RESPIRATORY),
    "crackles": CRACKLES,
    "wheezes": WHEEZES,
    "chest_location": CHEST_LOCATION,
    "device": DEVICE,
    "acquisition_mode": Fact(
        "text", {"sc": Value("single channel"), "mc": Value("multichannel")}
    ),
    "age_years": AGE_YEARS,
    "sex": SEX,
    "bmi": Fact("number", tol=0.05),
    "height_cm": Fact("number", tol=0.5),
    "weight_kg": Fact("number", tol=0.5),
    "n_cycles": Fact("number"),
    "crackle_cycles": Fact("number"),
    "wheeze_cycles": Fact("number"),
    "patient_id": TEXT,
    "recording_index": TEXT,
}


@register_vocabulary("icbhi2017", ("diagnosis", "crackles", "wheezes"), VOCABULARY)
def icbhi_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an ICBHI recording or respiratory cycle."""
    facts: Facts = {
        "patient_id": meta.get("patient"),
        "recording_index": meta.get("recording_index"),
        "chest_location": CHEST_LOCATION.text(meta.get("chest_location")),
        "device": DEVICE.text(meta.get("equipment")) or meta.get("equipment"),
        "acquisition_mode": VOCABULARY["acquisition_mode"].text(
            meta.get("acquisition_mode")
        ),
        "age_years": num(unit.get("age_years")),
        "sex": unit.get("sex"),
        "bmi": num(meta.get("adult_bmi")),
        "height_cm": num(meta.get("child_height")),
        "weight_kg": num(meta.get("child_weight")),
        "diagnosis": unit.get("diagnosis"),
    }
    if unit.get("unit") == "cycle":
        facts["crackles"] = present(unit.get("crackles"))
        facts["wheezes"] = present(unit.get("wheezes"))
    else:
        n_c = num(meta.get("n_crackle_cycles"), 0)
        n_w = num(meta.get("n_wheeze_cycles"), 0)
        facts["n_cycles"] = num(meta.get("n_cycles"), 0)
        facts["crackle_cycles"] = n_c
        facts["wheeze_cycles"] = n_w
        facts["crackles"] = None if n_c is None else present(n_c > 0)
        facts["wheezes"] = None if n_w is None else present(n_w > 0)
    return clean(facts)
