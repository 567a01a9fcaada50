"""MMlung: phone recordings with spirometry (FVC, FEV1, FEV1/FVC) per participant."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    add_listed_recordings,
    inside_root,
    participant_listing,
    read_table,
    register,
    require_columns,
    to_float,
)
from acula_pipeline.sources.vocab import (
    TEXT,
    Fact,
    Facts,
    Value,
    clean,
    num,
    register_vocabulary,
)

# Spreadsheet column of each recording type and its modality.
RECORDINGS = {
    "Deep_Breath_file": ("deep_breath", "breath"),
    "O_Single_file": ("vowel_o", "voice"),
}
TARGETS = {"FVC": "fvc_l", "FEV1": "fev1_l", "FEV1/FVC": "fev1_fvc"}
ID_COLUMNS = ("ID", "Participant ID", "participant_id", "Participant", "Subject")
SHEETS = ("All_path.xlsx", "All_path.csv")


def read_sheet(path: Path) -> pd.DataFrame:
    """The path/spirometry sheet as strings (``.xlsx`` through openpyxl, or ``.csv``).

    Raises:
        SourceError: The file cannot be read, naming it.
    """
    if path.suffix == ".csv":
        return read_table(path)
    try:
        table = pd.read_excel(path, dtype=str, keep_default_na=False)
    except ImportError as exc:
        raise SourceError(
            f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or save "
            "the sheet as All_path.csv beside it"
        ) from exc
    except (ValueError, OSError, KeyError) as exc:
        raise SourceError(f"{path}: cannot read the spreadsheet ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table.apply(lambda col: col.astype(str).str.strip())


@register("mmlung")
def scan_mmlung(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read an MMlung copy: ``All_path.xlsx`` naming each participant's deep-breath
    and vowel-"o" recordings (paths relative to the dataset root) and spirometry.

    The participant is the sheet's ID column when it has one, else the row.
    """
    scan = SourceScan()
    sheet = next((root / n for n in SHEETS if (root / n).exists()), None)
    if sheet is None:
        raise SourceError(f"MMlung: none of {SHEETS} in {root}")
    table = read_sheet(sheet)
    require_columns(table, sheet, tuple(TARGETS))
    columns = [c for c in RECORDINGS if c in table.columns]
    if not columns:
        raise SourceError(f"{sheet}: none of the path columns {sorted(RECORDINGS)}")
    id_col = next((c for c in ID_COLUMNS if c in table.columns), None)
    listed: list[tuple[str, str, dict[str, Any]]] = []
    for n, row in enumerate(table.to_dict("records"), start=2):
        pid = row[id_col] if id_col else f"row{n:04d}"
        if not any(row[c] for c in columns):
            scan.reject(
                dataset,
                sheet,
                f"{sheet.name} line {n}: no recording path in {columns}",
                record=f"participant {pid}",
            )
            continue
        try:
            values = {TARGETS[k]: to_float(row[k]) for k in TARGETS}
        except ValueError:
            values = {}
        if len(values) != len(TARGETS) or any(
            v is None or v <= 0 for v in values.values()
        ):
            for col in (c for c in columns if row[c]):
                scan.reject(
                    dataset,
                    root / row[col],
                    f"{sheet.name} line {n}: spirometry "
                    f"{ {k: row[k] for k in TARGETS} } is not three positive numbers",
                    record=f"participant {pid}",
                )
            continue
        for col in columns:
            if not row[col]:
                continue
            kind, modality = RECORDINGS[col]
            path = inside_root(root, row[col])
            if path is None:
                scan.reject(
                    dataset,
                    row[col],
                    f"{sheet.name} line {n}: {row[col]!r} is outside the dataset "
                    f"root {root}",
                    record=f"participant {pid}",
                )
                continue
            if not path.is_file():
                scan.reject(
                    dataset,
                    root / row[col],
                    f"listed in {sheet.name} line {n} but missing",
                )
                continue
            listed.append(
                participant_listing(
                    dataset,
                    pid,
                    kind,
                    f"{sheet.name} line {n}",
                    path=path,
                    modality=modality,
                    device="smartphone",
                    is_synthetic=is_synthetic,
                    metadata={"participant": pid, "recording": kind, **values},
                    labels=values | {"recording_type": kind},
                )
            )
    add_listed_recordings(scan, dataset, listed)
    return scan


# ---------------------------------------------------------------- vocabulary

RECORDING = Fact(
    "text",
    {"deep_breath": Value("deep breathing"), "vowel_o": Value("sustained vowel /o/")},
)
VOCABULARY = {
    # "FVC 3.2 L"; not the FVC of "FEV1/FVC"
    "fvc_l": Fact("number", tol=0.005, read=r"(?<!/)(?<!/ )\bfvc"),
    "fev1_l": Fact("number", tol=0.005, read=r"\bfev1(?!\s*/)"),
    "fev1_fvc": Fact("number", tol=0.005, read=r"\bfev1\s*/\s*fvc", percent=True),
    "recording_type": RECORDING,
    "participant_id": TEXT,
}


@register_vocabulary("mmlung", ("fvc_l", "fev1_l", "fev1_fvc"), VOCABULARY)
def mmlung_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an MMlung recording with its participant's spirometry."""
    return clean(
        {
            "participant_id": meta.get("participant"),
            "recording_type": RECORDING.text(unit.get("recording_type")),
            "fvc_l": num(unit.get("fvc_l"), 2),
            "fev1_l": num(unit.get("fev1_l"), 2),
            "fev1_fvc": num(unit.get("fev1_fvc"), 2),
        }
    )
