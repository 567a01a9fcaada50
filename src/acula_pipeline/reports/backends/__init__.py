"""Report backends; importing this package registers the built-in ones."""

from acula_pipeline.reports.backends import file, local_lm, openai_compat, template
from acula_pipeline.reports.backends.base import (
    BACKENDS,
    BackendConfigError,
    Generation,
    ReportBackend,
    ReportRequest,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "BackendConfigError",
    "Generation",
    "ReportBackend",
    "ReportRequest",
    "file",
    "local_lm",
    "openai_compat",
    "register_backend",
    "template",
]
