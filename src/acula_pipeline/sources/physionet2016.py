"""PhysioNet/CinC Challenge 2016 heart sounds (``training-a`` … ``training-f``)."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    first_listings,
    recording_row,
    register,
)
from acula_pipeline.sources.vocab import (
    Fact,
    Facts,
    Value,
    clean,
    missing,
    register_vocabulary,
)

# REFERENCE.csv: 1 = abnormal, -1 = normal (not 1/0).
LABELS = {"1": "Abnormal", "-1": "Normal"}
FOLDER = re.compile(r"^training-[a-z]$")


def read_reference(
    path: Path, dataset: str, scan: SourceScan
) -> tuple[dict[str, dict], dict[str, str]]:
    """``name,label[,quality]`` rows of one folder's ``REFERENCE.csv``, and the names
    listed twice with different rows (:func:`first_listings`)."""
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if len(cells) not in (2, 3) or cells[1] not in LABELS:
                scan.reject(
                    dataset,
                    path,
                    f"line {n}: expected 'name,label' with label 1 (abnormal) or -1 "
                    f"(normal), got {','.join(cells)!r}",
                    record=f"line {n}",
                )
                continue
            values = {
                "label": cells[1],
                "quality": cells[2] if len(cells) == 3 else None,
            }
            rows.append((cells[0], f"{path.parent.name}/{path.name} line {n}", values))
    return first_listings(rows)


@register("physionet2016", {"diagnosis": frozenset(LABELS.values())})
def scan_physionet2016(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a PhysioNet 2016 copy: one row per record, normal/abnormal per record.

    The challenge publishes no patient identifiers, so each record is its own subject:
    splits are record-disjoint, not patient-disjoint (a few patients gave several).
    """
    scan = SourceScan()
    folders = sorted(
        p for p in root.rglob("training-*") if p.is_dir() and FOLDER.match(p.name)
    )
    if not folders and (root / "REFERENCE.csv").exists():
        folders = [root]
    if not folders:
        raise SourceError(
            f"PhysioNet 2016: no training-a … training-f folder under {root}"
        )
    for folder in folders:
        ref_path = folder / "REFERENCE.csv"
        wavs = sorted(folder.glob("*.wav"))
        if not ref_path.exists():
            for wav in wavs:
                scan.reject(dataset, wav, f"{folder.name} has no REFERENCE.csv")
            continue
        ref, conflicts = read_reference(ref_path, dataset, scan)
        on_disk = {w.stem for w in wavs}
        for name in sorted(set(ref) - on_disk):
            scan.reject(
                dataset,
                folder / f"{name}.wav",
                f"listed in {folder.name}/REFERENCE.csv but missing",
            )
        for wav in wavs:
            if wav.stem not in ref:
                scan.reject(
                    dataset, wav, f"no valid label in {folder.name}/REFERENCE.csv"
                )
                continue
            if wav.stem in conflicts:
                scan.reject(dataset, wav, conflicts[wav.stem])
                continue
            entry = ref[wav.stem]
            recording_row(
                scan,
                dataset=dataset,
                path=wav,
                recording_id=f"{dataset}/{wav.stem}",
                subject_id=f"{dataset}:{wav.stem}",
                modality="heart",
                body_site=None,
                device=None,
                is_synthetic=is_synthetic,
                metadata={
                    "record": wav.stem,
                    "database": folder.name,
                    "heart_sounds": LABELS[entry["label"]],
                    "signal_quality": entry["quality"],
                    "has_header": wav.with_suffix(".hea").exists(),
                },
                labels={"diagnosis": LABELS[entry["label"]]},
            )
    return scan


# ---------------------------------------------------------------- vocabulary

VOCABULARY = {
    "heart_sounds": Fact("label", {v: Value(v.lower()) for v in LABELS.values()}),
}


@register_vocabulary("physionet2016", ("heart_sounds",), VOCABULARY)
def physionet2016_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a PhysioNet 2016 heart-sound record."""
    dx = unit.get("diagnosis")
    return clean({"heart_sounds": None if missing(dx) else str(dx).lower()})
