"""Small helpers shared by the report backends and the training code."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _digest_store() -> Path | None:
    """Where file digests are remembered: ``$ACULA_CACHE_DIR`` or
    ``~/.cache/acula_pipeline`` (None when it cannot be created)."""
    root = Path(
        os.environ.get("ACULA_CACHE_DIR") or Path.home() / ".cache" / "acula_pipeline"
    )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / "file_digests.sqlite"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, remembered by (absolute path, size, mtime) as
    DVC does, so a multi-gigabyte weight file is read once, not on every run."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    store = _digest_store()
    db = None
    if store is not None:
        try:
            db = sqlite3.connect(store, timeout=30)
            db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size "
                "INTEGER, mtime_ns INTEGER, sha256 TEXT)"
            )
            row = db.execute(
                "SELECT sha256 FROM digests WHERE path=? AND size=? AND mtime_ns=?", key
            ).fetchone()
            if row:
                db.close()
                return str(row[0])
        except sqlite3.Error:
            db = None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if db is not None:
        try:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?)", (*key, digest)
                )
        except sqlite3.Error:
            pass  # a read-only cache folder: the digest is recomputed next time
        finally:
            db.close()
    return digest


def model_folder_fingerprint(path: str | Path, *extra: str) -> str:
    """Hash of a model folder's content: every file in it (config, weights,
    tokenizer, pooling settings), by content digest (``file_digest``), plus any
    ``extra`` strings (pooling, …). Changes when the model does, even when new
    weights have the old names and sizes."""
    path = Path(path)
    h = hashlib.sha256("|".join(extra).encode())
    files = sorted(
        f
        for f in path.rglob("*")
        if f.is_file()
        and f.suffix != ".pyc"
        and not any(
            p.startswith(".") or p == "__pycache__" for p in f.relative_to(path).parts
        )
    )
    for f in files:
        h.update(f"{f.relative_to(path).as_posix()}:{file_digest(f)}\n".encode())
    return h.hexdigest()[:16]


def path_fingerprint(path: str | Path) -> str:
    """``model_folder_fingerprint`` for a folder; the content hash of a file."""
    path = Path(path)
    if path.is_dir():
        return model_folder_fingerprint(path)
    return file_digest(path)[:16]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: Any) -> Any:
    """A copy of a DataFrame whose text cells a spreadsheet cannot run as formulas:
    a cell starting with ``= + - @``, a tab or a carriage return gets a leading
    ``'`` (OWASP's advice for CSV files). Numbers are left as they are."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = [
                "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                for v in out[col]
            ]
    return out


def _umask_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Write a file whole or not at all.

    Yields a temporary path beside ``path`` (unique per writer) to write to; on
    success it replaces ``path`` in one rename, on error it is removed, so a reader
    (or a run killed midway) never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o666))  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Write a folder whole or not at all.

    Yields a fresh temporary folder beside ``path`` (unique per writer). On success
    the old folder is moved aside, the new one moved in and the old one deleted: a
    reader finds the complete old folder or the complete new one, and a run killed
    midway leaves the old folder in place (or, in the instant between the two
    renames, beside it as ``.<name>.old-*``). On error the new folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.old-*"):  # from a killed swap
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o777))  # mkdtemp makes it private
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# Curve columns that measure the machine, not the model: kept out of the committed
# curve files so that a rerun writes the same bytes.
TIMING_COLUMNS = ("clips_per_s",)


def without_timings(curve: Any, what: str) -> Any:
    """A training curve (DataFrame) without its timing columns; their median is
    logged instead (``what`` names the run)."""
    import logging

    present = [c for c in TIMING_COLUMNS if c in getattr(curve, "columns", ())]
    if present and len(curve):
        logging.getLogger("acula_pipeline").info(
            "%s: median throughput %.1f clips/s over %d steps",
            what,
            float(curve["clips_per_s"].median()),
            len(curve),
        )
    return curve.drop(columns=present)
