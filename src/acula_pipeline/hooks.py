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


def _every_pipeline() -> dict[str, Any]:
    """Every pipeline of the project, by name (the registry, during a run, holds
    only the requested ones)."""
    import importlib
    import pkgutil

    from acula_pipeline import pipelines as package

    out = {}
    for mod in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{mod.name}")
        if hasattr(module, "create_pipeline"):
            out[mod.name] = module.create_pipeline()
    return out


# Inputs a node reads only in some settings, and names itself when it needs one
# that is missing (the corpus: only when the synthetic source is enabled).
OPTIONAL_INPUTS = frozenset({"synthetic_corpus"})


class MissingInputs(RuntimeError):
    """A pipeline's inputs from earlier pipelines are not there."""


class InputChecks:
    """Before any node runs, check every input the pipeline reads from earlier
    pipelines exists; name each missing one, its path and the pipeline that makes
    it (evaluate used to find a missing validation summary at its last node, after
    minutes of probing)."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        missing = []
        for name in sorted(pipeline.inputs()):
            if name in OPTIONAL_INPUTS or name == "parameters":
                continue
            if name.startswith("params:"):
                continue
            try:
                there = catalog.exists(name)
            except Exception:  # noqa: BLE001 (a dataset that cannot say: let it load)
                continue
            if not there:
                missing.append(name)
        if not missing:
            return
        pipelines = _every_pipeline()
        lines = []
        for name in missing:
            makers = sorted(
                key
                for key in list(pipelines.keys())
                if name in pipelines[key].all_outputs()
            )
            where = getattr(catalog.get(name), "_filepath", None) or getattr(
                catalog.get(name), "_path", None
            )
            made_by = f"; made by `kedro run --pipelines={makers[0]}`" if makers else ""
            lines.append(f"{name} ({where or 'no path'}){made_by}")
        env = run_params.get("env") or "local"
        raise MissingInputs(
            f"{len(missing)} input(s) of this run are missing (environment {env}), "
            "nothing was run: " + "; ".join(lines) + " (or run `dvc repro`)"
        )
