"""Notebooks are executed, not trusted: each must run top to bottom without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# What each notebook must show when it runs: its point, not only that it ran.
SHOWS = {
    "01_router.ipynb": "leave-one-document-out",  # the router's held-out accuracy
    "02_quickstart.ipynb": "'indexed': 4",  # the examples indexed
    "03_why_it_matched.ipynb": "weight",  # the answer regions' table
    "04_evaluation.ipynb": "fused",  # the metrics of the fused ranking beside each leg's
}


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            out.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def _execute(path: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.fixture(scope="module")
def executed():
    """Every notebook run top to bottom, two kernels at a time (each waits on its own workers and imports)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = {path: pool.submit(_execute, path) for path in NOTEBOOKS}
    return futures


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
@pytest.mark.slow
def test_notebook_executes(path, executed):
    nb = executed[path].result()  # an error in a cell raises here, naming it
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any({"image/png", "image/jpeg"} & set(o.get("data", {})) for o in outputs), "pictures are drawn"
    assert SHOWS[path.name] in _texts(nb), f"{path.name} does not show {SHOWS[path.name]!r}"


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
