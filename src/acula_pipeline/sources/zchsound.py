"""ZCHSound (Zhejiang Children's Hospital paediatric heart sounds)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    audio_files,
    first_listings,
    index_by_name,
    read_table,
    recording_row,
    register,
    require_columns,
)
from acula_pipeline.sources.vocab import (
    Fact,
    Facts,
    Value,
    clean,
    register_vocabulary,
)

DIAGNOSES = frozenset({"NORMAL", "ASD", "PDA", "PFO", "VSD"})


def _is_details(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        return "filename" in fh.readline().lower()


@register("zchsound", {"diagnosis": DIAGNOSES})
def scan_zchsound(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a ZCHSound copy: the clean and noisy subsets' details CSVs
    (semicolon-separated, ``fileName;diagnosis;…``) and the ``.wav`` files they name.

    ZCHSound gives one recording per child, so each file is its own subject.
    """
    scan = SourceScan()
    tables = [p for p in sorted(root.rglob("*.csv")) if _is_details(p)]
    if not tables:
        raise SourceError(
            f"ZCHSound: no details CSV with a fileName column under {root}"
        )
    files, ambiguous = index_by_name(audio_files(root), dataset, scan)
    listings: list[tuple[str, str, dict]] = []
    origin: dict[str, tuple[Path, int]] = {}  # the first listing's table and line
    for table_path in tables:
        table = read_table(table_path, sep=";")
        require_columns(table, table_path, ("fileName", "diagnosis"))
        for n, row in enumerate(table.to_dict("records"), start=2):
            name = row["fileName"]
            if not name.lower().endswith(".wav"):
                name += ".wav"
            values = {k: v for k, v in row.items() if k != "fileName"}
            listings.append((name, f"{table_path.name} line {n}", values))
            origin.setdefault(name, (table_path, n))
    entries, conflicts = first_listings(listings)
    listed = set(entries)
    for name, row in entries.items():
        table_path, n = origin[name]
        subset = "noisy" if "noisy" in table_path.stem.lower() else "clean"
        path = files.get(name, table_path.parent / name)
        if name in ambiguous:
            continue  # quarantined by index_by_name, every copy
        if name in conflicts:
            scan.reject(dataset, path, conflicts[name])
            continue
        diagnosis = row["diagnosis"].upper()
        if diagnosis not in DIAGNOSES:
            scan.reject(
                dataset,
                path,
                f"{table_path.name} line {n}: diagnosis {row['diagnosis']!r}; "
                f"expected one of {sorted(DIAGNOSES)}",
            )
            continue
        if name not in files:
            scan.reject(dataset, path, f"listed in {table_path.name} but missing")
            continue
        extra = {k: v for k, v in row.items() if k != "diagnosis"}
        recording_row(
            scan,
            dataset=dataset,
            path=path,
            recording_id=f"{dataset}/{Path(name).stem}",
            subject_id=f"{dataset}:{Path(name).stem}",
            modality="heart",
            body_site=None,
            device=None,
            is_synthetic=is_synthetic,
            metadata=extra | {"subset": subset, "diagnosis": diagnosis},
            labels={"diagnosis": diagnosis},
        )
    for name, path in sorted(files.items()):
        if name not in listed:
            scan.reject(dataset, path, "recording not listed in any details CSV")
    return scan


# ---------------------------------------------------------------- vocabulary

DEFECT = Fact(
    "label",
    {
        "NORMAL": Value("no defect (normal)"),
        "ASD": Value("atrial septal defect (ASD)", r"\batrial septal defect|\basd\b"),
        "PDA": Value(
            "patent ductus arteriosus (PDA)", r"\bpatent ductus arteriosus|\bpda\b"
        ),
        "PFO": Value("patent foramen ovale (PFO)", r"\bpatent foramen ovale|\bpfo\b"),
        "VSD": Value(
            "ventricular septal defect (VSD)", r"\bventricular septal defect|\bvsd\b"
        ),
    },
)
VOCABULARY = {"congenital_defect": DEFECT}


@register_vocabulary("zchsound", ("congenital_defect",), VOCABULARY)
def zchsound_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a ZCHSound paediatric heart-sound recording."""
    return clean({"congenital_defect": DEFECT.text(unit.get("diagnosis"))})
