"""Dataset adapters: each reads one public dataset's own layout into unified rows."""

from acula_pipeline.sources.base import (
    LABEL_VALUES,
    QUARANTINE_COLUMNS,
    RECORDING_COLUMNS,
    SOURCES,
    SourceError,
    SourceScan,
    scan_source,
    scans_to_frames,
)

# Importing the adapters registers them.
from acula_pipeline.sources import (  # noqa: E402,F401  isort: skip
    circor,
    coswara,
    coughvid,
    covid19_sounds,
    hf_lung,
    icbhi,
    kauh,
    mmlung,
    nosemic,
    physionet2016,
    respiratory_tr,
    sprsound,
    ssbpr,
    uk_covid19,
    zchsound,
)

__all__ = [
    "QUARANTINE_COLUMNS",
    "RECORDING_COLUMNS",
    "LABEL_VALUES",
    "SOURCES",
    "SourceError",
    "SourceScan",
    "scans_to_frames",
    "scan_source",
]
