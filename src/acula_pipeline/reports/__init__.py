"""Clinical reports from structured metadata: facts, prompts, backends, cache, checks.

Framework-free; the Kedro nodes in ``pipelines/reports`` call into it.
"""

from acula_pipeline.reports.backends import BACKENDS, register_backend
from acula_pipeline.reports.cache import ReportCache
from acula_pipeline.reports.checks import CHECKS, Checker, CheckResult
from acula_pipeline.reports.config import ReportsParams
from acula_pipeline.reports.facts import build_units, unit_facts
from acula_pipeline.reports.generate import (
    REPORT_COLUMNS,
    ReportRun,
    exclude_reserved,
    write_reports,
)

__all__ = [
    "BACKENDS",
    "CHECKS",
    "REPORT_COLUMNS",
    "CheckResult",
    "Checker",
    "ReportCache",
    "ReportRun",
    "ReportsParams",
    "build_units",
    "exclude_reserved",
    "register_backend",
    "unit_facts",
    "write_reports",
]
