"""Our clause rules against medspaCy's ConText for negation, uncertainty and
hypotheticals, on the labelled report sets.

Every check that reads the polarity of a mention ("no crackles", "murmur could not be
assessed", "may have wheezes") goes through ``checks.mentions``. This script scores
the checks twice on each labelled set: as shipped, and with ``mentions`` answered by
medspaCy's ConText (its default rules, PyRuSH sentences; the same term patterns become
the target spans). Everything else (fact terms, paraphrases, the other checks) stays
the same, so the difference is the context reader alone.

medspaCy is not a dependency of the project (it pins spaCy 3.7 and numpy < 2); run this
in its own environment:

    python -m venv /tmp/ctx && /tmp/ctx/bin/pip install medspacy "numpy<2" "pandas<2.3" \\
        httpx tenacity tqdm pyyaml matplotlib pydantic soundfile
    PYTHONPATH=src /tmp/ctx/bin/python benchmarks/report_checks_context.py
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import medspacy
from loguru import logger
from medspacy.context import ConTextRule
from spacy.util import filter_spans

from acula_pipeline.reports import checks
from acula_pipeline.reports.checks import CheckCfg, Checker

sys.path.insert(0, str(Path(__file__).parent))
from report_checks import HELDOUT, SET, score  # noqa: E402

logger.disable("PyRuSH")  # a debug line per token otherwise
_NLP = medspacy.load()
_SENTS = _NLP.get_pipe("medspacy_pyrush")
_CONTEXT = _NLP.get_pipe("medspacy_context")
# The same cue words our clause rules know (checks._NEG_BEFORE, _NEG_AFTER,
# _UNCERTAIN), as ConText rules: ConText's algorithm with our vocabulary.
_OURS_AS_RULES = [
    *(
        ConTextRule(w, "NEGATED_EXISTENCE", direction="FORWARD")
        for w in ("neither", "nor", "free of", "absence of", "negative for", "none of")
    ),
    *(
        ConTextRule(w, "NEGATED_EXISTENCE", direction="BACKWARD")
        for w in (
            "absent",
            "is absent",
            "are absent",
            "not detected",
            "not heard",
            "not present",
            "none",
            "negative",
        )
    ),
    *(
        ConTextRule(w, "POSSIBLE_EXISTENCE", direction="BIDIRECTIONAL")
        for w in (
            "unknown",
            "uncertain",
            "indeterminate",
            "undetermined",
            "unclear",
            "inconclusive",
            "could not be determined",
            "could not be assessed",
            "cannot be assessed",
            "not assessable",
        )
    ),
]
_CONTEXT_PLUS = type(_CONTEXT)(_NLP, name="context_plus")
_CONTEXT_PLUS.add(_OURS_AS_RULES)


def context_mentions(
    text: str, term: str | re.Pattern[str], context: Any = None
) -> list[str]:
    """Polarity of each mention of ``term``, read by ConText."""
    pattern = re.compile(term) if isinstance(term, str) else term
    doc = _SENTS(_NLP.make_doc(text))
    low = text.lower()
    spans = [
        sp
        for m in pattern.finditer(low)
        if (sp := doc.char_span(m.start(), m.end(), "FINDING", alignment_mode="expand"))
    ]
    doc.ents = filter_spans(spans)
    doc = (context or _CONTEXT)(doc)
    out = []
    for ent in doc.ents:
        if ent._.is_negated:
            out.append("negative")
        elif ent._.is_uncertain or ent._.is_hypothetical:
            out.append("uncertain")
        else:
            out.append("positive")
    return out


def _line(name: str, m: dict[str, Any]) -> str:
    p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
    r = "-" if m["recall"] is None else f"{m['recall']:.3f}"
    return f"{name:34}{p:>10}{r:>8}{m['flagged']:>9}{m['positives']:>11}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="write the scores here")
    ap.add_argument("--show", type=int, default=0, help="reports judged differently")
    args = ap.parse_args()
    ours = checks.mentions
    out: dict[str, Any] = {}
    print(f"{'':34}{'precision':>10}{'recall':>8}{'flagged':>9}{'positives':>11}")
    for name, path in (("labelled set", SET), ("held-out set", HELDOUT)):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        checks.mentions = ours
        a = score(rows, Checker(CheckCfg()))
        checks.mentions = context_mentions
        b = score(rows, Checker(CheckCfg()))
        checks.mentions = lambda t, p: context_mentions(t, p, _CONTEXT_PLUS)
        c = score(rows, Checker(CheckCfg()))
        checks.mentions = ours
        out[name] = {
            "rules": a["overall"],
            "context": b["overall"],
            "context_plus_our_cues": c["overall"],
        }
        print(f"{name}, {len(rows)} reports")
        print(_line("  a flag, our clause rules", a["overall"]))
        print(_line("  a flag, ConText (default rules)", b["overall"]))
        print(_line("  a flag, ConText + our cue words", c["overall"]))
        differ = [
            (x, y)
            for x, y in zip(a["_results"], c["_results"], strict=True)
            if x["flagged"] != y["flagged"]
        ]
        for x, y in differ[: args.show]:
            label = "faithful" if x["faithful"] else x["category"]
            print(
                f"    [{x['id']}, {label}] rules {'flag' if x['flagged'] else 'pass'}, "
                f"ConText+cues {'flag' if y['flagged'] else 'pass'}: {x['report']}"
                f"  <- {y['reasons'] or x['reasons']}"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
