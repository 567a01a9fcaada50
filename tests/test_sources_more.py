"""The adapters of the paper's other datasets, on generated fixtures in their exact
layouts (tests/source_fixtures.py): counts, labels, sample rates and the quarantine
of planted bad files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from acula_pipeline.audio.io import AudioReadError, audio_info, read_audio
from acula_pipeline.sources import (
    LABEL_VALUES,
    SourceError,
    scan_source,
    scans_to_frames,
)
from acula_pipeline.sources.kauh import parse_diagnosis

from .source_fixtures import BUILDERS, wav


def _same(a, b) -> bool:
    if isinstance(b, float) and a is not None and not pd.isna(a):
        return math.isclose(float(a), b, rel_tol=1e-6)
    if b is None:
        return a is None or (not isinstance(a, str) and pd.isna(a))
    return a == b


@pytest.mark.parametrize("adapter", sorted(BUILDERS))
def test_adapter_reads_its_fixture(adapter, tmp_path):
    expect = BUILDERS[adapter](tmp_path)
    rec, _cycles, q = scans_to_frames([scan_source(adapter, tmp_path, adapter, False)])
    assert len(rec) == expect.recordings, q.to_string()
    assert (rec["sample_rate"] == expect.sample_rate).all()
    assert (rec["adapter"] == adapter).all() and not rec["is_synthetic"].any()
    if expect.subjects is not None:
        assert rec["subject_id"].nunique() == expect.subjects
    by_id = rec.set_index("recording_id")
    assert set(by_id.index) == set(expect.labels)
    for rid, labels in expect.labels.items():
        for column, value in labels.items():
            got = by_id.at[rid, column]
            assert _same(got, value), (rid, column, got, value)
    for rid, fields in expect.metadata.items():
        meta = json.loads(by_id.at[rid, "metadata"])
        assert {k: meta.get(k) for k in fields} == fields, rid
    # Every planted bad file is quarantined once, with a reason naming the problem.
    assert len(q) == len(expect.quarantined), q.to_string()
    for name, fragment in expect.quarantined.items():
        hits = q[q["path"].str.endswith(name) | (q["record"] == name)]
        assert len(hits) == 1, (name, q.to_string())
        assert fragment in hits["reason"].iloc[0], hits["reason"].iloc[0]
    # Label values stay inside the vocabulary the validate stage checks.
    for column, allowed in LABEL_VALUES[adapter].items():
        assert set(rec[column].dropna()) <= allowed, column


def test_kauh_spellings_and_combinations():
    assert parse_diagnosis("copd") == "COPD"
    assert parse_diagnosis(" Asthma ") == "Asthma"
    assert parse_diagnosis("Plueral Effusion") == "Pleural effusion"
    assert parse_diagnosis("Heart Failure + Lung Fibrosis ") == (
        "Heart failure + Lung fibrosis"
    )
    assert parse_diagnosis("Asthma and lung fibrosis") == "Asthma + Lung fibrosis"
    with pytest.raises(ValueError, match="unknown diagnosis 'flu'"):
        parse_diagnosis("flu")


def test_respiratory_tr_byte_order_mark_and_trailing_comma(tmp_path):
    BUILDERS["respiratory_tr"](tmp_path, patients=2, channels=1)
    raw = (tmp_path / "Labels.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.splitlines()[0].endswith(b",")
    rec, _, _ = scans_to_frames([scan_source("respiratory_tr", tmp_path, "tr", False)])
    assert rec["diagnosis"].tolist() == ["COPD0", "COPD1"]


def test_webm_is_decoded_and_a_bad_one_names_the_file(tmp_path):
    from .source_fixtures import _webm

    _webm(tmp_path / "a.webm", 0.5, 0)
    info = audio_info(tmp_path / "a.webm")
    assert (info.sample_rate, info.channels) == (48000, 1)
    assert abs(info.duration_s - 0.5) < 0.05
    x, sr = read_audio(tmp_path / "a.webm", 0.1, 0.3)
    assert sr == 48000 and x.shape == (9600, 1) and x.std() > 0.01
    (tmp_path / "b.webm").write_bytes(b"\x1a\x45\xdf\xa3")
    with pytest.raises(AudioReadError, match="b.webm: unreadable audio"):
        audio_info(tmp_path / "b.webm")


def test_coughvid_webm_and_ogg_pass_the_audio_audit(tmp_path):
    """The audit decodes every CoughVID file (WebM through PyAV, Ogg through
    libsndfile) in worker processes."""
    from acula_pipeline.audio.audit import audit_recordings
    from acula_pipeline.audio.quality import QualityCfg

    BUILDERS["coughvid"](tmp_path, seconds=1.0)
    rec, _, _ = scans_to_frames([scan_source("coughvid", tmp_path, "coughvid", False)])
    accepted, quality, q = audit_recordings(rec, QualityCfg(), workers=2)
    assert len(accepted) == len(rec) == 5 and q.empty
    assert set(quality["recording_id"]) == set(rec["recording_id"])
    formats = {json.loads(m)["format"] for m in accepted["metadata"]}
    assert formats == {"webm", "ogg"}


def test_webm_without_pyav_names_the_file_and_the_conversion(tmp_path, monkeypatch):
    import sys

    from .source_fixtures import _webm

    _webm(tmp_path / "a.webm", 0.2, 0)
    monkeypatch.setitem(sys.modules, "av", None)  # import av → ImportError
    with pytest.raises(AudioReadError, match=r"a\.webm: .*needs PyAV.*ffmpeg -i"):
        audio_info(tmp_path / "a.webm")


@pytest.mark.parametrize(
    ("adapter", "fragment"),
    [
        ("uk_covid19", "participant_metadata.csv not found"),
        ("respiratory_tr", "Labels.csv not found"),
        ("zchsound", "no details CSV"),
        ("mmlung", "All_path"),
        ("physionet2016", "no training-a"),
    ],
)
def test_missing_index_files_are_a_clear_error(adapter, fragment, tmp_path):
    wav(tmp_path / "x.wav", 4000)
    with pytest.raises(SourceError, match=fragment):
        scan_source(adapter, tmp_path, adapter, False)


def test_a_table_without_its_columns_names_file_and_columns(tmp_path):
    (tmp_path / "participant_metadata.csv").write_text("id,result\nP1,Positive\n")
    (tmp_path / "audio_metadata.csv").write_text("participant_identifier\n")
    with pytest.raises(SourceError, match=r"participant_metadata.csv: missing column"):
        scan_source("uk_covid19", tmp_path, "uk", False)


# ------------------------------------------------------------------ reports


def _fields() -> dict[str, list[str]]:
    import yaml

    from .conftest import REPO

    conf = yaml.safe_load((REPO / "conf/base/parameters_reports.yml").read_text())
    return conf["reports"]["fields"]


@pytest.mark.parametrize("adapter", sorted(BUILDERS))
def test_template_reports_of_each_source_pass_the_checks(adapter, tmp_path):
    """Every fixture recording gets a template report that states its label facts
    and passes every faithfulness check."""
    from acula_pipeline.reports.checks import CheckCfg, Checker
    from acula_pipeline.reports.facts import LABEL_FACTS, allowed_facts, unit_facts
    from acula_pipeline.reports.templates import write_report

    BUILDERS[adapter](tmp_path)
    rec, _, _ = scans_to_frames([scan_source(adapter, tmp_path, adapter, False)])
    checker, allow = Checker(CheckCfg()), _fields()[adapter]
    labelled = 0
    for row in rec.to_dict("records"):
        unit = row | {"unit": "recording", "unit_id": row["recording_id"]}
        facts = allowed_facts(unit_facts(unit), allow)
        text = write_report(facts, row["modality"], unit["unit_id"], "recording", 0)
        result = checker(text, facts, adapter)
        assert result.ok, (text, facts, result.reasons())
        labelled += bool(set(LABEL_FACTS[adapter]) & set(facts))
    assert labelled == len(rec)  # every report carries at least one label fact


@pytest.mark.parametrize(
    ("adapter", "facts", "text", "problem"),
    [
        (
            "physionet2016",
            {"heart_sounds": "normal"},
            "The heart sounds are abnormal.",
            "heart sounds stated as abnormal",
        ),
        (
            "zchsound",
            {"congenital_defect": "no defect (normal)"},
            "Heart sounds of a child with a ventricular septal defect.",
            "states ventricular",
        ),
        (
            "zchsound",
            {"congenital_defect": "patent ductus arteriosus (PDA)"},
            "The child has an atrial septal defect (ASD).",
            "states atrial septal defect",
        ),
        (
            "kauh",
            {"diagnosis": "Heart failure + COPD"},
            "Lung sounds of a patient with heart failure and asthma.",
            "states diagnosis Asthma",
        ),
        (
            "sprsound",
            {"sound_class": "normal (no adventitious sounds)"},
            "Continuous adventitious sounds (CAS) are heard.",
            "states CAS",
        ),
        (
            "hf_lung",
            {"cas": "absent", "das": "present"},
            "Wheezes are heard; crackles are present.",
            "CAS stated as positive",
        ),
        (
            "respiratory_tr",
            {"copd_severity": "COPD2"},
            "COPD severity is stage 4 (COPD4).",
            "states COPD severity 4",
        ),
        (
            "coughvid",
            {"covid_status": "negative (healthy)"},
            "The participant reports being COVID-19 positive.",
            "states COVID-19 positive",
        ),
        (
            "uk_covid19",
            {"covid_status": "positive (test)"},
            "The participant tested negative for COVID-19.",
            "states COVID-19 negative",
        ),
        (
            "nosemic",
            {"respiratory_rate": 14},
            "The respiratory rate was 18 breaths per minute.",
            "states respiratory rate 18",
        ),
        (
            "covid19_sounds",
            {"respiratory_symptoms": "asymptomatic"},
            "The participant reported respiratory symptoms.",
            "states respiratory_symptoms symptomatic",
        ),
        (
            "ssbpr",
            {"body_position": "supine with the head turned left"},
            "The sleeper was lying on the right side while snoring.",
            "states body_position lying on the right side",
        ),
        (
            "ssbpr",
            {"body_position": "supine"},
            "Recorded supine with the head turned right.",
            "states body_position supine with the head turned right",
        ),
        (
            "mmlung",
            {"fvc_l": 3.2, "fev1_l": 2.5, "fev1_fvc": 0.78},
            "Spirometry: FVC 3.2 L, FEV1 2.1 L, FEV1/FVC 0.78.",
            "states FEV1 2.1",
        ),
    ],
)
def test_checks_catch_contradictions_of_the_new_facts(adapter, facts, text, problem):
    from acula_pipeline.reports.checks import CheckCfg, Checker

    result = Checker(CheckCfg())(text, facts, adapter)
    assert not result.passed["no_contradiction"], result
    assert problem in result.reasons(), result.reasons()


@pytest.mark.parametrize(
    "text",
    [
        "Spirometry: FVC 3.2 L, FEV1 2.5 L, FEV1/FVC 0.78. Respiratory rate 18.",
        "FVC (L): 3.2; FEV1 (L): 2.5; FEV1/FVC: 78%. Respiratory rate (breaths/min): 18",
        "FVC was measured at 3.2 L (85% predicted) and FEV1 of 2.5 litres (92% "
        "predicted); the FEV1 / FVC ratio = 0.78, at 18 breaths per minute.",
    ],
)
def test_number_checks_accept_common_phrasings(text):
    """An LLM's usual ways of writing the measures are read, not failed; the
    percentages of predicted values are not taken for litres."""
    from acula_pipeline.reports.checks import fact_check_for

    def check(name):
        adapter = "nosemic" if name == "respiratory_rate" else "mmlung"
        return fact_check_for(adapter, name)

    facts = {"fvc_l": 3.2, "fev1_l": 2.5, "fev1_fvc": 0.78, "respiratory_rate": 18}
    for name, value in facts.items():
        assert check(name)(text, value, facts) == (True, []), (name, text)
    wrong = text.replace("3.2", "2.9").replace("78%", "70%").replace("0.78", "0.70")
    assert "states FVC 2.9" in check("fvc_l")(wrong, 3.2, facts)[1][0]
    assert "states FEV1/FVC 0.7" in check("fev1_fvc")(wrong, 0.78, facts)[1][0]
    slow = text.replace("18", "22")
    assert check("respiratory_rate")(slow, 18, facts)[1] == [
        "states respiratory rate 22, metadata says 18"
    ]


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_two_new_sources_end_to_end(tmp_path):
    """KAUH and PhysioNet 2016 fixtures, nothing else: ingest → reports → validate →
    pretrain → align → evaluate with the registry's own tasks; both datasets' tasks
    land in metrics.json and the tasks of sources not enabled are skipped."""
    import json

    from .kedro_support import make_project, run

    kauh_root, physionet_root = tmp_path / "kauh", tmp_path / "physionet"
    BUILDERS["kauh"](kauh_root, seconds=3.0)
    heart = BUILDERS["physionet2016"](physionet_root, seconds=3.0)
    project = make_project(tmp_path / "project")
    fast = {"epochs": 1, "progress": False, "batch_size": 16}
    params = {
        "ingest": {
            "sources": {
                "synthetic": {"enabled": False},
                "kauh": {"enabled": True, "root": str(kauh_root)},
                "physionet2016": {"enabled": True, "root": str(physionet_root)},
            }
        },
        "pretrain": {"train": fast},
        "align": {"train": fast},
        "evaluate": {
            "probe": {"epochs": 8, "seeds": [0, 1], "bootstrap": 50},
            "embed": {"progress": False},
        },
    }
    run(
        project,
        ["ingest", "reports", "validate", "pretrain", "align", "evaluate"],
        params,
    )
    d = project / "data"
    summary = json.loads((d / "08_reporting/ingest_summary.json").read_text())
    assert summary["datasets"]["kauh"]["quarantined"] == 4
    assert summary["datasets"]["physionet2016"]["quarantined"] == len(heart.quarantined)
    m = json.loads((d / "08_reporting/metrics_detail.json").read_text())
    assert m["synthetic"] is False and m["leakage_audit_ok"] is True
    for task, dataset in (("obstructive", "kauh"), ("heart_abnormal", "physionet2016")):
        for enc in ("baseline", "aligned"):
            res = m["probes"][task][dataset][enc]
            assert res["protocol"] == "loso" and 0.0 <= res["auroc"] <= 1.0
    # 24 KAUH recordings: the 2 of the pleural-effusion patient are left out of T10.
    assert m["probes"]["obstructive"]["kauh"]["baseline"]["n"] == 22
    assert m["probes"]["obstructive"]["kauh"]["baseline"]["left_out"] == 2
    assert m["probes"]["heart_abnormal"]["physionet2016"]["baseline"]["n"] == 11
    assert "copd_severity" not in m["probes"] and m["skipped_tasks"] > 0
    reports = pd.read_parquet(d / "04_feature/reports.parquet")
    assert set(reports["adapter"]) == {"kauh", "physionet2016"}
    assert reports["backend_passed"].all()
