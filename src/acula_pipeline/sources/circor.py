"""CirCor DigiScope 2022 (PhysioNet/CinC Challenge 2022) phonocardiograms."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from acula_pipeline.sources.base import SourceScan, nan_to_none, recording_row, register
from acula_pipeline.sources.vocab import (
    SEX,
    TEXT,
    YES_NO,
    Fact,
    Facts,
    Kind,
    Value,
    clean,
    missing,
    num,
    register_vocabulary,
    yes_no,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- vocabulary
# Auscultation sites: reports write the area, or quote the dataset's code ("most
# audible at PV"); Phc, CirCor's "other" site, is no valve area and never read as one.
SITE = Fact(
    "location",
    {
        "AV": Value("aortic valve area", r"\baortic\b", codes=("AV",)),
        "PV": Value(
            "pulmonic valve area", r"\bpulmonic\b|\bpulmonary valve\b", codes=("PV",)
        ),
        "TV": Value("tricuspid valve area", r"\btricuspid\b", codes=("TV",)),
        "MV": Value("mitral valve area", r"\bmitral\b", codes=("MV",)),
        "Phc": Value("other auscultation site", r"(?!)"),
    },
)
MURMUR_FACT = Fact("label", {v: Value(v) for v in ("Present", "Absent", "Unknown")})
OUTCOME_FACT = Fact("label", {v: Value(v) for v in ("Normal", "Abnormal")})
AGE_GROUP = Fact(
    "label",
    {v: Value(v) for v in ("Neonate", "Infant", "Child", "Adolescent", "Young adult")},
)
_PHASES = {
    "systolic": (
        ("Early-systolic", "Mid-systolic", "Late-systolic", "Holosystolic"),
        ("I/VI", "II/VI", "III/VI", "IV/VI", "V/VI", "VI/VI"),
    ),
    "diastolic": (
        ("Early-diastolic", "Mid-diastolic", "Late-diastolic", "Holodiastolic"),
        ("I/IV", "II/IV", "III/IV", "IV/IV"),
    ),
}
VOCABULARY: dict[str, Fact] = {
    "murmur": MURMUR_FACT,
    "outcome": OUTCOME_FACT,
    "age_group": AGE_GROUP,
    "sex": SEX,
    "pregnant": YES_NO,
    "height_cm": Fact("number", tol=0.5),
    "weight_kg": Fact("number", tol=0.5),
    # other places the metadata names: not checked themselves, but a report may
    # name them beside the most audible one
    "recording_site": Fact("location", SITE.values, checked=False),
    "murmur_locations": Fact("location", SITE.values, checked=False),
    # a place right after "loudest at", "best heard over" … must be this one
    "most_audible_location": Fact(
        "location",
        SITE.values,
        read=r"(?:loudest|most audible|best heard|maximal|maximum intensity)\b",
    ),
    **{
        f"{phase}_{what}": Fact(cast(Kind, kind), {v: Value(v) for v in values})
        for phase, (timings, grades) in _PHASES.items()
        for what, kind, values in (
            ("timing", "timing", timings),
            ("grade", "grade", grades),
            ("shape", "label", ("Crescendo", "Decrescendo", "Diamond", "Plateau")),
            ("pitch", "label", ("Low", "Medium", "High")),
            ("quality", "label", ("Blowing", "Harsh", "Musical")),
        )
    },
    "patient_id": TEXT,
    "additional_id": TEXT,
    "campaign": TEXT,
}

MURMUR = frozenset(MURMUR_FACT.values)
OUTCOME = frozenset(OUTCOME_FACT.values)
AGES = frozenset(AGE_GROUP.values)
SEXES = frozenset({"Female", "Male"})  # as the patient files spell them
SITES = frozenset(SITE.values)
PATIENT_FILE = re.compile(r"^\d+\.txt$")


class PatientFileError(ValueError):
    """A CirCor patient file is malformed; the message names file and line."""


def parse_patient_file(
    path: Path,
) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
    """Parse ``{pid}.txt``: the recording lines and the ``#Key: value`` header fields.

    Raises:
        PatientFileError: malformed first line, recording line or missing ``#Murmur``.
    """
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise PatientFileError(f"CirCor patient file {path.name}: empty")
    first = lines[0].split()
    if len(first) != 3 or not all(p.isdigit() for p in first) or first[0] != path.stem:
        raise PatientFileError(
            f"CirCor patient file {path.name} line 1: expected "
            f"'{path.stem} <n_recordings> <fs>', got {lines[0]!r}"
        )
    n = int(first[1])
    recordings = []
    for k, line in enumerate(lines[1 : n + 1], start=2):
        parts = line.split()
        # Real copies list a few recordings without their segmentation file
        # ('MV 50782_MV_1.hea 50782_MV_1.wav'): the recording itself is usable.
        if len(parts) not in (3, 4) or parts[0] not in SITES:
            raise PatientFileError(
                f"CirCor patient file {path.name} line {k}: expected "
                f"'<site> <hea> <wav> [<tsv>]', got {line!r}"
            )
        recordings.append(
            (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else "")
        )
    if len(recordings) != n:
        raise PatientFileError(
            f"CirCor patient file {path.name}: header announces {n} "
            f"recordings, found {len(recordings)}"
        )
    fields = {}
    for line in lines[n + 1 :]:
        if line.startswith("#") and ":" in line:
            key, value = line[1:].split(":", 1)
            fields[key.strip()] = value.strip()
    if "Murmur" not in fields:
        raise PatientFileError(
            f"CirCor patient file {path.name}: missing '#Murmur' field"
        )
    return recordings, fields


LABEL_FIELDS = (
    ("Murmur", MURMUR, False),
    ("Outcome", OUTCOME, True),
    ("Age", AGES, True),
    ("Sex", SEXES, True),
)


def _canonical_labels(fields: dict[str, str]) -> str | None:
    """Put each label field in its canonical spelling, in place; the dataset's own
    spelling varies in case ('Young Adult' beside 'Young adult'). Returns what is
    wrong with the first unknown value, or None."""
    for key, allowed, optional in LABEL_FIELDS:
        value = nan_to_none(fields.get(key))
        if value is None and optional:
            continue
        by_fold = {a.casefold(): a for a in allowed}
        canonical = by_fold.get(str(value).casefold()) if value is not None else None
        if canonical is None:
            return (
                f"unknown #{key} value {fields.get(key)!r}; expected one of "
                f"{sorted(allowed)}"
            )
        fields[key] = canonical
    return None


def parse_states(path: Path) -> int:
    """Validate a ``.tsv`` segmentation (``start end state``); return its number of rows."""
    rows = 0
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in {"0", "1", "2", "3", "4"}:
            raise ValueError(
                f"CirCor segmentation {path.name} line {n}: expected "
                f"'start end state(0-4)', got {line!r}"
            )
        rows += 1
    return rows


@register("circor2022", {"murmur": MURMUR, "outcome": OUTCOME})
def scan_circor(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a CirCor 2022 copy: one row per recording, murmur labels per patient."""
    scan = SourceScan()
    data = root / "training_data" if (root / "training_data").is_dir() else root
    listed: set[str] = set()
    for ptxt in sorted(p for p in data.glob("*.txt") if PATIENT_FILE.match(p.name)):
        try:
            recs, fields = parse_patient_file(ptxt)
        except PatientFileError as exc:
            for wav in sorted(data.glob(f"{ptxt.stem}_*.wav")):
                listed.add(wav.name)
                scan.reject(dataset, wav, str(exc))
            scan.reject(dataset, ptxt, str(exc))
            continue
        problem = _canonical_labels(fields)
        meta_base = {k: nan_to_none(v) for k, v in fields.items()}
        heard = set((nan_to_none(fields.get("Murmur locations")) or "").split("+")) - {
            ""
        }
        for site, _hea, wav_name, tsv_name in recs:
            listed.add(wav_name)
            wav = data / wav_name
            if problem:
                scan.reject(dataset, wav, f"patient file {ptxt.name}: {problem}")
                continue
            if not wav.exists():
                scan.reject(dataset, wav, f"listed in {ptxt.name} but missing")
                continue
            try:
                n_states = (
                    parse_states(data / tsv_name)
                    if tsv_name and (data / tsv_name).exists()
                    else None
                )
            except ValueError as exc:
                scan.reject(dataset, wav, str(exc))
                continue
            murmur = fields["Murmur"]
            recording_row(
                scan,
                dataset=dataset,
                path=wav,
                recording_id=f"{dataset}/{wav.stem}",
                subject_id=f"{dataset}:{ptxt.stem}",
                modality="heart",
                body_site=site,
                device="Littmann 3200" if not is_synthetic else "synthetic stethoscope",
                is_synthetic=is_synthetic,
                metadata=meta_base
                | {"patient": ptxt.stem, "site": site, "segmentation_rows": n_states},
                labels={
                    "murmur": murmur,
                    "murmur_at_site": (site in heard)
                    if murmur == "Present"
                    else (False if murmur == "Absent" else None),
                    "outcome": nan_to_none(fields.get("Outcome")),
                    "age_group": nan_to_none(fields.get("Age")),
                    "sex": (nan_to_none(fields.get("Sex")) or "").lower() or None,
                },
            )
    for wav in sorted(data.glob("*.wav")):
        if wav.name not in listed:
            scan.reject(dataset, wav, "recording not listed in any patient file")
    if scan.recordings and not any(
        r.get("outcome") is not None for r in scan.recordings
    ):
        log.warning(
            "%s: no outcome labels in this copy (no '#Outcome' line in any patient "
            "file: the v1.0.0 layout); the outcome task will be skipped",
            dataset,
        )
    return scan


def _heart_phase(meta: Mapping[str, Any], phase: str) -> Facts:
    cap = phase.capitalize()
    return {
        f"{phase}_timing": meta.get(f"{cap} murmur timing"),
        f"{phase}_shape": meta.get(f"{cap} murmur shape"),
        f"{phase}_grade": meta.get(f"{cap} murmur grading"),
        f"{phase}_pitch": meta.get(f"{cap} murmur pitch"),
        f"{phase}_quality": meta.get(f"{cap} murmur quality"),
    }


@register_vocabulary(
    "circor2022",
    (
        "murmur",
        "most_audible_location",
        "systolic_timing",
        "systolic_grade",
        "diastolic_timing",
        "diastolic_grade",
        "outcome",
    ),
    VOCABULARY,
)
def circor_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a CirCor heart-sound recording (patient-level murmur annotations)."""
    locs = meta.get("Murmur locations")
    facts: Facts = {
        "patient_id": meta.get("patient"),
        "additional_id": meta.get("Additional ID"),
        "campaign": meta.get("Campaign"),
        "recording_site": SITE.text(unit.get("body_site")),
        "age_group": unit.get("age_group"),
        "sex": unit.get("sex"),
        "height_cm": num(meta.get("Height")),
        "weight_kg": num(meta.get("Weight")),
        "pregnant": yes_no(meta.get("Pregnancy status")),
        "murmur": unit.get("murmur"),
        "murmur_locations": (
            [SITE.text(s) or s for s in str(locs).split("+")]
            if not missing(locs)
            else None
        ),
        "most_audible_location": SITE.text(meta.get("Most audible location")),
        "outcome": unit.get("outcome"),
    }
    facts |= _heart_phase(meta, "systolic")
    facts |= _heart_phase(meta, "diastolic")
    return clean(facts)
