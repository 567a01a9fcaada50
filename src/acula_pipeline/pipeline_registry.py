"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that exist but are not part of a plain ``kedro run``.
EXCLUDED_FROM_DEFAULT = frozenset({"tune"})


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__``
        runs every pipeline except the ones in ``EXCLUDED_FROM_DEFAULT``.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in EXCLUDED_FROM_DEFAULT),
        Pipeline([]),
    )
    return pipelines
