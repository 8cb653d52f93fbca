"""Notebooks are executed, not trusted: each must run top to bottom without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any({"image/png", "image/jpeg"} & set(o.get("data", {})) for o in outputs), "pictures are drawn"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_with_its_pictures(path):
    """Saved with their outputs (``make notebooks``), so that they read on the web as they ran."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    pictures = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert pictures, f"{path.name}: run make notebooks"
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_there_is_a_router_notebook():
    assert {"01_router.ipynb", "02_quickstart.ipynb", "03_why_it_matched.ipynb", "04_evaluation.ipynb"} <= {
        p.name for p in NOTEBOOKS
    }
