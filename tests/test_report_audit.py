"""``acula audit-reports``: an existing report corpus keyed by CirCor patient (or
recording) ids, checked against the real-sample copy's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from click.testing import CliRunner

from acula_pipeline.commands import main
from acula_pipeline.reports.audit import audit_reports, dataset_facts, read_corpus

REPORTS = {
    # 49568: a child, murmur Absent: faithful
    "49568": "Heart sounds of a male child recorded at four sites. No murmur is heard.",
    # 49595: an infant, murmur Present: the report says there is none
    "49595": "Recording from a female infant. No murmur is audible on auscultation.",
    # 29045: murmur Present, holosystolic, grade II/VI, loudest at the tricuspid area;
    # stated, then advice the metadata does not hold
    "29045": (
        "A holosystolic murmur of grade II/VI is present in this child, most audible "
        "at the tricuspid area. Further clinical correlation is advised."
    ),
    "00000": "A patient the dataset does not have.",
}


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "reports.csv"
    pd.DataFrame(
        {"pid": list(REPORTS), "text": list(REPORTS.values()), "other": 1}
    ).to_csv(path, index=False)
    return path


def test_patient_facts_are_what_the_recordings_agree_on(real_samples):
    facts, keys = dataset_facts("circor2022", real_samples / "circor2022", None)
    assert keys["49595"] == keys["circor2022:49595"] == ("subject", "circor2022:49595")
    assert keys["49595_AV"] == ("recording", "circor2022/49595_AV")
    patient, av = facts["circor2022:49595"], facts["circor2022/49595_AV"]
    assert "recording_site" not in patient and av["recording_site"]
    assert patient["murmur"] == av["murmur"] == "Present"


def test_audit_flags_with_reason_and_sentence(real_samples, tmp_path):
    corpus = read_corpus(_corpus(tmp_path), "pid", "text")
    assert corpus["key"].tolist() == list(REPORTS)  # '00000' stays text
    audit = audit_reports(corpus, "circor2022", real_samples / "circor2022")
    verdict = audit.reports.set_index("key")["passed"].to_dict()
    assert verdict == {"49568": True, "49595": False, "29045": False, "00000": False}
    flags = audit.flags.set_index("key")
    contra = flags.loc[["49595"]]
    assert "no_contradiction" in set(contra["check"])
    row = contra[contra["check"] == "no_contradiction"].iloc[0]
    assert row["reason"] == "murmur stated as negative, metadata says Present"
    assert row["sentence"] == "No murmur is audible on auscultation."
    advice = flags.loc[["29045"]]
    assert advice["check"].tolist() == ["no_recommendation"]
    assert advice["sentence"].iloc[0] == "Further clinical correlation is advised."
    assert flags.loc["00000", "check"] == "unmatched"
    c = audit.counts
    assert (c["reports"], c["matched"], c["unmatched"], c["flagged"]) == (4, 3, 1, 3)
    assert c["flags_by_check"]["unmatched"] == 1
    assert sum(c["flags_by_reason"].values()) == c["flags"] == len(audit.flags)


def test_audit_reports_command(real_samples, tmp_path):
    out = tmp_path / "audit"
    args = [
        "audit-reports",
        str(_corpus(tmp_path)),
        "--dataset",
        "circor2022",
        "--root",
        str(real_samples / "circor2022"),
        "--key-column",
        "pid",
        "--text-column",
        "text",
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (
        "4 reports (3 matched to circor2022, 1 unmatched): 3 flagged" in result.output
    )
    flags = pd.read_csv(out / "flags.csv", dtype=str)
    assert set(flags["key"]) == {"49595", "29045", "00000"}
    counts = json.loads((out / "audit.json").read_text())
    assert counts["flagged"] == 3
    page = (out / "audit.html").read_text()
    assert "<mark>Further clinical correlation is advised.</mark>" in page

    bad = CliRunner().invoke(main, [*args[:7], "patient", *args[8:]])
    assert bad.exit_code != 0
    assert f"{tmp_path / 'reports.csv'}: no column 'patient'" in bad.output
    unknown = CliRunner().invoke(main, [*args[:3], "nosuch", *args[4:]])
    assert unknown.exit_code != 0 and "no fact extractor for dataset 'nosuch'" in (
        unknown.output
    )


def test_a_quarantined_patient_is_named_with_the_reason(real_copy):
    """A report keyed to a patient the adapter quarantined is not checked; its flag
    gives the adapter's reason, not a bare 'no such key'."""
    root = real_copy("circor2022")
    p = root / "training_data" / "49568.txt"
    p.write_bytes(p.read_bytes().replace(b"#Murmur: Absent", b"#Murmur: Maybe"))
    corpus = pd.DataFrame({"key": ["49568", "49568_AV"], "report": ["No murmur."] * 2})
    audit = audit_reports(corpus, "circor2022", root)
    reasons = audit.flags.set_index("key")["reason"]
    assert (audit.flags["check"] == "unmatched").all()
    assert reasons["49568_AV"].startswith(
        "quarantined by the circor2022 adapter: patient file 49568.txt: unknown "
        "#Murmur value 'Maybe'"
    )
    assert reasons["49568"].startswith("quarantined by the circor2022 adapter: ")
    assert audit.counts["unmatched"] == 2


def test_a_circor_run_with_the_file_backend_states_its_makeup_and_gate(
    real_samples, tmp_path
):
    """The real CirCor excerpt through the ``file`` backend, reports keyed by patient
    id: the corpus make-up counts the backend's reports, the template fallbacks and
    the dropped units, and the pass-rate gate names its rate, threshold, parameter
    and the most common failed checks."""
    from acula_pipeline.reports import ReportCache, write_reports
    from acula_pipeline.reports.summary import corpus_makeup, describe_makeup
    from acula_pipeline.validation import GXSession, ValidateParams
    from acula_pipeline.validation.suites import reports_suite

    from .conftest import REPO
    from .reports_support import params, units_from

    units = units_from({"circor2022": (real_samples / "circor2022", False)})
    corpus = _corpus(tmp_path)
    file_cfg = {
        "path": str(corpus),
        "match_on": "subject_id",
        "key_column": "pid",
        "text_column": "text",
    }
    runs = {
        policy: write_reports(
            units,
            params(backend="file", file=file_cfg, on_failure=policy),
            ReportCache(tmp_path / policy),
        )
        for policy in ("fallback_template", "drop")
    }
    by_patient = units.groupby("subject_id")["unit_id"].count()
    bad = by_patient["circor2022:49595"] + by_patient["circor2022:29045"]
    good = by_patient["circor2022:49568"]
    missing = len(units) - bad - good  # patients the corpus has no report for
    fb = runs["fallback_template"]
    m = corpus_makeup(fb.reports, fb.rejects)["circor2022"]
    assert m == {
        "units": len(units),
        "from_backend": good,
        "fallback_template": bad + missing,
        "dropped": 0,
        "fallback_share": round((bad + missing) / len(units), 4),
    }
    assert describe_makeup({"circor2022": m}, "file").startswith(
        f"circor2022: {len(units)} units: {good} from file, {bad + missing} template "
        "fallback"
    )
    dr = runs["drop"]
    assert corpus_makeup(dr.reports, dr.rejects)["circor2022"]["dropped"] == (
        bad + missing
    )
    # the gate: with drop, the dropped units count against the backend's rate
    raw = yaml.safe_load((REPO / "conf/base/parameters_validate.yml").read_text())
    cfg = ValidateParams.model_validate(raw["validate"]).reports
    checks = dr.rejects[dr.rejects["stage"] == "checks"]
    suite = reports_suite(dr.reports, len(dr.reports), cfg, None, checks)
    res = GXSession(docs_dir=None).validate("reports", *suite)
    (msg,) = [
        f.describe() for f in res.critical if "backend_passed_rate" in f.describe()
    ]
    n = len(dr.reports) + len(checks)
    assert f"{len(dr.reports) / n:.1%} of {n} reports passed every check" in msg
    assert "below validate.reports.min_pass_rate = 90%" in msg
    assert f"({len(checks)} of them dropped for failing" in msg
    assert "most common failed checks: no_recommendation (" in msg
