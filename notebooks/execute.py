"""Run the notebooks top to bottom and save them with their outputs (``make notebooks``), so that they read
on the web as they ran. ``python notebooks/execute.py [NOTEBOOK ...]``; 04's labelled set comes from
``DOCRAG_EVAL_SET`` (default: examples/)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent


def main(paths: list[str]) -> int:
    for path in [Path(p) for p in paths] or sorted(HERE.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        for cell in nb.cells:  # reproducible files: no run counts' noise beyond the outputs themselves
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
