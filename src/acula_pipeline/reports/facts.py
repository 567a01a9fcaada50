"""Alignment units and the de-identified facts a report may be written from.

A unit is what one report describes: a whole recording, or one annotated respiratory
cycle (ICBHI). Each source's metadata is mapped to named facts by an extractor
registered under the source's adapter name; a fact is sent to a backend only if the
per-family allow-list names it, so identifiers, places and dates stay out by default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

Facts = dict[str, Any]
Extractor = Callable[[Mapping[str, Any], Mapping[str, Any]], Facts]

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
}

ICBHI_LOCATIONS = {
    "Tc": "trachea",
    "Al": "anterior left chest",
    "Ar": "anterior right chest",
    "Pl": "posterior left chest",
    "Pr": "posterior right chest",
    "Ll": "lateral left chest",
    "Lr": "lateral right chest",
}
ICBHI_DEVICES = {
    "AKGC417L": "AKG C417L microphone",
    "LittC2SE": "Littmann Classic II SE stethoscope",
    "Litt3200": "Littmann 3200 electronic stethoscope",
    "Meditron": "Meditron electronic stethoscope",
}
HEART_SITES = {
    "AV": "aortic valve area",
    "PV": "pulmonic valve area",
    "TV": "tricuspid valve area",
    "MV": "mitral valve area",
    "Phc": "other auscultation site",
}
COSWARA_RECORDINGS = {
    "breathing-deep": "deep breathing",
    "breathing-shallow": "shallow breathing",
    "cough-heavy": "heavy cough",
    "cough-shallow": "shallow cough",
    "counting-fast": "fast counting",
    "counting-normal": "normal-paced counting",
    "vowel-a": "sustained vowel /a/",
    "vowel-e": "sustained vowel /e/",
    "vowel-o": "sustained vowel /o/",
}
COVID_STATUS_TEXT = {
    "healthy": "negative (healthy)",
    "positive_mild": "positive, mild",
    "positive_moderate": "positive, moderate",
    "positive_asymp": "positive, asymptomatic",
    "resp_illness_not_identified": "negative (respiratory illness, not COVID-19)",
    "no_resp_illness_exposed": "negative (exposed, no respiratory illness)",
    "recovered_full": "fully recovered",
    "under_validation": "under validation",
}
SYMPTOM_TEXT = {
    "cough": "cough",
    "fever": "fever",
    "cld": "chronic lung disease",
    "st": "sore throat",
    "bd": "breathing difficulty",
    "mp": "muscle pain",
    "ftg": "fatigue",
    "loss_of_smell": "loss of smell",
    "diarrhoea": "diarrhoea",
    "asthma": "asthma",
    "cold": "cold",
    "diabetes": "diabetes",
    "ht": "hypertension",
    "ihd": "ischaemic heart disease",
    "pneumonia": "pneumonia",
}

FACT_EXTRACTORS: dict[str, Extractor] = {}
# Which facts carry the labels the evaluation tasks use: a report must state each one
# it was given (checks.labels_reflected).
LABEL_FACTS: dict[str, tuple[str, ...]] = {}


def register_facts(
    adapter: str, label_facts: tuple[str, ...]
) -> Callable[[Extractor], Extractor]:
    """Register the fact extractor of a source adapter."""

    def deco(fn: Extractor) -> Extractor:
        FACT_EXTRACTORS[adapter] = fn
        LABEL_FACTS[adapter] = label_facts
        return fn

    return deco


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in ("", "nan", "na", "none")


def _num(v: Any, digits: int = 1) -> float | int | None:
    if _missing(v):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(x):
        return None
    x = round(x, digits)
    return int(x) if x == int(x) else x


def _present(v: Any) -> str | None:
    if _missing(v):
        return None
    return "present" if bool(v) else "absent"


def _yes_no(v: Any) -> str | None:
    if _missing(v):
        return None
    if isinstance(v, str):
        v = v.strip().lower() in ("true", "yes", "y", "1")
    return "yes" if bool(v) else "no"


def _clean(facts: Facts) -> Facts:
    return {k: v for k, v in facts.items() if not _missing(v) and v != []}


@register_facts("icbhi2017", ("diagnosis", "crackles", "wheezes"))
def icbhi_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an ICBHI recording or respiratory cycle."""
    facts: Facts = {
        "patient_id": meta.get("patient"),
        "recording_index": meta.get("recording_index"),
        "chest_location": ICBHI_LOCATIONS.get(str(meta.get("chest_location"))),
        "device": ICBHI_DEVICES.get(str(meta.get("equipment")), meta.get("equipment")),
        "acquisition_mode": {"sc": "single channel", "mc": "multichannel"}.get(
            str(meta.get("acquisition_mode"))
        ),
        "age_years": _num(unit.get("age_years")),
        "sex": unit.get("sex"),
        "bmi": _num(meta.get("adult_bmi")),
        "height_cm": _num(meta.get("child_height")),
        "weight_kg": _num(meta.get("child_weight")),
        "diagnosis": unit.get("diagnosis"),
    }
    if unit.get("unit") == "cycle":
        facts["crackles"] = _present(unit.get("crackles"))
        facts["wheezes"] = _present(unit.get("wheezes"))
    else:
        n_c = _num(meta.get("n_crackle_cycles"), 0)
        n_w = _num(meta.get("n_wheeze_cycles"), 0)
        facts["n_cycles"] = _num(meta.get("n_cycles"), 0)
        facts["crackle_cycles"] = n_c
        facts["wheeze_cycles"] = n_w
        facts["crackles"] = None if n_c is None else _present(n_c > 0)
        facts["wheezes"] = None if n_w is None else _present(n_w > 0)
    return _clean(facts)


def _heart_phase(meta: Mapping[str, Any], phase: str) -> Facts:
    cap = phase.capitalize()
    return {
        f"{phase}_timing": meta.get(f"{cap} murmur timing"),
        f"{phase}_shape": meta.get(f"{cap} murmur shape"),
        f"{phase}_grade": meta.get(f"{cap} murmur grading"),
        f"{phase}_pitch": meta.get(f"{cap} murmur pitch"),
        f"{phase}_quality": meta.get(f"{cap} murmur quality"),
    }


@register_facts(
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
)
def circor_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a CirCor heart-sound recording (patient-level murmur annotations)."""
    locs = meta.get("Murmur locations")
    facts: Facts = {
        "patient_id": meta.get("patient"),
        "additional_id": meta.get("Additional ID"),
        "campaign": meta.get("Campaign"),
        "recording_site": HEART_SITES.get(str(unit.get("body_site"))),
        "age_group": unit.get("age_group"),
        "sex": unit.get("sex"),
        "height_cm": _num(meta.get("Height")),
        "weight_kg": _num(meta.get("Weight")),
        "pregnant": _yes_no(meta.get("Pregnancy status")),
        "murmur": unit.get("murmur"),
        "murmur_locations": (
            [HEART_SITES.get(s, s) for s in str(locs).split("+")]
            if not _missing(locs)
            else None
        ),
        "most_audible_location": HEART_SITES.get(
            str(meta.get("Most audible location"))
        ),
        "outcome": unit.get("outcome"),
    }
    facts |= _heart_phase(meta, "systolic")
    facts |= _heart_phase(meta, "diastolic")
    return _clean(facts)


@register_facts("coswara", ("covid_status", "smoker", "sex"))
def coswara_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a Coswara breathing, cough or voice recording."""
    symptoms = unit.get("symptoms")
    facts: Facts = {
        "participant_id": meta.get("id"),
        "record_date": meta.get("record_date") or meta.get("batch"),
        "country": meta.get("l_c"),
        "state": meta.get("l_s"),
        "locality": meta.get("l_l"),
        "recording_type": COSWARA_RECORDINGS.get(str(meta.get("recording"))),
        "age_years": _num(unit.get("age_years"), 0),
        "sex": unit.get("sex"),
        "covid_status": COVID_STATUS_TEXT.get(str(unit.get("covid_status"))),
        "smoker": _yes_no(unit.get("smoker")),
        "symptoms": (
            [SYMPTOM_TEXT.get(s, s) for s in str(symptoms).split(",") if s]
            if not _missing(symptoms)
            else None
        ),
    }
    return _clean(facts)


# ---------------------------------------------------------------- other datasets

CONGENITAL_TEXT = {
    "NORMAL": "no defect (normal)",
    "ASD": "atrial septal defect (ASD)",
    "PDA": "patent ductus arteriosus (PDA)",
    "PFO": "patent foramen ovale (PFO)",
    "VSD": "ventricular septal defect (VSD)",
}
SOUND_CLASS_TEXT = {
    "Normal": "normal (no adventitious sounds)",
    "CAS": "continuous adventitious sounds (CAS)",
    "DAS": "discontinuous adventitious sounds (DAS)",
    "CAS & DAS": "continuous and discontinuous adventitious sounds (CAS and DAS)",
    "Poor Quality": "poor quality (not assessable)",
}
KAUH_PLACES = (
    {"A": "anterior", "P": "posterior"},
    {"L": "left", "R": "right"},
    {"U": "upper", "M": "middle", "L": "lower"},
)
RECORDING_TEXT = {
    "cough": "cough",
    "exhalation": "exhalation",
    "three_cough": "three coughs",
    "sentence": "read sentence",
    "nasal_breathing": "nasal breathing",
    "deep_breath": "deep breathing",
    "vowel_o": "sustained vowel /o/",
}


def _kauh_location(code: Any) -> str | None:
    parts = str(code or "").split()
    if len(parts) != 3:
        return None
    words = [table.get(p.upper()) for table, p in zip(KAUH_PLACES, parts, strict=True)]
    return None if None in words else f"{' '.join(map(str, words))} chest"


@register_facts("physionet2016", ("heart_sounds",))
def physionet2016_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a PhysioNet 2016 heart-sound record."""
    dx = unit.get("diagnosis")
    return _clean({"heart_sounds": None if _missing(dx) else str(dx).lower()})


@register_facts("zchsound", ("congenital_defect",))
def zchsound_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a ZCHSound paediatric heart-sound recording."""
    return _clean(
        {"congenital_defect": CONGENITAL_TEXT.get(str(unit.get("diagnosis")))}
    )


@register_facts("kauh", ("diagnosis", "crackles", "wheezes"))
def kauh_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a KAUH lung-sound recording (labels from its file name)."""
    return _clean(
        {
            "patient_id": meta.get("id"),
            "age_years": _num(unit.get("age_years"), 0),
            "sex": unit.get("sex"),
            "diagnosis": unit.get("diagnosis"),
            "chest_location": _kauh_location(meta.get("location")),
            "device": (
                f"electronic stethoscope ({meta['filter']} filter)"
                if meta.get("filter")
                else None
            ),
            "crackles": _present(unit.get("has_crackles")),
            "wheezes": _present(unit.get("has_wheezes")),
        }
    )


@register_facts("sprsound", ("sound_class",))
def sprsound_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a SPRSound paediatric lung-sound recording."""
    events = sorted(
        {
            str(e["type"]).lower()
            for e in meta.get("events", [])
            if e["type"] != "Normal"
        }
    )
    return _clean(
        {
            "patient_id": meta.get("patient"),
            "age_years": _num(unit.get("age_years")),
            "sex": unit.get("sex"),
            "chest_location": (
                f"{unit['body_site']} chest" if unit.get("body_site") else None
            ),
            "sound_class": SOUND_CLASS_TEXT.get(str(unit.get("sound_class"))),
            "events": events,
        }
    )


@register_facts("hf_lung", ("cas", "das"))
def hf_lung_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an HF_Lung V1 recording (adventitious sounds from its event labels)."""
    return _clean(
        {
            "cas": _present(unit.get("has_wheezes")),
            "das": _present(unit.get("has_crackles")),
        }
    )


@register_facts("respiratory_tr", ("copd_severity",))
def respiratory_tr_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a Respiratory@TR lung-sound channel."""
    site = str(unit.get("body_site") or "")
    return _clean(
        {
            "patient_id": meta.get("patient"),
            "chest_location": (
                f"{'left' if site[:1] == 'L' else 'right'} chest (channel {site[1:]})"
                if len(site) == 2
                else None
            ),
            "copd_severity": unit.get("diagnosis"),
        }
    )


COUGHVID_STATUS = {
    "healthy": "negative (healthy)",
    "COVID-19": "positive (self-reported)",
    "symptomatic": "symptomatic (no COVID-19 reported)",
}


@register_facts("coughvid", ("covid_status", "sex"))
def coughvid_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a CoughVID cough recording (self-reported metadata)."""
    symptoms = [
        text
        for key, text in (
            ("respiratory_condition", "a respiratory condition"),
            ("fever_muscle_pain", "fever or muscle pain"),
        )
        if _yes_no(meta.get(key)) == "yes"
    ]
    return _clean(
        {
            "participant_id": meta.get("uuid"),
            "recording_type": "cough",
            "age_years": _num(unit.get("age_years"), 0),
            "sex": unit.get("sex"),
            "covid_status": COUGHVID_STATUS.get(str(unit.get("covid_status"))),
            "symptoms": symptoms,
        }
    )


@register_facts("uk_covid19", ("covid_status",))
def uk_covid19_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a UK COVID-19 Vocal Audio recording."""
    result = unit.get("covid_status")
    return _clean(
        {
            "participant_id": meta.get("participant_identifier"),
            "recording_type": RECORDING_TEXT.get(str(unit.get("recording_type"))),
            "sex": unit.get("sex"),
            "covid_status": None if _missing(result) else f"{result} (test)",
        }
    )


@register_facts("nosemic", ("respiratory_rate",))
def nosemic_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a NoseMic nasal-breathing recording."""
    return _clean(
        {
            "participant_id": meta.get("user"),
            "recording_type": "nasal breathing",
            "respiratory_rate": _num(unit.get("respiratory_rate")),
        }
    )


@register_facts("mmlung", ("fvc_l", "fev1_l", "fev1_fvc"))
def mmlung_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an MMlung recording with its participant's spirometry."""
    return _clean(
        {
            "participant_id": meta.get("participant"),
            "recording_type": RECORDING_TEXT.get(str(unit.get("recording_type"))),
            "fvc_l": _num(unit.get("fvc_l"), 2),
            "fev1_l": _num(unit.get("fev1_l"), 2),
            "fev1_fvc": _num(unit.get("fev1_fvc"), 2),
        }
    )


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
