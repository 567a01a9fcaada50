"""RespiratoryDatabase@TR: 12-channel lung sounds of COPD patients, severity 0–4."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    audio_files,
    read_table,
    recording_row,
    register,
    require_columns,
)
from acula_pipeline.sources.vocab import (
    TEXT,
    Fact,
    Facts,
    Value,
    clean,
    register_vocabulary,
)

SEVERITIES = frozenset(f"COPD{k}" for k in range(5))
NAME = re.compile(r"^(?P<patient>[A-Za-z0-9]+)_(?P<site>[LR][1-6])$")


@register("respiratory_tr", {"diagnosis": SEVERITIES})
def scan_respiratory_tr(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a Respiratory@TR copy: ``{patient}_{L|R}{1-6}.wav`` and ``Labels.csv``.

    ``Labels.csv`` starts with a byte-order mark and ends each line with a comma
    (``Patient ID,Diagnosis,``); both are handled.
    """
    scan = SourceScan()
    hits = sorted(root.rglob("Labels.csv"))
    if not hits:
        raise SourceError(f"Respiratory@TR: Labels.csv not found under {root}")
    labels_path = hits[0]
    table = read_table(labels_path)
    require_columns(table, labels_path, ("Patient ID", "Diagnosis"))
    severity: dict[str, str] = {}
    for n, row in enumerate(table.to_dict("records"), start=2):
        if row["Diagnosis"] not in SEVERITIES:
            scan.reject(
                dataset,
                labels_path,
                f"line {n}: diagnosis {row['Diagnosis']!r} for patient "
                f"{row['Patient ID']!r}; expected one of {sorted(SEVERITIES)}",
                record=f"patient {row['Patient ID']}",
            )
            continue
        severity[row["Patient ID"]] = row["Diagnosis"]
    for wav in audio_files(root):
        m = NAME.match(wav.stem)
        if m is None:
            scan.reject(dataset, wav, "file name does not follow {patient}_{L|R}{1-6}")
            continue
        if m["patient"] not in severity:
            scan.reject(
                dataset,
                wav,
                f"patient {m['patient']} has no valid diagnosis in {labels_path.name}",
            )
            continue
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.stem}",
            subject_id=f"{dataset}:{m['patient']}",
            modality="lung",
            body_site=m["site"],
            device=None,
            is_synthetic=is_synthetic,
            metadata={
                "patient": m["patient"],
                "channel": m["site"],
                "copd_severity": severity[m["patient"]],
            },
            labels={"diagnosis": severity[m["patient"]]},
        )
    return scan


# ---------------------------------------------------------------- vocabulary

VOCABULARY = {
    "copd_severity": Fact("grade", {v: Value(v) for v in sorted(SEVERITIES)}),
    "chest_location": TEXT,
    "patient_id": TEXT,
}


@register_vocabulary("respiratory_tr", ("copd_severity",), VOCABULARY)
def respiratory_tr_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a Respiratory@TR lung-sound channel."""
    site = str(unit.get("body_site") or "")
    return clean(
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
