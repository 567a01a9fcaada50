"""Write, cache, check and (if need be) replace one report per alignment unit."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from acula_pipeline.reports.backends import BACKENDS, ReportBackend, ReportRequest
from acula_pipeline.reports.backends.template import TemplateBackend
from acula_pipeline.reports.cache import ReportCache
from acula_pipeline.reports.checks import CHECKS, Checker, CheckResult
from acula_pipeline.reports.config import ReportsParams
from acula_pipeline.reports.facts import UNIT_COLUMNS, allowed_facts, unit_facts
from acula_pipeline.reports.judge import JUDGE, Judge
from acula_pipeline.reports.prompts import build_messages, retry_messages, sha256_json

log = logging.getLogger(__name__)

# The same texts give the same table whether they came from the cache or the backend
# (cache hits are counted in the summary), so downstream DVC stages do not rerun.
REPORT_COLUMNS = (
    *UNIT_COLUMNS,
    "report",
    "source",
    "backend",
    "model",
    "prompt_hash",
    "template_hash",
    "settings",
    "facts",
    "cache_key",
    "attempts",
    "first_attempt_passed",
    "backend_passed",
    "backend_problems",
    *(f"check_{c}" for c in CHECKS),
    f"check_{JUDGE}",  # empty unless reports.judge.enabled and the report was read
    "prompt_tokens",
    "completion_tokens",
)
REJECT_COLUMNS = ("unit_id", "subject_id", "dataset", "stage", "reason")
# ``source`` of a report the template wrote because the backend's failed its checks
FALLBACK = "fallback_template"


def exclude_reserved(
    units: pd.DataFrame, exclude_splits: list[str], exclude_subjects: list[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop every unit of a subject reserved for evaluation.

    A subject is reserved if any of its units is in an excluded split, or it is listed.

    Returns:
        The kept units and counts of what was excluded, per dataset.
    """
    in_split = units["split"].isin(exclude_splits)
    reserved = set(units.loc[in_split, "subject_id"]) | set(exclude_subjects)
    drop = units["subject_id"].isin(reserved)
    gone = units[drop]
    counts = {
        "exclude_splits": list(exclude_splits),
        "listed_subjects": len(exclude_subjects),
        "subjects": int(gone["subject_id"].nunique()),
        "units": int(drop.sum()),
        "by_dataset": {
            str(ds): {"subjects": int(g["subject_id"].nunique()), "units": len(g)}
            for ds, g in gone.groupby("dataset")
        },
    }
    return units[~drop].reset_index(drop=True), counts


@dataclass
class _Unit:
    req: ReportRequest
    row: dict[str, Any]
    prompt_hash: str
    attempts: int = 0
    text: str | None = None
    error: str | None = None
    first_passed: bool | None = None
    result: CheckResult | None = None
    tokens: list[int | None] = field(default_factory=lambda: [None, None])


@dataclass
class ReportRun:
    """What a run produced."""

    reports: pd.DataFrame
    rejects: pd.DataFrame
    stats: dict[str, Any]


def _key(
    backend: ReportBackend,
    identity: dict[str, Any],
    unit_id: str,
    req_messages: Any,
    facts: Any,
    attempt: int,
) -> str:
    return sha256_json(
        {
            "backend": backend.name,
            # Template phrasing and file lookups depend on the unit; LLM output only
            # on the prompt, so identical prompts share one generation.
            "unit_id": unit_id if backend.per_unit else None,
            "model": backend.model,
            "identity": identity,
            "messages": req_messages,
            "facts": facts,
            "attempt": attempt,
        }
    )


class ReportWriter:
    """Drives one backend through the cache, the checks and the failure policy."""

    def __init__(
        self,
        params: ReportsParams,
        cache: ReportCache,
        backend: ReportBackend | None = None,
    ) -> None:
        self.p = params
        self.cache = cache
        self.backend = backend or BACKENDS[params.backend](params)
        self.template = TemplateBackend(params.template)
        self.checker = Checker(params.checks)
        self.judge = Judge(params.judge, cache) if params.judge.enabled else None
        self.json_mode = bool(
            getattr(getattr(params, params.backend, None), "json_mode", False)
        )
        self.counts = {
            "backend_calls": 0,
            "from_cache": 0,
            "retried": 0,
            "failed_not_kept": 0,  # failing answers too long to cache
        }
        self.identity = self.backend.identity()
        self.settings = json.dumps(self.identity, sort_keys=True, default=str)
        self.prompt_fingerprint = params.prompts.fingerprint()

    # -- requests

    def _request(self, row: dict[str, Any]) -> _Unit:
        adapter = str(row["adapter"])
        if adapter not in self.p.fields:
            raise KeyError(f"reports.fields has no allow-list for adapter {adapter!r}")
        facts = allowed_facts(unit_facts(row), self.p.fields[adapter])
        messages = build_messages(
            self.p.prompts, str(row["modality"]), facts, self.json_mode
        )
        req = ReportRequest(
            key=_key(
                self.backend, self.identity, str(row["unit_id"]), messages, facts, 0
            ),
            unit_id=str(row["unit_id"]),
            unit=str(row["unit"]),
            adapter=adapter,
            modality=str(row["modality"]),
            facts=facts,
            messages=messages,
            row=row,
        )
        return _Unit(req, row, sha256_json(messages)[:16])

    def _run(self, units: list[_Unit], desc: str) -> None:
        """Fill ``text``/``error`` of each unit from the cache or the backend.

        Units with the same key (same prompt and facts, for a backend whose output
        does not depend on the unit id) share one generation.
        """
        by_key: dict[str, list[_Unit]] = {}
        for u in units:
            by_key.setdefault(u.req.key, []).append(u)
        cached = self.cache.get_many(by_key)
        for key, hit in cached.items():
            for u in by_key[key]:
                u.text, u.error = hit.text, None
                u.tokens = [hit.prompt_tokens, hit.completion_tokens]
        self.counts["from_cache"] += sum(len(by_key[k]) for k in cached)
        todo = [us[0].req for k, us in by_key.items() if k not in cached]
        if not todo:
            return
        self.counts["backend_calls"] += len(todo)
        log.info(
            "%s: %d to write with %s (%d units from cache)",
            desc,
            len(todo),
            self.backend.name,
            sum(len(by_key[k]) for k in cached),
        )
        bar = tqdm(
            total=len(todo),
            desc=desc,
            unit="report",
            disable=not self.p.progress,
            mininterval=0.5,
        )
        with bar:
            for gen in self.backend.generate(todo):
                group = by_key[gen.key]
                for u in group:
                    u.text, u.error = gen.text, gen.error
                    u.tokens = [gen.prompt_tokens, gen.completion_tokens]
                if gen.text is not None:
                    self._keep(group)
                bar.update(1)
                tokens = self.backend.stats().get("completion_tokens")
                if tokens:
                    bar.set_postfix(tokens=tokens, refresh=False)

    def _keep(self, group: list[_Unit]) -> None:
        """Cache a new answer as it arrives, once the rule checks have read it: a
        passing one as a report, a failing one as a failure, and that only while it
        is no longer than a report may be (``checks.max_chars``), so a rerun sends
        the same retry; a longer one is asked for again. (The judge's answers are
        cached on their own.)"""
        for v in group:  # each unit's own verdict (the judge adds to it), kept
            v.result = self._check(v)
        u = group[0]
        assert u.text is not None and u.result is not None
        failed = not u.result.ok
        if failed and len(u.text) > self.p.checks.max_chars:
            self.counts["failed_not_kept"] += 1
            return
        self.cache.put(
            u.req.key,
            unit_id=u.req.unit_id,
            backend=self.backend.name,
            model=self.backend.model,
            text=u.text,
            prompt_tokens=u.tokens[0],
            completion_tokens=u.tokens[1],
            failed=failed,
        )

    def _check(self, u: _Unit) -> CheckResult:
        return self.checker(u.text, u.req.facts, u.req.adapter)

    def _judge(self, units: list[_Unit]) -> None:
        """The judge's verdict joins the rule checks' as the check ``judge``."""
        if self.judge is None:
            return
        every = self.p.judge.review == "all"
        todo = [
            u
            for u in units
            if u.text is not None and u.result and (every or u.result.ok)
        ]
        verdicts = self.judge.review(
            (u.req.unit_id, u.text or "", u.req.facts, u.req.adapter) for u in todo
        )
        for u in todo:
            v = verdicts[u.req.unit_id]
            assert u.result is not None
            u.result.passed[JUDGE] = v.ok
            u.result.problems += v.problems
            u.result.problem_checks += [JUDGE] * len(v.problems)

    # -- the run

    def write(self, units: pd.DataFrame) -> ReportRun:
        """Write one report per unit row."""
        rejects: list[dict[str, Any]] = []
        work: list[_Unit] = []
        for row in units.to_dict("records"):
            try:
                work.append(self._request(row))
            except (KeyError, ValueError) as exc:
                rejects.append(_reject(row, "facts", str(exc)))
        if rejects:
            log.warning(
                "Reports: %d units have no usable facts (first: %s: %s)",
                len(rejects),
                rejects[0]["unit_id"],
                rejects[0]["reason"],
            )
        if self.p.limit is not None:
            work = work[: self.p.limit]
        for u in work:
            u.attempts = 1
        self._run(work, f"reports ({self.backend.name})")
        for u in work:
            if u.result is None and u.text is not None:  # from the cache
                u.result = self._check(u)
        self._judge(work)
        for u in work:
            u.first_passed = bool(u.result and u.result.ok)
        if self.backend.is_llm and self.p.retry_failed:
            again = [
                self._retry(u)
                for u in work
                if u.text is not None and not u.first_passed
            ]
            if again:
                self.counts["retried"] += len(again)
                self._run(again, f"reports retry ({self.backend.name})")
                for u in again:
                    if u.result is None and u.text is not None:
                        u.result = self._check(u)
                self._judge(again)
        rows = []
        verdicts = []
        for u in work:
            passed = u.result.passed if u.result else dict.fromkeys(CHECKS, False)
            verdicts.append(
                {"dataset": u.row.get("dataset"), **passed, "all": all(passed.values())}
            )
            row, reject = self._finish(u)
            if row is not None:
                rows.append(row)
            if reject is not None:
                rejects.append(reject)
        stats = {
            "backend": self.backend.name,
            "model": self.backend.model,
            "settings": self.identity,
            "units": len(work),
            **self.counts,
            "first_attempt_passed": sum(bool(u.first_passed) for u in work),
            "without_backend_report": sorted(
                u.req.unit_id for u in work if u.text is None
            ),
            "pass_rate": pass_rates(verdicts),
            **{f"backend_{k}": v for k, v in self.backend.stats().items()},
        }
        if self.judge is not None:
            stats["judge"] = self.judge.stats()
            log.info(
                "Judge (%s): read %d reports (%d from cache), disagreed with %d, "
                "no verdict on %d",
                self.judge.backend.model,
                self.judge.counts["reviewed"],
                self.judge.counts["from_cache"],
                self.judge.counts["disagreed"],
                self.judge.counts["no_verdict"],
            )
        reports = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
        return ReportRun(
            reports, pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)), stats
        )

    def _retry(self, u: _Unit) -> _Unit:
        reasons = u.result.reasons() if u.result else "no report"
        u.result = None  # the retry's answer gets its own verdict
        messages = retry_messages(self.p.prompts, u.req.messages, u.text or "", reasons)
        req = ReportRequest(
            key=_key(
                self.backend, self.identity, u.req.unit_id, messages, u.req.facts, 1
            ),
            unit_id=u.req.unit_id,
            unit=u.req.unit,
            adapter=u.req.adapter,
            modality=u.req.modality,
            facts=u.req.facts,
            messages=messages,
            row=u.row,
        )
        # The retry replaces the unit's request; the first verdict stays recorded.
        u.req, u.attempts = req, 2
        return u

    def _finish(self, u: _Unit) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        res = u.result
        backend_ok = bool(res and res.ok)
        problems = u.error or (res.reasons() if res else "")
        text, source = u.text, self.backend.name
        if not backend_ok:
            if self.p.on_failure == "drop":
                return None, _reject(u.row, "checks", f"dropped: {problems}")
            text, source = self.template.write(u.req), FALLBACK
            fallback = self.checker(text, u.req.facts, u.req.adapter)
            if not fallback.ok:
                reason = f"{problems}; fallback failed too: {fallback.reasons()}"
                return None, _reject(u.row, "checks", reason)
        checks = res.passed if res else dict.fromkeys(CHECKS, False)
        row = {k: u.row.get(k) for k in REPORT_COLUMNS if k in u.row}
        row |= {
            "report": text,
            "source": source,
            "backend": self.backend.name,
            "model": self.backend.model,
            "prompt_hash": u.prompt_hash,
            "template_hash": self.p.prompts.fingerprint(),
            "settings": json.dumps(
                self.backend.identity(), sort_keys=True, default=str
            ),
            "facts": json.dumps(u.req.facts, sort_keys=True),
            "cache_key": u.req.key,
            "attempts": u.attempts,
            "first_attempt_passed": u.first_passed,
            "backend_passed": backend_ok,
            "backend_problems": problems,
            **{f"check_{k}": bool(v) for k, v in checks.items()},
            "prompt_tokens": u.tokens[0],
            "completion_tokens": u.tokens[1],
        }
        return row, None


def _reject(row: dict[str, Any], stage: str, reason: str) -> dict[str, Any]:
    return {
        "unit_id": row.get("unit_id"),
        "subject_id": row.get("subject_id"),
        "dataset": row.get("dataset"),
        "stage": stage,
        "reason": reason,
    }


def write_reports(
    units: pd.DataFrame,
    params: ReportsParams,
    cache: ReportCache,
    backend: ReportBackend | None = None,
) -> ReportRun:
    """Write, check and cache one report per unit (see ``ReportWriter``).

    Args:
        units: Alignment units (``facts.build_units``), reserved subjects removed.
        params: The ``reports`` parameters.
        cache: Where finished generations are kept across runs.
        backend: Overrides ``params.backend`` (tests, benchmarks).

    Returns:
        Reports (one row per unit kept), rejects (dropped units, with reasons) and
        run counters.
    """
    writer = ReportWriter(params, cache, backend)
    try:
        return writer.write(units)
    finally:
        close = getattr(writer.backend, "close", None)
        if close:
            close()
        if writer.judge is not None:
            writer.judge.close()


def pass_rates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of backend reports passing each check, overall and per dataset."""
    if not records:
        return {"overall": {}, "by_dataset": {}}
    df = pd.DataFrame(records)
    # the judge's rate is over the reports it read
    cols = [c for c in (*CHECKS, JUDGE) if c in df.columns and df[c].notna().any()]

    def rate(x: pd.Series) -> float | None:
        x = x.dropna()
        return round(float(x.astype(float).mean()), 4) if len(x) else None

    return {
        "overall": {c: rate(df[c]) for c in [*cols, "all"]},
        "by_dataset": {
            str(ds): {c: rate(g[c]) for c in [*cols, "all"]}
            for ds, g in df.groupby("dataset")
        },
    }
