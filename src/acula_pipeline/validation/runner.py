"""Run expectation suites with Great Expectations and read the verdicts back.

One ephemeral GX context per validation run (no GX project folder): a pandas data
source, one asset, suite, validation definition and checkpoint per table, and a Data
Docs site on the local filesystem. Failures come back as plain records naming the
suite, the expectation, the observed value and a few offending rows.
"""

from __future__ import annotations

import copy
import html
import logging
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning")


@dataclass
class Failure:
    """One expectation that did not hold."""

    suite: str
    expectation: str
    severity: str
    column: str | None
    observed: Any
    unexpected_count: int | None
    examples: list[Any] = field(default_factory=list)
    hint: str | None = None  # what the numbers mean and which parameter sets the bound

    def describe(self) -> str:
        what = self.expectation + (f"({self.column})" if self.column else "")
        parts = [f"[{self.severity}] {self.suite}: {what}"]
        if self.observed is not None:
            parts.append(f"observed {self.observed!r}")
        if self.unexpected_count:
            parts.append(f"{self.unexpected_count} rows")
        if self.examples:
            parts.append(f"e.g. {self.examples}")
        text = ", ".join(parts)
        return f"{text}: {self.hint}" if self.hint else text


@dataclass
class SuiteResult:
    """Counts and failures of one suite."""

    suite: str
    rows: int
    evaluated: int
    passed: int
    failures: list[Failure]

    @property
    def critical(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "critical"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity != "critical"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "rows": self.rows,
            "evaluated": self.evaluated,
            "passed": self.passed,
            "failed": len(self.failures),
            "critical_failed": len(self.critical),
            "warning_failed": len(self.warnings),
            "failures": [asdict(f) | {"message": f.describe()} for f in self.failures],
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, float | int | str | bool) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


# Result fields that carry values from the data (shown in the Data Docs tables).
_QUOTED_DATA = frozenset(
    {
        "partial_unexpected_list",
        "partial_unexpected_counts",
        "partial_unexpected_index_list",
        "unexpected_list",
        "unexpected_index_list",
        "unexpected_index_query",
        "details",
    }
)


def _escaped(v: Any) -> Any:
    """``v`` with every string in it HTML-escaped (keys too), structure kept."""
    if isinstance(v, str):
        return html.escape(v)
    if isinstance(v, dict):
        return {_escaped(k): _escaped(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return type(v)(_escaped(x) for x in v)
    return v


def _example(row: Any, id_column: str, column: str | None) -> Any:
    """'id (column=value)' for an offending row, or the row as GX gave it."""
    if not isinstance(row, dict):
        return row
    ident = row.get(id_column)
    if column and column != id_column and column in row:
        value = row[column]
        value = value.item() if hasattr(value, "item") else value  # numpy scalar
        return f"{ident} ({column}={value!r})"
    return ident


class GXSession:
    """An ephemeral GX context shared by the suites of one validation run."""

    def __init__(self, docs_dir: str | Path | None = None, examples: int = 5) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.examples = examples
        self.docs_dir = Path(docs_dir).resolve() if docs_dir else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.enable_analytics(False)  # no network at run time
        self._drop_default_site()
        self.ctx.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        if self.docs_dir:
            self.docs_dir.mkdir(parents=True, exist_ok=True)
            self.ctx.add_data_docs_site(
                "acula",
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(self.docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self.source = self.ctx.data_sources.add_pandas("acula")
        self.results: dict[str, SuiteResult] = {}

    def _drop_default_site(self) -> None:
        """An ephemeral context makes a docs site in a fresh temporary folder; drop
        it (and the folder) so pages are written once, to ``docs_dir`` only."""
        tmp = Path(tempfile.gettempdir()).resolve()
        for name, site in list(self.ctx.list_data_docs_sites().items()):
            base = Path(site.get("store_backend", {}).get("base_directory", ""))
            self.ctx.delete_data_docs_site(name)
            if base.name.startswith("tmp") and base.resolve().parent == tmp:
                shutil.rmtree(base, ignore_errors=True)

    def validate(
        self,
        suite: str,
        table: pd.DataFrame,
        expectations: list[Any],
        id_column: str | None = None,
        hints: dict[str, str] | None = None,
    ) -> SuiteResult:
        """Validate ``table`` against ``expectations`` under the name ``suite``.

        Args:
            suite: Suite (and page) name.
            table: The rows to check.
            expectations: GX expectation objects, each with its ``severity``.
            id_column: Column that names offending rows in failure messages.
            hints: Column → a sentence added to the message of a failure on it.
        """
        gx = self._gx
        for store in (self.ctx.checkpoints, self.ctx.validation_definitions):
            try:
                store.delete(suite)
            except Exception:  # noqa: BLE001 (GX raises various "not found" errors)
                pass
        try:
            self.ctx.suites.delete(suite)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.source.delete_asset(suite)
        except Exception:  # noqa: BLE001
            pass
        asset = self.source.add_dataframe_asset(suite)
        batch = asset.add_batch_definition_whole_dataframe("all")
        gx_suite = self.ctx.suites.add(gx.ExpectationSuite(name=suite))
        for e in expectations:
            gx_suite.add_expectation(e)
        definition = self.ctx.validation_definitions.add(
            gx.ValidationDefinition(name=suite, data=batch, suite=gx_suite)
        )
        result_format: dict[str, Any] = {
            "result_format": "COMPLETE",
            "partial_unexpected_count": self.examples,
        }
        if id_column:
            result_format["unexpected_index_column_names"] = [id_column]
        checkpoint = self.ctx.checkpoints.add(
            gx.Checkpoint(
                name=suite,
                validation_definitions=[definition],
                actions=[],  # the pages are built from escaped copies: _store_for_docs
                result_format=result_format,
            )
        )
        run = checkpoint.run(
            batch_parameters={"dataframe": table.reset_index(drop=True)}
        )
        if self.docs_dir:
            self._store_for_docs(run)
        out = self._read(suite, len(table), run, id_column)
        for f in out.failures:
            f.hint = (hints or {}).get(f.column or "")
        self.results[suite] = out
        for f in out.failures:
            (log.error if f.severity == "critical" else log.warning)("%s", f.describe())
        log.info(
            "Suite %s: %d rows, %d/%d expectations passed",
            suite,
            len(table),
            out.passed,
            out.evaluated,
        )
        return out

    def _store_for_docs(self, run: Any) -> None:
        """Store each result with the data values it quotes HTML-escaped.

        GX writes the offending values (and the id columns naming their rows) into
        the Data Docs tables as raw HTML, so a file or folder named
        ``<img src=x onerror=…>`` would run script in the page. The pages are built
        from these escaped copies; the failure records we return keep the raw values.
        """
        store = self.ctx.validation_results_store
        for key, vr in run.run_results.items():
            shown = copy.deepcopy(vr)
            for r in shown.results:
                if r.result:
                    r.result = {
                        k: _escaped(v) if k in _QUOTED_DATA else v
                        for k, v in r.result.items()
                    }
            store.set(key, shown)

    def _read(
        self, suite: str, rows: int, run: Any, id_column: str | None
    ) -> SuiteResult:
        failures = []
        evaluated = passed = 0
        for vr in run.run_results.values():
            for r in vr.results:
                evaluated += 1
                if r.success:
                    passed += 1
                    continue
                cfg = r.expectation_config
                res = r.result or {}
                column = cfg.kwargs.get("column") or cfg.kwargs.get("column_A")
                examples: list[Any] = []
                if id_column and res.get("unexpected_index_list"):
                    examples = [
                        _example(row, id_column, column)
                        for row in res["unexpected_index_list"][: self.examples]
                    ]
                elif res.get("partial_unexpected_list"):
                    examples = list(res["partial_unexpected_list"][: self.examples])
                if r.exception_info and r.exception_info.get("raised_exception"):
                    observed: Any = r.exception_info.get("exception_message")
                else:
                    observed = res.get("observed_value")
                failures.append(
                    Failure(
                        suite=suite,
                        expectation=cfg.type,
                        severity=str(getattr(cfg.severity, "value", cfg.severity)),
                        column=cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                        observed=_jsonable(observed),
                        unexpected_count=res.get("unexpected_count"),
                        examples=_jsonable(examples),
                    )
                )
        return SuiteResult(suite, rows, evaluated, passed, failures)

    def build_docs(self) -> Path | None:
        """Render the Data Docs index; returns its path."""
        if not self.docs_dir:
            return None
        self.ctx.build_data_docs()
        return self.docs_dir / "index.html"


_SESSIONS: dict[str, GXSession] = {}


def open_session(docs_dir: str | Path, examples: int = 5) -> GXSession:
    """The session of the current run for ``docs_dir``, started on first use.

    Starting one wipes the folder, so the Data Docs show this run only.
    """
    key = str(Path(docs_dir).resolve())
    if key not in _SESSIONS:
        shutil.rmtree(key, ignore_errors=True)
        _SESSIONS[key] = GXSession(key, examples)
    return _SESSIONS[key]


def close_session(session: GXSession) -> None:
    """Forget a finished run's session (the next run starts a fresh one)."""
    _SESSIONS.pop(str(session.docs_dir), None)


class ValidationFailed(RuntimeError):
    """At least one critical expectation failed."""


def gate(summary: dict[str, Any]) -> None:
    """Raise with every critical failure spelled out, if there is any."""
    critical = [
        f["message"]
        for s in summary["suites"].values()
        for f in s["failures"]
        if f["severity"] == "critical"
    ]
    if critical:
        raise ValidationFailed(
            f"{len(critical)} critical expectation(s) failed; see "
            f"{summary.get('docs') or 'the validation summary'}:\n  "
            + "\n  ".join(critical)
        )


def require_success(summary: dict[str, Any]) -> None:
    """For stages after validation: refuse to train on data that failed it."""
    if not summary.get("success"):
        raise ValidationFailed(
            f"{summary.get('critical_failed', '?')} critical expectation(s) failed in "
            "the validate stage (data/08_reporting/validation_summary.json); fix the "
            "data before training"
        )
