"""Experiment tracking with DVCLive, DVC's own logger.

A training run logs each optimiser step's loss, its terms and the learning rate to a
DVCLive folder while it trains (``plots/metrics/<name>.tsv``; ``metrics.json``, the
last step's values, while it runs), so the DVC extension for VS Code and
``dvc plots show`` follow a ``dvc exp run`` live. When the run ends — trained,
resumed from a checkpoint, or a finished run reused — the folder is rewritten from
the run's whole curve, so its files are the same whichever way the run went (they
are committed, as DVC expects of plots). The evaluate stage logs its metrics per
task and encoder the same way (``metrics.json``).

Timings (``clips_per_s``) are not logged: they measure the machine, not the run.
Nothing is sent anywhere (no Studio token is configured; DVCLive stays local).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acula_pipeline.runtime import TIMING_COLUMNS

log = logging.getLogger(__name__)

# Curve columns that are positions, not measurements.
_POSITION = ("step", "epoch")


def _live(folder: Path, resume: bool) -> Any:
    from dvclive import Live

    return Live(
        str(folder),
        resume=resume,
        report=None,
        save_dvc_exp=False,  # the run is DVC's (dvc repro / dvc exp run), not ours
        dvcyaml=None,  # dvc.yaml declares the plots; DVCLive must not edit it
        monitor_system=False,
    )


def _numbers(row: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k not in _POSITION
        and k not in TIMING_COLUMNS
        and isinstance(v, int | float)
        and math.isfinite(float(v))
    }


class DVCLiveTracker:
    """The training engine's tracker: ``log_step`` per optimiser step, ``finish``
    with the whole curve at the end."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._live: Any = None

    def log_step(self, row: Mapping[str, Any]) -> None:
        if self._live is None:
            # A resumed run appends to the steps already there.
            self._live = _live(self.folder, resume=int(row.get("step", 1)) > 1)
        self._live.step = int(row["step"])
        for name, value in _numbers(row).items():
            self._live.log_metric(name, value)
        self._live.next_step()

    def finish(self, curve: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite the folder from ``curve`` (every step of the run)."""
        if self._live is not None:
            self._live.end()
            self._live = None
        write_curve(self.folder, curve)
        # The last step's values: a live view while training, not a result (the
        # run's results are the evaluate stage's); the curve is in plots/metrics.
        (self.folder / "metrics.json").unlink(missing_ok=True)


def write_curve(folder: str | Path, curve: Sequence[Mapping[str, Any]]) -> None:
    """A DVCLive folder holding ``curve``, one step per row (replacing it)."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    live = _live(folder, resume=False)
    for row in curve:
        live.step = int(row["step"])
        for name, value in _numbers(row).items():
            live.log_metric(name, value)
        live.next_step()
    live.end()
    # An empty run (a control not trained) still has its folder, with no steps.
    (folder / "plots" / "metrics").mkdir(parents=True, exist_ok=True)


def log_metrics(folder: str | Path, metrics: Mapping[str, Any]) -> None:
    """A DVCLive folder holding ``metrics`` (nested mappings flatten to
    ``a/b``), replacing it: the evaluate stage's numbers, per task and encoder."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    live = _live(folder, resume=False)

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                live.log_metric(prefix, float(value), plot=False)

    walk("", metrics)
    live.end()
