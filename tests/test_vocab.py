"""Each dataset's vocabulary, declared beside its adapter, drives facts, templates,
checks and the judge alike (``sources/vocab.py``)."""

from __future__ import annotations

import pytest

from acula_pipeline.reports import templates
from acula_pipeline.reports.checks import CheckCfg, Checker, fact_check_for
from acula_pipeline.reports.facts import FIELD_LABELS, unit_facts
from acula_pipeline.reports.judge import field_kind
from acula_pipeline.sources import SOURCES
from acula_pipeline.sources.vocab import (
    VOCABULARIES,
    Fact,
    Value,
    clean,
    register_vocabulary,
)

from .reports_support import synthetic_units


def test_every_adapter_has_a_vocabulary_and_every_label_a_reader():
    assert set(VOCABULARIES) == set(SOURCES)
    for adapter, voc in VOCABULARIES.items():
        assert set(voc.facts) <= set(FIELD_LABELS), adapter
        for name in voc.label_facts:
            assert fact_check_for(adapter, name) is not None, (adapter, name)


def test_every_fact_an_extractor_yields_is_in_its_vocabulary(tiny_corpus):
    for row in synthetic_units(tiny_corpus).to_dict("records"):
        voc = VOCABULARIES[row["adapter"]]
        assert set(unit_facts(row)) <= set(voc.facts), row["unit_id"]


def test_the_template_fingerprint_follows_the_vocabulary_phrasing(monkeypatch):
    templates.template_fingerprint.cache_clear()  # computed once per process
    before = templates.template_fingerprint()
    monkeypatch.setitem(templates.DIAGNOSIS_TEXT, "COPD", "COPD, in other words")
    templates.template_fingerprint.cache_clear()
    assert templates.template_fingerprint() != before
    monkeypatch.undo()
    templates.template_fingerprint.cache_clear()
    assert templates.template_fingerprint() == before


@pytest.fixture
def toy_dataset():
    """A new dataset: one vocabulary and one extractor, nothing else."""
    voc = {
        "diagnosis": Fact(
            "label",
            {"CF": Value("Cystic fibrosis", r"\bcystic fibrosis\b|\bcf\b")},
        ),
        "chest_location": Fact(
            "location",
            {"L": Value("left base", codes=("LB",)), "R": Value("right base")},
        ),
    }

    @register_vocabulary("toy", ("diagnosis", "chest_location"), voc)
    def toy_facts(unit, meta):
        return clean({"diagnosis": unit.get("diagnosis")})

    yield voc
    del VOCABULARIES["toy"]
    fact_check_for.cache_clear()


def test_a_new_dataset_is_read_from_its_vocabulary_alone(toy_dataset):
    check = Checker(CheckCfg())
    facts = {"diagnosis": "Cystic fibrosis", "chest_location": "left base"}
    assert check("Cystic fibrosis; recorded at LB, clear.", facts, "toy").ok
    res = check("Cystic fibrosis; recorded at the right base.", facts, "toy")
    assert res.problems == [
        "names the right base, not in the metadata",
        "does not state chest_location (left base)",
    ]
    # its values join every dataset's: COPD is known, so stating it contradicts
    res = check("COPD, recorded at LB.", facts, "toy")
    assert "states diagnosis COPD, metadata says Cystic fibrosis" in res.problems
    kind = field_kind("chest_location", "toy")
    assert (kind.kind, kind.options) == ("choice", ("left base", "right base"))
