"""CoughVID: crowdsourced cough recordings in browser formats (WebM, Ogg)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceScan,
    audio_files,
    first_listings,
    nan_to_none,
    read_table,
    recording_row,
    register,
    require_columns,
    to_float,
)
from acula_pipeline.sources.vocab import (
    AGE_YEARS,
    SEX,
    TEXT,
    Fact,
    Facts,
    Value,
    clean,
    num,
    register_vocabulary,
    yes_no,
)

STATUS = frozenset({"healthy", "symptomatic", "COVID-19"})
SEXES = {"male": "male", "female": "female", "other": "other"}
SUFFIXES = (".webm", ".ogg", ".wav")
META_FIELDS = ("uuid", "cough_detected", "age", "gender", "status")


def _from_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: invalid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path.name}: expected a JSON object")
    return {k: "" if v is None else str(v) for k, v in meta.items()}


def _age(value: str | None) -> float | None:
    # Free-entry ages; anything that is not a number stays only in the metadata.
    try:
        return to_float(value)
    except ValueError:
        return None


def _label_error(meta: dict[str, Any]) -> str | None:
    status = nan_to_none(meta.get("status"))
    if status is not None and status not in STATUS:
        return f"unknown status {status!r}; expected one of {sorted(STATUS)}"
    detected = meta.get("cough_detected")
    try:
        p = to_float(detected)
    except ValueError:
        return f"cough_detected {detected!r} is not a number"
    if p is not None and not 0.0 <= p <= 1.0:
        return f"cough_detected {detected!r} is outside 0–1"
    return None


@register("coughvid", {"covid_status": STATUS})
def scan_coughvid(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a CoughVID copy: ``public_dataset/{uuid}.webm|.ogg`` with metadata.

    Labels come from ``metadata_compiled.csv``, else from the file's ``{uuid}.json``.
    Each uuid is one submission, and CoughVID has no user identifiers, so each
    recording is its own subject.
    """
    scan = SourceScan()
    data = root / "public_dataset" if (root / "public_dataset").is_dir() else root
    table: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, str] = {}
    compiled = next(iter(sorted(root.rglob("metadata_compiled.csv"))), None)
    if compiled is not None:
        rows = read_table(compiled)
        require_columns(rows, compiled, META_FIELDS)
        listings = []
        for n, r in enumerate(rows.to_dict("records"), start=2):
            if not r["uuid"]:
                scan.reject(
                    dataset,
                    compiled,
                    f"line {n}: no uuid",
                    record=f"{compiled.name} line {n}",
                )
                continue
            listings.append((r["uuid"], f"{compiled.name} line {n}", r))
        table, conflicts = first_listings(listings)
    found: set[str] = set()
    for audio in audio_files(data, SUFFIXES):
        uuid = audio.stem
        found.add(uuid)
        if uuid in conflicts:
            scan.reject(dataset, audio, conflicts[uuid])
            continue
        try:
            meta = table.get(uuid) or _from_json(audio.with_suffix(".json"))
        except FileNotFoundError:
            scan.reject(
                dataset, audio, "no row in metadata_compiled.csv and no .json beside it"
            )
            continue
        except ValueError as exc:
            scan.reject(dataset, audio, str(exc))
            continue
        if problem := _label_error(meta):
            scan.reject(dataset, audio, problem)
            continue
        clean = {k: nan_to_none(str(v)) for k, v in meta.items()}
        recording_row(
            scan,
            dataset=dataset,
            path=audio,
            recording_id=f"{dataset}/{uuid}",
            subject_id=f"{dataset}:{uuid}",
            modality="cough",
            body_site=None,
            device=None,
            is_synthetic=is_synthetic,
            metadata=clean | {"format": audio.suffix.lstrip(".")},
            labels={
                "covid_status": clean.get("status"),
                "sex": SEXES.get((clean.get("gender") or "").lower()),
                "age_years": _age(clean.get("age")),
                "recording_type": "cough",
            },
        )
    for uuid in sorted(set(table) - found):
        scan.reject(
            dataset,
            data / uuid,
            "listed in metadata_compiled.csv but no .webm/.ogg/.wav file",
            record=uuid,
        )
    return scan


# ---------------------------------------------------------------- vocabulary

COVID = Fact(
    "label",
    {
        "healthy": Value("negative (healthy)"),
        "COVID-19": Value("positive (self-reported)"),
        "symptomatic": Value("symptomatic (no COVID-19 reported)"),
    },
)
VOCABULARY = {
    "covid_status": COVID,
    "sex": SEX,
    "age_years": AGE_YEARS,
    "recording_type": TEXT,
    "symptoms": TEXT,
    "participant_id": TEXT,
}


@register_vocabulary("coughvid", ("covid_status", "sex"), VOCABULARY)
def coughvid_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a CoughVID cough recording (self-reported metadata)."""
    symptoms = [
        text
        for key, text in (
            ("respiratory_condition", "a respiratory condition"),
            ("fever_muscle_pain", "fever or muscle pain"),
        )
        if yes_no(meta.get(key)) == "yes"
    ]
    return clean(
        {
            "participant_id": meta.get("uuid"),
            "recording_type": "cough",
            "age_years": num(unit.get("age_years"), 0),
            "sex": unit.get("sex"),
            "covid_status": COVID.text(unit.get("covid_status")),
            "symptoms": symptoms,
        }
    )
