"""``docrag route``: the router's decision for every page of a folder, without indexing it.

The files are parsed in the isolated plan workers that indexing uses (``pipeline.workers``), planned with
``PlanOptions.route_only``: a route per page and nothing else (no text clean-up, no renders, no OCR).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from docrag.parsers import list_documents
from docrag.parsers.limits import Limits

from .options import IngestConfig, RouterConfig
from .plan import PlanOptions
from .router import Route, RoutingReport
from .workers import Job, PlanPool, default_workers, run_inline

__all__ = ["route_files"]


def route_files(
    paths: list[str] | list[Any],
    config: RouterConfig | None = None,
    limits: Any = None,
    on_file: Any = None,
    on_start: Any = None,
    workers: int | None = None,
    convert_cache: str | Path = "",
) -> RoutingReport:
    """Route every page of every document under ``paths`` (files or folders, recursive); Office files are
    converted first (their pages are the converted PDF's, named by the original file).

    The files are parsed in the isolated worker processes that indexing uses (``pipeline.workers``: time and
    memory budgets; a file that crashes or aborts its parser kills a worker, not this process), ``workers`` of
    them (None: the usable cores; 0: in this process, without isolation). A broken file (or page) is recorded
    in ``errors`` with its reason and the run goes on. ``convert_cache``: where converted Office files are kept
    (``indexes.store.conversion_cache``; "": not kept). ``on_start(n_files)`` is called once the files are
    listed, ``on_file(path, n_pages)`` after each file (for progress bars).
    """
    cfg = config or RouterConfig()
    report = RoutingReport(ambiguous_below=cfg.ambiguous_below, policy=str(cfg.visual_pages.value))
    listing = list_documents(paths)
    report.errors.extend({"file": f, "error": why} for f, why in listing.problems)
    report.skipped.extend(listing.not_documents)
    if on_start:
        on_start(len(listing.files))
    ingest = IngestConfig(elements="text-layer", ocr=False, strip_running_lines=False, dehyphenate=False)
    opts = PlanOptions.build(cfg, ingest, limits or Limits(), visual=False, figures=False, convert_cache=convert_cache)
    opts = opts.model_copy(update={"route_only": True, "roots": tuple(str(Path(p).resolve()) for p in paths)})
    jobs = [Job(i, str(p), opts) for i, p in enumerate(listing.files)]
    routes: dict[int, list[Route]] = {j.id: [] for j in jobs}
    n = min(default_workers() if workers is None else workers, len(jobs))
    with contextlib.ExitStack() as stack:
        # Office files are converted in the workers, each with a LibreOffice profile under this folder.
        profiles = stack.enter_context(tempfile.TemporaryDirectory(prefix="docrag-lo-"))
        convert = opts.convert.model_copy(update={"profile_root": profiles})
        for job in jobs:
            job.options = job.options.model_copy(update={"convert": convert})
        pool = stack.enter_context(PlanPool(n, ingest)) if n > 0 else None
        for job, kind, data in pool.run(jobs) if pool is not None else run_inline(jobs):
            if kind == "header":
                report.warnings.extend({"file": job.path, "warning": w} for w in data["warnings"])
            elif kind == "pages":
                routes[job.id].extend(p.route for p in data)
                if pool is not None:
                    pool.more(job)
            elif kind == "page_errors":  # pages that could not be read; what a parser said is a warning
                report.errors.extend({"file": job.path, **e} for e in data if e.get("source") != "parser")
                report.warnings.extend(
                    {"file": job.path, "warning": f"page {e['page']}: {e['error']}" if e["page"] else e["error"]}
                    for e in data
                    if e.get("source") == "parser"
                )
            elif kind in ("done", "failed"):
                if kind == "failed":
                    report.errors.append({"file": job.path, "error": str(data)})
                if on_file:
                    on_file(Path(job.path), len(routes[job.id]))
    report.pages = [r for j in jobs for r in routes[j.id]]  # in the order of the files
    return report
