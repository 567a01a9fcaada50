"""Faithfulness checks run on every report, whatever wrote it.

The checks are lexical and conservative: a report must state every label-bearing fact
it was given (``labels_reflected``) and must not state anything that contradicts a fact
(``no_contradiction``): a murmur "absent" for a Present patient, a wrong grade,
location, timing or diagnosis, crackles or wheezes with the wrong polarity, a wrong
COVID-19 result, smoking status, sex or age. Negation is scoped to the clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.reports.facts import FIELD_LABELS, LABEL_FACTS, Facts
from acula_pipeline.sources.vocab import VOCABULARIES, Fact, Vocabulary, values_of

CHECKS = (
    "non_empty",
    "length",
    "no_error_marker",
    "no_injection",
    "labels_reflected",
    "no_contradiction",
    "no_recommendation",
    "no_inference",
)


class CheckCfg(BaseModel):
    """Bounds and marker lists of the checks (``reports.checks``)."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int = Field(default=30, ge=1)
    max_chars: int = Field(default=700, ge=1)
    max_sentences: int = Field(default=5, ge=1)
    error_markers: list[str] = [
        r"^\s*error\b",
        r"\berror:",
        r"\btraceback\b",
        r"\bi(?:'m| am) sorry\b",
        r"\bi (?:cannot|can't|can not|am unable to)\b",
        r"\bas an ai\b",
        r"\blanguage model\b",
        r"\bunable to (?:provide|generate|assist|comply)\b",
    ]
    # A report is plain prose read by a model and shown on pages: no markup, no
    # words addressed to a model (check ``no_injection``).
    forbid_injection: bool = True
    markup_markers: list[str] = [
        r"<[a-z/!?][^<>]{0,200}>",  # an HTML/XML tag or comment ("< 5 years" is not)
        r"\b(?:javascript|vbscript):|\bdata:[a-z]+/[a-z0-9.+-]+",  # script or data URLs
        r"!?\[[^\]]{0,200}\]\([^)]{0,500}\)",  # a Markdown link or image
        r"```",
        r"\{\{|\}\}|\{%|%\}",  # template syntax
        r"<\|[a-z_]{1,40}\|>|\[/?inst\]|<</?sys>>",  # chat-template tokens
        r"https?://",
    ]
    instruction_markers: list[str] = [
        r"\b(?:ignore|disregard|forget|override)\b[^.;]{0,40}?\b(?:instructions?|"
        r"prompts?|rules|guidelines|everything)\b",
        r"\b(?:system|developer) (?:prompt|message|instructions?)\b",
        r"\b(?:new|updated|real|actual) instructions?\b",
        r"\byou (?:are|will) (?:now )?(?:an?|the|my) (?:ai|assistant|chatbot|language "
        r"model|llm|model)\b",
        r"^\s*(?:assistant|system|user)\s*:",
        r"\b(?:do not|don't|never) (?:follow|obey|reveal|mention)\b",
        r"\bjailbreak",
        r"\bprompt injection\b",
    ]
    forbid_recommendations: bool = True
    recommendation_markers: list[str] = [
        r"\brecommend",
        r"\badvis",
        r"\bsuggest(?:s|ed)? (?:a |an |further |that )",
        r"\bshould\b",
        r"\bfollow[- ]?up\b",
        r"\brefer(?:ral|red)?\b",
        r"\bconsider\b",
        r"\bfurther (?:evaluation|investigation|testing|work-?up|assessment)\b",
        r"\bprescri",
        r"\btreat(?:ment|ed with)\b",
        # advice as real LLM reports phrase it
        r"\bwarrant(?:s|ed|ing)?\b",
        r"\bfurther\b[^.;]{0,60}?\b(?:necessary|needed|required|warranted|indicated)\b",
        r"\bclinical(?:ly)? correlat",
        r"\bmerits? (?:attention|further|review|monitoring)\b",
        r"\bwould (?:be|seem) (?:reasonable|advisable|appropriate|helpful|useful|"
        r"beneficial|prudent|sensible|wise|indicated)\b",
        r"\bwould help (?:to )?(?:clarify|confirm|assess|evaluate|determine|exclude)\b",
        r"\b(?:re-?assessment|re-?evaluation|repeat (?:examination|recording|"
        r"auscultation|assessment|testing))\b",
    ]
    # Content beyond the facts: an inference, a cause or a diagnosis the metadata
    # does not hold ("suggesting potential non-valvular cardiac pathology"); its
    # own check, ``no_inference``. A fact stated in other words ("indicating an
    # abnormal finding" for an Abnormal outcome) is not one.
    forbid_inference: bool = True
    inference_markers: list[str] = [
        r"\bsuggest(?:s|ing|ive of)\b",
        r"\b(?:may|might|could|can|would) (?:also )?(?:indicate|suggest|reflect|"
        r"represent|signify|point towards?|imply|account for|explain|contribute to|"
        r"be (?:due to|caused by|related to|associated with|a sign of|indicative of|"
        r"consistent with|compatible with))\b",
        r"\b(?:typical|characteristic|suggestive|indicative|diagnostic|"
        r"pathognomonic) of\b",
        # "consistent with airway narrowing", not "consistent with an abnormal outcome"
        r"\b(?:consistent|compatible) with (?!(?:an? |the )?(?:normal|abnormal)\b)",
        r"\bindicat(?:es|ing|ive of) (?:an? )?(?:possible|potential|probable|likely|"
        r"underlying|early|mild|significant)\b",
        r"\b(?:possible|potential|probable|likely|suspected|underlying) (?:\w+[- ]){0,3}?"
        r"(?:patholog|disease|disorder|dysfunction|condition|abnormalit|defect|"
        r"infection|insufficiency|stenosis|regurgitation|lesion|cause)",
        r"\bunderlying (?:cause|patholog|condition|disease|issue|problem)",
        r"\b(?:likely|probably|presumably) (?:due to|caused by|secondary to|"
        r"related to|reflect|represent|indicat)",
        r"\bconcerning for\b",
        r"\b(?:cannot|can't|could not|can not) be (?:excluded|ruled out)\b",
        r"\braises? (?:the )?(?:possibility|concern|suspicion)\b",
    ]


@dataclass
class CheckResult:
    """Pass/fail per check and what failed, in words."""

    passed: dict[str, bool]
    problems: list[str] = field(default_factory=list)
    # the check each problem failed, in the same order as ``problems``
    problem_checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(self.passed.values())

    def reasons(self) -> str:
        failed = [k for k, v in self.passed.items() if not v]
        return "; ".join(failed + self.problems) if failed else ""


# ------------------------------------------------------------------ clause polarity

_CLAUSE_SPLIT = re.compile(
    r"(?<!\d)[.!?](?!\d)|[;:,()\[\]]|\b(?:but|however|while|whereas|although|though|yet|and)\b"
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|neither|nor|absence of|absent|free of|denies|"
    r"negative for|never|none|zero)\b"
    r"|\b0\b(?![.,]\d)"  # "0 cycles with crackles", not "a 0.9-year-old"
)
_NEG_AFTER = re.compile(r"^\W*(?:\w+\W+){0,3}?(?:absent|not|none|negative)\b")
_UNCERTAIN = re.compile(
    r"\b(?:unknown|uncertain|indeterminate|undetermined|unclear|inconclusive|"
    r"(?:could|can)(?:not| not)? be (?:determined|assessed|evaluated|ascertained)|"
    r"not (?:assessable|evaluable|determinable)|"
    # "of insufficient quality to assess for a murmur", "unable to assess"
    r"(?:insufficient|inadequate|poor|limited)(?: \w+){0,2} (?:to assess|for assessment)|"
    r"unable to (?:assess|determine|evaluate)|"
    # hedges and hypotheticals: "a possible murmur", "crackles may be present", "if a
    # murmur is present", "a murmur cannot be excluded": not a statement either way
    r"possible|possibly|probable|probably|likely|suspected|suspicious|questionable|"
    r"equivocal|(?:may|might|could)(?: also)? (?:be|have|represent)|"
    r"(?:cannot|can't|could not|can not) be (?:excluded|ruled out)|"
    r"if|whether)\b"
)


def sentences(text: str) -> list[str]:
    """Split a report into sentences."""
    return [s for s in _SENTENCE_SPLIT.split(text.strip()) if s]


# "Murmur: absent", "(murmur: unknown)": a label and its value are one statement,
# though ':' ends a clause elsewhere ("10:30" has no space and is left alone)
_COLON_VALUE = re.compile(r"(?<=[a-z0-9)])\s*:\s+(?=[a-z0-9(])")


@lru_cache(maxsize=1024)
def clauses(text: str) -> tuple[str, ...]:
    """Split lower-cased text into clauses, the scope of a negation."""
    text = _COLON_VALUE.sub(" is ", text.lower())
    return tuple(c for c in _CLAUSE_SPLIT.split(text) if c and c.strip())


def _bare(clause: str, m: re.Match[str]) -> bool:
    """The clause is the mention alone ("free of crackles | and wheezes")."""
    before = clause[: m.start()].split()
    return len(before) <= 1 and not re.search(r"\w", clause[m.end() :])


def mentions(text: str, term: str | re.Pattern[str]) -> list[str]:
    """Polarity of each mention of ``term``: positive, negative or uncertain.

    A negation reaches across "and"/"or" into a clause that is the mention alone:
    "free of crackles and wheezes" negates both.
    """
    pattern = re.compile(term) if isinstance(term, str) else term
    found = []
    negated_before = False
    for clause in clauses(text):
        negated = bool(_NEG_BEFORE.search(clause))
        for m in pattern.finditer(clause):
            if _UNCERTAIN.search(clause):
                found.append("uncertain")
            elif (
                _NEG_BEFORE.search(clause[: m.start()])
                or _NEG_AFTER.match(clause[m.end() :])
                or (negated_before and _bare(clause, m))
            ):
                found.append("negative")
            else:
                found.append("positive")
        negated_before = negated
    return found


# ------------------------------------------------------------------ readers
# A check returns (reflected, contradictions) for one fact; reflected is None when the
# fact has no words to look for. Each kind of fact has one reader, shared by every
# dataset, that builds the check of a fact from its vocabulary (``sources/<name>.py``,
# ``sources/vocab.py``); a few facts with their own semantics (the murmur, the outcome,
# COVID-19 status, smoking, sex, age …) have readers of their own, by name.

FactCheck = Callable[[str, Any, Facts], tuple[bool | None, list[str]]]
FACT_CHECKS: dict[str, FactCheck] = {}
KindReader = Callable[[str, Fact, Vocabulary], FactCheck | None]
KIND_READERS: dict[str, KindReader] = {}


def fact_check(name: str) -> Callable[[FactCheck], FactCheck]:
    """Register the reader of one fact (it wins over its kind's reader)."""

    def deco(fn: FactCheck) -> FactCheck:
        FACT_CHECKS[name] = fn
        return fn

    return deco


def kind_reader(kind: str) -> Callable[[KindReader], KindReader]:
    """Register the reader of a kind of fact."""

    def deco(fn: KindReader) -> KindReader:
        KIND_READERS[kind] = fn
        return fn

    return deco


@cache
def fact_check_for(adapter: str, name: str) -> FactCheck | None:
    """The check of fact ``name`` in ``adapter``'s reports, or None (not checked)."""
    if name in FACT_CHECKS:
        return FACT_CHECKS[name]
    voc = VOCABULARIES.get(adapter)
    spec = voc.facts.get(name) if voc else None
    if voc is None or spec is None or spec.kind not in KIND_READERS:
        return None
    return KIND_READERS[spec.kind](name, spec, voc)


def _short_label(name: str) -> str:
    """'FVC (L)' → 'FVC': how a problem names the fact."""
    return re.sub(r"\s*\(.*\)$", "", FIELD_LABELS.get(name, name))


def _polarity_check(term: str, name: str, covered_by: str = "") -> FactCheck:
    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        want = {"present": "positive", "absent": "negative"}.get(str(value))
        if want is None:
            return None, []
        found = mentions(text, term)
        if covered_by and "negative" in mentions(text, covered_by):
            found.append("negative")
        wrong = [p for p in found if p not in (want, "uncertain")]
        problems = (
            [f"{name} stated as {wrong[0]}, metadata says {value}"] if wrong else []
        )
        return want in found, problems

    return check


@kind_reader("presence")
def _presence(name: str, spec: Fact, voc: Vocabulary) -> FactCheck | None:
    """Present or absent (crackles, wheezes): the polarity of each mention."""
    if not spec.read:
        return None
    # crackles, wheezes; CAS and DAS by their abbreviations
    label = name.upper() if name in ("cas", "das") else name
    return _polarity_check(spec.read, label, spec.also_negated_by)


@kind_reader("label")
def _label(name: str, spec: Fact, voc: Vocabulary) -> FactCheck | None:
    """One of named values (a diagnosis), read where the vocabulary says how; every
    dataset's values of the fact are known, so naming another one is a contradiction.
    Combined values ('Heart failure + COPD') must each be stated."""
    terms = {t: v.pattern() for t, v in values_of(name).items() if v.read}
    if not terms:
        return None

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        problems = []
        parts = str(value).split(" + ")
        found: dict[str, bool] = {}
        for t, term in terms.items():
            said = mentions(text, term)
            if t in parts:
                found[t] = "positive" in said
            elif "positive" in said:
                problems.append(f"states {name} {t}, metadata says {value}")
            elif "uncertain" in said:  # "pneumonia is also likely": still beyond
                problems.append(f"states {name} {t} as possible, metadata says {value}")
        reflected = all(found.values()) if found else None
        return reflected, problems

    return check


# A place in the dataset's own code, as reports quote it ("most audible at PV"):
# case-sensitive, and not "AV block" or "AV node" (atrioventricular)
_NOT_A_PLACE = (
    r"(?!\s*(?:block|node|nodal|dissociation|conduction|valves|canal|fistula|septal|"
    r"delay|interval|groove))"
)


@kind_reader("location")
def _location(name: str, spec: Fact, voc: Vocabulary) -> FactCheck | None:
    """A place (a valve area, a chest location): a report may name the metadata's
    places, written out or in the dataset's codes, and no other of the vocabulary's.
    With ``read`` (e.g. "loudest at"), a place right after it must be the value."""
    if not spec.checked:
        return None
    places = {v.text: re.compile(v.pattern()) for v in spec.values.values()}
    codes = {c: v.text for v in spec.values.values() for c in v.codes}
    code_re = (
        re.compile(rf"\b({'|'.join(map(re.escape, codes))})\b{_NOT_A_PLACE}")
        if codes
        else None
    )
    # every fact of the unit over the same places (CirCor: the recording site and the
    # murmur locations beside the most audible one)
    same = [k for k, f in voc.facts.items() if f.values is spec.values]
    lead = re.compile(spec.read) if spec.read else None

    def stated(low: str) -> list[tuple[int, str]]:
        return sorted(
            (m.start(), t) for t, rx in places.items() for m in rx.finditer(low)
        )

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        want = str(value)
        allowed = {want}
        for k in same:
            v = facts.get(k)
            allowed |= {str(x) for x in (v if isinstance(v, list) else [v]) if x}
        spelled = code_re.sub(lambda m: codes[m.group(1)], text) if code_re else text
        low = spelled.lower()
        marks = stated(low)
        found = {t for _, t in marks}
        problems = [
            f"names the {t}, not in the metadata" for t in sorted(found - allowed)
        ]
        if lead:
            for m in lead.finditer(low):
                nxt = next(((i, t) for i, t in marks if i >= m.end()), None)
                if nxt and nxt[0] - m.end() <= 40 and nxt[1] != want:
                    problems.append(
                        f"states {_short_label(name).lower()} {nxt[1]}, "
                        f"metadata says {value}"
                    )
        return want in found, problems

    return check


@kind_reader("number")
def _number(name: str, spec: Fact, voc: Vocabulary) -> FactCheck | None:
    """A measure: a number stated after its name must equal the fact."""
    if not spec.read:
        return None
    return _number_check(spec.read, _short_label(name), spec.tol, spec.percent)


_MURMUR = re.compile(r"\bmurmurs?\b")
_PHASE = re.compile(r"\b(?:systolic|diastolic)\b|holo|pan|-systolic|-diastolic")


@fact_check("murmur")
def _murmur(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    want = {"Present": "positive", "Absent": "negative", "Unknown": "uncertain"}.get(
        str(value)
    )
    if want is None:
        return None, []
    found: list[str] = []
    problems = []
    for clause in clauses(text):
        pol = mentions(clause, _MURMUR)
        if not pol:
            continue
        phased = _PHASE.search(clause)
        for p in pol:
            # "no diastolic murmur" says nothing about a systolic one.
            if phased and p == "negative" and want == "positive":
                for phase in ("systolic", "diastolic"):
                    if re.search(rf"\b{phase}\b", clause) and f"{phase}_grade" in facts:
                        problems.append(
                            f"states no {phase} murmur, metadata grades one"
                        )
                continue
            if phased and p == "positive" and want == "positive":
                for phase in ("systolic", "diastolic"):
                    other = (
                        f"{phase}_timing" not in facts and f"{phase}_grade" not in facts
                    )
                    if re.search(rf"\b{phase}\b", clause) and other:
                        problems.append(f"states a {phase} murmur the metadata lacks")
            found.append(p)
    wrong = [p for p in found if p != want]
    if wrong:
        problems.append(f"murmur stated as {wrong[0]}, metadata says {value}")
    return want in found, problems


_GRADE = re.compile(r"\b([1-6]|i{1,3}|iv|vi?)\s*/\s*(4|6|iv|vi)\b")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}


def _grade(s: str) -> tuple[int, int] | None:
    m = _GRADE.search(s.lower())
    if not m:
        return None
    a, b = m.groups()
    return (_ROMAN.get(a) or int(a), _ROMAN.get(b) or int(b))


@kind_reader("grade")
def _grade_reader(name: str, spec: Fact, voc: Vocabulary) -> FactCheck:
    """A murmur grade (2/6, II/VI): every grade stated must be one the unit has."""
    graded = [k for k, f in voc.facts.items() if f.kind == "grade"]

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        want = _grade(str(value))
        if want is None:
            return None, []
        allowed = {_grade(str(facts.get(k))) for k in graded}
        found = {g for m in _GRADE.finditer(text.lower()) if (g := _grade(m.group(0)))}
        wrong = sorted(found - allowed - {None})
        problems = [f"states grade {a}/{b}, metadata says {value}" for a, b in wrong]
        return want in found, problems

    return check


_TIMING = re.compile(
    r"\b(early|mid|late)[- ]?(systolic|diastolic)\b|\b(holo|pan)(systolic|diastolic)\b"
)


def _timing(s: str) -> set[str]:
    out = set()
    for m in _TIMING.finditer(s.lower()):
        if m.group(1):
            out.add(f"{m.group(1)}-{m.group(2)}")
        else:
            out.add(f"holo{m.group(4)}")
    return out


@kind_reader("timing")
def _timing_reader(name: str, spec: Fact, voc: Vocabulary) -> FactCheck:
    """A murmur's timing (early-systolic, holosystolic): every timing stated must be
    one the unit has."""
    timed = [k for k, f in voc.facts.items() if f.kind == "timing"]

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        want = _timing(str(value))
        if not want:
            return None, []
        allowed = set().union(*(_timing(str(facts.get(k))) for k in timed))
        found = _timing(text)
        problems = [
            f"states {t} timing, metadata says {value}" for t in sorted(found - allowed)
        ]
        return want <= found, problems

    return check


_COVID_POS = re.compile(
    r"(?:covid(?:-19)?|sars-cov-2)\W+(?:test\W+)?(?:is\W+|was\W+)?positive|"
    r"positive\W+for\W+(?:covid|sars)|tested\W+positive"
)
_COVID_NEG = re.compile(
    r"(?:covid(?:-19)?|sars-cov-2)\W+(?:test\W+)?(?:is\W+|was\W+)?negative|"
    r"negative\W+for\W+(?:covid|sars)|tested\W+negative|\bno\W+(?:evidence\W+of\W+)?covid|"
    r"without\W+covid|\bnot\W+(?:have\W+|infected\W+with\W+)?covid"
)


@fact_check("covid_status")
def _covid(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    low = text.lower()
    pos, neg = bool(_COVID_POS.search(low)), bool(_COVID_NEG.search(low))
    v = str(value)
    if v.startswith("symptomatic"):
        return "symptom" in low, ["states COVID-19 positive, metadata symptomatic"] if (
            pos
        ) else []
    if v.startswith("positive"):
        return pos, ["states COVID-19 negative, metadata positive"] if neg else []
    if v.startswith("negative"):
        return neg, ["states COVID-19 positive, metadata negative"] if pos else []
    if v == "fully recovered":
        return "recovered" in low, []
    return ("validation" in low or "pending" in low), []


_SMOKER_NEG = re.compile(
    r"non-?\s?smok\w*|never[- ]?smok\w*|(?:does not|doesn't|do not) smoke|not a smoker|"
    r"no (?:history of )?smoking|denies smoking"
)
_SMOKER_POS = re.compile(r"\bsmoker\b|\bsmokes\b|\bcurrent(?:ly)? smok\w*|\bsmoking\b")


@fact_check("smoker")
def _smoker(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    low = text.lower()
    neg = bool(_SMOKER_NEG.search(low))
    pos = bool(_SMOKER_POS.search(_SMOKER_NEG.sub(" ", low)))
    if value == "yes":
        return pos, ["states non-smoker, metadata says smoker"] if neg else []
    if value == "no":
        return neg, ["states smoker, metadata says non-smoker"] if pos else []
    return None, []


_MALE = re.compile(r"\b(?:male|man|boy|gentleman)\b")
_FEMALE = re.compile(r"\b(?:female|woman|girl|lady)\b")


@fact_check("sex")
def _sex(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    low = text.lower()
    male, female = bool(_MALE.search(low)), bool(_FEMALE.search(low))
    if value == "male":
        return male, ["states female, metadata says male"] if female else []
    if value == "female":
        return female, ["states male, metadata says female"] if male else []
    return None, []


_AGE = re.compile(r"(\d+(?:\.\d+)?)[- ]years?[- ]old|\baged (\d+(?:\.\d+)?)")


@fact_check("age_years")
def _age(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    ages = [float(a or b) for a, b in _AGE.findall(text.lower())]
    wrong = [a for a in ages if abs(a - float(value)) > 1.0]
    problems = [f"states age {a:g}, metadata says {value}" for a in wrong]
    return any(abs(a - float(value)) <= 1.0 for a in ages), problems


def _stated_in(key: str, words: tuple[str, ...], name: str) -> FactCheck:
    """A fact stated as one of ``words`` in a sentence that mentions ``key``."""
    word = re.compile(rf"\b({'|'.join(words)})\b")
    pattern = re.compile(key)

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        want = str(value).lower()
        said = set()
        for s in sentences(text.lower()):
            if pattern.search(s):
                said |= set(word.findall(s))
        problems = [
            f"{name} stated as {w}, metadata says {value}" for w in said - {want}
        ]
        return want in said, problems

    return check


# The outcome in the words real reports use: "the outcome is abnormal", and also
# "auscultation findings are abnormal", "within normal limits", "unremarkable",
# "no abnormal outcomes were noted" (normal: the negation is read, not the word)
_OUTCOME_KEY = re.compile(
    r"\b(?:outcomes?|findings?|assessment|examination|exam|evaluation|auscultation)\b"
)
_NOT_WNL = re.compile(r"\b(?:not|outside)(?: of)? (?:within )?(?:the )?normal limits\b")
_WNL = re.compile(r"\bwithin (?:the )?normal limits\b|\bunremarkable\b")
_NO_ABNORMAL = re.compile(
    r"\b(?:no|without|not any|nothing)\s+(?:\w+\s+){0,2}?abnormal\w*"
)
# "normal"/"abnormal" said of the outcome or the findings, not of a sound:
# "the findings are abnormal", "an abnormal finding", but not "auscultation
# reveals normal S1 and S2"
_KEY_WORDS = (
    r"(?:outcomes?|findings?|assessment|examination|exam|evaluation|auscultation)"
)
_NORMAL_WORD = re.compile(
    rf"\b{_KEY_WORDS}\b(?:\s+\w+){{0,3}}?\s+(?:is|are|was|were|appears?|seems?|"
    rf"remains?|deemed|considered|classified as|points? to|indicat\w*)"
    rf"(?:\s+\w+){{0,2}}?\s+(normal|abnormal)\b"
    rf"|\b(normal|abnormal)\s+(?:\w+\s+)?{_KEY_WORDS}\b"
    # terse: "outcome normal", "findings abnormal"
    rf"|\b(?:outcomes?|findings?)\s+(normal|abnormal)\b"
)
_LABEL_COLON = re.compile(
    r"\b(outcomes?|findings?|assessment|examination|evaluation)\s*:\s*", re.I
)


@fact_check("outcome")
def _outcome(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    want = str(value).lower()
    if want not in ("normal", "abnormal"):
        return None, []
    said = set()
    # "Outcome: abnormal." is one statement, though ':' ends a clause
    text = _LABEL_COLON.sub(r"\1 is ", text)
    for clause in clauses(text):
        if not (_OUTCOME_KEY.search(clause) or _WNL.search(clause)):
            continue
        for pattern, word in (
            (_NOT_WNL, "abnormal"),
            (_WNL, "normal"),
            (_NO_ABNORMAL, "normal"),
        ):
            if pattern.search(clause):
                said.add(word)
                clause = pattern.sub(" ", clause)
        said |= {next(w for w in ws if w) for ws in _NORMAL_WORD.findall(clause)}
    problems = [
        f"outcome stated as {w}, metadata says {value}" for w in sorted(said - {want})
    ]
    return want in said, problems


FACT_CHECKS["heart_sounds"] = _stated_in(
    r"heart sounds?", ("normal", "abnormal"), "heart sounds"
)

# the defects as the vocabulary reads them (sources/zchsound.py)
DEFECT_TERMS = {
    t: v.pattern() for t, v in values_of("congenital_defect").items() if v.read
}


@fact_check("congenital_defect")
def _defect(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    stated = {d for d, t in DEFECT_TERMS.items() if "positive" in mentions(text, t)}
    problems = [f"states {d}, metadata says {value}" for d in sorted(stated - {value})]
    if str(value).startswith("no defect"):
        return "negative" in mentions(text, r"\bdefects?\b"), problems
    return value in stated, problems


_CAS = r"\bcontinuous adventitious|\bcas\b"
_DAS = r"\bdiscontinuous adventitious|\bdas\b"


@fact_check("sound_class")
def _sound_class(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    v = str(value)
    if v.startswith("poor quality"):
        return "poor quality" in text.lower(), []
    want = {"CAS": "CAS" in v, "DAS": "DAS" in v}
    problems, reflected = [], True
    for name, term in (("CAS", _CAS), ("DAS", _DAS)):
        found = mentions(text, term)
        if want[name]:
            reflected &= "positive" in found
        elif "positive" in found:
            problems.append(f"states {name}, metadata says {value}")
    if v.startswith("normal"):
        reflected = "negative" in mentions(text, r"\badventitious sounds?\b")
    return reflected, problems


_SEVERITY = re.compile(r"\bcopd\s?([0-4])\b|\b(?:stage|grade) ([0-4])\b")


@fact_check("copd_severity")
def _copd_severity(
    text: str, value: Any, facts: Facts
) -> tuple[bool | None, list[str]]:
    want = str(value)[-1]
    found = {a or b for a, b in _SEVERITY.findall(text.lower())}
    problems = [
        f"states COPD severity {g}, metadata says {value}"
        for g in sorted(found - {want})
    ]
    return want in found, problems


# Words and units that may sit between a measure's name and its number: "FVC 3.2",
# "FVC of 3.2 L", "FVC (L): 3.2", "FVC was measured at 3.2", "FEV1/FVC ratio = 78%".
_LEAD = r"(?:\W*\b(?:of|was|is|ratio|measured|at|value|l|litres?|liters?)\b)*\W*"
_NUMBER = r"(\d+(?:\.\d+)?)\s*(%?)"


def _number_check(
    pattern: str, name: str, tol: float, percent: bool = False
) -> FactCheck:
    """A number stated after ``pattern`` must equal the fact (within ``tol``).

    With ``percent``, a number followed by ``%`` is read as a fraction (78% = 0.78);
    without it such a number is another measure ("85% predicted") and is not compared.
    """
    regex = re.compile(pattern + _LEAD + _NUMBER)

    def check(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
        found = [
            float(x) / 100 if pct else float(x)
            for x, pct in regex.findall(text.lower())
            if percent or not pct
        ]
        ok = [abs(x - float(value)) <= tol for x in found]
        problems = [
            f"states {name} {x:g}, metadata says {value}"
            for x, good in zip(found, ok, strict=True)
            if not good
        ]
        return any(ok), problems

    return check


_RATE = re.compile(
    r"(\d+(?:\.\d+)?) breaths? (?:per|a|/) ?min|respiratory rate"
    r"(?:\W*\b(?:of|was|is|measured|at|breaths?|per|min|minute|bpm)\b)*\W*"
    r"(\d+(?:\.\d+)?)"
)


@fact_check("respiratory_rate")
def _rate(text: str, value: Any, facts: Facts) -> tuple[bool | None, list[str]]:
    found = [float(a or b) for a, b in _RATE.findall(text.lower())]
    wrong = [x for x in found if abs(x - float(value)) > 0.05]
    problems = [f"states respiratory rate {x:g}, metadata says {value}" for x in wrong]
    return any(abs(x - float(value)) <= 0.05 for x in found), problems


# ------------------------------------------------------------------ the checker


def compile_markers(
    patterns: list[str], multiline: bool = False
) -> re.Pattern[str] | None:
    """One case-insensitive pattern from a marker list (None when empty); with
    ``multiline``, ``^`` matches at the start of every line."""
    flags = re.I | (re.M if multiline else 0)
    return (
        re.compile("|".join(f"(?:{p})" for p in patterns), flags) if patterns else None
    )


class Checker:
    """Runs every check on a report against the facts it was written from."""

    def __init__(self, cfg: CheckCfg) -> None:
        self.cfg = cfg
        self._errors = compile_markers(cfg.error_markers)
        self._markup = (
            compile_markers(cfg.markup_markers) if cfg.forbid_injection else None
        )
        self._instructions = (
            compile_markers(cfg.instruction_markers, multiline=True)
            if cfg.forbid_injection
            else None
        )
        self._advice = (
            compile_markers(cfg.recommendation_markers)
            if cfg.forbid_recommendations
            else None
        )
        self._inference = (
            compile_markers(cfg.inference_markers) if cfg.forbid_inference else None
        )

    def __call__(self, text: str | None, facts: Facts, adapter: str) -> CheckResult:
        text = (text or "").strip()
        if not text:
            return CheckResult(
                dict.fromkeys(CHECKS, False), ["empty report"], ["non_empty"]
            )
        passed = dict.fromkeys(CHECKS, True)
        found: dict[str, str] = {}  # problem → its check, in order, once each

        def fail(check: str, problem: str) -> None:
            passed[check] = False
            found.setdefault(problem, check)

        n_sent = len(sentences(text))
        if not (self.cfg.min_chars <= len(text) <= self.cfg.max_chars) or (
            n_sent > self.cfg.max_sentences
        ):
            fail("length", f"{len(text)} chars, {n_sent} sentences")
        if self._errors and (m := self._errors.search(text)):
            fail("no_error_marker", f"error/refusal marker {m.group(0)!r}")
        if self._markup and (m := self._markup.search(text)):
            fail("no_injection", f"markup {m.group(0)!r}")
        if self._instructions and (m := self._instructions.search(text)):
            fail("no_injection", f"words to a model {m.group(0)!r}")
        if self._advice and (m := self._advice.search(text)):
            fail(
                "no_recommendation",
                f"recommendation {m.group(0)!r} not in the metadata",
            )
        if self._inference and (m := self._inference.search(text)):
            fail("no_inference", f"inference {m.group(0)!r} beyond the metadata")
        required = set(LABEL_FACTS.get(adapter, ()))
        for name, value in facts.items():
            check = fact_check_for(adapter, name)
            if check is None:
                continue
            reflected, contra = check(text, value, facts)
            for problem in contra:
                fail("no_contradiction", problem)
            if name in required and reflected is False:
                fail("labels_reflected", f"does not state {name} ({value})")
        return CheckResult(passed, list(found), list(found.values()))
