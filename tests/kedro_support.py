"""A throw-away Kedro project (the repo's conf, an empty data folder) and a runner."""

from __future__ import annotations

import shutil
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from .conftest import REPO


def make_project(root: Path) -> Path:
    """Copy the project's configuration into ``root`` and bootstrap it there."""
    shutil.copytree(
        REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local")
    )
    (root / "conf" / "local").mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copy(REPO / "params.yaml", root)  # the align settings (DVC's default file)
    # The package itself is installed; Kedro only checks that a source folder exists.
    (root / "src").mkdir()
    bootstrap_project(root)
    return root


def run(project: Path, pipelines: list[str], params: dict) -> None:
    """Run pipelines in ``project`` with runtime parameters (as ``--params``)."""
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=pipelines)
