"""Batch indexing: files → plans (isolated workers) → embeddings and rows (here) → LanceDB.

Two steps. Worker processes turn each document into page plans (``pipeline.plan``: parse, route, OCR,
render, crop; no model) under time and memory budgets (``pipeline.workers``); a worker that hangs, crashes
or runs out of memory is killed and replaced and its file reported, and the batch goes on. This process
embeds the plans, batched across documents (the GPU-friendly shape), and writes the rows.

Bookkeeping. Documents are identified by the sha256 of their bytes; every path with those bytes is
recorded. A run skips documents already indexed, re-indexes a file whose content changed, records a copy of
known bytes at a new path, forgets paths that were indexed from a folder given to this run and no longer
exist there (a document with no path left is deleted), and completes documents a previous run left half
written. A document's row is written first with status ``indexing`` and flipped to ``ready`` only after all
its rows are in: search sees ``ready`` documents only, so an interrupted run (Ctrl-C, kill, full disk)
never leaves a half-indexed document visible, and the next run deletes the partial rows and redoes it.
One writer at a time: the store's writer lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrag.indexes.store import StoreError
from docrag.parsers import discover

from .plan import PagePlan, PlanOptions
from .rows import EmbeddedRows, embed_plans, write_rows
from .workers import Job, PlanPool, default_workers, run_inline

if TYPE_CHECKING:
    from docrag.config import Settings
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store
    from docrag.indexes.unified import UnifiedEmbedder

__all__ = ["IngestReport", "Ingestor", "Interrupted", "file_sha256", "remove_documents", "start_pool"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]  # (event, data) for progress bars
ENGINES = ("local", "ray")  # where the plan and embed steps run: this machine's processes, or Ray Data


@dataclass(slots=True)
class IngestReport:
    indexed: int = 0
    skipped: int = 0  # unchanged documents
    duplicates: int = 0  # paths whose bytes are already indexed (recorded as another path of that document)
    removed: int = 0  # documents deleted: content changed, or no path left
    failed: list[dict[str, str]] = field(default_factory=list)
    pages: int = 0
    routes: dict[str, int] = field(default_factory=lambda: {"visual": 0, "text": 0})
    seconds: float = 0.0
    pending: int = 0  # documents not indexed because the run stopped (interrupted, storage failed)
    not_documents: list[str] = field(default_factory=list)  # files in folders that are not PDFs/images
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "failed": list(self.failed),
            "pending": self.pending,
            "pages": self.pages,
            "routes": dict(self.routes),
            "seconds": round(self.seconds, 3),
        }


class Interrupted(Exception):
    """Ctrl-C during a run: what was complete stays; ``report`` says how far it got."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__("interrupted")
        self.report = report


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(slots=True)
class _Doc:
    """One document being indexed in this run."""

    doc_id: str
    path: str
    paths: list[str]
    job: Job
    n_pages: int = 0
    started: bool = False  # its documents row is written
    done: bool = False  # the worker finished planning it
    ready: bool = False  # all rows written, visible
    failed: bool = False
    in_buffer: int = 0  # its page plans waiting to be embedded
    counts: dict[str, int] = field(default_factory=lambda: {"pages": 0, "chunks": 0, "images": 0, "visual": 0})
    routes: dict[str, int] = field(default_factory=dict)


class Ingestor:
    """Indexes files into ``store`` with the given embedders (``visual`` may be None: no visual leg).

    Embedders may be given as zero-argument callables: they are loaded at the first batch to embed, so the
    workers plan the first documents while the models load. ``workers``: parsing processes (None: the
    usable cores; 0: plan in this process, without isolation); ``pool``: a pool the caller started.
    ``engine``: "local" (this machine's worker processes) or "ray" (Ray Data stages, ``pipeline.ray_engine``;
    ``ray_address`` joins a cluster): the bookkeeping, the writes and the ``ready`` rule are the same.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        unified: UnifiedEmbedder | Callable[[], UnifiedEmbedder],
        visual: MultiVectorEmbedder | Callable[[], MultiVectorEmbedder] | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
        lock_wait_s: float | None = None,
        on_lock_wait: Callable[[str], None] | None = None,
        pool: PlanPool | None = None,
        engine: str = "local",
        ray_address: str | None = None,
    ) -> None:
        from docrag.indexes.unified import unified_class

        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
        self.engine, self.ray_address = engine, ray_address

        self.store, self.settings = store, settings
        self._unified, self._visual = unified, visual
        self.workers = default_workers() if workers is None else workers
        self.pool = pool  # a pool started by the caller (e.g. while the models load), else one per run
        self.progress = progress
        self.lock_wait_s, self.on_lock_wait = lock_wait_s, on_lock_wait
        spec = settings.unified
        modalities = unified.modalities if not callable(unified) else unified_class(spec).modalities_for(spec)
        self.options = PlanOptions.build(
            settings.router,
            settings.ingest,
            settings.limits,
            visual=visual is not None,
            figures="image" in modalities,
        )

    def _start_loading(self) -> None:
        """Load the models given as loaders in a thread, while the workers plan the first documents."""
        import threading

        if not (callable(self._unified) or callable(self._visual)):
            return

        def load() -> None:
            try:
                if callable(self._unified):  # embedders are not callable; a loader is
                    self._unified = self._unified()
                if callable(self._visual):
                    self._visual = self._visual()
            except BaseException as exc:  # raised in the run's own thread, at the first batch to embed
                self._load_error = exc

        self._load_error: BaseException | None = None
        # Not a daemon: a thread stopped by interpreter exit in the middle of C++ code (torch, tokenizers)
        # aborts the process ("FATAL: exception not rethrown"); exit waits for the load to finish instead.
        self._loader = threading.Thread(target=load, name="docrag-model-load", daemon=False)
        self._loader.start()

    def _models_ready(self) -> bool:
        loader = getattr(self, "_loader", None)
        return loader is None or not loader.is_alive()

    def _wait_for_models(self) -> None:
        loader = getattr(self, "_loader", None)
        if loader is None and (callable(self._unified) or callable(self._visual)):
            self._start_loading()  # needed before any document asked for it
            loader = self._loader
        if loader is None:
            return
        loader.join()
        self._loader = None
        if self._load_error is not None:
            raise self._load_error
        # A new database learns its vector sizes.
        self.store.make_writable(unified_dim=self._unified.dim, visual_dim=self._visual.dim if self._visual else None)

    @property
    def unified(self) -> UnifiedEmbedder:
        self._wait_for_models()
        return self._unified

    @property
    def visual(self) -> MultiVectorEmbedder | None:
        self._wait_for_models()
        return self._visual

    def _tick(self, event: str, **data: Any) -> None:
        if self.progress:
            self.progress(event, data)

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self, paths: Iterable[str | Path], metadata: dict[str, Any] | None = None) -> IngestReport:
        """Index every PDF and image under ``paths``; returns the run's summary. One bad file never stops it.

        Ctrl-C raises ``Interrupted`` (complete documents stay; the next run resumes). A storage failure
        (full disk, I/O error) fails the documents being written and stops the run with ``report.pending``.
        """
        t0 = time.perf_counter()
        report = IngestReport()
        paths = list(paths)
        with self.store.writer_lock(self.lock_wait_s, self.on_lock_wait):
            # Known vector size (an existing database, or an embedder given loaded): all tables now; else the
            # tables that need it wait for the first batch to embed.
            dim = None if callable(self._unified) else self._unified.dim
            vdim = None if self._visual is None or callable(self._visual) else self._visual.dim
            self.store.make_writable(unified_dim=dim, visual_dim=vdim)
            try:
                todo = self._bookkeeping(paths, report)
                if todo and self.engine == "local":  # nothing to embed, nothing to load (Ray: in its actors)
                    self._start_loading()
                self._index(todo, metadata or {}, report)
            except KeyboardInterrupt:
                report.seconds = time.perf_counter() - t0
                raise Interrupted(report) from None
            if report.indexed or report.removed:
                try:
                    self.store.maintain()
                except StoreError as exc:
                    report.warnings.append({"file": self.store.uri, "warning": f"index upkeep failed: {exc}"})
        report.seconds = time.perf_counter() - t0
        return report

    def _bookkeeping(self, paths: list[str | Path], report: IngestReport) -> list[_Doc]:
        """Walk the paths, hash the files and settle what is unchanged, moved, copied, changed or gone;
        returns the documents to index (one per distinct content)."""
        store = self.store
        files: list[Path] = []
        roots = [Path(p).resolve() for p in paths if Path(p).is_dir()]
        given = {Path(p) for p in paths}
        for found in discover(paths):
            path = found.path
            if found.problem and (found.supported or path in given):
                report.failed.append({"file": str(path), "error": found.problem})
            elif found.problem:
                continue  # not a document and not a file: nothing to say
            elif not found.supported:
                report.not_documents.append(str(path))
                log.info("skipped %s: not a PDF or image", path)
            elif not _utf8(str(path)):
                report.failed.append({"file": repr(str(path)), "error": "the file name is not valid UTF-8: rename it"})
            else:
                files.append(path.resolve())  # stored absolute: the same file from any working directory
        self._tick("start", files=len(files))
        docs = {r["doc_id"]: r for r in store.documents(columns=["doc_id", "path", "paths", "status"])}
        # Documents left half-written by a run that died (we hold the writer lock: nobody is writing them).
        unfinished = [d for d, r in docs.items() if r["status"] != "ready"]
        if unfinished:
            log.info("deleting %d document(s) left unfinished by an interrupted run", len(unfinished))
            store.delete_documents(unfinished)
            for d in unfinished:
                docs.pop(d)
        by_path: dict[str, str] = {p: d["doc_id"] for d in docs.values() for p in d["paths"]}
        seen: set[str] = set()
        paths_now: dict[str, list[str]] = {d: list(r["paths"]) for d, r in docs.items()}
        todo: dict[str, _Doc] = {}
        for path in files:
            key = str(path)
            seen.add(key)  # there, even if unreadable now: not "removed"
            try:
                doc_id = file_sha256(path)
            except OSError as exc:
                report.failed.append({"file": key, "error": f"cannot read the file ({exc.strerror})"})
                continue
            old = by_path.get(key)
            if old is not None and old != doc_id and key in paths_now.get(old, []):
                paths_now[old].remove(key)  # the content at this path changed: the old bytes lose it
            if doc_id in todo:  # a copy of bytes this run indexes already
                todo[doc_id].paths.append(key)
                report.duplicates += 1
                self._tick("skipped", file=key)
                continue
            if doc_id in docs:
                if key not in paths_now[doc_id]:
                    paths_now[doc_id].append(key)
                    report.duplicates += 1
                else:
                    report.skipped += 1
                self._tick("skipped", file=key)
                continue
            job = Job(len(todo), key, self.options)
            todo[doc_id] = _Doc(doc_id, key, [key], job)
        # Paths indexed from a folder given now that are no longer in it: forgotten.
        for doc_id, plist in paths_now.items():
            plist[:] = [p for p in plist if p in seen or not any(_under(p, r) for r in roots)]
            if plist == docs[doc_id]["paths"]:
                continue
            if not plist:
                store.delete_document(doc_id)
                report.removed += 1
            else:
                store.set_paths(doc_id, plist)
        return list(todo.values())

    def _fail(self, doc: _Doc, reason: str, report: IngestReport) -> None:
        doc.failed = True
        report.failed.append({"file": doc.path, "error": reason})
        try:
            self.store.delete_document(doc.doc_id)
        except StoreError as exc:  # it stays invisible (status indexing); the next run cleans it up
            log.warning("%s: partial rows left (not visible): %s", doc.path, exc)

    def _finish(self, doc: _Doc, report: IngestReport) -> None:
        """All of the document's rows are in: it becomes visible."""
        self.store.mark_ready(doc.doc_id, doc.counts, doc.paths)
        doc.ready = True
        report.indexed += 1
        report.pages += doc.counts["pages"]
        for r, n in doc.routes.items():
            report.routes[r] = report.routes.get(r, 0) + n

    def _header(
        self, doc: _Doc, n_pages: int, warnings: list[str], metadata: dict[str, Any], report: IngestReport
    ) -> None:
        doc.n_pages = n_pages
        report.warnings.extend({"file": doc.path, "warning": w} for w in warnings)
        try:
            self._start(doc, metadata)
        except StoreError as exc:
            self._fail(doc, str(exc), report)
            raise
        self._tick("document", file=doc.path, pages=doc.n_pages)

    def _stopped(self, todo: list[_Doc], where: str, why: str, report: IngestReport) -> None:
        """The run cannot go on (storage failed, the Ray pipeline died): the documents not finished are
        deleted (or left invisible) for the next run."""
        report.failed.append({"file": where, "error": f"the run stopped: {why}"})
        for d in todo:
            if not d.failed and not d.ready:
                with contextlib.suppress(StoreError):
                    self.store.delete_document(d.doc_id)

    def _index(self, todo: list[_Doc], metadata: dict[str, Any], report: IngestReport) -> None:
        if not todo:
            return
        if self.engine == "ray":
            return self._index_ray(todo, metadata, report)
        by_job = {d.job.id: d for d in todo}
        buffer: list[tuple[_Doc, PagePlan]] = []
        flush_at = max(self.settings.ingest.page_batch, 1)

        def flush() -> None:
            batch = [(d, p) for d, p in buffer if not d.failed]
            buffer.clear()
            docs = list({id(d): d for d, _ in batch}.values())
            if batch:
                try:
                    self._write(batch)
                except StoreError as exc:
                    for d in docs:
                        self._fail(d, str(exc), report)
                    raise
            for d in docs:
                d.in_buffer = 0
                if d.done:
                    self._finish(d, report)

        own = self.pool is None
        pool = self.pool if not own else start_pool(self.settings, self.workers)
        try:
            events = pool.run([d.job for d in todo]) if pool is not None else run_inline([d.job for d in todo])
            for job, kind, data in events:
                doc = by_job[job.id]
                if kind == "header" and doc.started:  # planned again (element extraction gave up): same doc
                    continue
                if kind == "header":
                    self._header(doc, data["n_pages"], data["warnings"], metadata, report)
                elif kind == "pages":
                    buffer.extend((doc, p) for p in data)
                    doc.in_buffer += len(data)
                    if pool is not None:
                        pool.more(job)  # its worker plans the next batch while this one is embedded
                    # Embed the plans of every document in the buffer together; while the models still
                    # load, keep planning ahead (up to a bound on what waits in memory).
                    if len(buffer) >= flush_at and (self._models_ready() or len(buffer) >= 4 * flush_at):
                        flush()
                elif kind == "done":
                    doc.done = True
                    if not doc.in_buffer:
                        self._finish(doc, report)
                elif kind == "failed":
                    self._fail(doc, data, report)
                    self._tick("skipped", file=doc.path)
            flush()
        except StoreError as exc:
            self._stopped(todo, self.store.uri, str(exc), report)
        finally:
            if pool is not None and own:
                pool.close()
            report.pending = sum(1 for d in todo if not d.failed and not d.ready)

    def _index_ray(self, todo: list[_Doc], metadata: dict[str, Any], report: IngestReport) -> None:
        """The same run on Ray Data (``pipeline.ray_engine``): plans and embeddings come from Ray stages; the
        rows are written here, and each document flips to ``ready`` once all its planned pages are in."""
        from .ray_engine import RayPipelineError, ray_events

        by_job = {d.job.id: d for d in todo}
        by_id = {d.doc_id: d for d in todo}
        planned: dict[str, int] = {}
        preload = plan_preload(self.settings)

        def maybe_finish(doc: _Doc) -> None:
            if (
                doc.started and doc.done and not doc.failed and not doc.ready
                and doc.counts["pages"] >= planned.get(doc.doc_id, 0)
            ):
                self._finish(doc, report)

        def start(ev: Any) -> _Doc:
            """The document of ``ev``, started (its documents row written) at the first of its events."""
            doc = by_job[ev.job]
            if not doc.started and not doc.failed:
                self._header(doc, ev.n_pages, ev.warnings or [], metadata, report)
            return doc

        events = ray_events(
            [(d.job.id, d.doc_id, d.path) for d in todo],
            self.options,
            self.settings,
            visual=self._visual is not None,
            address=self.ray_address,
            preload=preload,
        )
        try:
            with contextlib.closing(events):  # a failure here stops the Ray pipeline too
                for ev in events:
                    if ev.kind == "rows":
                        for header in ev.starts or []:
                            start(header)
                        rows = ev.rows.only({d for d, doc in by_id.items() if not doc.failed and doc.started})
                        if not rows.pages.get("doc_id"):
                            continue
                        if not self.store.unified_dim or (rows.visual_dim and not self.store.visual_dim):
                            self.store.make_writable(unified_dim=rows.unified_dim, visual_dim=rows.visual_dim)
                        docs = {d: by_id[d] for d in set(rows.pages["doc_id"])}
                        try:
                            self._store_rows(rows, docs)
                        except StoreError as exc:
                            for d in docs.values():
                                self._fail(d, str(exc), report)
                            raise
                        for d in docs.values():
                            maybe_finish(d)
                        continue
                    doc = by_job[ev.job]
                    if doc.failed:
                        continue
                    if ev.kind in ("header", "end"):
                        start(ev)
                    if ev.kind == "end":
                        doc.done = True
                        planned[doc.doc_id] = ev.planned
                        maybe_finish(doc)
                    elif ev.kind == "failed":
                        self._fail(doc, ev.error, report)
                        self._tick("skipped", file=doc.path)
        except StoreError as exc:
            self._stopped(todo, self.store.uri, str(exc), report)
        except RayPipelineError as exc:
            self._stopped(todo, f"ray ({self.ray_address or 'local'})", f"the Ray pipeline failed: {exc}", report)
        finally:
            report.pending = sum(1 for d in todo if not d.failed and not d.ready)

    def _start(self, doc: _Doc, metadata: dict[str, Any]) -> None:
        try:
            st = os.stat(doc.path)
            size, mtime = st.st_size, st.st_mtime
        except OSError:
            size, mtime = 0, 0.0
        self.store.add_document(doc.doc_id, doc.path, size, mtime, doc.n_pages, metadata)
        doc.started = True

    # -- embed and store -------------------------------------------------------------------------------------
    def _write(self, batch: Sequence[tuple[_Doc, PagePlan]]) -> None:
        """Embed the plans of several documents together and write their rows (each row carries its doc_id)."""
        unified, visual = self.unified, self.visual  # loads the models at the first batch
        rows = embed_plans([(d.doc_id, p) for d, p in batch], unified, visual, self.settings.ingest)
        docs = {d.doc_id: d for d, _ in batch}
        self._store_rows(rows, docs)

    def _store_rows(self, rows: EmbeddedRows, docs: dict[str, _Doc]) -> None:
        """Write embedded rows and count them against their documents."""
        write_rows(self.store, rows)
        for doc_id, n in rows.counts().items():
            for k, v in n.items():
                docs[doc_id].counts[k] += v
        for doc_id, routes in rows.routes().items():
            for r, v in routes.items():
                docs[doc_id].routes[r] = docs[doc_id].routes.get(r, 0) + v
        for leg, n in rows.legs().items():
            if n:
                self._tick("leg", leg=leg, n=n)
        self._tick("pages", n=len(rows.pages.get("doc_id", [])))


def plan_preload(settings: Settings) -> tuple[str, ...]:
    """What a plan worker imports before its first document (unstructured, when element extraction uses it)."""
    if settings.ingest.elements == "unstructured":
        return ("docrag.parsers.elements", "unstructured.partition.pdf")
    return ()


def start_pool(settings: Settings, workers: int | None = None) -> PlanPool | None:
    """The worker pool for ``settings`` (None for ``workers=0``: plan in this process), started: its workers
    import what they need (unstructured, when element extraction uses it) while the caller goes on, e.g.
    loading the models."""
    n = default_workers() if workers is None else workers
    if n <= 0:
        return None
    pool = PlanPool(n, settings.ingest, plan_preload(settings))
    pool.__enter__()
    return pool


def _under(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip("/") + "/")


def remove_documents(store: Store, targets: Iterable[str]) -> int:
    """Delete documents by path (file or folder prefix) or doc_id; returns how many were removed.

    A document also found at other paths keeps those: only the paths named go."""
    removed = 0
    with store.writer_lock():
        store.make_writable()
        docs = store.documents(columns=["doc_id", "path", "paths"])
        for target in targets:
            resolved = Path(target).resolve()
            for d in docs:
                if d.get("gone"):
                    continue
                if d["doc_id"] == target:
                    keep: list[str] = []
                else:
                    keep = [p for p in d["paths"] if p != str(resolved) and not _under(p, resolved)]
                    if keep == d["paths"]:
                        continue
                if keep:
                    store.set_paths(d["doc_id"], keep)
                    d["paths"] = keep
                else:
                    store.delete_document(d["doc_id"])
                    d["gone"] = True
                    removed += 1
        if removed:
            store.maintain()
    return removed
