"""Project Coswara: per-participant breathing, cough and voice recordings."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, recording_row, register
from acula_pipeline.sources.vocab import (
    AGE_YEARS,
    SEX,
    TEXT,
    YES_NO,
    Fact,
    Facts,
    Value,
    clean,
    missing,
    num,
    register_vocabulary,
    yes_no,
)

FILES = {
    "breathing-deep": "breath",
    "breathing-shallow": "breath",
    "cough-heavy": "cough",
    "cough-shallow": "cough",
    "counting-fast": "voice",
    "counting-normal": "voice",
    "vowel-a": "voice",
    "vowel-e": "voice",
    "vowel-o": "voice",
}
# ---------------------------------------------------------------- vocabulary

RECORDING = Fact(
    "text",
    {
        "breathing-deep": Value("deep breathing"),
        "breathing-shallow": Value("shallow breathing"),
        "cough-heavy": Value("heavy cough"),
        "cough-shallow": Value("shallow cough"),
        "counting-fast": Value("fast counting"),
        "counting-normal": Value("normal-paced counting"),
        "vowel-a": Value("sustained vowel /a/"),
        "vowel-e": Value("sustained vowel /e/"),
        "vowel-o": Value("sustained vowel /o/"),
    },
)
COVID = Fact(
    "label",
    {
        "healthy": Value("negative (healthy)"),
        "positive_mild": Value("positive, mild"),
        "positive_moderate": Value("positive, moderate"),
        "positive_asymp": Value("positive, asymptomatic"),
        "resp_illness_not_identified": Value(
            "negative (respiratory illness, not COVID-19)"
        ),
        "no_resp_illness_exposed": Value("negative (exposed, no respiratory illness)"),
        "recovered_full": Value("fully recovered"),
        "under_validation": Value("under validation"),
    },
)
SYMPTOM = Fact(
    "label",
    {
        "cough": Value("cough"),
        "fever": Value("fever"),
        "cld": Value("chronic lung disease"),
        "st": Value("sore throat"),
        "bd": Value("breathing difficulty"),
        "mp": Value("muscle pain"),
        "ftg": Value("fatigue"),
        "loss_of_smell": Value("loss of smell"),
        "diarrhoea": Value("diarrhoea"),
        "asthma": Value("asthma"),
        "cold": Value("cold"),
        "diabetes": Value("diabetes"),
        "ht": Value("hypertension"),
        "ihd": Value("ischaemic heart disease"),
        "pneumonia": Value("pneumonia"),
    },
)
VOCABULARY = {
    "recording_type": RECORDING,
    "covid_status": COVID,
    "symptoms": SYMPTOM,
    "smoker": YES_NO,
    "sex": SEX,
    "age_years": AGE_YEARS,
    **dict.fromkeys(
        ("participant_id", "record_date", "country", "state", "locality"), TEXT
    ),
}

COVID_STATUS = frozenset(COVID.values)
GENDERS = frozenset({"male", "female", "other"})
SYMPTOMS = tuple(SYMPTOM.values)
BATCH = re.compile(r"^\d{8}$")


def truthy(value: Any) -> bool:
    """Coswara flags are ``True``/``y``/empty (missing means no)."""
    return str(value).strip().lower() in ("true", "y", "yes", "1")


def _quality_labels(root: Path, dataset: str, scan: SourceScan) -> dict[str, int]:
    labels = {}
    for path in sorted((root / "annotations").glob("*_labels.csv")):
        with path.open(newline="") as fh:
            # Line 1 is the header "FILENAME, QUALITY" (a space after the comma).
            for n, row in enumerate(csv.DictReader(fh, skipinitialspace=True), start=2):
                name = (row.get("FILENAME") or "").strip()
                quality = (row.get("QUALITY") or "").strip()
                if not name or quality not in ("0", "1", "2"):
                    scan.reject(
                        dataset,
                        path,
                        f"line {n}: expected '<participant>_<recording>,<0|1|2>', "
                        f"got FILENAME={name!r} QUALITY={quality!r}",
                        record=f"line {n}",
                    )
                    continue
                labels[name] = int(quality)
    return labels


def _batch_rows(batch_dir: Path) -> dict[str, dict]:
    path = batch_dir / f"{batch_dir.name}.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh) if r.get("id")}


def _metadata(folder: Path, csv_row: dict | None) -> dict[str, Any]:
    meta_file = folder / "metadata.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"Coswara {meta_file}: invalid JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise ValueError(f"Coswara {meta_file}: expected a JSON object")
        return meta
    if csv_row is not None:
        return {k: v for k, v in csv_row.items() if v not in ("", None)}
    raise ValueError(
        f"Coswara participant {folder.name}: no metadata.json and no row in "
        f"{folder.parent.name}.csv"
    )


def _age(value: Any) -> float | None:
    # Ages are free-entry numbers; anything else stays only in the raw metadata.
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _label_error(meta: dict[str, Any]) -> str | None:
    status = meta.get("covid_status")
    if status not in COVID_STATUS:
        return (
            f"unknown covid_status {status!r}; expected one of {sorted(COVID_STATUS)}"
        )
    if meta.get("g") not in GENDERS:
        return (
            f"unknown gender 'g' {meta.get('g')!r}; expected one of {sorted(GENDERS)}"
        )
    return None


@register("coswara", {"covid_status": COVID_STATUS})
def scan_coswara(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a Coswara copy: one row per audio file, labels from the participant's metadata."""
    scan = SourceScan()
    quality = _quality_labels(root, dataset, scan)
    for batch_dir in sorted(
        p for p in root.iterdir() if p.is_dir() and BATCH.match(p.name)
    ):
        rows = _batch_rows(batch_dir)
        for folder in sorted(p for p in batch_dir.iterdir() if p.is_dir()):
            pid = folder.name
            wavs = sorted(folder.glob("*.wav"))
            try:
                meta = _metadata(folder, rows.get(pid))
                problem = _label_error(meta)
            except ValueError as exc:
                meta, problem = {}, str(exc)
            if problem:
                for wav in wavs:
                    scan.reject(dataset, wav, f"participant {pid}: {problem}")
                if not wavs:
                    scan.reject(dataset, folder, f"participant {pid}: {problem}")
                continue
            symptoms = sorted({s for s in SYMPTOMS if truthy(meta.get(s, ""))})
            for other in sorted(folder.iterdir()):
                if other.suffix != ".wav" and other.name != "metadata.json":
                    scan.reject(dataset, other, "unexpected file in participant folder")
            for wav in wavs:
                if wav.stem not in FILES:
                    scan.reject(
                        dataset,
                        wav,
                        f"unknown recording name {wav.stem!r}; expected "
                        f"one of {sorted(FILES)}",
                    )
                    continue
                recording_row(
                    scan,
                    dataset=dataset,
                    path=wav,
                    recording_id=f"{dataset}/{pid}/{wav.stem}",
                    subject_id=f"{dataset}:{pid}",
                    modality=FILES[wav.stem],
                    body_site=None,
                    device=meta.get("dT"),
                    is_synthetic=is_synthetic,
                    metadata=meta | {"batch": batch_dir.name, "recording": wav.stem},
                    labels={
                        "covid_status": meta["covid_status"],
                        "sex": meta["g"],
                        "age_years": _age(meta.get("a")),
                        "smoker": truthy(meta.get("smoker", "")),
                        "symptoms": ",".join(symptoms),
                        "audio_quality_label": quality.get(f"{pid}_{wav.stem}"),
                        "recording_type": wav.stem,
                    },
                )
    return scan


@register_vocabulary("coswara", ("covid_status", "smoker", "sex"), VOCABULARY)
def coswara_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a Coswara breathing, cough or voice recording."""
    symptoms = unit.get("symptoms")
    facts: Facts = {
        "participant_id": meta.get("id"),
        "record_date": meta.get("record_date") or meta.get("batch"),
        "country": meta.get("l_c"),
        "state": meta.get("l_s"),
        "locality": meta.get("l_l"),
        "recording_type": RECORDING.text(meta.get("recording")),
        "age_years": num(unit.get("age_years"), 0),
        "sex": unit.get("sex"),
        "covid_status": COVID.text(unit.get("covid_status")),
        "smoker": yes_no(unit.get("smoker")),
        "symptoms": (
            [SYMPTOM.text(s) or s for s in str(symptoms).split(",") if s]
            if not missing(symptoms)
            else None
        ),
    }
    return clean(facts)
