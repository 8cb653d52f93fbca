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
from .workers import Job, PlanPool, default_workers, run_inline

if TYPE_CHECKING:
    from docrag.config import Settings
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store
    from docrag.indexes.unified import UnifiedEmbedder

__all__ = ["IngestReport", "Ingestor", "Interrupted", "file_sha256", "remove_documents", "start_pool"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]  # (event, data) for progress bars


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
    ) -> None:
        from docrag.indexes.unified import unified_class

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
                if todo:  # nothing to embed, nothing to load
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

    def _index(self, todo: list[_Doc], metadata: dict[str, Any], report: IngestReport) -> None:
        if not todo:
            return
        by_job = {d.job.id: d for d in todo}
        buffer: list[tuple[_Doc, PagePlan]] = []
        flush_at = max(self.settings.ingest.page_batch, 1)

        def fail(doc: _Doc, reason: str) -> None:
            doc.failed = True
            report.failed.append({"file": doc.path, "error": reason})
            try:
                self.store.delete_document(doc.doc_id)
            except StoreError as exc:  # it stays invisible (status indexing); the next run cleans it up
                log.warning("%s: partial rows left (not visible): %s", doc.path, exc)

        def finish(doc: _Doc) -> None:
            """All of the document's rows are in: it becomes visible."""
            self.store.mark_ready(doc.doc_id, doc.counts, doc.paths)
            doc.ready = True
            report.indexed += 1
            report.pages += doc.counts["pages"]
            for r, n in doc.routes.items():
                report.routes[r] = report.routes.get(r, 0) + n

        def flush() -> None:
            batch = [(d, p) for d, p in buffer if not d.failed]
            buffer.clear()
            docs = list({id(d): d for d, _ in batch}.values())
            if batch:
                try:
                    self._write(batch)
                except StoreError as exc:
                    for d in docs:
                        fail(d, str(exc))
                    raise
            for d in docs:
                d.in_buffer = 0
                if d.done:
                    finish(d)

        own = self.pool is None
        pool = self.pool if not own else start_pool(self.settings, self.workers)
        try:
            events = pool.run([d.job for d in todo]) if pool is not None else run_inline([d.job for d in todo])
            for job, kind, data in events:
                doc = by_job[job.id]
                if kind == "header" and doc.started:  # planned again (element extraction gave up): same doc
                    continue
                if kind == "header":
                    doc.n_pages = data["n_pages"]
                    report.warnings.extend({"file": doc.path, "warning": w} for w in data["warnings"])
                    try:
                        self._start(doc, metadata)
                    except StoreError as exc:
                        fail(doc, str(exc))
                        raise
                    self._tick("document", file=doc.path, pages=doc.n_pages)
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
                        finish(doc)
                elif kind == "failed":
                    fail(doc, data)
                    self._tick("skipped", file=doc.path)
            flush()
        except StoreError as exc:
            report.failed.append({"file": self.store.uri, "error": f"the run stopped: {exc}"})
            for d in todo:
                if not d.failed and not d.ready:
                    with contextlib.suppress(StoreError):
                        self.store.delete_document(d.doc_id)
        finally:
            if pool is not None and own:
                pool.close()
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
        import json

        from docrag.indexes.unified import chunk_page_texts

        store, cfg = self.store, self.settings.ingest
        unified = self.unified  # loads the models at the first batch
        visual = [(d, p) for d, p in batch if p.visual_image is not None and self.visual is not None]
        if visual:
            vectors = self.visual.embed_images([p.visual_image for _, p in visual])
            store.add_visual([d.doc_id for d, _ in visual], [p.number for _, p in visual], vectors)
            for d, _ in visual:
                d.counts["visual"] += 1
            self._tick("leg", leg="visual", n=len(visual))
        chunk_docs, chunk_pages, chunk_ids, chunk_texts, embed_texts = [], [], [], [], []
        by_doc: dict[int, tuple[_Doc, list[PagePlan]]] = {}
        for d, p in batch:
            by_doc.setdefault(id(d), (d, []))[1].append(p)
        for d, plans in by_doc.values():
            inputs = [(p.number, p.texts) for p in plans if p.texts]
            contexts = {p.number: p.captions for p in plans} if cfg.caption_context else None
            for c in chunk_page_texts(inputs, unified, cfg.chunk_max_tokens, cfg.chunk_overlap, contexts):
                chunk_docs.append(d)
                chunk_pages.append(c.page)
                chunk_ids.append(c.index)
                chunk_texts.append(c.text)
                embed_texts.append(c.embed_text)
        if embed_texts:
            vectors = unified.embed_documents(embed_texts)
            store.add_chunks([d.doc_id for d in chunk_docs], chunk_pages, chunk_ids, chunk_texts, vectors)
            for d in chunk_docs:
                d.counts["chunks"] += 1
            self._tick("leg", leg="text", n=len(embed_texts))
        figures = [(d, p, i, f) for d, p in batch for i, f in enumerate(p.figures)]
        if figures:
            vectors = unified.embed_images([f.image for *_, f in figures])
            store.add_images(
                [d.doc_id for d, *_ in figures],
                [p.number for _, p, _, _ in figures],
                [f.bbox for *_, f in figures],
                vectors,
                image_ids=[i for _, _, i, _ in figures],
            )
            for d, *_ in figures:
                d.counts["images"] += 1
            self._tick("leg", leg="image", n=len(figures))
        store.add_pages(
            {
                "doc_id": [d.doc_id for d, _ in batch],
                "page": [p.number for _, p in batch],
                "route": [p.route.route for _, p in batch],
                "label": [p.route.label for _, p in batch],
                "confidence": [p.route.confidence for _, p in batch],
                "reasons": [json.dumps(p.route.reasons, ensure_ascii=False) for _, p in batch],
                "signals": [json.dumps(p.route.signals) for _, p in batch],
                "text": [p.text for _, p in batch],
                "thumbnail": [p.thumbnail for _, p in batch],
            }
        )
        for d, p in batch:
            d.counts["pages"] += 1
            d.routes[p.route.route] = d.routes.get(p.route.route, 0) + 1
        self._tick("pages", n=len(batch))


def start_pool(settings: Settings, workers: int | None = None) -> PlanPool | None:
    """The worker pool for ``settings`` (None for ``workers=0``: plan in this process), started: its workers
    import what they need (unstructured, when element extraction uses it) while the caller goes on, e.g.
    loading the models."""
    n = default_workers() if workers is None else workers
    if n <= 0:
        return None
    uses_unstructured = settings.ingest.elements == "unstructured"
    preload = ("docrag.parsers.elements", "unstructured.partition.pdf") if uses_unstructured else ()
    pool = PlanPool(n, settings.limits, preload)
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
