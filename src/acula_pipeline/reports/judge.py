"""An optional judge: a second model re-reads each report; code compares its reading.

The rule checks (``checks.py``) read a report with patterns. The judge asks a
language model (an OpenAI-compatible endpoint, or the local ``transformers`` one) what
the report *states*: for each fact the report was written from, the value the text
gives (one of the fact's options, a number, or null), and every statement that is none
of these facts (an inferred cause, a diagnosis, advice). The model never sees the
metadata's values, so it cannot agree with them by copying; the comparison with the
metadata is done here, by code, and a disagreement fails the named check ``judge``.

Off by default (``reports.judge.enabled``). Answers are cached with the reports, keyed
by the judge's settings and the exact prompt, so a rerun asks nothing again.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.reports.backends.base import ReportBackend, ReportRequest
from acula_pipeline.reports.backends.local_lm import (
    TransformersBackend,
    TransformersCfg,
)
from acula_pipeline.reports.backends.openai_compat import OpenAIBackend, OpenAICfg
from acula_pipeline.reports.cache import ReportCache
from acula_pipeline.reports.facts import FIELD_LABELS, LABEL_FACTS, Facts
from acula_pipeline.reports.prompts import Message, sha256_json
from acula_pipeline.sources.vocab import VOCABULARIES, values_of

log = logging.getLogger(__name__)

JUDGE = "judge"  # the check's name

SYSTEM = (
    "You audit clinical reports of audio recordings for a research database. You get "
    "one report and a list of fields. Return only a JSON object with two keys. "
    '"facts": an object with every listed field as a key and, as its value, what the '
    "report states for it: one of the options listed for the field (a list of "
    'options for a field marked "list"), a number for a field marked "number", the '
    'report\'s own words for a field marked "text", or null when the report does not '
    'state it. A negated finding is stated: "no murmur was heard" states Murmur '
    'Absent. "beyond": a list of every statement in the report that is none of the '
    "listed fields (an inferred cause or diagnosis, a possibility, advice, a finding "
    "that is not listed), each quoted from the report; an empty list when there is "
    "none. Read only what the text says; do not guess what is likely."
)


@dataclass(frozen=True)
class FieldKind:
    """How a fact is asked for and compared.

    ``choice``: one of ``options``; ``choices``: a list of them; ``number``: equal
    within ``tol``; ``text``: asked for (so that the judge does not call it content
    beyond the facts) but not compared. ``read`` maps the metadata's value to the
    option(s) the judge should answer.
    """

    kind: Literal["choice", "choices", "number", "text"]
    options: tuple[str, ...] = ()
    tol: float = 0.0
    read: Callable[[Any], Any] | None = None


def _covid(value: Any) -> str:
    v = str(value).lower()
    for word in ("symptomatic", "positive", "negative"):
        if v.startswith(word):
            return word
    return "recovered" if "recovered" in v else "under validation"


# Facts whose values the judge is asked for as a list, or more coarsely than the
# metadata words them (COVID-19 status: its polarity, whatever the dataset's detail).
_LISTS = ("murmur_locations", "symptoms", "diagnosis")
_SPECIAL = {
    "covid_status": FieldKind(
        "choice",
        ("positive", "negative", "symptomatic", "recovered", "under validation"),
        read=_covid,
    ),
}


def _split(value: Any) -> list[str]:
    return str(value).split(" + ")  # combined diagnoses (KAUH)


def field_kind(name: str, adapter: str) -> FieldKind:
    """How the judge is asked for ``name`` in ``adapter``'s reports, from the
    adapter's vocabulary (``sources/<name>.py``)."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name == "diagnosis":  # every dataset's diagnoses, so another one is named
        return FieldKind("choices", tuple(values_of("diagnosis")), read=_split)
    voc = VOCABULARIES.get(adapter)
    spec = voc.facts.get(name) if voc else None
    if spec is None or spec.kind == "text":
        return FieldKind("text")
    if spec.kind == "number":
        return FieldKind("number", tol=spec.tol)
    if not spec.values:
        return FieldKind("text")
    return FieldKind("choices" if name in _LISTS else "choice", spec.options())


class JudgeCfg(BaseModel):
    """``reports.judge``: a second model re-reads each report (off by default)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    backend: Literal["openai", "transformers"] = "openai"
    openai: OpenAICfg = OpenAICfg(temperature=0.0, max_tokens=512)
    transformers: TransformersCfg = TransformersCfg(max_new_tokens=384)
    system: str = SYSTEM
    # which reports it reads: those that passed the rule checks (the only ones whose
    # fate it can change), or every report the backend wrote
    review: Literal["passed", "all"] = "passed"
    max_beyond_shown: int = Field(default=1, ge=1)  # quoted in the problem text


class JudgeAnswerError(ValueError):
    """The judge's answer is not the JSON object it was asked for."""


def judge_messages(system: str, text: str, facts: Facts, adapter: str) -> list[Message]:
    """The judge's prompt: the fields (names and options, never the values) and the
    report."""
    lines = []
    for name in sorted(facts):
        k = field_kind(name, adapter)
        label = FIELD_LABELS.get(name, name)
        if k.kind == "choice":
            spec = "one of " + " | ".join(k.options)
        elif k.kind == "choices":
            spec = "list of " + " | ".join(k.options)
        else:
            spec = k.kind
        lines.append(f"- {name} ({label}): {spec}")
    user = "Fields:\n" + "\n".join(lines) + f'\n\nReport:\n"""{text.strip()}"""'
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_answer(raw: str) -> tuple[dict[str, Any], list[str]]:
    """``facts`` and ``beyond`` from the judge's answer (code fences tolerated)."""
    raw = _FENCE.sub("", raw.strip())
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end < start:
        raise JudgeAnswerError(f"no JSON object in the answer: {raw[:120]!r}")
    try:
        obj = json.loads(raw[start : end + 1])
    except ValueError as exc:
        raise JudgeAnswerError(f"not JSON: {raw[:120]!r}") from exc
    facts, beyond = obj.get("facts"), obj.get("beyond", [])
    if not isinstance(facts, dict):
        raise JudgeAnswerError(f"'facts' is not an object: {facts!r:.120}")
    if isinstance(beyond, str):
        beyond = [beyond] if beyond.strip() else []
    if not isinstance(beyond, list):
        raise JudgeAnswerError(f"'beyond' is not a list: {beyond!r:.120}")
    return facts, [str(b).strip() for b in beyond if str(b).strip()]


def _said(x: Any) -> bool:
    return x is not None and str(x).strip().lower() not in ("", "null", "none", "n/a")


def _fold(x: Any) -> str:
    return re.sub(r"[\s_-]+", " ", str(x).strip().lower())


def _number(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool):
        return float(x)
    m = re.search(r"-?\d+(?:\.\d+)?", str(x))
    return float(m.group(0)) if m else None


def compare(
    stated: dict[str, Any],
    beyond: Sequence[str],
    facts: Facts,
    adapter: str,
    max_shown: int = 1,
) -> list[str]:
    """The judge's reading against the metadata: one problem per disagreement.

    A label fact (``facts.LABEL_FACTS``) the judge finds unstated is a problem, as in
    ``labels_reflected``; another fact left unstated is not (a report need not repeat
    every detail). A stated value that differs is a problem for any compared fact.
    """
    problems = []
    labels = set(LABEL_FACTS.get(adapter, ()))
    for name, value in facts.items():
        k = field_kind(name, adapter)
        if k.kind == "text":
            continue
        said = stated.get(name)
        if not _said(said) or said == []:
            if name in labels:
                problems.append(f"judge: does not state {name} ({value})")
            continue
        want = k.read(value) if k.read else value
        if k.kind == "number":
            x = _number(said)
            if x is None or not math.isclose(x, float(want), abs_tol=k.tol + 1e-9):
                problems.append(f"judge: states {name} {said}, metadata says {value}")
        elif k.kind == "choice":
            if _fold(said) != _fold(want):
                problems.append(f"judge: states {name} {said}, metadata says {value}")
        else:
            got = {_fold(s) for s in (said if isinstance(said, list) else [said])}
            wanted = {_fold(w) for w in (want if isinstance(want, list) else [want])}
            extra = sorted(got - wanted)
            if extra:
                problems.append(
                    f"judge: states {name} {', '.join(extra)}, metadata says "
                    f"{', '.join(sorted(wanted))}"
                )
            elif name in labels and not wanted <= got:
                problems.append(f"judge: does not state all of {name} ({value})")
    if beyond:
        shown = "; ".join(repr(b) for b in beyond[:max_shown])
        more = f" (+{len(beyond) - max_shown} more)" if len(beyond) > max_shown else ""
        problems.append(f"judge: beyond the facts: {shown}{more}")
    return problems


@dataclass
class Verdict:
    """The judge's finding on one report."""

    ok: bool
    problems: list[str]
    answer: str | None = None  # the raw answer, for the record


def make_judge_backend(cfg: JudgeCfg) -> ReportBackend:
    """The model the judge asks, answering raw JSON (not a ``report`` field)."""
    backend: OpenAIBackend | TransformersBackend
    if cfg.backend == "openai":
        backend = OpenAIBackend(cfg.openai)
    else:
        backend = TransformersBackend(cfg.transformers)
    backend.answer_key = None
    return backend


class Judge:
    """Asks the judge about reports, through the report cache."""

    def __init__(
        self, cfg: JudgeCfg, cache: ReportCache, backend: ReportBackend | None = None
    ) -> None:
        self.cfg = cfg
        self.cache = cache
        self.backend = backend or make_judge_backend(cfg)
        self.identity = {"judge": self.backend.name, **self.backend.identity()}
        self.counts = dict.fromkeys(
            ("reviewed", "asked", "from_cache", "no_verdict", "disagreed"), 0
        )

    def review(
        self, items: Iterable[tuple[str, str, Facts, str]]
    ) -> dict[str, Verdict]:
        """Verdicts for ``(unit_id, text, facts, adapter)`` items, by unit id."""
        reqs: dict[str, ReportRequest] = {}
        for unit_id, text, facts, adapter in items:
            messages = judge_messages(self.cfg.system, text, facts, adapter)
            key = sha256_json({"identity": self.identity, "messages": messages})
            reqs[unit_id] = ReportRequest(
                key, unit_id, "report", adapter, "judge", facts, messages
            )
        if not reqs:
            return {}
        self.counts["reviewed"] += len(reqs)
        keys = {r.key for r in reqs.values()}
        answers = {k: c.text for k, c in self.cache.get_many(keys).items()}
        self.counts["from_cache"] += sum(r.key in answers for r in reqs.values())
        errors: dict[str, str] = {}
        by_key = {r.key: r for r in reqs.values() if r.key not in answers}
        todo = list(by_key.values())
        if todo:
            log.info("Judge: %d reports to read with %s", len(todo), self.backend.name)
            self.counts["asked"] += len(todo)
            for gen in self.backend.generate(todo):
                if gen.text is None:
                    errors[gen.key] = gen.error or "no answer"
                    continue
                try:
                    parse_answer(gen.text)
                except JudgeAnswerError as exc:
                    errors[gen.key] = str(exc)  # not cached: asked again next run
                    continue
                answers[gen.key] = gen.text
                self.cache.put(
                    gen.key,
                    unit_id=by_key[gen.key].unit_id,
                    backend=f"judge:{self.backend.name}",
                    model=self.backend.model,
                    text=gen.text,
                    prompt_tokens=gen.prompt_tokens,
                    completion_tokens=gen.completion_tokens,
                )
        out = {}
        for unit_id, r in reqs.items():
            if r.key not in answers:
                self.counts["no_verdict"] += 1
                why = errors.get(r.key, "no answer")
                out[unit_id] = Verdict(False, [f"judge: no verdict ({why})"])
                continue
            stated, beyond = parse_answer(answers[r.key])
            problems = compare(
                stated, beyond, r.facts, r.adapter, self.cfg.max_beyond_shown
            )
            self.counts["disagreed"] += bool(problems)
            out[unit_id] = Verdict(not problems, problems, answers[r.key])
        return out

    def stats(self) -> dict[str, Any]:
        return {
            **self.counts,
            "backend": self.backend.name,
            "model": self.backend.model,
            **{f"backend_{k}": v for k, v in self.backend.stats().items()},
        }

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close:
            close()
