"""A dataset's metadata in words: its vocabulary and its fact extractor.

Each adapter module declares, beside its scanner, what a report about one of its
recordings may say: the facts its metadata yields and which of them carry the labels
the evaluation uses, how each value is written (in prompts, templates and the audit)
and how a report may state it (read by the checks and offered to the judge), with the
dataset's own abbreviations ("PV" for CirCor's pulmonic valve area). Facts, templates,
checks and the judge all read the vocabulary from here, so a new dataset is one module.

A fact has a kind, and each kind has one reader in ``reports/checks.py``, shared by every
dataset: ``label`` (one of named values, e.g. a diagnosis), ``presence`` (present or
absent), ``location`` (a place, e.g. a valve area), ``grade`` (a murmur grade, 2/6),
``timing``, ``number`` (a measure with its unit, compared within ``tol``) and ``text``
(described, not checked).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Facts = dict[str, Any]
Extractor = Callable[[Mapping[str, Any], Mapping[str, Any]], Facts]
Kind = Literal["label", "presence", "location", "grade", "timing", "number", "text"]


@dataclass(frozen=True)
class Value:
    """One value of a fact: how it is written and how a report may state it."""

    text: str  # as facts, prompts and the judge's options give it
    read: str = ""  # regex over lower-cased report text; "" reads ``text`` itself
    codes: tuple[str, ...] = ()  # the dataset's abbreviations, as written ("PV")
    prose: str = ""  # a template's phrasing, when it differs from ``text``

    def pattern(self) -> str:
        return self.read or rf"\b{re.escape(self.text.lower())}\b"

    def phrase(self) -> str:
        return self.prose or self.text


@dataclass(frozen=True)
class Fact:
    """A fact's kind and, for a closed set, its values keyed as the metadata has them."""

    kind: Kind
    values: Mapping[str, Value] = field(default_factory=dict)
    tol: float = 0.0  # numbers: the difference still read as equal
    # numbers and presences: regex for what is measured or present ("\\bfvc")
    read: str = ""
    percent: bool = False  # numbers: "78%" is read as 0.78 (a ratio)
    also_negated_by: str = ""  # presences: a regex whose negation negates it too
    # False: no check of its own; a location's values still count as places the
    # metadata names (CirCor's murmur locations beside the most audible one)
    checked: bool = True

    def text(self, raw: Any) -> str | None:
        """The written form of a metadata value (None when it is not one of ours)."""
        v = self.values.get(str(raw))
        return v.text if v else None

    def options(self) -> tuple[str, ...]:
        """Every written form, once, in declaration order."""
        return tuple(dict.fromkeys(v.text for v in self.values.values()))


@dataclass(frozen=True)
class Vocabulary:
    """What one adapter's reports are written from and checked against."""

    adapter: str
    label_facts: tuple[str, ...]
    facts: Mapping[str, Fact]
    extract: Extractor


VOCABULARIES: dict[str, Vocabulary] = {}


def register_vocabulary(
    adapter: str, label_facts: tuple[str, ...], facts: Mapping[str, Fact]
) -> Callable[[Extractor], Extractor]:
    """Register an adapter's fact extractor with its vocabulary."""
    unknown = [f for f in label_facts if f not in facts]
    if unknown:
        raise ValueError(f"{adapter}: label facts {unknown} have no vocabulary entry")

    def deco(fn: Extractor) -> Extractor:
        VOCABULARIES[adapter] = Vocabulary(adapter, label_facts, facts, fn)
        return fn

    return deco


def values_of(fact: str) -> dict[str, Value]:
    """Every dataset's values of ``fact``, by written form (the union of datasets)."""
    out: dict[str, Value] = {}
    for voc in VOCABULARIES.values():
        f = voc.facts.get(fact)
        for v in f.values.values() if f else ():
            out.setdefault(v.text, v)
    return out


# ---------------------------------------------------------------- shared vocabulary

_PRESENT_ABSENT = {"present": Value("present"), "absent": Value("absent")}
# "without adventitious sounds", "no added sounds": neither crackles nor wheezes
# (a positive mention names neither, so it states nothing about either)
_ANY_ADDED = r"\b(?:adventitious|added) (?:breath |lung )?sounds?\b"
CRACKLES = Fact(
    "presence",
    _PRESENT_ABSENT,
    read=r"\bcrackles?\b|\bcrepitations?\b",
    also_negated_by=_ANY_ADDED,
)
WHEEZES = Fact(
    "presence",
    _PRESENT_ABSENT,
    read=r"\bwheez(?:e|es|ing)\b",
    also_negated_by=_ANY_ADDED,
)
# continuous (wheeze, stridor, rhonchi) and discontinuous (crackles) adventitious sounds
CAS = Fact(
    "presence",
    _PRESENT_ABSENT,
    read=r"\bcontinuous adventitious|\bwheez(?:e|es|ing)\b|\bstridor\b|\brhonchi\b",
)
DAS = Fact(
    "presence", _PRESENT_ABSENT, read=r"\bdiscontinuous adventitious|\bcrackles?\b"
)
SEX = Fact("label", {"male": Value("male"), "female": Value("female")})
YES_NO = Fact("label", {"yes": Value("yes"), "no": Value("no")})
AGE_YEARS = Fact("number", tol=1.0)
TEXT = Fact("text")
# Respiratory diagnoses, as ICBHI and KAUH code them.
DIAGNOSES: dict[str, Value] = {
    "COPD": Value(
        "COPD",
        r"\bcopd\b|chronic obstructive pulmonary disease",
        prose="chronic obstructive pulmonary disease (COPD)",
    ),
    "URTI": Value(
        "URTI",
        r"\burti\b|upper respiratory (?:tract )?infection",
        prose="an upper respiratory tract infection (URTI)",
    ),
    "LRTI": Value(
        "LRTI",
        r"\blrti\b|lower respiratory (?:tract )?infection",
        prose="a lower respiratory tract infection (LRTI)",
    ),
    "Asthma": Value("Asthma", r"\basthma(?:tic)?\b", prose="asthma"),
    "Pneumonia": Value("Pneumonia", r"\bpneumonia\b", prose="pneumonia"),
    "Bronchiectasis": Value(
        "Bronchiectasis", r"\bbronchiectasis\b", prose="bronchiectasis"
    ),
    "Bronchiolitis": Value(
        "Bronchiolitis", r"\bbronchiolitis\b", prose="bronchiolitis"
    ),
    "Healthy": Value(
        "Healthy",
        r"\bhealthy\b|\bno (?:known )?(?:respiratory|lung|pulmonary) disease",
    ),
}


# ---------------------------------------------------------------- extractor helpers


def missing(v: Any) -> bool:
    """None, NaN, or an empty/"nan"/"na"/"none" string."""
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in ("", "nan", "na", "none")


def num(v: Any, digits: int = 1) -> float | int | None:
    """A number rounded to ``digits`` (an int when whole), or None."""
    if missing(v):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(x):
        return None
    x = round(x, digits)
    return int(x) if x == int(x) else x


def present(v: Any) -> str | None:
    if missing(v):
        return None
    return "present" if bool(v) else "absent"


def yes_no(v: Any) -> str | None:
    if missing(v):
        return None
    if isinstance(v, str):
        v = v.strip().lower() in ("true", "yes", "y", "1")
    return "yes" if bool(v) else "no"


def clean(facts: Facts) -> Facts:
    """Drop the facts with no value."""
    return {k: v for k, v in facts.items() if not missing(v) and v != []}
