"""The default report writer: deterministic, faithful by construction, varied.

Each sentence has several phrasings; which one a unit gets is a seeded hash of its id,
so the corpus is not one sentence with slots, yet a rerun writes the same text. The
writer states every fact it is given and nothing else (checks.py verifies both).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from acula_pipeline.reports.facts import Facts
from acula_pipeline.sources.vocab import values_of


class Chooser:
    """Seeded, per-unit choice among phrasings."""

    def __init__(self, seed: int, unit_id: str) -> None:
        self._key = f"{seed}:{unit_id}"

    def __call__(self, slot: str, options: Sequence[str]) -> str:
        h = hashlib.blake2b(f"{self._key}:{slot}".encode(), digest_size=8).digest()
        return options[int.from_bytes(h, "big") % len(options)]


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:].rstrip(".") + "."


def _person(f: Facts, c: Chooser, nouns: Sequence[str] = ("patient", "subject")) -> str:
    """'a 63-year-old male patient', 'a female infant', 'a participant'."""
    sex = f.get("sex")
    sex_word = str(sex) if sex in ("male", "female") else ""
    age = f.get("age_years")
    group = f.get("age_group")
    if age is None and group:
        phrase = " ".join(w for w in (sex_word, str(group).lower()) if w)
    else:
        age_word = f"{age}-year-old" if age is not None else ""
        phrase = " ".join(w for w in (age_word, sex_word, c("person", nouns)) if w)
    return f"{_article(phrase)} {phrase}"


def _article(phrase: str) -> str:
    # "an 8-year-old", "an 11-year-old", "an infant"; "a 1-year-old"
    return "an" if re.match(r"[aeiou]|(8|11|18)(\D|$)|8\d", phrase.lower()) else "a"


def _body(f: Facts) -> str:
    parts = []
    if "bmi" in f:
        parts.append(f"BMI {f['bmi']}")
    if "height_cm" in f:
        parts.append(f"height {f['height_cm']} cm")
    if "weight_kg" in f:
        parts.append(f"weight {f['weight_kg']} kg")
    return _join(parts)


# ---------------------------------------------------------------- lung (ICBHI)

# a diagnosis as the templates phrase it, from the datasets' vocabularies
DIAGNOSIS_TEXT = {t: v.prose for t, v in values_of("diagnosis").items() if v.prose}


def diagnosis_text(dx: str) -> str:
    """Words for a diagnosis; combined ones (``Heart failure + COPD``) part by part."""
    return _join([DIAGNOSIS_TEXT.get(p, p) for p in str(dx).split(" + ")])


def _adventitious(f: Facts, c: Chooser, where: str) -> str:
    cr, wh = f.get("crackles"), f.get("wheezes")
    if cr == "present" and wh == "present":
        return c(
            "adv11",
            (
                f"Both crackles and wheezes are heard {where}",
                f"Auscultation {where} reveals crackles together with wheezes",
                f"Adventitious sounds {where}: crackles and wheezes",
            ),
        )
    if cr == "present" and wh == "absent":
        return c(
            "adv10",
            (
                f"Crackles are heard {where}; wheezes are absent",
                f"Auscultation {where} reveals crackles, with no wheezes",
                f"Crackles are present {where}, without wheezes",
            ),
        )
    if cr == "absent" and wh == "present":
        return c(
            "adv01",
            (
                f"Wheezes are heard {where}; crackles are absent",
                f"Auscultation {where} reveals wheezes, with no crackles",
                f"Wheezes are present {where}, without crackles",
            ),
        )
    if cr == "absent" and wh == "absent":
        return c(
            "adv00",
            (
                f"No crackles or wheezes are heard {where}",
                f"Breath sounds {where} are without crackles or wheezes",
                f"Adventitious sounds {where}: neither crackles nor wheezes",
            ),
        )
    single = [
        f"{name.capitalize()} are {state} {where}"
        for name, state in (("crackles", cr), ("wheezes", wh))
        if state
    ]
    return "; ".join(single)


def write_lung(f: Facts, c: Chooser, unit: str) -> list[str]:
    """Sentences for a lung recording or respiratory cycle."""
    person = _person(f, c)
    dx = f.get("diagnosis")
    if dx == "Healthy":
        who = c(
            "dx_h",
            (f"{person} who is healthy", f"a healthy {person.split(' ', 1)[1]}"),
        )
    elif dx:
        text = diagnosis_text(str(dx))
        who = c("dx", (f"{person} with {text}", f"{person} diagnosed with {text}"))
    else:
        who = person
    first = c(
        "lung_open",
        (
            f"Lung sound recording from {who}",
            f"Respiratory auscultation of {who}",
            f"Chest auscultation in {who}",
        ),
    )
    body = _body(f)
    sentences = [_sentence(f"{first}; {body}" if body else first)]
    where = []
    if "chest_location" in f:
        where.append(f"at the {f['chest_location']}")
    if "device" in f:
        where.append(f"with {_article(f['device'])} {f['device']}")
    if "acquisition_mode" in f:
        where.append(f"({f['acquisition_mode']} acquisition)")
    if where:
        verb = c("lung_where", ("Recorded", "Sounds were acquired", "Acquired"))
        sentences.append(_sentence(" ".join([verb, *where])))
    scope = "in this respiratory cycle" if unit == "cycle" else "in this recording"
    adv = _adventitious(f, c, scope)
    if adv:
        sentences.append(_sentence(adv))
    if "n_cycles" in f:
        counts = [f"{f['n_cycles']} respiratory cycles were annotated"]
        if "crackle_cycles" in f:
            counts.append(f"{f['crackle_cycles']} with crackles")
        if "wheeze_cycles" in f:
            counts.append(f"{f['wheeze_cycles']} with wheezes")
        sentences.append(_sentence(", ".join(counts)))
    sentences += _lung_other(f, c)
    return sentences


def _lung_other(f: Facts, c: Chooser) -> list[str]:
    """Sentences for the facts of lung datasets other than ICBHI."""
    out = []
    if "copd_severity" in f:
        sev = str(f["copd_severity"])
        out.append(
            c(
                "copd_sev",
                (
                    f"COPD severity is stage {sev[-1]} ({sev})",
                    f"The patient's COPD severity grade is {sev[-1]} ({sev})",
                ),
            )
        )
    sound = f.get("sound_class")
    if sound and str(sound).startswith("normal"):
        out.append(
            c(
                "snd_none",
                (
                    "No adventitious sounds are annotated in this recording",
                    "The recording is annotated as normal, without adventitious sounds",
                ),
            )
        )
    elif sound and str(sound).startswith("poor quality"):
        out.append("The recording is annotated as poor quality and not assessable")
    elif sound:
        out.append(
            c(
                "snd",
                (
                    f"The recording is annotated with {sound}",
                    f"Annotation of the recording: {sound}",
                ),
            )
        )
    if f.get("events"):
        out.append(f"Annotated events: {_join(list(f['events']))}")
    for key, name in (
        ("cas", "continuous adventitious sounds"),
        ("das", "discontinuous adventitious sounds"),
    ):
        if f.get(key) == "present":
            out.append(f"{name[0].upper()}{name[1:]} are present")
        elif f.get(key) == "absent":
            out.append(f"No {name} are heard")
    return [_sentence(x) for x in out]


# ---------------------------------------------------------------- heart (CirCor)


def _murmur_detail(f: Facts, phase: str) -> list[str]:
    words = []
    if f"{phase}_grade" in f:
        words.append(f"grade {f[f'{phase}_grade']}")
    if f"{phase}_timing" in f:
        words.append(str(f[f"{phase}_timing"]).lower())
    if f"{phase}_shape" in f:
        words.append(str(f[f"{phase}_shape"]).lower())
    return words


def _murmur_sentence(f: Facts, c: Chooser, phase: str) -> str | None:
    detail = _murmur_detail(f, phase)
    if not detail:
        return None
    if phase == "systolic" and f"{phase}_timing" not in f:
        detail.append("systolic")
    if phase == "diastolic" and f"{phase}_timing" not in f:
        detail.append("diastolic")
    quals = []
    if f"{phase}_pitch" in f:
        quals.append(f"{str(f[f'{phase}_pitch']).lower()} pitch")
    if f"{phase}_quality" in f:
        quals.append(f"{str(f[f'{phase}_quality']).lower()} quality")
    core = " ".join(detail) + " murmur"
    tail = f" of {_join(quals)}" if quals else ""
    options: tuple[str, ...]
    if phase == "diastolic":
        options = (f"There is also a {core}{tail}", f"A {core}{tail} is also heard")
    else:
        options = (
            f"There is a {core}{tail}",
            f"A {core}{tail} is heard",
            f"Auscultation reveals a {core}{tail}",
        )
    return c(f"mur_{phase}", options)


def write_heart(f: Facts, c: Chooser, unit: str) -> list[str]:
    """Sentences for a heart-sound recording."""
    person = _person(f, c)
    extras = []
    body = _body(f)
    if body:
        extras.append(body)
    if f.get("pregnant") == "yes":
        extras.append("pregnant")
    site = f.get("recording_site")
    where = f" at the {site}" if site else ""
    first = c(
        "heart_open",
        (
            f"Heart sound recording{where} from {person}",
            f"Phonocardiogram acquired{where} in {person}",
            f"Cardiac auscultation{where} of {person}",
        ),
    )
    if extras:
        first += f" ({', '.join(extras)})"
    sentences = [_sentence(first)]
    murmur = f.get("murmur")
    if murmur == "Present":
        phrases = [
            s
            for s in (
                _murmur_sentence(f, c, "systolic"),
                _murmur_sentence(f, c, "diastolic"),
            )
            if s
        ]
        if not phrases:
            phrases = [c("mur_p", ("A heart murmur is present", "A murmur is heard"))]
        loud = f.get("most_audible_location")
        locs = f.get("murmur_locations") or []
        where_bits = []
        if loud:
            where_bits.append(f"loudest at the {loud}")
        others = [x for x in locs if x != loud]
        if others:
            where_bits.append(f"also audible at the {_join(others)}")
        if where_bits:
            phrases[0] += ", " + ", ".join(where_bits)
        sentences.extend(_sentence(p) for p in phrases)
    elif murmur == "Absent":
        sentences.append(
            _sentence(
                c(
                    "mur_a",
                    (
                        "No murmur is heard",
                        "Heart sounds are without a murmur",
                        "No cardiac murmur is present",
                    ),
                )
            )
        )
    elif murmur == "Unknown":
        sentences.append(
            _sentence(
                c(
                    "mur_u",
                    (
                        "Murmur status could not be determined (unknown)",
                        "Presence of a murmur is uncertain",
                        "Whether a murmur is present is unknown",
                    ),
                )
            )
        )
    heart = f.get("heart_sounds")
    if heart:
        sentences.append(
            _sentence(
                c(
                    "hs",
                    (
                        f"The heart sounds are {heart}",
                        f"Heart sounds were classified as {heart}",
                    ),
                )
            )
        )
    defect = f.get("congenital_defect")
    if defect and str(defect).startswith("no defect"):
        sentences.append(_sentence("No congenital heart defect is recorded"))
    elif defect:
        sentences.append(
            _sentence(
                c(
                    "chd",
                    (
                        f"The child has a congenital heart defect: {defect}",
                        f"Congenital heart defect: {defect}",
                    ),
                )
            )
        )
    outcome = f.get("outcome")
    if outcome:
        sentences.append(
            _sentence(
                c(
                    "outcome",
                    (
                        f"The clinical outcome was {str(outcome).lower()}",
                        f"Clinical outcome: {str(outcome).lower()}",
                    ),
                )
            )
        )
    return sentences


# ---------------------------------------------------------------- cough / breath / voice

COVID_SENTENCES = {
    "negative (healthy)": ("The participant is COVID-19 negative and healthy",),
    "positive, mild": ("The participant is COVID-19 positive with mild symptoms",),
    "positive, moderate": (
        "The participant is COVID-19 positive with moderate symptoms",
    ),
    "positive, asymptomatic": ("The participant is COVID-19 positive, asymptomatic",),
    "negative (respiratory illness, not COVID-19)": (
        "The participant is COVID-19 negative, with a respiratory illness "
        "not identified as COVID-19",
    ),
    "negative (exposed, no respiratory illness)": (
        "The participant is COVID-19 negative, exposed but without respiratory illness",
    ),
    "fully recovered": ("The participant has fully recovered from COVID-19",),
    "under validation": ("The participant's COVID-19 status is under validation",),
    "positive (self-reported)": ("The participant reports being COVID-19 positive",),
    "symptomatic (no COVID-19 reported)": (
        "The participant reports symptoms, without a COVID-19 diagnosis",
    ),
    "positive (test)": ("The participant tested positive for COVID-19",),
    "negative (test)": ("The participant tested negative for COVID-19",),
}


def write_cough(f: Facts, c: Chooser, unit: str) -> list[str]:
    """Sentences for a Coswara breathing, cough or voice recording."""
    person = _person(f, c, ("participant", "volunteer"))
    kind = f.get("recording_type", "audio")
    first = c(
        "cough_open",
        (
            f"{_article(kind).capitalize()} {kind} recording from {person}",
            f"{kind.capitalize()} recorded by {person}",
        ),
    )
    smoker = f.get("smoker")
    if smoker == "yes":
        first += c("smk_y", (", a smoker", ", who is a current smoker"))
    elif smoker == "no":
        first += c("smk_n", (", a non-smoker", ", who does not smoke"))
    sentences = [_sentence(first)]
    status = f.get("covid_status")
    if status:
        options = COVID_SENTENCES.get(str(status), (f"COVID-19 status: {status}",))
        sentences.append(_sentence(c("covid", options)))
    symptoms = f.get("symptoms") or []
    if symptoms:
        sentences.append(_sentence(f"Reported symptoms: {_join(symptoms)}"))
    respiratory = f.get("respiratory_symptoms")
    if respiratory:
        sentences.append(
            _sentence(
                c(
                    "resp",
                    (
                        f"The participant was {respiratory} at the time of recording",
                        f"Respiratory status: {respiratory}",
                    ),
                )
            )
        )
    position = f.get("body_position")
    if position:
        sentences.append(
            _sentence(
                c(
                    "pos",
                    (
                        f"Body position during sleep: {position}",
                        f"The sleeper was {position} while snoring",
                    ),
                )
            )
        )
    if "respiratory_rate" in f:
        rate = f["respiratory_rate"]
        sentences.append(
            _sentence(
                c(
                    "rr",
                    (
                        f"The respiratory rate was {rate} breaths per minute",
                        f"Breathing at {rate} breaths per minute",
                    ),
                )
            )
        )
    spiro = [
        f"{name} {f[key]}{unit}"
        for key, name, unit in (
            ("fvc_l", "FVC", " L"),
            ("fev1_l", "FEV1", " L"),
            ("fev1_fvc", "FEV1/FVC", ""),
        )
        if key in f
    ]
    if spiro:
        sentences.append(_sentence(f"Spirometry: {', '.join(spiro)}"))
    return sentences


WRITERS: dict[str, Callable[[Facts, Chooser, str], list[str]]] = {
    "heart": write_heart,
    "lung": write_lung,
    "cough": write_cough,
    "breath": write_cough,
    "voice": write_cough,
}


def write_report(
    facts: Facts, modality: str, unit_id: str, unit: str, seed: int
) -> str:
    """The template report of one unit.

    Args:
        facts: The allow-listed facts of the unit.
        modality: ``heart``, ``lung``, ``cough``, ``breath`` or ``voice``.
        unit_id: Picks the phrasing (with ``seed``).
        unit: ``cycle`` or ``recording``.
        seed: Changes every phrasing choice at once.
    """
    if modality not in WRITERS:
        raise KeyError(f"{unit_id}: no report template for modality {modality!r}")
    return " ".join(WRITERS[modality](facts, Chooser(seed, unit_id), unit))


@lru_cache(maxsize=1)
def template_fingerprint() -> str:
    """A hash of this module's source and of the phrasings it takes from the
    datasets' vocabularies: the cache key changes when the phrasing does."""
    h = hashlib.sha256(open(__file__, "rb").read())
    h.update(json.dumps(DIAGNOSIS_TEXT, sort_keys=True).encode())
    return h.hexdigest()[:16]
