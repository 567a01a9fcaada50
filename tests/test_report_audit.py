"""``acula audit-reports``: an existing report corpus keyed by CirCor patient (or
recording) ids, checked against the real-sample copy's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
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
