"""Fault injection: each case a hostile user found (issue "Harden"), planted and
caught. Each test failed on the code before its fix."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from acula_pipeline.runtime import file_digest, model_folder_fingerprint
from acula_pipeline.training.teacher_cache import EmbeddingCache


class _Teacher:
    """A 3-d teacher whose vectors come from the bytes of its weight file, so new
    weights give new vectors; it counts the texts it encodes."""

    dim = 3

    def __init__(self, folder: pathlib.Path) -> None:
        self.path = folder
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += len(texts)
        w = np.frombuffer((self.path / "model.safetensors").read_bytes()[:3], np.uint8)
        return np.tile(w.astype(np.float32), (len(texts), 1))


def _teacher_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 3}')
    (folder / "model.safetensors").write_bytes(bytes([1, 2, 3]) * 100)
    return folder


def test_teacher_cache_follows_new_weights_of_the_same_size(tmp_path):
    """Defect 1: the key hashed weight names and sizes only; same-shape new weights
    gave zero teacher calls and the old vectors."""
    folder = _teacher_folder(tmp_path)
    teacher = _Teacher(folder)
    old = EmbeddingCache(tmp_path / "cache", teacher, "mean").embed(["a report"])
    (folder / "model.safetensors").write_bytes(bytes([9, 8, 7]) * 100)  # same size
    again = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    new = again.embed(["a report"])
    assert again.forward_texts == 1  # asked the teacher, not the cache
    assert not np.array_equal(old, new)
    assert new[0].tolist() == [9.0, 8.0, 7.0]


def test_a_weight_file_is_read_once_per_content(tmp_path, monkeypatch):
    """The digest is remembered by path, size and modification time, so an 8 GB
    teacher is not re-read on every run; a new file is read again."""
    folder = _teacher_folder(tmp_path)
    first = model_folder_fingerprint(folder, "mean")
    reads = []
    real_open = pathlib.Path.open

    def spy(self, *args, **kwargs):
        reads.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", spy)
    assert model_folder_fingerprint(folder, "mean") == first
    assert reads == []
    monkeypatch.undo()
    (folder / "model.safetensors").write_bytes(bytes([4, 5, 6]) * 100)
    monkeypatch.setattr(pathlib.Path, "open", spy)
    assert model_folder_fingerprint(folder, "mean") != first
    assert reads == ["model.safetensors"]


def test_the_digest_store_may_be_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("ACULA_CACHE_DIR", "/proc/no-such-place")
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 10)
    assert file_digest(f) == file_digest(f)  # computed each time, no error


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_teacher_cache_is_set_aside(tmp_path, caplog, damage):
    """Defect 11: a truncated ``.npz`` raised zipfile.BadZipFile, which the
    set-aside handler did not catch, and align crashed."""
    teacher = _Teacher(_teacher_folder(tmp_path))
    first = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    first.embed(["a", "b", "c"])
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    again = EmbeddingCache(tmp_path / "cache", teacher, "mean")
    assert "unreadable" in caplog.text and str(first.path) in caplog.text
    assert first.path.with_suffix(".corrupt").exists()
    again.embed(["a"])
    assert again.forward_texts == 1
