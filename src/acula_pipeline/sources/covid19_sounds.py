"""COVID-19 Sounds (Cambridge), the released task-1 set: respiratory symptoms from
breathing and cough, with the release's own train/validation/test split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    add_listed_recordings,
    audio_files,
    nan_to_none,
    read_table,
    register,
    require_columns,
)
from acula_pipeline.sources.vocab import (
    SEX,
    TEXT,
    Fact,
    Facts,
    Value,
    clean,
    register_vocabulary,
)

TABLE = "data_0426_en_task1.csv"
AUDIO = "0426_EN_used_task1"
WEB_USERS = "form-app-users"  # the web form's submissions sit in one folder
# the table's file-name column → (recording type, modality); OPERA's T3 and T4
# read breath and cough, the voice recording is read too (optional column)
RECORDINGS = {
    "Breath filename": ("breath", "breath"),
    "Cough filename": ("cough", "cough"),
    "Voice filename": ("voice", "voice"),
}
REQUIRED = ("Breath filename", "Cough filename")
STATUS = {"1": "symptomatic", "0": "asymptomatic"}
SPLITS = {"0": "train", "1": "val", "2": "test"}
SEXES = {"male": "male", "female": "female"}
SUFFIXES = (".wav", ".webm", ".m4a", ".ogg")


def _table(root: Path) -> Path:
    hits = sorted(root.rglob(TABLE)) or sorted(root.rglob("data_*_task1.csv"))
    if not hits:
        raise SourceError(f"COVID-19 Sounds: {TABLE} not found under {root}")
    return hits[0]


def _audio_root(root: Path, table: Path) -> Path:
    for base in (table.parent, root):
        hits = sorted(p for p in base.rglob(AUDIO) if p.is_dir())
        if hits:
            return hits[0]
    raise SourceError(f"COVID-19 Sounds: no {AUDIO}/ folder under {root}")


def _file(audio: Path, uid: str, folder: str, name: str) -> Path:
    """``{audio}/{Uid}/{Folder Name}/{file}``; the web form's users under
    ``form-app-users/`` instead of their own folder."""
    own = audio / uid / folder / name
    if own.exists():
        return own
    web = audio / WEB_USERS / folder / name
    return web if web.exists() else own


@register("covid19_sounds", {"symptom_status": frozenset(STATUS.values())})
def scan_covid19_sounds(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read the COVID-19 Sounds task-1 release: ``data_0426_en_task1.csv``
    (semicolon-separated; ``Uid``, ``Folder Name``, ``Breath filename``,
    ``Cough filename``, ``Voice filename``, ``split`` 0/1/2, ``label`` 1
    symptomatic / 0 not) and the audio under
    ``0426_EN_used_task1/{Uid}/{Folder Name}/``.

    Each row is one submission; a participant (``Uid``) may have several. The
    release's split is kept: its test participants stay test.
    """
    scan = SourceScan()
    table_path = _table(root)
    table = read_table(table_path, sep=";")
    require_columns(
        table, table_path, ("Uid", "Folder Name", "split", "label", *REQUIRED)
    )
    columns = [c for c in RECORDINGS if c in table.columns]
    audio = _audio_root(root, table_path)
    listed: set[Path] = set()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for n, row in enumerate(table.to_dict("records"), start=2):
        where = f"{table_path.name} line {n}"
        uid, folder = nan_to_none(row["Uid"]), nan_to_none(row["Folder Name"])
        status, split = STATUS.get(str(row["label"])), SPLITS.get(str(row["split"]))
        paths = {
            col: _file(audio, uid or "", folder or "", name)
            for col in columns
            if (name := nan_to_none(row[col]))
        }
        listed.update(paths.values())
        problem = (
            "no Uid or Folder Name"
            if not uid or not folder
            else f"label {row['label']!r}; expected 1 (symptomatic) or 0"
            if status is None
            else f"split {row['split']!r}; expected 0, 1 or 2"
            if split is None
            else None
        )
        if problem:
            scan.reject(dataset, table_path, f"line {n}: {problem}", record=where)
            continue
        assert uid is not None and folder is not None
        for col, path in paths.items():
            kind, modality = RECORDINGS[col]
            if not path.is_file():
                scan.reject(dataset, path, f"listed in {where} but missing")
                continue
            rid = f"{dataset}/{uid}/{folder}/{kind}"
            meta = {k: nan_to_none(str(v)) for k, v in row.items()}
            rows.append(
                (
                    rid,
                    where,
                    {
                        "dataset": dataset,
                        "path": path,
                        "recording_id": rid,
                        "subject_id": f"{dataset}:{uid}",
                        "modality": modality,
                        "body_site": None,
                        "device": None,
                        "is_synthetic": is_synthetic,
                        "metadata": meta | {"recording": kind},
                        "labels": {
                            "symptom_status": status,
                            "official_split": split,
                            "sex": SEXES.get(str(row.get("Sex") or "").lower()),
                            "recording_type": kind,
                        },
                    },
                )
            )
    add_listed_recordings(scan, dataset, rows)
    for path in audio_files(audio, SUFFIXES):
        if path not in listed:
            scan.reject(dataset, path, f"audio file not listed in {table_path.name}")
    return scan


# ---------------------------------------------------------------- vocabulary

SYMPTOMS = Fact(
    "label",
    {
        "symptomatic": Value(
            "symptomatic",
            read=r"\bsymptomatic\b|\b(?:has|had|reported|with) respiratory symptoms\b",
        ),
        "asymptomatic": Value(
            "asymptomatic",
            read=r"\basymptomatic\b|\b(?:no|without) respiratory symptoms\b",
        ),
    },
)
VOCABULARY = {
    "respiratory_symptoms": SYMPTOMS,
    "recording_type": TEXT,
    "sex": SEX,
    "participant_id": TEXT,
}


@register_vocabulary("covid19_sounds", ("respiratory_symptoms",), VOCABULARY)
def covid19_sounds_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a COVID-19 Sounds breathing or cough recording."""
    return clean(
        {
            "participant_id": meta.get("Uid"),
            "recording_type": unit.get("recording_type"),
            "sex": unit.get("sex"),
            "respiratory_symptoms": unit.get("symptom_status"),
        }
    )
