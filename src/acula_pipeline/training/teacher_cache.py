"""Report embeddings of a frozen teacher, computed once and kept on disk.

Keyed by the teacher's identity (its folder and config) and each report's hash: a
rerun, a second epoch or a second stage asks the teacher only for reports it has
never seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np

from acula_pipeline.runtime import model_folder_fingerprint
from acula_pipeline.training.distributed import is_main_process

log = logging.getLogger(__name__)


class Teacher(Protocol):
    path: Path
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64) -> object: ...


def teacher_key(teacher: Teacher, pooling: str) -> str:
    """The teacher's folder fingerprint with its pooling."""
    return model_folder_fingerprint(teacher.path, pooling)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class EmbeddingCache:
    """``{teacher key}.npz`` files of (report hash → float32 vector) in a folder."""

    def __init__(self, folder: str | Path, teacher: Teacher, pooling: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.teacher = teacher
        self.key = teacher_key(teacher, pooling)
        self.path = self.folder / f"{self.key}.npz"
        self.forward_texts = 0  # reports the teacher had to encode (tests, logs)
        self._store: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as z:
                    keys = json.loads(str(z["keys"]))
                    self._store = dict(zip(keys, z["vectors"], strict=True))
            # a damaged cache file: truncated (BadZipFile, EOFError), not ours
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                aside = self.path.with_suffix(".corrupt")
                log.warning(
                    "Teacher cache %s is unreadable (%s); moved to %s, "
                    "every report will be encoded again",
                    self.path,
                    e,
                    aside,
                )
                if is_main_process():
                    self.path.replace(aside)
                self._store = {}

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), dim) embeddings; only unseen texts reach the teacher."""
        hashes = [text_hash(t) for t in texts]
        todo = sorted(
            {
                h: t for h, t in zip(hashes, texts, strict=True) if h not in self._store
            }.items()
        )
        if todo:
            log.info(
                "Teacher: encoding %d new reports (%d cached)",
                len(todo),
                len(self._store),
            )
            vecs = np.asarray(
                self.teacher.encode([t for _, t in todo], batch_size), dtype=np.float32
            )
            self.forward_texts += len(todo)
            self._store.update({h: v for (h, _), v in zip(todo, vecs, strict=True)})
            self._save()
        dim = self.teacher.dim
        if not hashes:
            return np.zeros((0, dim), np.float32)
        return np.stack([self._store[h] for h in hashes])

    def _save(self) -> None:
        if not is_main_process():  # under torchrun rank 0 writes the cache
            return
        keys = sorted(self._store)
        # A name of its own: two processes saving at once (tune workers) must not
        # write, then move, each other's file; the last to finish wins, and a
        # report the other had added is encoded again when next asked for.
        fd, name = tempfile.mkstemp(
            dir=self.folder, prefix=f".{self.key}.", suffix=".npz"
        )
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    keys=json.dumps(keys),
                    vectors=np.stack([self._store[k] for k in keys]),
                )
            tmp.chmod(0o644)  # mkstemp's 0600 would make the cache private
            tmp.replace(self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
