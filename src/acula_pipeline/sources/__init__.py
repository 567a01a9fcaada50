"""Dataset adapters: each reads one public dataset's own layout into unified rows."""

from acula_pipeline.sources.base import (
    QUARANTINE_COLUMNS,
    RECORDING_COLUMNS,
    SOURCES,
    SourceError,
    SourceScan,
    scan_source,
    scans_to_frames,
)

# Importing the adapters registers them.
from acula_pipeline.sources import circor, coswara, icbhi  # noqa: E402,F401  isort: skip

__all__ = [
    "QUARANTINE_COLUMNS",
    "RECORDING_COLUMNS",
    "SOURCES",
    "SourceError",
    "SourceScan",
    "scans_to_frames",
    "scan_source",
]
