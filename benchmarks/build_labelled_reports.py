"""Write the labelled report set ``tests/data/labelled_reports.jsonl``.

Each entry is one report about one real patient (the facts come from the real
CirCor development set's metadata, ``../shared/real_dev/circor2022``), written in one
of the styles real LLMs produce (terse, verbose, paraphrased, negated, abbreviated),
and labelled *faithful* or with what is wrong: ``contradiction`` (a stated fact
the metadata contradicts), ``omission`` (a label fact left out), ``inference`` (a
cause or diagnosis the metadata does not hold), ``advice`` (a recommendation).
The phrasings follow GPT-4o's reports on CirCor (see the issue on report checks):
"within normal limits", "no abnormal outcomes were noted", "most audible at PV",
"suggesting potential non-valvular cardiac pathology", "further clinical
correlation is necessary".

The set is written once and committed; this script documents how, and rebuilds
it byte for byte (seeded). Heart reports come from the 224 dev-set patients, lung
(ICBHI) and cough (Coswara) reports from the real excerpts' recordings
(``../shared/real_samples``), several per recording.

    python benchmarks/build_labelled_reports.py [--root ../shared/real_dev/circor2022]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from acula_pipeline.reports.audit import dataset_facts

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests/data/labelled_reports.jsonl"
# The facts a CirCor report is written from (conf/base/parameters_reports.yml,
# without the recording site: these are patient-level reports).
HEART_FIELDS = [
    "age_group",
    "sex",
    "murmur",
    "murmur_locations",
    "most_audible_location",
    "systolic_timing",
    "systolic_shape",
    "systolic_grade",
    "systolic_pitch",
    "systolic_quality",
    "diastolic_timing",
    "diastolic_shape",
    "diastolic_grade",
    "diastolic_pitch",
    "diastolic_quality",
    "outcome",
]
# The facts lung and cough reports are written from (conf/base/parameters_reports.yml)
FIELDS = {
    "icbhi2017": [
        "age_years",
        "sex",
        "diagnosis",
        "chest_location",
        "crackles",
        "wheezes",
    ],
    "coswara": [
        "recording_type",
        "age_years",
        "sex",
        "smoker",
        "covid_status",
        "symptoms",
    ],
}
ABBREV = {
    "aortic valve area": "AV",
    "pulmonic valve area": "PV",
    "tricuspid valve area": "TV",
    "mitral valve area": "MV",
}
SHORT = {
    "aortic valve area": "aortic area",
    "pulmonic valve area": "pulmonic area",
    "tricuspid valve area": "tricuspid area",
    "mitral valve area": "mitral area",
}
WRONG_GRADE = {"I/VI": "III/VI", "II/VI": "IV/VI", "III/VI": "I/VI", "I/IV": "III/IV"}

# --------------------------------------------------------------------- phrase banks


def _who(f: dict[str, Any], rng: random.Random) -> str:
    age = (f.get("age_group") or "").lower()
    sex = f.get("sex") or ""
    if age and sex:
        a = "an" if age[0] in "aeiou" else "a"
        return rng.choice(
            [f"a {sex} {age}", f"this {age} ({sex})", f"{a} {age}, {sex}"]
        )
    return rng.choice(["the patient", "this patient"])


def _a(word: str) -> str:
    """The indefinite article for ``word``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _phase(f: dict[str, Any]) -> str:
    """The murmur's phase: systolic, or diastolic for a diastolic-only murmur."""
    return "systolic" if f.get("systolic_timing") else "diastolic"


def murmur_present(f: dict[str, Any], style: str, rng: random.Random) -> str:
    loc = f["most_audible_location"]
    ph = _phase(f)
    t, g = str(f[f"{ph}_timing"]).lower(), f[f"{ph}_grade"]
    shape = (f.get(f"{ph}_shape") or "").lower()
    pitch = (f.get(f"{ph}_pitch") or "").lower()
    quality = (f.get(f"{ph}_quality") or "").lower()
    if style == "terse":
        return rng.choice(
            [
                f"{t.capitalize()} murmur, grade {g}, loudest at the {SHORT[loc]}.",
                f"{ph.capitalize()} murmur present: {t}, {g}, most audible at the "
                f"{loc}.",
            ]
        )
    if style == "abbreviated":
        return rng.choice(
            [
                f"Murmur present ({t}, grade {g}), most audible at {ABBREV[loc]}.",
                f"{_a(t).capitalize()} {t} murmur of grade {g} is detected at the "
                f"{ABBREV[loc]} location.",
            ]
        )
    if style == "verbose":
        return (
            f"Auscultation reveals {_a(t)} {t} {ph} murmur, graded {g}, with a "
            f"{shape} configuration, {pitch} pitch and {quality} quality; it is most "
            f"audible over the {loc}."
        )
    # paraphrased
    return rng.choice(
        [
            f"{_a(quality or t).capitalize()} {quality} {t} murmur (grade {g}) is "
            "heard, best appreciated over the "
            f"{SHORT[loc]}.",
            f"There is a {t} murmur of intensity {g}, with maximal intensity at the "
            f"{loc}.",
        ]
    )


def murmur_absent(rng: random.Random) -> str:
    return rng.choice(
        [
            "No murmur was detected.",
            "No murmurs are heard.",
            "Heart sounds are clear, without any murmur.",
            "There is no evidence of a heart murmur.",
            "A murmur is absent.",
        ]
    )


def murmur_unknown(rng: random.Random) -> str:
    return rng.choice(
        [
            "The presence of a murmur could not be assessed.",
            "Murmur status could not be determined from the recording.",
            "Whether a murmur is present is unknown.",
        ]
    )


def outcome_text(value: str, style: str, rng: random.Random) -> str:
    if value == "Normal":
        if style in ("paraphrased", "negated"):
            return rng.choice(
                [
                    "The findings are within normal limits.",
                    "No abnormal outcomes were noted.",
                    "The outcome is normal with no abnormal sounds heard.",
                    "The overall examination is unremarkable.",
                ]
            )
        return rng.choice(["The clinical outcome is normal.", "Outcome: normal."])
    if style in ("paraphrased", "negated"):
        return rng.choice(
            [
                "Auscultation findings are abnormal.",
                "The assessment points to an abnormal finding.",
                "The overall findings are not within normal limits.",
            ]
        )
    return rng.choice(["The clinical outcome is abnormal.", "Outcome: abnormal."])


INFERENCE = [
    "These findings are suggesting potential non-valvular cardiac pathology.",
    "This may indicate a structural heart defect.",
    "The murmur is likely due to a ventricular septal defect.",
    "Such a murmur can be a sign of valvular disease.",
    "This raises concern for congenital heart disease.",
    "The pattern is indicating potential underlying cardiac pathology.",
    "It could reflect an innocent flow murmur or an early valvular lesion.",
    "An atrial septal defect cannot be excluded.",
]
ADVICE = [
    "Further clinical correlation is necessary to determine the underlying cause.",
    "Echocardiography is recommended.",
    "Follow-up with a paediatric cardiologist is advised.",
    "The murmur merits attention at the next visit.",
    "Further evaluation would be prudent.",
    "A repeat examination in six months would be sensible.",
]


# ------------------------------------------------------------------------ reports


def heart_report(
    f: dict[str, Any], style: str, category: str, rng: random.Random
) -> tuple[str, str]:
    """A report in ``style`` with the error ``category`` (or faithful), and a note
    saying what is wrong."""
    murmur = f["murmur"]
    lead = rng.choice(
        [
            f"Phonocardiogram of {_who(f, rng)}.",
            f"Heart sounds were recorded from {_who(f, rng)}.",
            "",
        ]
    )
    if murmur == "Present":
        m = murmur_present(f, style, rng)
        if _phase(f) == "systolic" and f.get("diastolic_timing"):  # both phases
            t, g = str(f["diastolic_timing"]).lower(), f["diastolic_grade"]
            m += (
                f" {_a(t).capitalize()} {t} diastolic murmur, grade {g}, is also heard."
            )
    elif murmur == "Absent":
        m = murmur_absent(rng)
    else:
        m = murmur_unknown(rng)
    o = outcome_text(f["outcome"], style, rng)
    note = ""
    if category == "contradiction":
        options = ["murmur", "outcome"]
        if murmur == "Present":
            options += ["location", "grade"]
        what = rng.choice(options)
        if what == "murmur" and murmur == "Present":
            m, note = murmur_absent(rng), "murmur stated absent, metadata Present"
        elif what == "murmur":
            m = rng.choice(
                [
                    "A soft early-systolic murmur is heard at the left sternal border.",
                    "A murmur is present, grade II/VI, loudest at the mitral area.",
                ]
            )
            note = f"murmur stated present, metadata {murmur}"
        elif what == "outcome":
            flipped = "Abnormal" if f["outcome"] == "Normal" else "Normal"
            o = outcome_text(flipped, style, rng)
            note = f"outcome stated {flipped.lower()}, metadata {f['outcome']}"
        elif what == "location":
            loc = f["most_audible_location"]
            other = rng.choice([v for v in ABBREV if v != loc])
            m = m.replace(loc, other).replace(SHORT[loc], SHORT[other])
            m = m.replace(f" {ABBREV[loc]}", f" {ABBREV[other]}")
            note = f"most audible at the {other}, metadata {loc}"
        else:
            g = f[f"{_phase(f)}_grade"]
            m = m.replace(g, WRONG_GRADE[g])
            note = f"grade {WRONG_GRADE[g]}, metadata {g}"
    elif category == "omission":
        if murmur == "Present" and rng.random() < 0.5:
            m = rng.choice(
                [
                    "A heart murmur is present.",
                    f"A murmur is present, most audible at the {SHORT[f['most_audible_location']]}.",
                ]
            )
            note = "murmur's timing and grade left out"
        elif rng.random() < 0.5:
            o, note = "", "outcome left out"
        else:
            m, note = "", "murmur status left out"
    sentences = [s for s in (lead, m, o) if s]
    if style == "negated" and murmur == "Absent" and category == "faithful":
        sentences.append("No extra heart sounds or clicks are described.")
    return _beyond(sentences, note, category, INFERENCE, ADVICE, rng)


def _beyond(
    parts: list[str],
    note: str,
    category: str,
    inference: list[str],
    advice: list[str],
    rng: random.Random,
) -> tuple[str, str]:
    """The report, with an invented inference or advice appended for those
    categories, and its note."""
    if category == "inference":
        parts = [*parts, rng.choice(inference)]
        note = "inference beyond the metadata"
    elif category == "advice":
        parts = [*parts, rng.choice(advice)]
        note = "advice not in the metadata"
    return " ".join(p for p in parts if p), note


# ------------------------------------------------------------------------- lung

DIAGNOSIS_TEXT = {
    "COPD": ("chronic obstructive pulmonary disease", "COPD"),
    "URTI": ("an upper respiratory tract infection", "URTI"),
    "LRTI": ("a lower respiratory tract infection", "LRTI"),
    "Asthma": ("asthma", "asthma"),
    "Pneumonia": ("pneumonia", "pneumonia"),
    "Healthy": ("no respiratory diagnosis", "healthy"),
}
WRONG_DIAGNOSIS = {"COPD": "asthma", "URTI": "pneumonia", "LRTI": "COPD"}
CHEST_ABBREV = {
    "anterior left chest": "Al",
    "anterior right chest": "Ar",
    "posterior left chest": "Pl",
    "posterior right chest": "Pr",
    "lateral left chest": "Ll",
    "lateral right chest": "Lr",
    "trachea": "Tc",
}
LUNG_INFERENCE = [
    "The wheezing may indicate airway obstruction.",
    "These sounds are suggestive of an acute exacerbation.",
    "A superimposed bacterial infection is likely.",
    "This raises the possibility of early bronchiectasis.",
]
LUNG_ADVICE = [
    "Spirometry is recommended to confirm the diagnosis.",
    "Clinical correlation with chest imaging is warranted.",
    "Inhaler technique should be reviewed.",
    "A follow-up recording after treatment would be useful.",
]


def _sounds(crackles: str, wheezes: str, style: str, rng: random.Random) -> str:
    """The adventitious sounds, in the style's words."""
    c, w = crackles == "present", wheezes == "present"
    if not c and not w:
        return rng.choice(
            {
                "terse": ["No crackles or wheezes."],
                "negated": [
                    "Neither crackles nor wheezes are heard.",
                    "There are no crackles and no wheezes.",
                ],
                "paraphrased": [
                    "Breath sounds are clear, without adventitious sounds.",
                    "No added sounds are heard.",
                ],
            }.get(style, ["No crackles or wheezes are detected."])
        )
    if c and w:
        return rng.choice(
            [
                "Both crackles and wheezes are heard.",
                "Crackles and wheezing are audible.",
            ]
        )
    present, absent = ("crackles", "wheezes") if c else ("wheezes", "crackles")
    return rng.choice(
        [
            f"{present.capitalize()} are heard, without {absent}.",
            f"There are {present} but no {absent}.",
            f"{'Wheezing' if present == 'wheezes' else 'Fine crackles'} is noted; "
            f"no {absent}.",
        ]
    )


def lung_report(
    f: dict[str, Any], style: str, category: str, rng: random.Random
) -> tuple[str, str]:
    long, short = DIAGNOSIS_TEXT.get(f["diagnosis"], (f["diagnosis"], f["diagnosis"]))
    where = f.get("chest_location", "")
    site = (
        f"at {CHEST_ABBREV[where]}"
        if style == "abbreviated" and where in CHEST_ABBREV
        else f"over the {where}"
    )
    lead = rng.choice(
        [
            f"Lung sounds of a {f['age_years']}-year-old {f['sex']} patient, recorded "
            f"{site}.",
            f"Respiratory recording {site} from a {f['sex']} patient aged "
            f"{f['age_years']}.",
        ]
    )
    dx = rng.choice(
        [
            f"The patient has {long} ({short}).",
            f"Diagnosis: {short}.",
            f"The patient is diagnosed with {short}.",
        ]
        if style != "verbose"
        else [f"The clinical diagnosis is {long} ({short})."]
    )
    sounds = _sounds(f["crackles"], f["wheezes"], style, rng)
    note = ""
    if category == "contradiction":
        what = rng.choice(["sounds", "diagnosis"])
        if what == "sounds" or f["diagnosis"] not in WRONG_DIAGNOSIS:
            flip = {"present": "absent", "absent": "present"}
            which = rng.choice(["crackles", "wheezes"])
            c = flip[f["crackles"]] if which == "crackles" else f["crackles"]
            w = flip[f["wheezes"]] if which == "wheezes" else f["wheezes"]
            sounds = _sounds(c, w, "terse", rng)
            note = (
                f"{which} stated {c if which == 'crackles' else w}, metadata {f[which]}"
            )
        else:
            wrong = WRONG_DIAGNOSIS[f["diagnosis"]]
            dx = f"The patient is diagnosed with {wrong}."
            note = f"diagnosis stated {wrong}, metadata {f['diagnosis']}"
    elif category == "omission":
        dx, note = "", "diagnosis left out"
    parts = [lead, dx, sounds]
    return _beyond(parts, note, category, LUNG_INFERENCE, LUNG_ADVICE, rng)


# ------------------------------------------------------------------------- cough

COUGH_INFERENCE = [
    "The cough pattern may indicate a lower respiratory infection.",
    "This is likely due to post-viral airway hyperreactivity.",
    "Findings are concerning for early pneumonia.",
]
COUGH_ADVICE = [
    "A PCR test is advised.",
    "The participant should self-isolate until symptoms resolve.",
    "Further testing is needed to rule out COVID-19.",
]


def _covid(status: str, style: str, rng: random.Random) -> str:
    if status.startswith("negative (healthy)"):
        return rng.choice(
            [
                "The participant tested negative for COVID-19 and is healthy.",
                "COVID-19 negative, healthy participant.",
            ]
            if style != "paraphrased"
            else ["There is no COVID-19 infection; the participant is in good health."]
        )
    if status.startswith("negative (respiratory illness"):
        return rng.choice(
            [
                "The participant is COVID-19 negative but has a respiratory illness.",
                "Not COVID-19: a respiratory illness other than COVID-19.",
            ]
        )
    return f"COVID-19 status: {status}."


def cough_report(
    f: dict[str, Any], style: str, category: str, rng: random.Random
) -> tuple[str, str]:
    kind = f["recording_type"]
    lead = (
        f"{kind.capitalize()} recording of a {f['age_years']}-year-old {f['sex']}."
        if style != "terse"
        else f"{kind.capitalize()}, {f['sex']}, {f['age_years']} y."
    )
    smoke = (
        rng.choice(["The participant does not smoke.", "Non-smoker."])
        if f["smoker"] == "no"
        else rng.choice(["The participant smokes.", "Current smoker."])
    )
    covid = _covid(f["covid_status"], style, rng)
    symptoms = (
        f"Reported conditions: {', '.join(f['symptoms'])}." if f.get("symptoms") else ""
    )
    note = ""
    if category == "contradiction":
        what = rng.choice(["covid", "smoker", "sex"])
        if what == "covid":
            covid, note = (
                "The participant tested positive for COVID-19.",
                (f"COVID-19 stated positive, metadata {f['covid_status']}"),
            )
        elif what == "smoker":
            smoke = (
                "The participant is a smoker." if f["smoker"] == "no" else "Non-smoker."
            )
            note = f"smoking stated opposite, metadata {f['smoker']}"
        else:
            other = "female" if f["sex"] == "male" else "male"
            lead = lead.replace(f["sex"], other)
            note = f"sex stated {other}, metadata {f['sex']}"
    elif category == "omission":
        smoke, note = "", "smoking status left out"
    parts = [lead, covid, smoke, symptoms]
    return _beyond(parts, note, category, COUGH_INFERENCE, COUGH_ADVICE, rng)


STYLES = ("terse", "verbose", "paraphrased", "negated", "abbreviated")
# faithful half the time; the rest spread over the four kinds of error
CATEGORIES = (
    ("faithful", 0.5),
    ("contradiction", 0.2),
    ("omission", 0.1),
    ("inference", 0.1),
    ("advice", 0.1),
)


def build(root: Path, samples: Path, seed: int = 0) -> list[dict[str, Any]]:
    """Heart reports from the dev set's patients; lung and cough reports, several
    per recording, from the real excerpts' recordings."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def add(
        family: str, adapter: str, key: str, f: dict[str, Any], style: str, writer: Any
    ) -> None:
        cat = rng.choices(
            [c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES]
        )[0]
        text, note = writer(f, style, cat, rng)
        n = sum(r["family"] == family for r in rows)
        rows.append(
            {
                "id": f"{family}-{n:03d}",
                "family": family,
                "adapter": adapter,
                "subject": key,
                "style": style,
                "faithful": cat == "faithful",
                "category": cat,
                "note": note,
                "report": text,
                "facts": f,
            }
        )

    facts, _ = dataset_facts("circor2022", root, HEART_FIELDS)
    subjects = sorted(k for k in facts if k.startswith("circor2022:"))
    for n, sid in enumerate(subjects):
        if facts[sid].get("outcome"):
            add(
                "heart",
                "circor2022",
                sid,
                facts[sid],
                STYLES[n % len(STYLES)],
                heart_report,
            )
    for family, adapter, writer, per_unit in (
        ("lung", "icbhi2017", lung_report, 13),
        ("cough", "coswara", cough_report, 6),
    ):
        unit_facts, _ = dataset_facts(adapter, samples / adapter, FIELDS[adapter])
        for rid in sorted(k for k in unit_facts if "/" in k):
            for i in range(per_unit):
                style = STYLES[(i + len(rows)) % len(STYLES)]
                add(family, adapter, rid, unit_facts[rid], style, writer)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--root", type=Path, default=REPO.parent / "shared/real_dev/circor2022"
    )
    ap.add_argument("--samples", type=Path, default=REPO.parent / "shared/real_samples")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()
    rows = build(args.root, args.samples)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(args.output)
    print(f"wrote {len(rows)} labelled reports to {args.output}")


if __name__ == "__main__":
    main()
