"""Great Expectations suites that gate the data between stages.

Framework-free; the Kedro nodes in ``pipelines/validate`` call into it.
"""

from acula_pipeline.validation.runner import (
    GXSession,
    SuiteResult,
    ValidationFailed,
    close_session,
    gate,
    open_session,
)
from acula_pipeline.validation.suites import ValidateParams

__all__ = [
    "GXSession",
    "SuiteResult",
    "ValidateParams",
    "ValidationFailed",
    "close_session",
    "gate",
    "open_session",
]
