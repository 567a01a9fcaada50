"""The unified recordings schema, the adapter registry and quarantine rows."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from acula_pipeline.audio.io import AudioReadError, audio_info

RECORDING_COLUMNS = (
    "recording_id",
    "dataset",
    "adapter",
    "subject_id",
    "path",
    "modality",
    "body_site",
    "device",
    "sample_rate",
    "channels",
    "duration_s",
    "is_synthetic",
    "metadata",
)
# Label columns used by the evaluation tasks; a source fills the ones it has.
LABEL_COLUMNS = (
    "diagnosis",
    "has_crackles",
    "has_wheezes",
    "official_split",
    "murmur",
    "murmur_at_site",
    "outcome",
    "age_group",
    "covid_status",
    "smoker",
    "symptoms",
    "audio_quality_label",
    "sex",
    "age_years",
    "recording_type",  # the dataset's own name for the recording (cough-shallow, …)
    "sound_class",  # SPRSound's record annotation (Normal, CAS, DAS, …)
    "fvc_l",  # spirometry (MMlung), litres
    "fev1_l",
    "fev1_fvc",  # ratio 0–1
    "respiratory_rate",  # breaths per minute (NoseMic)
    "symptom_status",  # COVID-19 Sounds: symptomatic or asymptomatic
    "body_position",  # SSBPR: the sleeper's position while snoring
)
# What a numeric label can be; a value outside quarantines its recording (a
# Coswara age of -40 would otherwise reach the labels and the reports' facts).
LABEL_RANGES: dict[str, tuple[float, float]] = {
    "age_years": (0.0, 120.0),
    "fvc_l": (0.1, 10.0),
    "fev1_l": (0.1, 10.0),
    "fev1_fvc": (0.05, 1.0),
    "respiratory_rate": (1.0, 120.0),
}
QUARANTINE_COLUMNS = ("dataset", "path", "record", "stage", "reason")
CYCLE_COLUMNS = (
    "recording_id",
    "cycle_index",
    "start_s",
    "end_s",
    "crackles",
    "wheezes",
)


class SourceError(ValueError):
    """A source cannot be read at all (missing root, missing required file)."""


@dataclass
class SourceScan:
    """What one adapter found: recordings, annotated cycles and rejected inputs."""

    recordings: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)

    def reject(
        self, dataset: str, path: Path | str, reason: str, record: str = ""
    ) -> None:
        """Add a quarantine row for a file (or a record inside it)."""
        self.quarantine.append(
            {
                "dataset": dataset,
                "path": str(path),
                "record": record,
                "stage": "scan",
                "reason": reason,
            }
        )


Adapter = Callable[[Path, str, bool], SourceScan]
SOURCES: dict[str, Adapter] = {}
# adapter → label column → the values it may take (the validate stage checks them)
LABEL_VALUES: dict[str, dict[str, frozenset[str]]] = {}


def register(
    name: str, labels: dict[str, frozenset[str]] | None = None
) -> Callable[[Adapter], Adapter]:
    """Register an adapter under a source name (``ingest.sources.<name>``).

    Args:
        name: The adapter name.
        labels: Label column → allowed values, checked by the validate stage.
    """

    def deco(fn: Adapter) -> Adapter:
        SOURCES[name] = fn
        LABEL_VALUES[name] = dict(labels or {})
        return fn

    return deco


def scan_source(
    adapter: str, root: str | Path, dataset: str, is_synthetic: bool
) -> SourceScan:
    """Run a registered adapter on a folder.

    Args:
        adapter: Registered adapter name (``icbhi2017``, ``circor2022``, ``coswara``).
        root: The dataset's root folder as distributed.
        dataset: Value for the ``dataset`` column and the id prefixes.
        is_synthetic: Marks every row of this source.

    Raises:
        SourceError: Unknown adapter or missing root.
    """
    if adapter not in SOURCES:
        raise SourceError(
            f"unknown source adapter {adapter!r}; known: {sorted(SOURCES)}"
        )
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{dataset}: root folder {root} does not exist")
    scan = SOURCES[adapter](root, dataset, is_synthetic)
    # Downstream stages (reports) read a source's metadata schema by its adapter.
    for rec in scan.recordings:
        rec["adapter"] = adapter
    return scan


def recording_row(
    scan: SourceScan,
    *,
    dataset: str,
    path: Path,
    recording_id: str,
    subject_id: str,
    modality: str,
    body_site: str | None,
    device: str | None,
    is_synthetic: bool,
    metadata: dict[str, Any],
    labels: dict[str, Any],
) -> dict[str, Any] | None:
    """Build a unified row from header facts, or quarantine the file if unreadable
    or a numeric label is out of range (``LABEL_RANGES``; NaN is missing)."""
    for column, (lo, hi) in LABEL_RANGES.items():
        value = labels.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = math.nan
        if not lo <= x <= hi:
            scan.reject(
                dataset, path, f"{column} {value!r} is outside [{lo:g}, {hi:g}]"
            )
            return None
    try:
        info = audio_info(path)
    except AudioReadError as exc:
        scan.reject(dataset, path, str(exc))
        return None
    row = {
        "recording_id": recording_id,
        "dataset": dataset,
        "subject_id": subject_id,
        "path": str(path),
        "modality": modality,
        "body_site": body_site,
        "device": device,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "duration_s": info.duration_s,
        "is_synthetic": is_synthetic,
        "metadata": json.dumps(metadata, sort_keys=True, default=str),
    }
    row |= dict.fromkeys(LABEL_COLUMNS)
    unknown = set(labels) - set(LABEL_COLUMNS)
    if unknown:
        raise KeyError(f"label columns {sorted(unknown)} are not in LABEL_COLUMNS")
    row |= labels
    scan.recordings.append(row)
    return row


def nan_to_none(value: str | None) -> str | None:
    """Map the datasets' spellings of 'missing' (``nan``, ``NA``, empty) to ``None``."""
    if value is None:
        return None
    v = value.strip()
    return None if v.lower() in ("", "nan", "na", "none") else v


def to_float(value: str | None) -> float | None:
    """Parse a float, ``None`` for missing spellings."""
    v = nan_to_none(value)
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


def read_table(path: Path, sep: str = ",", encoding: str = "utf-8-sig") -> pd.DataFrame:
    """Read a CSV table as strings (no type guessing), stripping header whitespace.

    ``utf-8-sig`` drops a byte-order mark. Columns named ``Unnamed: k`` (a trailing
    delimiter on every line) are dropped.

    Raises:
        SourceError: The file cannot be parsed, naming it.
    """
    try:
        table = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
            index_col=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read the table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    table = table.loc[:, [not c.startswith("Unnamed:") for c in table.columns]]
    return table.apply(lambda col: col.str.strip())


def require_columns(table: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """Raise ``SourceError`` naming the file and the missing columns."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SourceError(
            f"{path}: missing column(s) {missing}; found {list(table.columns)}"
        )


def audio_files(folder: Path, suffixes: tuple[str, ...] = (".wav",)) -> list[Path]:
    """Audio files under ``folder`` (recursively), sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
    )


def index_by_name(
    files: list[Path], dataset: str, scan: SourceScan
) -> tuple[dict[str, Path], set[str]]:
    """Files by name, for tables that name files without folders, and the ambiguous
    names.

    A name found in two folders is ambiguous: every copy is quarantined (with the
    other's path) rather than one silently shadowing the other.
    """
    by_name: dict[str, list[Path]] = {}
    for f in files:
        by_name.setdefault(f.name, []).append(f)
    out, ambiguous = {}, set()
    for name, paths in by_name.items():
        if len(paths) == 1:
            out[name] = paths[0]
            continue
        for p in paths:
            others = ", ".join(str(q) for q in paths if q != p)
            scan.reject(
                dataset, p, f"file name {name!r} is ambiguous: also at {others}"
            )
        ambiguous.add(name)
    return out, ambiguous


def first_listings(
    rows: Iterable[tuple[str, str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """An index table's rows by key, and the keys listed with conflicting rows.

    ``rows`` are ``(key, where, values)``, ``where`` naming the file and line. A key
    listed again with the same values is read once. Listed again with other values,
    nothing about it can be trusted: ``conflicts[key]`` is the reason to quarantine
    its recording, naming both places and the fields that differ.
    """
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    conflicts: dict[str, str] = {}
    for key, where, values in rows:
        if key not in first:
            first[key] = (where, values)
            continue
        where0, values0 = first[key]
        differ = [
            f"{k}: {str(values0.get(k))!r} vs {str(v)!r}"
            for k, v in values.items()
            if str(values0.get(k)) != str(v)
        ]
        if differ and key not in conflicts:
            conflicts[key] = (
                f"listed more than once with different values: {where0} vs {where} "
                f"({'; '.join(differ[:3])})"
            )
    return {k: v for k, (_, v) in first.items()}, conflicts


def inside_root(root: Path, listed: str) -> Path | None:
    """A path an index table lists, under ``root``; None when it leads outside
    (absolute, through ``..``, or through a link that points out)."""
    p = Path(listed)
    if p.is_absolute():
        return None
    try:
        (root / p).resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return Path(os.path.normpath(root / p))


def participant_listing(
    dataset: str,
    participant: str,
    kind: str,
    where: str,
    *,
    path: Path,
    modality: str,
    device: str | None,
    is_synthetic: bool,
    metadata: dict[str, Any],
    labels: dict[str, Any],
) -> tuple[str, str, dict[str, Any]]:
    """One participant's recording as an index table lists it, for
    ``add_listed_recordings``: id ``<dataset>/<participant>/<kind>``, subject
    ``<dataset>:<participant>``, ``where`` the file and line."""
    rid = f"{dataset}/{participant}/{kind}"
    return (
        rid,
        where,
        {
            "dataset": dataset,
            "path": path,
            "recording_id": rid,
            "subject_id": f"{dataset}:{participant}",
            "modality": modality,
            "body_site": None,
            "device": device,
            "is_synthetic": is_synthetic,
            "metadata": metadata,
            "labels": labels,
        },
    )


def add_listed_recordings(
    scan: SourceScan, dataset: str, listed: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """Recordings read from an index table, each listed once.

    ``listed`` holds ``(recording_id, where, row)``: ``where`` names the file and
    line, ``row`` the ``recording_row`` arguments. A recording listed again with the
    same file and labels is read once. Listed again with another file or other
    labels, or one file listed for two recordings, nothing about it can be trusted:
    every recording involved is quarantined with the places named.
    """

    def values(row: dict[str, Any]) -> dict[str, Any]:
        return {"path": str(row["path"]), **dict(sorted(row["labels"].items()))}

    _, conflicts = first_listings((rid, where, values(r)) for rid, where, r in listed)
    owners: dict[str, dict[str, str]] = {}  # file → {recording id: where}
    for rid, where, r in listed:
        owners.setdefault(str(r["path"]), {}).setdefault(rid, where)
    done: set[str] = set()
    for rid, _, r in listed:
        if rid in done:
            continue
        done.add(rid)
        reason = conflicts.get(rid)
        shared = owners[str(r["path"])]
        if reason is None and len(shared) > 1:
            reason = "the same file is listed for " + ", ".join(
                f"{other} ({where})" for other, where in shared.items()
            )
        if reason:
            scan.reject(dataset, r["path"], reason, record=rid)
            continue
        recording_row(scan, **r)


def scans_to_frames(
    scans: list[SourceScan],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenate adapter results into recordings, cycles and quarantine DataFrames."""
    recs = [r for s in scans for r in s.recordings]
    recordings = pd.DataFrame(recs, columns=[*RECORDING_COLUMNS, *LABEL_COLUMNS])
    dup = recordings["recording_id"].duplicated(keep=False)
    if dup.any():
        raise SourceError(
            "recording_id is not unique across enabled sources: "
            f"{sorted(recordings.loc[dup, 'recording_id'].unique())[:5]}; give each source "
            "its own dataset name"
        )
    cycles = pd.DataFrame(
        [c for s in scans for c in s.cycles], columns=list(CYCLE_COLUMNS)
    )
    quarantine = pd.DataFrame(
        [q for s in scans for q in s.quarantine], columns=list(QUARANTINE_COLUMNS)
    )
    return recordings, cycles, quarantine
