"""Reports the user already has, from a CSV or Parquet file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from acula_pipeline.reports.backends.base import (
    BackendConfigError,
    Generation,
    ReportRequest,
    register_backend,
)


class FileCfg(BaseModel):
    """``reports.file``."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None  # .csv or .parquet
    match_on: Literal["unit_id", "recording_id", "subject_id"] = "recording_id"
    key_column: str = "recording_id"  # the file's column holding that id
    text_column: str = "report"


def _short(key: str) -> str:
    """The dataset's own id: 'icbhi2017:101' → '101', 'circor2022/9_AV' → '9_AV'."""
    for sep in (":", "/"):
        if sep in key:
            return key.split(sep, 1)[1]
    return key


class FileBackend:
    """Looks each unit up by id; units without exactly one report get an error."""

    name = "file"
    is_llm = False
    per_unit = True

    def __init__(self, cfg: FileCfg) -> None:
        if not cfg.path:
            raise BackendConfigError(
                "reports.backend is 'file' but reports.file.path is not set"
            )
        path = Path(cfg.path)
        if not path.is_file():
            raise BackendConfigError(f"reports.file.path {path} does not exist")
        table = (
            pd.read_parquet(path)
            if path.suffix == ".parquet"
            else pd.read_csv(path, dtype=str, keep_default_na=False)
        )
        for col in (cfg.key_column, cfg.text_column):
            if col not in table.columns:
                raise BackendConfigError(
                    f"{path}: no column {col!r}; columns are {list(table.columns)}"
                )
        keys = table[cfg.key_column].astype(str).str.strip()
        counts = keys.value_counts()
        self._dupes = set(counts[counts > 1].index)
        self._reports = dict(zip(keys, table[cfg.text_column], strict=True))
        self.cfg = cfg
        self.path = path
        self.model = path.name
        self._digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.missing: list[str] = []

    def identity(self) -> dict[str, Any]:
        return {
            "path": str(self.path.resolve()),
            "sha256": self._digest,
            "match_on": self.cfg.match_on,
            "key_column": self.cfg.key_column,
            "text_column": self.cfg.text_column,
        }

    def stats(self) -> dict[str, Any]:
        return {"rows_in_file": len(self._reports), "missing": len(self.missing)}

    def _lookup(self, key: str) -> tuple[str | None, str | None]:
        for k in (key, _short(key)):
            if k in self._dupes:
                return None, f"{self.path}: {self.cfg.key_column} {k!r} appears twice"
            if k in self._reports:
                text = self._reports[k]
                if text is None or (isinstance(text, float) and pd.isna(text)):
                    return None, f"{self.path}: empty {self.cfg.text_column} for {k!r}"
                return str(text), None
        return None, f"{self.path}: no report for {self.cfg.match_on} {key!r}"

    def generate(self, requests: Sequence[ReportRequest]) -> Iterator[Generation]:
        for req in requests:
            text, err = self._lookup(str(req.row.get(self.cfg.match_on, req.unit_id)))
            if err:
                self.missing.append(req.unit_id)
            yield Generation(req.key, text, err)


@register_backend("file")
def make_file(cfg: Any) -> FileBackend:
    return FileBackend(cfg.file)
