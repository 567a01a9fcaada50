"""Alignment units and the de-identified facts a report may be written from.

A unit is what one report describes: a whole recording, or one annotated respiratory
cycle (ICBHI). Each source's metadata is mapped to named facts by the extractor its
adapter module registers with its vocabulary (``sources/vocab.py``); a fact is sent to a
backend only if the per-family allow-list names it, so identifiers, places and dates
stay out by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

import acula_pipeline.sources  # noqa: F401  (registers every adapter's vocabulary)
from acula_pipeline.sources.vocab import VOCABULARIES, Extractor, Facts

__all__ = ["FACT_EXTRACTORS", "FIELD_LABELS", "LABEL_FACTS", "Extractor", "Facts"]

# Human labels, used in prompts. A fact without a label here cannot be sent.
FIELD_LABELS: dict[str, str] = {
    # identifiers, places and dates (never in the default allow-lists)
    "patient_id": "Patient ID",
    "recording_index": "Recording index",
    "additional_id": "Additional ID",
    "campaign": "Screening campaign",
    "participant_id": "Participant ID",
    "record_date": "Recording date",
    "country": "Country",
    "state": "State",
    "locality": "Locality",
    # recording
    "recording_type": "Recording type",
    "recording_site": "Recording site",
    "chest_location": "Chest location",
    "device": "Device",
    "acquisition_mode": "Acquisition mode",
    # demographics
    "age_years": "Age (years)",
    "age_group": "Age group",
    "sex": "Sex",
    "bmi": "BMI (kg/m2)",
    "height_cm": "Height (cm)",
    "weight_kg": "Weight (kg)",
    "pregnant": "Pregnant",
    # lung
    "diagnosis": "Diagnosis",
    "crackles": "Crackles",
    "wheezes": "Wheezes",
    "crackle_cycles": "Respiratory cycles with crackles",
    "wheeze_cycles": "Respiratory cycles with wheezes",
    "n_cycles": "Annotated respiratory cycles",
    # heart
    "murmur": "Murmur",
    "murmur_locations": "Murmur locations",
    "most_audible_location": "Most audible location",
    "systolic_timing": "Systolic murmur timing",
    "systolic_shape": "Systolic murmur shape",
    "systolic_grade": "Systolic murmur grade",
    "systolic_pitch": "Systolic murmur pitch",
    "systolic_quality": "Systolic murmur quality",
    "diastolic_timing": "Diastolic murmur timing",
    "diastolic_shape": "Diastolic murmur shape",
    "diastolic_grade": "Diastolic murmur grade",
    "diastolic_pitch": "Diastolic murmur pitch",
    "diastolic_quality": "Diastolic murmur quality",
    "outcome": "Clinical outcome",
    "heart_sounds": "Heart sounds",
    "congenital_defect": "Congenital heart defect",
    # lung (other datasets)
    "sound_class": "Adventitious sounds (recording annotation)",
    "events": "Annotated sound events",
    "cas": "Continuous adventitious sounds (wheeze, stridor, rhonchi)",
    "das": "Discontinuous adventitious sounds (crackles)",
    "copd_severity": "COPD severity",
    # cough / breath / voice
    "covid_status": "COVID-19 status",
    "smoker": "Smoker",
    "symptoms": "Reported symptoms",
    "respiratory_rate": "Respiratory rate (breaths/min)",
    "fvc_l": "FVC (L)",
    "fev1_l": "FEV1 (L)",
    "fev1_fvc": "FEV1/FVC",
    "respiratory_symptoms": "Respiratory symptoms",
    "body_position": "Body position during sleep",
}


# Each source adapter declares its facts and their vocabulary beside its scanner
# (``sources/<name>.py``, through ``sources.vocab.register_vocabulary``).
class _PerAdapter(Mapping[str, Any]):
    """A live view of one attribute of every registered vocabulary, by adapter."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __getitem__(self, adapter: str) -> Any:
        return getattr(VOCABULARIES[adapter], self.attr)

    def __iter__(self) -> Iterator[str]:
        return iter(VOCABULARIES)

    def __len__(self) -> int:
        return len(VOCABULARIES)


FACT_EXTRACTORS: Mapping[str, Extractor] = _PerAdapter("extract")
# Which facts carry the labels the evaluation tasks use: a report must state each one
# it was given (checks.labels_reflected).
LABEL_FACTS: Mapping[str, tuple[str, ...]] = _PerAdapter("label_facts")


def unit_facts(unit: Mapping[str, Any]) -> Facts:
    """Every fact an extractor can derive for one unit (before the allow-list)."""
    adapter = str(unit.get("adapter"))
    if adapter not in FACT_EXTRACTORS:
        raise KeyError(
            f"unit {unit.get('unit_id')}: no fact extractor for adapter {adapter!r}; "
            f"known: {sorted(FACT_EXTRACTORS)}"
        )
    meta = json.loads(unit["metadata"]) if unit.get("metadata") else {}
    return FACT_EXTRACTORS[adapter](unit, meta)


def allowed_facts(facts: Facts, allow: list[str]) -> Facts:
    """Keep only the allow-listed facts, in allow-list order."""
    return {k: facts[k] for k in allow if k in facts}


UNIT_COLUMNS = (
    "unit_id",
    "unit",
    "recording_id",
    "segment_id",
    "subject_id",
    "dataset",
    "adapter",
    "modality",
    "split",
    "is_synthetic",
)


def build_units(recordings: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """One row per alignment unit: each annotated cycle, else each recording.

    Only recordings that produced segments (passed the audio audit) get units, so every
    report has audio to align with.

    Args:
        recordings: The unified recordings table.
        segments: The segments table (``unit`` is ``cycle`` or ``window``).

    Returns:
        The unit table: ``UNIT_COLUMNS`` plus the recording's label columns and
        metadata, and ``crackles``/``wheezes`` of the cycle for cycle units.
    """
    rec = recordings.set_index("recording_id")
    cyc = segments[segments["unit"] == "cycle"]
    win = segments[segments["unit"] != "cycle"]
    win_split = win.groupby("recording_id", sort=True)["split"].first()
    cycle_units = pd.DataFrame(
        {
            "unit_id": cyc["segment_id"],
            "unit": "cycle",
            "recording_id": cyc["recording_id"],
            "segment_id": cyc["segment_id"],
            "split": cyc["split"],
            "crackles": cyc["crackles"],
            "wheezes": cyc["wheezes"],
        }
    )
    rec_units = pd.DataFrame(
        {
            "unit_id": win_split.index,
            "unit": "recording",
            "recording_id": win_split.index,
            "segment_id": None,
            "split": win_split.to_numpy(),
            "crackles": None,
            "wheezes": None,
        }
    )
    units = pd.concat([cycle_units, rec_units], ignore_index=True)
    missing = ~units["recording_id"].isin(rec.index)
    if missing.any():
        raise KeyError(
            "segments name recordings that are not in the recordings table: "
            f"{sorted(units.loc[missing, 'recording_id'].unique())[:5]}"
        )
    cols = [c for c in rec.columns if c not in ("path",)]
    units = units.join(rec[cols], on="recording_id")
    lead = [c for c in UNIT_COLUMNS if c in units.columns]
    rest = [c for c in units.columns if c not in lead]
    return units[lead + rest].sort_values("unit_id", ignore_index=True)
