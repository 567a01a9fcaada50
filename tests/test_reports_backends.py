"""Template, file and local-transformers backends, the cache, policies and leakage."""

from __future__ import annotations

import pandas as pd
import pytest

from acula_pipeline.reports import ReportCache, exclude_reserved, write_reports
from acula_pipeline.reports.backends import BackendConfigError
from acula_pipeline.reports.backends.template import TemplateBackend, TemplateCfg
from acula_pipeline.reports.summary import corpus_makeup, describe_makeup

from .reports_support import params, synthetic_units
from .tiny_lm import tiny_causal_lm


@pytest.fixture(scope="module")
def units(tiny_corpus):
    return synthetic_units(tiny_corpus)


def test_template_second_run_makes_no_backend_call(units, tmp_path):
    p = params()
    first_backend = TemplateBackend(TemplateCfg())
    first = write_reports(units, p, ReportCache(tmp_path), first_backend)
    assert first_backend.calls == len(units)
    again = TemplateBackend(TemplateCfg())
    second = write_reports(units, p, ReportCache(tmp_path), again)
    assert again.calls == 0
    assert second.stats["backend_calls"] == 0
    assert second.stats["from_cache"] == len(units)
    pd.testing.assert_frame_equal(first.reports, second.reports)
    # A changed setting is a different key: everything is written again.
    reseeded = TemplateBackend(TemplateCfg(seed=3))
    write_reports(units, params(template={"seed": 3}), ReportCache(tmp_path), reseeded)
    assert reseeded.calls == len(units)


def test_report_table_records_provenance(units, tmp_path):
    run = write_reports(units, params(), ReportCache(tmp_path))
    r = run.reports
    assert len(r) == len(units) and r["unit_id"].is_unique
    assert (r["backend"] == "template").all() and r["prompt_hash"].str.len().eq(
        16
    ).all()
    assert r["check_no_contradiction"].all() and r["backend_passed"].all()
    assert set(r["unit"]) == {"cycle", "recording"}
    assert r["subject_id"].notna().all()
    # De-identification: no identifier reaches the facts sent.
    assert not r["facts"].str.contains("patient_id|participant_id|country").any()


def test_allow_list_controls_what_is_sent(units, tmp_path):
    p = params(
        fields={
            "icbhi2017": ["diagnosis", "patient_id"],
            "circor2022": ["murmur"],
            "coswara": ["covid_status"],
        }
    )
    r = write_reports(units, p, ReportCache(tmp_path)).reports
    icbhi = r[r["adapter"] == "icbhi2017"]
    assert icbhi["facts"].str.contains("patient_id").all()
    assert not r["facts"].str.contains("sex").any()


def test_unknown_allow_list_field_fails_fast():
    with pytest.raises(ValueError, match="unknown fields"):
        params(fields={"coswara": ["home_address"]})


def test_leakage_exclusion(units):
    test_subjects = set(units.loc[units["split"] == "test", "subject_id"])
    assert test_subjects
    listed = sorted(set(units["subject_id"]) - test_subjects)[:1]
    kept, counts = exclude_reserved(units, ["test"], listed)
    assert not set(kept["subject_id"]) & (test_subjects | set(listed))
    assert counts["subjects"] == len(test_subjects | set(listed))
    assert counts["units"] == len(units) - len(kept)


def test_file_backend(units, tmp_path):
    units = units[units["unit"] == "recording"]
    recs = units.drop_duplicates("recording_id")
    keep = recs.iloc[1:]  # the first recording has no report in the file
    table = pd.DataFrame(
        {
            "rec": [rid.split("/", 1)[1] for rid in keep["recording_id"]],  # raw ids
            "text": "placeholder",
        }
    )
    # Real reports: the template's, so they pass the checks.
    tpl = write_reports(units, params(), ReportCache(tmp_path / "c0")).reports
    first_text = tpl.drop_duplicates("recording_id").set_index("recording_id")["report"]
    table["text"] = [first_text[rid] for rid in keep["recording_id"]]
    path = tmp_path / "mine.csv"
    table.to_csv(path, index=False)
    p = params(
        backend="file",
        file={
            "path": str(path),
            "match_on": "recording_id",
            "key_column": "rec",
            "text_column": "text",
        },
        on_failure="drop",
    )
    run = write_reports(units, p, ReportCache(tmp_path / "c1"))
    missing_rec = recs.iloc[0]["recording_id"]
    rejected = run.rejects
    assert set(rejected["unit_id"]) == set(
        units.loc[units["recording_id"] == missing_rec, "unit_id"]
    )
    assert rejected["reason"].str.contains("no report for recording_id").all()
    assert len(run.reports) + len(rejected) == len(units)
    assert (run.reports["source"] == "file").all()
    assert run.reports["report"].tolist() == [
        first_text[rid] for rid in run.reports["recording_id"]
    ]
    assert run.stats["without_backend_report"] == sorted(rejected["unit_id"])


def test_file_backend_errors(tmp_path):
    with pytest.raises(BackendConfigError, match="does not exist"):
        write_reports(
            pd.DataFrame(),
            params(backend="file", file={"path": "nope.csv"}),
            ReportCache(tmp_path),
        )
    bad = tmp_path / "bad.csv"
    bad.write_text("id,report\n1,x\n")
    with pytest.raises(BackendConfigError, match="no column 'recording_id'"):
        write_reports(
            pd.DataFrame(),
            params(backend="file", file={"path": str(bad)}),
            ReportCache(tmp_path),
        )


def test_drop_policy_and_fallback(units, tmp_path):
    class Broken(TemplateBackend):
        name = "broken"

        def write(self, req):
            return "Error: the model is overloaded"

    run = write_reports(
        units,
        params(on_failure="drop"),
        ReportCache(tmp_path / "a"),
        Broken(TemplateCfg()),
    )
    assert run.reports.empty and len(run.rejects) == len(units)
    assert run.rejects["reason"].str.contains("no_error_marker").all()
    run = write_reports(
        units, params(), ReportCache(tmp_path / "b"), Broken(TemplateCfg())
    )
    assert (run.reports["source"] == "fallback_template").all()
    assert not run.reports["backend_passed"].any()
    assert run.stats["pass_rate"]["overall"]["no_error_marker"] == 0.0


def test_corpus_makeup_counts_backend_fallback_and_dropped():
    reports = pd.DataFrame(
        {
            "dataset": ["a", "a", "a", "b"],
            "source": ["openai", "fallback_template", "fallback_template", "openai"],
        }
    )
    rejects = pd.DataFrame({"dataset": ["b", "c"]})
    m = corpus_makeup(reports, rejects)
    assert m["a"] == {
        "units": 3,
        "from_backend": 1,
        "fallback_template": 2,
        "dropped": 0,
        "fallback_share": 0.6667,
    }
    assert m["b"]["dropped"] == 1 and m["b"]["from_backend"] == 1
    assert m["c"] == {
        "units": 1,
        "from_backend": 0,
        "fallback_template": 0,
        "dropped": 1,
        "fallback_share": 0.0,
    }
    assert m["all"]["units"] == 6 and m["all"]["fallback_template"] == 2
    assert describe_makeup(m, "openai") == (
        "a: 3 units: 1 from openai, 2 template fallback (67%), 0 dropped; "
        "b: 2 units: 1 from openai, 0 template fallback (0%), 1 dropped; "
        "c: 1 units: 0 from openai, 0 template fallback (0%), 1 dropped"
    )


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 2-layer Llama with a byte-level BPE tokenizer, built from a config."""
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_transformers_backend_end_to_end(units, tiny_lm, tmp_path):
    few = units.groupby("dataset", group_keys=False).head(2)
    p = params(
        backend="transformers",
        transformers={
            "model_path": str(tiny_lm),
            "batch_size": 3,
            "max_new_tokens": 12,
            "max_input_tokens": 2048,
        },
    )
    run = write_reports(few, p, ReportCache(tmp_path))
    r = run.reports
    assert len(r) == len(few)
    assert (r["backend"] == "transformers").all()
    # An untrained model writes noise: it fails the checks, is retried once with the
    # reasons, then replaced by the template.
    assert run.stats["retried"] > 0
    assert (r.loc[~r["backend_passed"], "source"] == "fallback_template").all()
    assert (r["attempts"] == 2).any()
    assert run.stats["backend_completion_tokens"] > 0
    again = write_reports(few, p, ReportCache(tmp_path))
    assert again.stats["backend_calls"] == 0


def test_transformers_backend_needs_a_path(tmp_path):
    with pytest.raises(BackendConfigError, match="model_path is not set"):
        write_reports(
            pd.DataFrame(), params(backend="transformers"), ReportCache(tmp_path)
        )


def test_unit_with_broken_metadata_is_rejected_not_lost(units, tmp_path):
    bad = units.copy()
    bad.loc[bad.index[0], "metadata"] = "{not json"
    run = write_reports(bad, params(), ReportCache(tmp_path))
    assert len(run.reports) == len(bad) - 1
    (reject,) = run.rejects.to_dict("records")
    assert reject["unit_id"] == bad["unit_id"].iloc[0] and reject["stage"] == "facts"


def test_each_report_is_checked_once(units, tmp_path, monkeypatch):
    """A new answer is checked as it arrives (to cache it as a report or a
    failure); that verdict is kept, not computed again. A cached one is checked
    once on reading."""
    from acula_pipeline.reports.checks import Checker

    calls = []
    real = Checker.__call__

    def counting(self, text, facts, adapter):
        calls.append(text)
        return real(self, text, facts, adapter)

    monkeypatch.setattr(Checker, "__call__", counting)
    write_reports(units, params(), ReportCache(tmp_path))
    assert len(calls) == len(units)
    calls.clear()
    write_reports(units, params(), ReportCache(tmp_path))  # from the cache
    assert len(calls) == len(units)
