"""``notebooks/results.ipynb`` runs headless on a finished run's outputs, so it
cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_results_notebook_executes(small_run: Path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks/results.ipynb", as_version=4)
    monkeypatch.setenv("ACULA_PROJECT", str(small_run))
    # The kernel runs in the project's folder, as a user who opened it there would.
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(small_run)}},
    ).execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
        for o in outputs
    )
    assert "synthetic data: True" in text and "### Results (SYNTHETIC" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # ROC curves, embedding map, reports with spectrograms
    assert f"project: {small_run}" in text
