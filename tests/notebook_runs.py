"""The notebooks, run in the background from the start of a test session that includes them (one kernel at a
time, with the environment the session started with), while the other tests run; ``test_notebooks`` waits for
each result. A notebook is its own process: running it beside the tests changes nothing it computes."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
_runs: dict[Path, Future] = {}
_pool: ThreadPoolExecutor | None = None


def _execute(path: Path, env: dict[str, str]):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


def start() -> None:
    """Start every notebook (once): one kernel at a time, beside the tests."""
    global _pool
    if _pool is not None:
        return
    env = dict(os.environ)  # before any test sets its own variables
    _pool = ThreadPoolExecutor(1, thread_name_prefix="notebooks")
    for path in NOTEBOOKS:
        _runs[path] = _pool.submit(_execute, path, env)
    _pool.shutdown(wait=False)


def result(path: Path):
    """The executed notebook (an error in a cell raises here)."""
    start()
    return _runs[path].result()
