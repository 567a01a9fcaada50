"""OPERA's benchmark task for task: ids and names as aliases, OPERA's published
splits as split files, and the leak-free promise when a task uses one."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from acula_pipeline.evaluation.run import EvaluateParams
from acula_pipeline.evaluation.split_files import (
    SplitFileError,
    read_split_file,
    split_file_path,
)
from acula_pipeline.evaluation.splits import SplitParams, make_splits
from acula_pipeline.evaluation.tasks import (
    OPERA_TASKS,
    TaskSpec,
    check_names,
    find_tasks,
    task_data,
)

from .conftest import REPO


def _conf_tasks() -> list[TaskSpec]:
    conf = yaml.safe_load((REPO / "conf/base/parameters_evaluate.yml").read_text())
    return EvaluateParams(**conf["evaluate"]).tasks


def test_every_opera_task_is_configured_once_and_answers_to_its_aliases():
    tasks = _conf_tasks()
    ids = [t.opera_id for t in tasks if t.opera_id]
    assert sorted(ids) == sorted(OPERA_TASKS) and len(ids) == 19
    by_id = {t.opera_id: t for t in tasks if t.opera_id}
    # the task each id names reads OPERA's dataset and target
    assert by_id["T7"].name == "copd" and by_id["T7"].adapter == "icbhi2017"
    assert by_id["T11"].adapter == "respiratory_tr"
    assert by_id["T12"].adapter == "ssbpr" and by_id["T12"].n_classes == 5
    assert {by_id[t].adapter for t in ("T3", "T4")} == {"covid19_sounds"}
    assert (
        by_id["T8"].where == by_id["T9"].where == {"recording_type": ["cough-shallow"]}
    )
    # OPERA's "copd" is its T11; ours is T7: the names do not collide
    found = find_tasks(tasks, ["T7", "opera:icbhi", "t11", "opera:copd", "copd"])
    assert [t.name for t in found] == ["copd", "copd_severity"]
    assert by_id["T7"].label == "copd (T7)"
    assert by_id["T7"].aliases == ("T7", "opera:icbhi")


def test_unknown_names_and_shared_aliases_are_refused_with_the_names():
    a = TaskSpec(name="a", adapter="x", target="t", kind="regression", opera_id="T19")
    b = TaskSpec(name="b", adapter="x", target="t", kind="regression", opera_id="T19")
    with pytest.raises(ValueError, match="'T19' names both 'a' and 'b'"):
        check_names([a, b])
    named_like_an_id = TaskSpec(name="t19", adapter="x", target="t", kind="regression")
    with pytest.raises(ValueError, match="names both"):
        check_names([a, named_like_an_id])
    with pytest.raises(
        ValueError, match=r"\['T5'\] are not in evaluate.tasks .*a \(T19/"
    ):
        find_tasks([a], ["T5"], "tune.objective.tasks")
    with pytest.raises(ValidationError, match="opera_id 'T20'"):
        TaskSpec(name="a", adapter="x", target="t", kind="regression", opera_id="T20")
    with pytest.raises(ValidationError, match="no such OPERA split"):
        TaskSpec(
            name="a", adapter="x", target="t", kind="regression", split_file="opera:x"
        )


def test_tuning_takes_opera_ids_for_its_tasks():
    from acula_pipeline.tuning.study import _tasks

    tasks = _conf_tasks()
    assert [t.name for t in _tasks(tasks, ["T7", "murmur"])] == ["copd", "murmur"]
    with pytest.raises(ValueError, match="tune.objective.tasks"):
        _tasks(tasks, ["T99"])


@pytest.mark.parametrize(
    ("name", "counts", "pattern"),
    [
        # OPERA's feature/coughvid_eval/split_{covid,gender}.npy
        (
            "coughvid_covid",
            (2749, 919, 2507),
            r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
        ),
        (
            "coughvid_sex",
            (3218, 1090, 2955),
            r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
        ),
        # Google's train/test for Coswara, OPERA's validation draw from train
        ("coswara_smoker", (677, 170, 101), r"[A-Za-z0-9]{28}"),
        ("coswara_sex", (1475, 369, 652), r"[A-Za-z0-9]{28}"),
    ],
)
def test_the_shipped_opera_splits_are_operas(name, counts, pattern):
    table = read_split_file(f"opera:{name}")
    got = tuple(sum(v == s for v in table.values()) for s in ("train", "val", "test"))
    assert got == counts
    assert all(re.fullmatch(pattern, k) for k in table)


def test_a_bad_split_file_names_the_file_and_line(tmp_path):
    cases = {
        "header.csv": ("uuid,fold\na,train\n", "header ['uuid', 'fold']"),
        "split.csv": ("id,split\na,train\nb,holdout\n", "line 3: split 'holdout'"),
        "twice.csv": ("# note\nid,split\na,train\na,test\n", "line 4: 'a' is in train"),
        "cells.csv": ("id,split\na,train,x\n", "line 2: 'a,train,x' is not id,split"),
    }
    for file, (text, fragment) in cases.items():
        (tmp_path / file).write_text(text)
        with pytest.raises(SplitFileError, match=re.escape(fragment)) as err:
            read_split_file(str(tmp_path / file))
        assert file in str(err.value)
    with pytest.raises(SplitFileError, match="shipped: \\['coswara_sex'"):
        split_file_path("opera:coughvid")


def test_an_edited_split_file_is_read_again_not_served_from_a_cache(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,split\na,train\nb,test\n")
    assert read_split_file(str(path)) == {"a": "train", "b": "test"}
    path.write_text("id,split\na,test\nb,test\nc,val\n")
    assert read_split_file(str(path)) == {"a": "test", "b": "test", "c": "val"}
    path.write_text("id,split\na,later\n")
    with pytest.raises(SplitFileError, match="line 2"):
        read_split_file(str(path))


def _store(n=30, dataset="coughvid", stem="u"):
    rows = [
        {
            "recording_id": f"{dataset}/{stem}{i}",
            "subject_id": f"{dataset}:{stem}{i}",
            "dataset": dataset,
            "adapter": "coughvid",
            "covid_status": "COVID-19" if i % 3 == 0 else "healthy",
            "official_split": None,
        }
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def test_a_task_with_a_split_file_is_scored_on_that_split_and_held_out_from_alignment(
    tmp_path,
):
    rec = _store()
    # the file: u0-u5 test, u6-u11 val, u12-u25 train; u26-u29 not in it
    lines = ["id,split"] + [
        f"u{i},{'test' if i < 6 else 'val' if i < 12 else 'train'}" for i in range(26)
    ]
    path = tmp_path / "opera_like.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = TaskSpec(
        name="coughvid_covid",
        adapter="coughvid",
        target="covid_status",
        classes={"healthy": 0, "COVID-19": 1},
        split_file=str(path),
    )
    emb = {r: np.ones(3) for r in rec["recording_id"]}
    segments = pd.DataFrame(columns=["segment_id", "recording_id", "unit"])

    # The pipeline's split held the file's test subjects out: the task's split is
    # the file's, the subjects it does not name are left out and counted.
    held = make_splits(rec, SplitParams(held_out={"coughvid": [str(path)]}))
    test = set(held.loc[held["split"] == "test", "subject_id"])
    assert test == {f"coughvid:u{i}" for i in range(6)}  # the file's test, no other
    (td,) = task_data(spec, rec, segments, held, emb, loso_below_subjects=50)
    assert td.split_source == str(path) and td.protocol == "fixed"  # not LOSO
    assert td.protocol_label == f"fixed ({path})"
    assert (td.counts["train"], td.counts["val"], td.counts["test"]) == (14, 6, 6)
    assert td.counts["not_in_split_file"] == 4 and len(td.x) == 26
    assert set(td.frame.loc[td.frame["split"] == "test", "subject"]) == test

    # Without held_out, some of the file's test subjects trained alignment: refused.
    plain = make_splits(rec, SplitParams(seed=1))
    assert not {f"coughvid:u{i}" for i in range(6)} <= set(
        plain.loc[plain["split"] == "test", "subject_id"]
    )
    with pytest.raises(
        ValueError, match="Add the file to ingest.split.held_out.coughvid"
    ):
        task_data(spec, rec, segments, plain, emb)

    # A dataset whose subjects the file never names (the synthetic corpus) keeps
    # the pipeline's split.
    other = _store(dataset="synthetic", stem="s")
    emb2 = {r: np.ones(3) for r in other["recording_id"]}
    splits2 = make_splits(other, SplitParams(held_out={"coughvid": [str(path)]}))
    (td2,) = task_data(spec, other, segments, splits2, emb2)
    assert td2.split_source is None and "not_in_split_file" not in td2.counts


def test_operas_coswara_test_participants_stay_test_on_the_real_excerpt(real_samples):
    """Three of the five real Coswara participants are in OPERA's published test
    sets (the Coswara sex and smoker splits): the pipeline's split holds them out."""
    from acula_pipeline.sources import scan_source, scans_to_frames

    rec, _, _ = scans_to_frames(
        [scan_source("coswara", real_samples / "coswara", "coswara", False)]
    )
    conf = yaml.safe_load((REPO / "conf/base/parameters_ingest.yml").read_text())
    params = SplitParams(**conf["ingest"]["split"])
    splits = make_splits(rec, params).set_index("subject_id")["split"]
    test = {s.split(":")[1] for s in splits.index[splits == "test"]}
    assert test == {
        "L7S8iIPKgiO6QWLC3mGkROCMa0s1",
        "vK2bLRNzllXNeyOMudnNSL5cfpG2",
        "0zexHIcM7tQDdnFiEj2Eb0v3g212",
    }
