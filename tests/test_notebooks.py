"""Notebooks are executed, not trusted: each must run top to bottom without errors."""

from __future__ import annotations

import notebook_runs
import pytest

NOTEBOOKS = notebook_runs.NOTEBOOKS
# What each notebook must show when it runs: its point, not only that it ran.
SHOWS = {
    "01_router.ipynb": "leave-one-document-out",  # the router's held-out accuracy
    "02_quickstart.ipynb": "'indexed': 8",  # the examples indexed (PDFs, LICENSES.md, examples/mixed)
    "03_why_it_matched.ipynb": "weight",  # the answer regions' table
    "04_evaluation.ipynb": "fused",  # the metrics of the fused ranking beside each leg's
}


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            out.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
@pytest.mark.slow
def test_notebook_executes(path):
    nb = notebook_runs.result(path)  # run beside the other tests since the session started; a cell's error raises
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any({"image/png", "image/jpeg"} & set(o.get("data", {})) for o in outputs), "pictures are drawn"
    assert SHOWS[path.name] in _texts(nb), f"{path.name} does not show {SHOWS[path.name]!r}"
    assert "IProgress not found" not in _texts(nb), "the library lets tqdm warn in a kernel without ipywidgets"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_with_its_pictures(path):
    """Saved with their outputs (``make notebooks``), so that they read on the web as they ran."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    pictures = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert pictures, f"{path.name}: run make notebooks"
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_every_notebook_says_what_it_must_show():
    assert {p.name for p in NOTEBOOKS} == set(SHOWS)
