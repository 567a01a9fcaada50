"""KAUH lung sounds (King Abdullah University Hospital): labels in the file names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, audio_files, recording_row, register
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

# The names' spellings (lower-cased, spaces collapsed) → one canonical diagnosis.
SPELLINGS = {
    "n": "Healthy",
    "normal": "Healthy",
    "asthma": "Asthma",
    "copd": "COPD",
    "pneumonia": "Pneumonia",
    "heart failure": "Heart failure",
    "lung fibrosis": "Lung fibrosis",
    "bron": "BRON",
    "plueral effusion": "Pleural effusion",  # sic, as in the dataset
    "pleural effusion": "Pleural effusion",
}
DIAGNOSES = frozenset(SPELLINGS.values())
# Combinations are written 'Heart Failure + COPD' or 'Asthma and lung fibrosis'.
COMBINED = re.compile(r"\s*\+\s*|\s+and\s+")
NAME = re.compile(
    r"^(?P<id>[A-Za-z]*P?(?P<subject>\d+))_(?P<dx>[^,]+),(?P<sound>[^,]*),"
    r"(?P<loc>[^,]*),(?P<age>[^,]*),(?P<sex>[^,]*)$"
)
FILTERS = {"B": "bell", "D": "diaphragm", "E": "extended"}
SEXES = {"M": "male", "F": "female"}


def parse_diagnosis(text: str) -> str:
    """Canonical diagnosis of a name's diagnosis field; parts joined by ' + '.

    Raises:
        ValueError: An unknown spelling.
    """
    parts = [" ".join(p.lower().split()) for p in COMBINED.split(text.strip())]
    unknown = [p for p in parts if p not in SPELLINGS]
    if unknown or not parts:
        raise ValueError(
            f"unknown diagnosis {text.strip()!r}; known spellings: {sorted(SPELLINGS)}"
        )
    return " + ".join(dict.fromkeys(SPELLINGS[p] for p in parts))


def sound_flags(sound: str) -> tuple[bool | None, bool | None]:
    """(crackles, wheezes) from the sound-type field (``N``, ``E W``, ``I C``,
    ``Crep`` …); ``None`` when the field is empty."""
    tokens = {t.lower() for t in sound.split()}
    if not tokens:
        return None, None
    return bool(tokens & {"c", "crep", "crackles"}), bool(tokens & {"w", "wheezes"})


# What the diagnosis column may hold: one diagnosis or a pair (the dataset has pairs).
VALUES = DIAGNOSES | {f"{a} + {b}" for a in DIAGNOSES for b in DIAGNOSES if a != b}


@register("kauh", {"diagnosis": VALUES})
def scan_kauh(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a KAUH copy: every ``.wav`` under ``root`` (``AudioFiles/`` officially).

    The id's letters give the stethoscope filter (B bell, D diaphragm, E extended) and
    its digits the patient, so the three filter versions of a recording share a
    subject.
    """
    scan = SourceScan()
    for wav in audio_files(root):
        m = NAME.match(wav.stem)
        if m is None:
            scan.reject(
                dataset,
                wav,
                "file name does not follow {ID}_{Diagnosis},{Sound type},{Location},"
                "{Age},{Sex}",
            )
            continue
        try:
            diagnosis = parse_diagnosis(m["dx"])
        except ValueError as exc:
            scan.reject(dataset, wav, str(exc))
            continue
        sex = SEXES.get(m["sex"].strip().upper())
        age_text = m["age"].strip()
        if sex is None or not age_text.isdigit():
            scan.reject(
                dataset,
                wav,
                f"age {age_text!r} or sex {m['sex'].strip()!r} unreadable "
                "(expected a whole number and M or F)",
            )
            continue
        crackles, wheezes = sound_flags(m["sound"])
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.stem}",
            subject_id=f"{dataset}:{int(m['subject'])}",
            modality="lung",
            body_site=" ".join(m["loc"].split()) or None,
            device=FILTERS.get(m["id"][:1].upper()),
            is_synthetic=is_synthetic,
            metadata={
                "id": m["id"],
                "diagnosis_as_written": m["dx"],
                "sound_type": " ".join(m["sound"].split()),
                "location": " ".join(m["loc"].split()),
                "filter": FILTERS.get(m["id"][:1].upper()),
            },
            labels={
                "diagnosis": diagnosis,
                "has_crackles": crackles,
                "has_wheezes": wheezes,
                "sex": sex,
                "age_years": float(age_text),
            },
        )
    return scan


# ---------------------------------------------------------------- vocabulary

DIAGNOSIS = Fact(
    "label",
    {
        **{k: RESPIRATORY[k] for k in ("Healthy", "Asthma", "COPD", "Pneumonia")},
        "Heart failure": Value(
            "Heart failure", r"\bheart failure\b", prose="heart failure"
        ),
        "Lung fibrosis": Value(
            "Lung fibrosis", r"\b(?:lung|pulmonary) fibrosis\b", prose="lung fibrosis"
        ),
        "Pleural effusion": Value(
            "Pleural effusion", r"\bpleural effusion\b", prose="a pleural effusion"
        ),
        "BRON": Value("BRON", r"\bbron\b", prose="BRON (as coded in the KAUH dataset)"),
    },
)
# The location field: three letters, e.g. 'P L U' (posterior left upper).
PLACES = (
    {"A": "anterior", "P": "posterior"},
    {"L": "left", "R": "right"},
    {"U": "upper", "M": "middle", "L": "lower"},
)
VOCABULARY = {
    "diagnosis": DIAGNOSIS,
    "crackles": CRACKLES,
    "wheezes": WHEEZES,
    "age_years": AGE_YEARS,
    "sex": SEX,
    "chest_location": TEXT,
    "device": TEXT,
    "patient_id": TEXT,
}


def _location(code: Any) -> str | None:
    parts = str(code or "").split()
    if len(parts) != 3:
        return None
    words = [table.get(p.upper()) for table, p in zip(PLACES, parts, strict=True)]
    return None if None in words else f"{' '.join(map(str, words))} chest"


@register_vocabulary("kauh", ("diagnosis", "crackles", "wheezes"), VOCABULARY)
def kauh_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a KAUH lung-sound recording (labels from its file name)."""
    return clean(
        {
            "patient_id": meta.get("id"),
            "age_years": num(unit.get("age_years"), 0),
            "sex": unit.get("sex"),
            "diagnosis": unit.get("diagnosis"),
            "chest_location": _location(meta.get("location")),
            "device": (
                f"electronic stethoscope ({meta['filter']} filter)"
                if meta.get("filter")
                else None
            ),
            "crackles": present(unit.get("has_crackles")),
            "wheezes": present(unit.get("has_wheezes")),
        }
    )
