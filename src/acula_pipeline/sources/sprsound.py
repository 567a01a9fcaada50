"""SPRSound (SJTU paediatric respiratory sounds): per-recording JSON annotations."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, audio_files, recording_row, register
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
)

RECORD_CLASSES = frozenset({"Normal", "CAS", "DAS", "CAS & DAS", "Poor Quality"})
EVENTS = frozenset(
    {
        "Normal",
        "Rhonchi",
        "Wheeze",
        "Stridor",
        "Coarse Crackle",
        "Fine Crackle",
        "Wheeze & Crackle",
    }
)
CAS_EVENTS = frozenset({"Rhonchi", "Wheeze", "Stridor", "Wheeze & Crackle"})
DAS_EVENTS = frozenset({"Coarse Crackle", "Fine Crackle", "Wheeze & Crackle"})
NAME = re.compile(
    r"^(?P<patient>\d+)_(?P<age>\d+(?:\.\d+)?)_(?P<gender>[01])_(?P<loc>p[1-4])_"
    r"(?P<n>\d+)$"
)
LOCATIONS = {
    "p1": "left posterior",
    "p2": "left lateral",
    "p3": "right posterior",
    "p4": "right lateral",
}


def parse_annotation(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The record class and events of a SPRSound ``.json``.

    The key is ``record_annotation`` (the dataset's README says
    ``recording_annotation``; both are accepted) and event times are strings in ms.

    Raises:
        ValueError: naming the file and what is wrong.
    """
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name}: expected a JSON object")
    record = doc.get("record_annotation", doc.get("recording_annotation"))
    if record not in RECORD_CLASSES:
        raise ValueError(
            f"{path.name}: record_annotation {record!r}; expected one of "
            f"{sorted(RECORD_CLASSES)}"
        )
    events = []
    for k, ev in enumerate(doc.get("event_annotation") or []):
        try:
            start, end = float(str(ev["start"])), float(str(ev["end"]))
            kind = str(ev["type"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{path.name}: event {k} needs start/end (ms) and type ({exc})"
            ) from exc
        if kind not in EVENTS or not 0 <= start < end:
            raise ValueError(
                f"{path.name}: event {k}: type {kind!r}, {start}-{end} ms; expected "
                f"one of {sorted(EVENTS)} with 0 <= start < end"
            )
        events.append({"start_ms": start, "end_ms": end, "type": kind})
    return str(record), events


@register("sprsound", {"sound_class": RECORD_CLASSES})
def scan_sprsound(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a SPRSound copy: each ``.wav`` with the same-stem ``.json``, wherever it
    is (the release keeps ``train_wav/`` and ``train_json/`` apart)."""
    scan = SourceScan()
    wavs = audio_files(root)
    stems = {w.stem for w in wavs}
    annotations: dict[str, Path] = {}
    for js in sorted(root.rglob("*.json")):
        if js.stem not in stems:
            scan.reject(dataset, js, "annotation without a matching .wav")
        elif js.stem in annotations:
            scan.reject(
                dataset,
                js,
                f"a second annotation for {js.stem} (first: {annotations[js.stem]})",
            )
        else:
            annotations[js.stem] = js
    for wav in wavs:
        m = NAME.match(wav.stem)
        if m is None:
            scan.reject(
                dataset,
                wav,
                "file name does not follow {patient}_{age}_{gender 0|1}_{p1-p4}_{n}",
            )
            continue
        try:
            record, events = parse_annotation(
                annotations.get(wav.stem, wav.with_suffix(".json"))
            )
        except FileNotFoundError:
            scan.reject(dataset, wav, f"annotation {wav.stem}.json is missing")
            continue
        except ValueError as exc:
            scan.reject(dataset, wav, str(exc))
            continue
        kinds = {e["type"] for e in events}
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.stem}",
            subject_id=f"{dataset}:{m['patient']}",
            modality="lung",
            body_site=LOCATIONS[m["loc"]],
            device=None,
            is_synthetic=is_synthetic,
            metadata={
                "patient": m["patient"],
                "location": m["loc"],
                "record_annotation": record,
                "events": events,
                "n_events": len(events),
            },
            labels={
                "sound_class": record,
                "has_crackles": bool(kinds & DAS_EVENTS),
                "has_wheezes": bool(kinds & CAS_EVENTS),
                "sex": "male" if m["gender"] == "0" else "female",
                "age_years": float(m["age"]),
            },
        )
    return scan


# ---------------------------------------------------------------- vocabulary

SOUND_CLASS = Fact(
    "label",
    {
        "Normal": Value("normal (no adventitious sounds)"),
        "CAS": Value("continuous adventitious sounds (CAS)"),
        "DAS": Value("discontinuous adventitious sounds (DAS)"),
        "CAS & DAS": Value(
            "continuous and discontinuous adventitious sounds (CAS and DAS)"
        ),
        "Poor Quality": Value("poor quality (not assessable)"),
    },
)
VOCABULARY = {
    "sound_class": SOUND_CLASS,
    "events": TEXT,
    "age_years": AGE_YEARS,
    "sex": SEX,
    "chest_location": TEXT,
    "patient_id": TEXT,
}


@register_vocabulary("sprsound", ("sound_class",), VOCABULARY)
def sprsound_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a SPRSound paediatric lung-sound recording."""
    events = sorted(
        {
            str(e["type"]).lower()
            for e in meta.get("events", [])
            if e["type"] != "Normal"
        }
    )
    return clean(
        {
            "patient_id": meta.get("patient"),
            "age_years": num(unit.get("age_years")),
            "sex": unit.get("sex"),
            "chest_location": (
                f"{unit['body_site']} chest" if unit.get("body_site") else None
            ),
            "sound_class": SOUND_CLASS.text(unit.get("sound_class")),
            "events": events,
        }
    )
