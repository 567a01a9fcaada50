"""Kedro datasets for folder-shaped data: corpus, features, report cache, GX session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from acula_pipeline.audio.features import FeatureStore, write_feature_store
from acula_pipeline.reports.cache import ReportCache
from acula_pipeline.runtime import atomic_folder
from acula_pipeline.validation.runner import GXSession, open_session


class CorpusFolderDataset(AbstractDataset[Any, str]):
    """A folder of raw audio in a dataset layout.

    ``save`` takes an object with ``write(root)`` (e.g. ``SyntheticCorpus``) and lets it
    write the folder file by file; ``load`` returns the folder path for the adapters.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> str:
        # Only the path: a run with the synthetic source disabled never needs the folder.
        return str(self._path)

    def save(self, data: Any) -> None:
        data.write(self._path)

    def _exists(self) -> bool:
        return (self._path / "manifest.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class FeatureStoreDataset(AbstractDataset[dict, FeatureStore]):
    """Sharded float16 log-mel features with an index, memory-mapped on load.

    ``save`` takes ``{"shards": iterable of FeatureShard, "meta": dict}`` and writes the
    shards as they are produced, so the whole corpus is never in memory.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> FeatureStore:
        return FeatureStore(self._path)

    def save(self, data: dict) -> None:
        write_feature_store(self._path, data["shards"], data["meta"])

    def _exists(self) -> bool:
        return (self._path / "index.parquet").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class ReportCacheDataset(AbstractDataset[None, ReportCache]):
    """The persistent report cache (a folder holding one SQLite file).

    ``load`` opens it (creating it if need be); the node that writes reports closes it.
    It is never saved as a whole: every finished report is committed as it arrives.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> ReportCache:
        return ReportCache(self._path)

    def save(self, data: None) -> None:
        raise NotImplementedError("the report cache is written entry by entry")

    def _exists(self) -> bool:
        return True  # an absent cache is an empty one

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class GXSessionDataset(AbstractDataset[None, GXSession]):
    """The Great Expectations session of one validation run, writing Data Docs to
    ``path``. Every suite node loads the same session; the summary node closes it."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> GXSession:
        return open_session(self._path)

    def save(self, data: None) -> None:
        raise NotImplementedError("validation results are written by the session")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class FolderDataset(AbstractDataset[None, str]):
    """A working folder a node manages itself (checkpoints, an embedding cache).

    ``load`` returns the path; DVC keeps such folders as ``persist`` outputs.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> str:
        self._path.mkdir(parents=True, exist_ok=True)
        return str(self._path)

    def save(self, data: None) -> None:
        raise NotImplementedError("the folder is written by the node that loads it")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class ModelArtifactDataset(AbstractDataset[dict, dict]):
    """A model folder: ``model.safetensors`` with the ``config.json`` that built
    them, ``preprocessor_config.json`` (the frontend) and a ``README.md`` model
    card; a Hugging Face model of type ``acula_audio`` (``acula_pipeline.hub``).

    The artifact is ``{"state_dict", "config"}`` and optionally ``"preprocessor"``;
    loading gives back exactly what was saved (the folder's Hugging Face keys and
    the ``student.`` prefix of an encoder-only state are layout, not content).
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        from acula_pipeline.hub import load_model_folder

        return load_model_folder(self._path)

    def save(self, data: dict[str, Any]) -> None:
        """Weights, config, preprocessor, card (and a TorchScript student's file,
        copied in) as one folder, whole or not at all."""
        from acula_pipeline.hub import save_model_folder

        save_model_folder(self._path, data)

    def _exists(self) -> bool:
        return (self._path / "model.safetensors").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class TableFolderDataset(AbstractDataset[dict, dict]):
    """``{name: DataFrame}`` as one CSV or Parquet file per name (``a/b`` makes
    subfolders) in a folder that is emptied on save and always exists afterwards, so a
    DVC output stays valid when there is nothing to write (no binary task ran)."""

    def __init__(
        self,
        path: str,
        file_format: str = "csv",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if file_format not in ("csv", "parquet"):
            raise ValueError(f"file_format must be csv or parquet, not {file_format!r}")
        self._path = Path(path)
        self._format = file_format
        self.metadata = metadata

    def load(self) -> dict:
        import pandas as pd

        read = pd.read_csv if self._format == "csv" else pd.read_parquet
        return {
            str(f.relative_to(self._path).with_suffix("")): read(f)
            for f in sorted(self._path.rglob(f"*.{self._format}"))
        }

    def save(self, data: dict) -> None:
        with atomic_folder(self._path) as tmp:  # the old tables or the new, whole
            for name, frame in data.items():
                f = tmp / f"{name}.{self._format}"
                f.parent.mkdir(parents=True, exist_ok=True)
                if self._format == "csv":
                    frame.to_csv(f, index=False)
                else:
                    frame.to_parquet(f, index=False)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "format": self._format}
