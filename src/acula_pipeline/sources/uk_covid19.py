"""UK COVID-19 Vocal Audio Dataset (UKHSA): exhalation, cough and speech per participant."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import (
    SourceError,
    SourceScan,
    add_listed_recordings,
    audio_files,
    index_by_name,
    nan_to_none,
    participant_listing,
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
    missing,
    register_vocabulary,
)

RESULTS = {"Positive": "positive", "Negative": "negative"}
# audio_metadata.csv column → (recording type, modality)
RECORDINGS = {
    "exhalation_file_name": ("exhalation", "breath"),
    "cough_file_name": ("cough", "cough"),
    "three_cough_file_name": ("three_cough", "cough"),
    "sentence_file_name": ("sentence", "voice"),
}
SEXES = {"male": "male", "female": "female", "other": "other"}
SUFFIXES = (".wav", ".ogg", ".flac", ".webm")


def _required(root: Path, name: str) -> Path:
    hits = sorted(root.rglob(name))
    if not hits:
        raise SourceError(f"UK COVID-19: {name} not found under {root}")
    return hits[0]


def _split(value: str | None) -> str | None:
    """The dataset's split names (train, val, test and 'matched'/'long' variants)
    reduced to train/val/test: anything with 'test' in it is held out."""
    if not value:
        return None
    v = value.lower()
    return "test" if "test" in v else "val" if "val" in v else "train"


@register("uk_covid19", {"covid_status": frozenset(RESULTS.values())})
def scan_uk_covid19(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read the UK COVID-19 Vocal Audio Dataset: one row per listed audio file.

    ``participant_metadata.csv`` gives the PCR/LFT result, ``audio_metadata.csv`` the
    file of each recording type, ``train_test_splits.csv`` the official split (its
    test participants stay test).
    """
    scan = SourceScan()
    people_path = _required(root, "participant_metadata.csv")
    audio_path = _required(root, "audio_metadata.csv")
    people = read_table(people_path)
    require_columns(
        people, people_path, ("participant_identifier", "covid_test_result")
    )
    audio = read_table(audio_path)
    require_columns(audio, audio_path, ("participant_identifier",))
    columns = [c for c in RECORDINGS if c in audio.columns]
    if not columns:
        raise SourceError(
            f"{audio_path}: none of the file-name columns {sorted(RECORDINGS)}"
        )
    split_path = next(iter(sorted(root.rglob("train_test_splits.csv"))), None)
    split: dict[str, str | None] = {}
    split_name: dict[str, str | None] = {}  # the file's own value, kept in metadata
    if split_path is not None:
        table = read_table(split_path)
        require_columns(table, split_path, ("participant_identifier", "splits"))
        for r in table.to_dict("records"):
            split_name[r["participant_identifier"]] = nan_to_none(r["splits"])
            split[r["participant_identifier"]] = _split(r["splits"])
    person = {r["participant_identifier"]: r for r in people.to_dict("records")}
    files, ambiguous = index_by_name(audio_files(root, SUFFIXES), dataset, scan)
    listed: set[str] = set()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for n, row in enumerate(audio.to_dict("records"), start=2):
        pid = row["participant_identifier"]
        meta = person.get(pid)
        for col in columns:
            name = nan_to_none(row[col])
            if name is None:
                continue
            listed.add(name)
            if name in ambiguous:
                continue  # quarantined by index_by_name, every copy
            path = files.get(name, root / name)
            if meta is None:
                scan.reject(
                    dataset,
                    path,
                    f"participant {pid!r} ({audio_path.name} line {n}) is not in "
                    f"{people_path.name}",
                )
                continue
            result = meta["covid_test_result"]
            if result not in RESULTS:
                scan.reject(
                    dataset,
                    path,
                    f"participant {pid}: covid_test_result {result!r}; expected "
                    f"one of {sorted(RESULTS)}",
                )
                continue
            if name not in files:
                scan.reject(dataset, path, f"listed in {audio_path.name} but missing")
                continue
            kind, modality = RECORDINGS[col]
            rows.append(
                participant_listing(
                    dataset,
                    pid,
                    kind,
                    f"{audio_path.name} line {n}",
                    path=path,
                    modality=modality,
                    device=None,
                    is_synthetic=is_synthetic,
                    metadata={k: nan_to_none(v) for k, v in meta.items()}
                    | {"recording": kind, "file": name, "splits": split_name.get(pid)},
                    labels={
                        "covid_status": RESULTS[result],
                        "official_split": split.get(pid),
                        "sex": SEXES.get((meta.get("gender") or "").lower()),
                        "recording_type": kind,
                    },
                )
            )
    add_listed_recordings(scan, dataset, rows)
    for name, path in sorted(files.items()):
        if name not in listed:
            scan.reject(dataset, path, f"audio file not listed in {audio_path.name}")
    return scan


# ---------------------------------------------------------------- vocabulary

RECORDING = Fact(
    "text",
    {
        "exhalation": Value("exhalation"),
        "cough": Value("cough"),
        "three_cough": Value("three coughs"),
        "sentence": Value("read sentence"),
    },
)
VOCABULARY = {
    "covid_status": Fact("label", {v: Value(f"{v} (test)") for v in RESULTS.values()}),
    "recording_type": RECORDING,
    "sex": SEX,
    "participant_id": TEXT,
}


@register_vocabulary("uk_covid19", ("covid_status",), VOCABULARY)
def uk_covid19_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a UK COVID-19 Vocal Audio recording."""
    result = unit.get("covid_status")
    return clean(
        {
            "participant_id": meta.get("participant_identifier"),
            "recording_type": RECORDING.text(unit.get("recording_type")),
            "sex": unit.get("sex"),
            "covid_status": None if missing(result) else f"{result} (test)",
        }
    )
