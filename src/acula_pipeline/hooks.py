"""Kedro hooks: ``kedro run`` under ``torchrun`` (one process per GPU or CPU rank).

Every rank runs the same nodes in the same order; rank 0 alone writes datasets
(other ranks keep in-memory ones and skip file saves), and all ranks wait after
each save, so no rank reads a file before rank 0 has finished writing it.
"""

from __future__ import annotations

import os
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, MemoryDataset


class RankZeroWrites(AbstractDataset[Any, Any]):
    """Loads like the dataset it wraps; saving is left to rank 0."""

    def __init__(self, inner: AbstractDataset[Any, Any]) -> None:
        self._inner = inner

    def load(self) -> Any:
        return self._inner.load()

    def save(self, data: Any) -> None:
        """Nothing: rank 0 writes this dataset."""

    def _exists(self) -> bool:
        return self._inner.exists()

    def _describe(self) -> dict[str, Any]:
        return {"rank_zero_writes": type(self._inner).__name__}


class DistributedHooks:
    """Join the ``torchrun`` process group and keep file writes on rank 0."""

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return  # a plain run: nothing to do, and torch is not imported here
        from acula_pipeline.training import distributed as dist_

        dist_.init_distributed("auto")
        if dist_.rank() == 0:
            return
        for name in list(catalog.keys()):
            ds = catalog[name]
            if not isinstance(ds, MemoryDataset | RankZeroWrites):
                catalog[name] = RankZeroWrites(ds)

    @hook_impl
    def after_dataset_saved(self) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from acula_pipeline.training import distributed as dist_

            dist_.barrier()
