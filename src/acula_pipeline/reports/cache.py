"""A persistent, atomic report cache in one SQLite file.

Every finished generation is committed on its own, so a run killed midway keeps all
it finished; WAL journaling makes each commit cheap and a crash leaves the file
consistent. Only the writer thread touches the connection.

Answers that passed the checks (and the judge's answers) live in ``reports``; answers
that failed them live apart, in ``failures``, so the cache never holds a rejected
answer as if it were a report. A failed answer is kept only while it is no longer
than a report may be (the caller's bound), so that a rerun asks for the same retry;
a longer one is not kept and is asked for again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    key TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER
)
"""
FAILURES = SCHEMA.replace("reports (", "failures (", 1)
TABLES = ("reports", "failures")


@dataclass(frozen=True)
class CachedReport:
    """A generation as stored."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None


class ReportCache:
    """Key → generated text, durable across runs and crashes."""

    FILENAME = "reports.sqlite"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / self.FILENAME
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.execute(FAILURES)
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedReport]:
        """The cached entries among ``keys``, from either table (a report wins over
        a failure with the same key); the caller checks each text again."""
        keys = list(keys)
        out: dict[str, CachedReport] = {}
        for table in reversed(TABLES):  # a report overrides a failure of its key
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = ",".join("?" * len(chunk))
                for key, text, pt, ct in self._db.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens FROM "
                    f"{table} WHERE key IN ({q})",
                    chunk,
                ):
                    out[key] = CachedReport(text, pt, ct)
        return out

    def put(
        self,
        key: str,
        *,
        unit_id: str,
        backend: str,
        model: str,
        text: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        failed: bool = False,
    ) -> None:
        """Store one generation (in ``failures`` if it ``failed``) and commit."""
        table, other = ("failures", "reports") if failed else TABLES
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} (key, unit_id, backend, model, text, "
            "prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, unit_id, backend, model, text, prompt_tokens, completion_tokens),
        )
        self._db.execute(f"DELETE FROM {other} WHERE key = ?", (key,))
        self._db.commit()

    def __len__(self) -> int:
        """The number of reports (answers that passed), failures not counted."""
        return int(self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])

    def failures(self) -> int:
        """The number of failed answers kept."""
        return int(self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0])

    def close(self) -> None:
        """Fold the WAL into the main file so the folder holds one file at rest."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()
