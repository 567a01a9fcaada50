"""The judge: a second model's reading of a report, compared with the metadata by code."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from acula_pipeline.reports import ReportCache, write_reports
from acula_pipeline.reports.judge import (
    JudgeAnswerError,
    compare,
    field_kind,
    judge_messages,
    parse_answer,
)

from .llm_server import FakeLLM
from .reports_support import params, synthetic_units

HEART = {
    "age_group": "Child",
    "sex": "female",
    "murmur": "Present",
    "murmur_locations": ["aortic valve area", "pulmonic valve area"],
    "most_audible_location": "pulmonic valve area",
    "systolic_grade": "II/VI",
    "outcome": "Abnormal",
    "recording_site": "aortic valve area",
}
FAITHFUL = {
    "age_group": "child",
    "sex": "Female",
    "murmur": "Present",
    "murmur_locations": ["pulmonic valve area"],
    "most_audible_location": "pulmonic valve area",
    "systolic_grade": "II/VI",
    "outcome": "abnormal",
    "recording_site": None,
}


def test_a_faithful_reading_passes():
    assert compare(FAITHFUL, [], HEART, "circor2022") == []


@pytest.mark.parametrize(
    ("change", "beyond", "expected"),
    [
        (
            {"murmur": "Absent"},
            [],
            "judge: states murmur Absent, metadata says Present",
        ),
        ({"outcome": None}, [], "judge: does not state outcome (Abnormal)"),
        (
            {"murmur_locations": ["mitral valve area"]},
            [],
            "judge: states murmur_locations mitral valve area, metadata says",
        ),
        ({"systolic_grade": "III/VI"}, [], "judge: states systolic_grade III/VI"),
        (
            {},
            ["suggesting a congenital defect", "follow-up is advised"],
            "judge: beyond the facts: 'suggesting a congenital defect' (+1 more)",
        ),
    ],
)
def test_each_disagreement_is_named(change, beyond, expected):
    problems = compare(FAITHFUL | change, beyond, HEART, "circor2022")
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_a_detail_left_unstated_is_not_a_problem_but_a_label_is():
    # sex and age_group are not label facts of CirCor; a report need not repeat them
    reading = FAITHFUL | {"sex": None, "age_group": None}
    assert compare(reading, [], HEART, "circor2022") == []
    assert compare(FAITHFUL | {"murmur": None}, [], HEART, "circor2022") == [
        "judge: does not state murmur (Present)"
    ]


def test_numbers_compare_within_tolerance_and_covid_by_its_polarity():
    facts = {"age_years": 34, "covid_status": "positive, mild", "smoker": "no"}
    ok = {"age_years": "34 years", "covid_status": "positive", "smoker": "no"}
    assert compare(ok, [], facts, "coswara") == []
    bad = compare(
        ok | {"age_years": 43, "covid_status": "negative"}, [], facts, "coswara"
    )
    assert bad == [
        "judge: states age_years 43, metadata says 34",
        "judge: states covid_status negative, metadata says positive, mild",
    ]


def test_combined_diagnoses_must_all_be_stated():
    facts = {"diagnosis": "COPD + Heart failure", "crackles": "present"}
    reading = {"diagnosis": ["COPD"], "crackles": "present"}
    assert compare(reading, [], facts, "kauh") == [
        "judge: does not state all of diagnosis (COPD + Heart failure)"
    ]
    both = reading | {"diagnosis": ["Heart failure", "COPD"]}
    assert compare(both, [], facts, "kauh") == []


def test_the_prompt_lists_fields_and_options_never_the_values():
    msgs = judge_messages(
        "sys", "The report.", {"murmur": "Present", "height_cm": 117}, "circor2022"
    )
    user = msgs[1]["content"]
    fields = user.split("\n\nReport:")[0]
    assert fields == (
        "Fields:\n- height_cm (Height (cm)): number\n"
        "- murmur (Murmur): one of Present | Absent | Unknown"
    )
    assert user.endswith('Report:\n"""The report."""')


def test_answers_are_parsed_leniently_and_junk_is_refused():
    facts, beyond = parse_answer('```json\n{"facts": {"murmur": "Absent"}}\n```')
    assert facts == {"murmur": "Absent"} and beyond == []
    assert parse_answer('{"facts": {}, "beyond": "x"}')[1] == ["x"]
    for junk in ("no json here", '{"facts": []}', '{"facts": {}, "beyond": 3}', "{"):
        with pytest.raises(JudgeAnswerError):
            parse_answer(junk)


def _reading(facts: dict, adapter: str) -> dict:
    """What a faithful judge answers for a report stating ``facts``."""
    out = {}
    for name, value in facts.items():
        k = field_kind(name, adapter)
        if k.kind == "text":
            out[name] = str(value)
        else:
            out[name] = k.read(value) if k.read else value
    return out


def test_the_judge_through_a_loopback_server(tiny_corpus, tmp_path):
    units = synthetic_units(tiny_corpus)
    units = units.groupby("dataset", group_keys=False).head(6).reset_index(drop=True)
    # The reports the template writes, and what a faithful judge reads in each.
    first = write_reports(units, params(), ReportCache(tmp_path / "plain"))
    assert first.reports["check_judge"].isna().all()  # off by default
    readings = {
        r["report"]: {
            "facts": _reading(json.loads(r["facts"]), r["adapter"]),
            "beyond": [],
        }
        for r in first.reports.to_dict("records")
    }
    heart = first.reports[first.reports["adapter"] == "circor2022"].iloc[0]
    lung = first.reports[first.reports["adapter"] == "icbhi2017"].iloc[0]
    readings[heart["report"]]["facts"]["murmur"] = "Unknown"  # a misread label
    readings[lung["report"]]["beyond"] = ["This may indicate early COPD."]

    def judge(body: dict) -> str:
        user = body["messages"][1]["content"]
        report = re.search(r'Report:\n"""(.*)"""$', user, re.S).group(1)
        return json.dumps(readings[report])

    with FakeLLM({}, content_fn=judge) as llm:
        p = params(
            on_failure="drop",
            judge={"enabled": True, "openai": {"base_url": llm.url, "timeout_s": 5}},
        )
        cache = ReportCache(tmp_path / "judged")
        run = write_reports(units, p, cache)
        asked = llm.requests
        again = write_reports(units, p, cache)
        assert llm.requests == asked  # every answer came from the cache
    assert asked == len({r for r in first.reports["report"]})
    # the two misread reports are dropped, each with the judge's reason
    rejected = run.rejects.set_index("unit_id")["reason"]
    assert set(rejected.index) == {heart["unit_id"], lung["unit_id"]}
    assert "judge: states murmur Unknown, metadata says" in rejected[heart["unit_id"]]
    assert (
        "judge: beyond the facts: 'This may indicate early COPD.'"
        in (rejected[lung["unit_id"]])
    )
    assert run.reports["check_judge"].eq(True).all()
    assert len(run.reports) == len(units) - 2
    stats = run.stats["judge"]
    assert stats["reviewed"] == len(units) and stats["disagreed"] == 2
    assert stats["no_verdict"] == 0
    assert again.stats["judge"]["from_cache"] == len(units)
    assert run.stats["pass_rate"]["overall"]["judge"] == pytest.approx(
        1 - 2 / len(units), abs=1e-4
    )
    pd.testing.assert_frame_equal(run.reports, again.reports)


def test_an_unreadable_answer_is_no_verdict_and_is_asked_again(tiny_corpus, tmp_path):
    units = synthetic_units(tiny_corpus)
    units = units[units["adapter"] == "coswara"].head(3).reset_index(drop=True)
    with FakeLLM({}, content_fn=lambda body: "I think it is fine.") as llm:
        p = params(
            on_failure="drop",
            judge={"enabled": True, "openai": {"base_url": llm.url, "timeout_s": 5}},
        )
        cache = ReportCache(tmp_path)
        run = write_reports(units, p, cache)
        n = llm.requests
        write_reports(units, p, cache)
        assert llm.requests == 2 * n  # nothing cached from a junk answer
    assert run.stats["judge"]["no_verdict"] == len(units)
    assert run.reports.empty
    assert run.rejects["reason"].str.contains("judge: no verdict").all()
