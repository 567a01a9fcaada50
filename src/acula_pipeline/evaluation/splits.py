"""Subject-disjoint train/validation/test splits and the leakage audit.

Every subject sits in one split. Official splits win where a dataset has one (ICBHI's
test subjects stay test; its official train subjects are divided into train and
validation). Elsewhere each dataset's subjects are stratified by a label column, so
that every class with enough subjects appears in validation and test (a probe's
AUROC needs both classes there), and drawn with a fixed seed.

The audit checks the leak-free promise: no test subject's audio or report reached
alignment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.evaluation.split_files import read_split_file, source_id

log = logging.getLogger(__name__)


class SplitParams(BaseModel):
    """How subjects are split (``evaluate.splits``)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    val_fraction: float = Field(default=0.2, ge=0, lt=1)
    test_fraction: float = Field(default=0.2, ge=0, lt=1)
    # adapter → label column to stratify by (a subject takes its first non-null value)
    stratify: dict[str, str] = {}
    # adapter → split files (evaluate task split_file values) whose test subjects
    # stay test, as an official test set does: a task scored on such a file's
    # split then never tests a subject alignment trained on.
    held_out: dict[str, list[str]] = {}


def _allocate(n: int, val: float, test: float) -> tuple[int, int]:
    """(validation, test) counts for a stratum of ``n`` subjects: rounded shares,
    at least one of each when the stratum has three or more subjects."""
    n_test, n_val = int(round(n * test)), int(round(n * val))
    if n >= 3:
        n_test, n_val = max(n_test, 1 if test else 0), max(n_val, 1 if val else 0)
    while n_test + n_val > n - (1 if n else 0):  # keep a training subject
        if n_val >= n_test and n_val:
            n_val -= 1
        elif n_test:
            n_test -= 1
    return n_val, n_test


def make_splits(recordings: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """One row per subject: ``subject_id``, ``dataset``, ``split``, ``stratum``."""
    if "adapter" not in recordings:  # tables from before the adapter column
        recordings = recordings.assign(adapter=recordings["dataset"])
    cols = ["subject_id", "dataset", "adapter"]
    extra = [
        c
        for c in sorted({"official_split", *params.stratify.values()})
        if c in recordings
    ]
    rec = recordings[cols + extra]
    rows = []
    for (dataset, adapter), group in rec.groupby(["dataset", "adapter"], sort=True):
        col = params.stratify.get(str(adapter))
        subjects = group.groupby("subject_id", sort=True).agg(
            lambda s: s.dropna().iloc[0] if s.notna().any() else None
        )
        official = subjects.get("official_split")
        strata = (
            subjects[col].astype("string").fillna("<none>")
            if col and col in subjects
            else pd.Series("<all>", index=subjects.index)
        )
        fixed = {}
        if official is not None:  # any recording in the official test set: test
            in_test = group.loc[group["official_split"] == "test", "subject_id"]
            fixed = {s: "test" for s in sorted(set(in_test))}
        for ref in params.held_out.get(str(adapter), []):
            table = read_split_file(ref)
            tested = [
                s
                for s in subjects.index
                if table.get(source_id(str(s), str(dataset))) == "test"
            ]
            fixed |= dict.fromkeys(tested, "test")
            log.log(
                logging.INFO if tested else logging.DEBUG,
                "Split of %s: %d subject(s) held out for test by %s",
                dataset,
                len(tested),
                ref,
            )
        fixed = dict(sorted(fixed.items()))
        free = [s for s in subjects.index if s not in fixed]
        test_share = (
            0.0 if fixed else params.test_fraction
        )  # official test set: no other
        for stratum, members in pd.Series(strata[free]).groupby(
            strata[free], sort=True
        ):
            ids = sorted(members.index)
            rng = np.random.default_rng(
                [params.seed, *(ord(ch) for ch in f"{dataset}|{stratum}")]
            )
            ids = [ids[i] for i in rng.permutation(len(ids))]
            n_val, n_test = _allocate(len(ids), params.val_fraction, test_share)
            for i, s in enumerate(ids):
                split = (
                    "test" if i < n_test else "val" if i < n_test + n_val else "train"
                )
                rows.append((s, dataset, split, str(stratum)))
        for s in fixed:
            rows.append((s, dataset, "test", str(strata.get(s, "<all>"))))
    out = pd.DataFrame(rows, columns=["subject_id", "dataset", "split", "stratum"])
    return out.sort_values("subject_id", ignore_index=True)


# The more held-out side wins when identical audio sits in two splits.
_HELD_OUT = {"train": 0, "val": 1, "test": 2}


def identical_audio(recordings: pd.DataFrame) -> list[list[str]]:
    """Groups of recording ids whose decoded audio is identical (``audio_sha256``),
    each group sorted, groups sorted; empty without the column."""
    if "audio_sha256" not in recordings:
        return []
    rec = recordings.dropna(subset=["audio_sha256"])
    return sorted(
        sorted(map(str, g["recording_id"]))
        for _, g in rec.groupby("audio_sha256", sort=True)
        if len(g) > 1
    )


def keep_identical_audio_together(
    splits: pd.DataFrame, recordings: pd.DataFrame
) -> pd.DataFrame:
    """Put every subject sharing audio with another on one side of the split.

    The same file under two source names (or two subjects) would otherwise train
    on what is tested. Subjects linked by identical audio, directly or through
    others, take the most held-out split among them (test over validation over
    train), so an official test set stays whole. A warning names the groups.
    """
    groups = identical_audio(recordings)
    if not groups:
        return splits
    subject_of = dict(
        zip(
            recordings["recording_id"].astype(str),
            recordings["subject_id"],
            strict=False,
        )
    )
    parent: dict[str, str] = {}

    def root(s: str) -> str:
        while parent.get(s, s) != s:
            s = parent[s]
        return s

    for g in groups:
        subjects = sorted({subject_of[r] for r in g})
        for s in subjects[1:]:
            parent[root(s)] = root(subjects[0])
    out = splits.copy()
    split_of = dict(zip(out["subject_id"], out["split"], strict=True))
    members: dict[str, list[str]] = {}
    for s in split_of:
        members.setdefault(root(s), []).append(s)
    moved = []
    for linked in members.values():
        if len(linked) < 2:
            continue
        side = max((split_of[s] for s in linked), key=_HELD_OUT.__getitem__)
        moved += [s for s in linked if split_of[s] != side]
        for s in linked:
            split_of[s] = side
    out["split"] = out["subject_id"].map(split_of)
    n_rec = sum(len(g) for g in groups)
    datasets = sorted(
        set(recordings.loc[recordings["recording_id"].isin(sum(groups, [])), "dataset"])
    )
    log.warning(
        "Identical audio: %d recordings in %d groups (datasets %s; e.g. %s); %d "
        "subject(s) moved so each group sits on one side of the split: %s",
        n_rec,
        len(groups),
        ", ".join(map(str, datasets)),
        " = ".join(groups[0]),
        len(moved),
        ", ".join(sorted(moved)[:10]) + (" …" if len(moved) > 10 else ""),
    )
    return out


def split_of_subjects(recordings: pd.DataFrame, params: SplitParams) -> dict[str, str]:
    """``make_splits`` as a mapping subject → split."""
    splits = make_splits(recordings, params)
    return dict(zip(splits["subject_id"], splits["split"], strict=True))


class LeakageError(RuntimeError):
    """A test subject's audio or report reached alignment."""


def leakage_audit(
    splits: pd.DataFrame,
    aligned_subjects: Iterable[str],
    report_subjects: Iterable[str],
    recordings: pd.DataFrame | None = None,
) -> dict[str, object]:
    """Which test subjects' audio (clips trained on) or reports reached alignment.

    With ``recordings`` (carrying ``audio_sha256``) the audio is also compared by
    content: a test subject whose recording is identical to one a trained subject
    contributed counts as leaked, whatever the names.
    """
    test = set(splits.loc[splits["split"] == "test", "subject_id"])
    trained = set(aligned_subjects)
    audio = test & trained
    if recordings is not None and "audio_sha256" in recordings:
        rec = recordings.dropna(subset=["audio_sha256"])
        seen = set(rec.loc[rec["subject_id"].isin(trained), "audio_sha256"])
        same = rec["subject_id"].isin(test) & rec["audio_sha256"].isin(seen)
        audio |= set(rec.loc[same, "subject_id"])
    reports = sorted(test & set(report_subjects))
    return {
        "ok": not audio and not reports,
        "test_subjects": len(test),
        "test_subjects_in_alignment_audio": sorted(audio),
        "test_subjects_with_alignment_reports": reports,
    }


def require_no_leak(audit: dict[str, object]) -> None:
    """Raise ``LeakageError`` naming the subjects when the audit failed."""
    if audit["ok"]:
        return
    audio = list(audit["test_subjects_in_alignment_audio"])  # type: ignore[call-overload]
    reports = list(audit["test_subjects_with_alignment_reports"])  # type: ignore[call-overload]
    raise LeakageError(
        f"leakage: {len(audio)} test subject(s) in the alignment audio "
        f"({', '.join(audio[:5])}{' …' if len(audio) > 5 else ''}) and {len(reports)} "
        f"with reports used for alignment ({', '.join(reports[:5])}"
        f"{' …' if len(reports) > 5 else ''}); the probes would measure memorised "
        "labels. Rerun reports and align with the test subjects excluded, or use the "
        "paper_like setting knowingly."
    )
