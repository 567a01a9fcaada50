"""The validate suites pass on a clean run and catch each planted defect."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.validation import GXSession, ValidateParams, ValidationFailed, gate
from acula_pipeline.validation.suites import (
    audio_quality_suite,
    feature_stats,
    features_suite,
    recordings_suite,
    reports_suite,
    segments_suite,
)

from .conftest import REPO
from .kedro_support import make_project, run

TINY = {
    "ingest": {
        "sources": {
            "synthetic": {
                "generate": {
                    "subjects": {"icbhi2017": 2, "circor2022": 2, "coswara": 3}
                }
            }
        }
    }
}
EXPECTED = {"sample_rate": 16000, "n_frames": 256, "n_mels": 64}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A tiny project run through corpus → ingest → reports → validate."""
    root = make_project(tmp_path_factory.mktemp("project"))
    run(root, ["corpus", "ingest", "reports", "validate"], TINY)
    return root


@pytest.fixture(scope="module")
def params() -> ValidateParams:
    raw = yaml.safe_load((REPO / "conf/base/parameters_validate.yml").read_text())
    return ValidateParams.model_validate(raw["validate"])


@pytest.fixture(scope="module")
def tables(project):
    d = project / "data"
    return {
        "recordings": pd.read_parquet(d / "02_intermediate/recordings.parquet"),
        "quality": pd.read_parquet(d / "02_intermediate/audio_quality.parquet"),
        "segments": pd.read_parquet(d / "03_primary/segments.parquet"),
        "stats": feature_stats(FeatureStore(d / "03_primary/features")),
        "reports": pd.read_parquet(d / "04_feature/reports.parquet"),
    }


@pytest.fixture()
def gx() -> GXSession:
    return GXSession(docs_dir=None)


def critical(result) -> list[str]:
    return [f.describe() for f in result.critical]


@pytest.mark.slow
def test_clean_run_passes_and_docs_link_every_suite(project):
    d = project / "data/08_reporting"
    summary = json.loads((d / "validation_summary.json").read_text())
    assert summary["success"] and summary["critical_failed"] == 0
    suites = set(summary["suites"])
    assert suites == {
        "recordings",
        "audio_quality",
        "segments",
        "subject_splits",
        "features",
        "reports",
    }
    for s in summary["suites"].values():
        assert s["evaluated"] == s["passed"] + s["failed"] and s["evaluated"] > 0
    index = (d / "validation/index.html").read_text()
    linked = set(re.findall(r"validations/([a-z_]+)/[^\"\\]*\.html", index))
    assert linked == suites
    for suite in suites:
        pages = list((d / "validation/validations" / suite).rglob("*.html"))
        assert pages, suite


def test_duplicate_recording_id(tables, params, gx):
    rec = tables["recordings"]
    bad = pd.concat([rec, rec.iloc[[0]]], ignore_index=True)
    res = gx.validate("recordings", *recordings_suite(bad, params.recordings))
    (msg,) = critical(res)
    assert "expect_column_values_to_be_unique(recording_id)" in msg
    assert rec["recording_id"].iloc[0] in msg


def test_nan_duration(tables, params, gx):
    bad = tables["recordings"].copy()
    bad.loc[1, "duration_s"] = float("nan")
    res = gx.validate("recordings", *recordings_suite(bad, params.recordings))
    assert any("not_be_null(duration_s)" in m for m in critical(res))
    assert any(bad["recording_id"].iloc[1] in m for m in critical(res))


def test_wrong_native_rate_and_missing_file(tables, params, gx):
    bad = tables["recordings"].copy()
    heart = bad.index[bad["modality"] == "heart"][0]
    bad.loc[heart, "sample_rate"] = 2000
    bad.loc[0, "path"] = "data/01_raw/nowhere.wav"
    res = gx.validate("recordings", *recordings_suite(bad, params.recordings))
    msgs = critical(res)
    assert any("between(sample_rate)" in m and "sample_rate=2000" in m for m in msgs)
    assert any(bad["recording_id"][heart] in m for m in msgs)
    assert any("in_set(path_exists)" in m for m in msgs)


def test_duration_out_of_bounds_only_warns(tables, params, gx):
    bad = tables["recordings"].copy()
    bad.loc[0, "duration_s"] = 999.0
    res = gx.validate("recordings", *recordings_suite(bad, params.recordings))
    assert not res.critical
    assert any("duration_s" in f.describe() for f in res.warnings)


def test_features_at_8khz(tables, gx, params):
    stats = tables["stats"].assign(sample_rate=8000)
    res = gx.validate(
        "features",
        *features_suite(stats, tables["segments"], EXPECTED, params.features),
    )
    (msg,) = critical(res)
    assert "in_set(sample_rate)" in msg and "8000" in msg


def test_all_silent_clip(tables, gx, params):
    stats = tables["stats"].copy()
    stats.loc[0, ["min", "max", "dynamic_range"]] = 0.0
    res = gx.validate(
        "features",
        *features_suite(stats, tables["segments"], EXPECTED, params.features),
    )
    (msg,) = critical(res)
    assert "dynamic_range" in msg and stats["segment_id"].iloc[0] in msg
    quality = tables["quality"].copy()
    quality.loc[0, ["silence_fraction", "peak"]] = [1.0, 0.0]
    res = gx.validate(
        "audio_quality",
        *audio_quality_suite(quality, tables["recordings"], params.audio_quality),
    )
    assert any("silence_fraction" in m for m in critical(res))
    assert any("(peak)" in m for m in critical(res))


def test_subject_in_train_and_test(tables, params, gx):
    seg = tables["segments"].copy()
    subject = seg.loc[seg["split"] == "train", "subject_id"].iloc[0]
    rows = seg.index[seg["subject_id"] == subject]
    seg.loc[rows[0], "split"] = "test"
    clips, subjects = segments_suite(seg, tables["recordings"], params.segments)
    assert not gx.validate("segments", *clips).critical
    (msg,) = critical(gx.validate("subject_splits", *subjects))
    assert "n_splits" in msg and subject in msg


def test_untraceable_segment(tables, params, gx):
    seg = tables["segments"].copy()
    seg.loc[0, "recording_id"] = "synthetic_icbhi2017/ghost"
    clips, _ = segments_suite(seg, tables["recordings"], params.segments)
    (msg,) = critical(gx.validate("segments", *clips))
    assert "recording_id" in msg and "ghost" in msg


@pytest.mark.parametrize(
    ("defect", "expect"),
    [
        ("empty", "value_lengths_to_be_between(report)"),
        ("error", "not_match_regex_list(report)"),
        ("identical", "proportion_of_unique_values"),
    ],
)
def test_report_defects(tables, params, gx, defect, expect):
    rep = tables["reports"].copy()
    if defect == "empty":
        rep.loc[0, "report"] = ""
    elif defect == "error":
        rep.loc[0, "report"] = (
            "Error: upstream model returned 500 Internal Server Error"
        )
    else:
        rep.loc[rep.index[: int(0.9 * len(rep))], "report"] = rep["report"].iloc[0]
    res = gx.validate("reports", *reports_suite(rep, len(rep), params.reports))
    msgs = critical(res)
    assert any(expect in m for m in msgs), msgs


def test_report_count_and_pass_rate(tables, params, gx):
    """The pass-rate failure names the observed rate, the threshold, the parameter
    that sets it and the most common failed checks with their counts."""
    rep = tables["reports"].copy()
    n = len(rep)
    rep["backend_passed"] = False
    rep["check_labels_reflected"] = False
    rep.loc[rep.index[:5], "check_no_recommendation"] = False
    rep.loc[rep.index[:2], "check_no_contradiction"] = False
    rep.loc[rep.index[:1], "check_length"] = False
    res = gx.validate("reports", *reports_suite(rep, n + 3, params.reports))
    msgs = critical(res)
    assert any("row_count_to_equal" in m for m in msgs)
    (rate,) = [m for m in msgs if "mean_to_be_between(backend_passed_rate)" in m]
    assert rate.endswith(
        f": 0.0% of {n} reports passed every check on the backend's text, below "
        "validate.reports.min_pass_rate = 90%; most common failed checks: "
        f"labels_reflected ({n}), no_recommendation (5), no_contradiction (2)"
    ), rate


def test_units_dropped_for_failing_count_against_the_pass_rate(tables, params, gx):
    """With reports.on_failure: drop, the kept reports all passed; the units the
    checks dropped still count, so the gate sees the backend's real rate."""
    rep = tables["reports"].copy()
    n = len(rep)
    res = gx.validate("reports", *reports_suite(rep, n, params.reports))
    assert not res.critical
    dropped = pd.DataFrame(
        {
            "unit_id": [f"dropped-{i}" for i in range(n)],
            "subject_id": "s",
            "dataset": "synthetic_circor",
            "stage": "checks",
            "reason": "dropped: no_contradiction; murmur stated as negative, metadata "
            "says Present",
        }
    )
    res = gx.validate("reports", *reports_suite(rep, n, params.reports, None, dropped))
    msgs = critical(res)
    assert len(msgs) == 1, msgs  # the kept reports pass everything else
    assert msgs[0].endswith(
        f": 50.0% of {2 * n} reports passed every check on the backend's text ({n} of "
        "them dropped for failing, reports.on_failure: drop), below "
        "validate.reports.min_pass_rate = 90%; most common failed checks: "
        f"no_contradiction ({n})"
    ), msgs[0]


def test_template_fallbacks_over_the_share_warn_with_the_makeup(tables, params, gx):
    """Fallback reports above validate.reports.max_fallback_share are a warning (by
    default) naming the share, the parameter and each dataset's count."""
    rep = tables["reports"].copy()
    res = gx.validate("reports", *reports_suite(rep, len(rep), params.reports))
    assert not res.failures  # template reports from the backend: no fallback
    rep.loc[rep.index[: len(rep) // 2], "source"] = "fallback_template"
    makeup = {"synthetic_icbhi": {"fallback_template": 7, "units": 9}, "all": {}}
    res = gx.validate("reports", *reports_suite(rep, len(rep), params.reports, makeup))
    assert not res.critical
    (msg,) = [f.describe() for f in res.warnings]
    share = (len(rep) // 2) / len(rep)
    assert msg.startswith("[warning] reports: expect_column_mean_to_be_between(")
    assert msg.endswith(
        f": {share:.1%} of the alignment corpus is template text written because the "
        "backend's report failed its checks (reports.on_failure: fallback_template), "
        "above validate.reports.max_fallback_share = 10%; per dataset: "
        "synthetic_icbhi 7/9"
    ), msg


def test_gate_names_every_critical_failure():
    summary = {
        "docs": "data/08_reporting/validation/index.html",
        "suites": {
            "reports": {
                "failures": [
                    {"severity": "critical", "message": "[critical] reports: A"},
                    {"severity": "warning", "message": "[warning] reports: B"},
                ]
            }
        },
    }
    with pytest.raises(ValidationFailed, match="1 critical") as err:
        gate(summary)
    assert "reports: A" in str(err.value) and "reports: B" not in str(err.value)


@pytest.mark.slow
def test_pipeline_fails_on_bad_reports_but_writes_summary(project):
    d = project / "data"
    path = d / "04_feature/reports.parquet"
    good = path.read_bytes()
    rep = pd.read_parquet(path)
    rep.loc[0, "report"] = "Error: the upstream model is rate limited; retry later."
    rep.to_parquet(path)
    try:
        with pytest.raises(Exception, match="critical expectation") as err:
            run(project, ["validate"], TINY)
        assert "not_match_regex_list(report)" in str(err.value)
        assert rep["unit_id"].iloc[0] in str(err.value)
        summary = json.loads((d / "08_reporting/validation_summary.json").read_text())
        assert not summary["success"]
        assert summary["suites"]["reports"]["critical_failed"] == 1
    finally:
        path.write_bytes(good)


def test_training_refuses_failed_validation():
    from acula_pipeline.validation.runner import require_success

    require_success({"success": True})
    with pytest.raises(ValidationFailed, match="2 critical expectation"):
        require_success({"success": False, "critical_failed": 2})


def test_data_docs_escape_values_from_the_data(tables, params, tmp_path):
    """A folder named like markup, in a row that fails, is shown as text (issue
    "Harden", defect 4: it ran as script in the recordings page)."""
    evil = "<img src=x onerror=alert(1)>"
    bad = tables["recordings"].copy()
    bad.loc[0, "recording_id"] = evil
    bad.loc[0, "subject_id"] = evil
    bad.loc[0, "duration_s"] = float("nan")  # fails, so the row is quoted
    bad.loc[1, "source"] = evil  # fails the value set, so the value is quoted
    session = GXSession(docs_dir=tmp_path / "docs")
    res = session.validate("recordings", *recordings_suite(bad, params.recordings))
    assert any(evil in m for m in critical(res))  # the records keep the raw value
    session.build_docs()
    (page,) = (tmp_path / "docs/validations/recordings").rglob("*.html")
    text = page.read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<img src=x" not in text and "&amp;lt;" not in text
