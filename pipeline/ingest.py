"""Batch indexing: files → plans (isolated workers) → embeddings and rows → LanceDB.

An engine (``pipeline.engines``: local worker processes, or Ray Data) plans and embeds the documents and yields
one stream of events; the ``Ingestor`` is the one bookkeeper that consumes it: it writes each document's row
first (status ``indexing``), then its rows, and flips it to ``ready`` once all its planned pages are in.

Bookkeeping. Documents are identified by the sha256 of their bytes; every path with those bytes is recorded.
A run skips documents already indexed, re-indexes a file whose content changed, records a copy of known
bytes at a new path, forgets paths that were indexed from a folder given to this run and no longer exist
there (a document with no path left is deleted), and completes documents a previous run left half written.
Search sees ``ready`` documents only, so an interrupted run (Ctrl-C, kill, full disk) never leaves a
half-indexed document visible, and the next run deletes the partial rows and redoes it. One writer at a
time: the store's writer lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrag.indexes.schema import PAGES, empty_counts
from docrag.indexes.store import StoreError
from docrag.parsers import list_documents

from .engines import Embedded, EngineError, Event, Failed, Planned, Started, check_engine, local_events
from .plan import PlanOptions
from .remove import is_under
from .report import IngestReport
from .rows import UNSEARCHABLE, EmbeddedRows, embed_plans
from .workers import Job, PlanPool, default_workers, run_inline

if TYPE_CHECKING:
    from docrag.config import Settings
    from docrag.indexes.embedders import Embedder
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store

__all__ = ["IngestReport", "Ingestor", "Interrupted", "file_sha256", "start_pool"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]  # (event, data) for progress bars


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
    planned: int | None = None  # page plans it gave, once planned whole
    ready: bool = False  # all rows written, visible
    failed: bool = False
    counts: dict[str, int] = field(default_factory=empty_counts)
    routes: dict[str, int] = field(default_factory=dict)
    unsearchable: list[int] = field(default_factory=list)  # its pages that no leg of this profile can find


class Ingestor:
    """Indexes files into ``store`` with the given embedders: ``text`` for text chunks, ``image`` for figures and
    image files, ``visual`` for visual pages (None: that leg is off; one embedder may serve text and image).

    Embedders may be given as zero-argument callables: they are loaded at the first batch to embed, so the
    workers plan the first documents while the models load. ``workers``: parsing processes (None: the
    usable cores; 0: plan in this process, without isolation); ``pool``: a pool the caller started.
    ``engine``: "local" or "ray" (``pipeline.engines``; ``ray_address`` joins a cluster).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        text: Embedder | Callable[[], Embedder] | None,
        image: Embedder | Callable[[], Embedder] | None = None,
        visual: MultiVectorEmbedder | Callable[[], MultiVectorEmbedder] | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
        lock_wait_s: float | None = None,
        on_lock_wait: Callable[[str], None] | None = None,
        pool: PlanPool | None = None,
        engine: str = "local",
        ray_address: str | None = None,
    ) -> None:
        from docrag.indexes.embedders import embedder_class

        check_engine(engine, ray_address)
        self.engine, self.ray_address = engine, ray_address
        self.store, self.settings = store, settings
        self._models: dict[str, Any] = {"text": text, "image": image, "visual": visual}
        self.workers = default_workers() if workers is None else workers
        self.pool = pool  # a pool started by the caller (e.g. while the models load), else one per run
        self.progress = progress
        self.lock_wait_s, self.on_lock_wait = lock_wait_s, on_lock_wait
        spec = settings.image
        if image is None:
            modalities: frozenset[str] = frozenset()
        elif callable(image) and spec is not None:
            modalities = embedder_class(spec).modalities_for(spec)
        else:
            modalities = getattr(image, "modalities", frozenset())
        self.options = PlanOptions.build(
            settings.router,
            settings.ingest,
            settings.limits,
            visual=visual is not None,
            figures="image" in modalities,
            convert_cache=store.conversion_cache(),
        )
        self._loader: Any = None
        self._load_error: BaseException | None = None

    # -- the models: loaded in a thread while the workers plan ----------------------------------------------------
    def _start_loading(self) -> None:
        import threading

        if not any(callable(m) for m in self._models.values()) or self._loader is not None:
            return

        def load() -> None:
            try:
                for leg, model in self._models.items():
                    if callable(model):  # embedders are not callable; a loader is
                        self._models[leg] = model()
            except BaseException as exc:  # raised in the run's own thread, at the first batch to embed
                self._load_error = exc

        # Not a daemon: a thread stopped by interpreter exit in the middle of C++ code (torch, tokenizers)
        # aborts the process ("FATAL: exception not rethrown"); exit waits for the load to finish instead.
        self._loader = threading.Thread(target=load, name="docrag-model-load", daemon=False)
        self._loader.start()

    def _models_ready(self) -> bool:
        return self._loader is None or not self._loader.is_alive()

    def _embedders(self) -> dict[str, Any]:
        """The loaded embedders by leg (waiting for the loader); a new database learns its vector sizes here."""
        self._start_loading()
        if self._loader is not None:
            self._loader.join()
            if self._load_error is not None:
                raise self._load_error
        self.store.make_writable(**self._dims())
        return self._models

    def _dims(self) -> dict[str, int | None]:
        """The vector sizes of the loaded embedders (None for a leg that is off or not loaded yet)."""
        return {f"{leg}_dim": None if m is None or callable(m) else m.dim for leg, m in self._models.items()}

    def _tick(self, event: str, **data: Any) -> None:
        if self.progress:
            self.progress(event, data)

    # -- the run ---------------------------------------------------------------------------------------------
    def run(
        self,
        paths: Iterable[str | Path],
        metadata: dict[str, Any] | None = None,
        formats: Iterable[str] | None = None,
    ) -> IngestReport:
        """Index every document under ``paths`` (of the format families ``formats``, ``parsers.formats``; None:
        all); returns the run's summary. One bad file never stops it.

        Ctrl-C raises ``Interrupted`` (complete documents stay; the next run resumes). A storage failure
        (full disk, I/O error) fails the documents being written and stops the run with ``report.pending``.
        """
        t0 = time.perf_counter()
        report = IngestReport()
        paths = list(paths)
        self.families = None if formats is None else frozenset(formats)
        with (
            tempfile.TemporaryDirectory(prefix="docrag-lo-") as profiles,  # each worker's LibreOffice profile
            self.store.writer_lock(self.lock_wait_s, self.on_lock_wait, self.settings.ingest.writer_lease_s),
        ):
            convert = self.options.convert.model_copy(update={"profile_root": profiles})
            self.options = self.options.model_copy(update={"convert": convert})
            # Known vector size (an existing database, or an embedder given loaded): all tables now; else the
            # tables that need it wait for the first batch to embed.
            self.store.make_writable(**self._dims())
            try:
                todo = self._bookkeeping(paths, report)
                if metadata and self._kept:  # unchanged documents and copies take this run's metadata too
                    self.store.documents.set_metadata(sorted(self._kept), metadata)
                if todo:
                    self._consume(self._events(todo), todo, metadata or {}, report)
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
        # a database in a folder given: not its files
        listing = list_documents(paths, exclude=store.own_paths(), families=self.families)
        self.options = self.options.model_copy(update={"roots": tuple(map(str, roots))})
        report.failed.extend({"file": f, "error": why} for f, why in listing.problems)
        report.not_documents.extend(listing.not_documents)
        report.families = list(listing.families)
        report.excluded.extend([store.uri] if listing.excluded else [])
        for path in listing.files:
            if _utf8(str(path)):
                files.append(path.resolve())  # stored absolute: the same file from any working directory
            else:
                report.failed.append({"file": repr(str(path)), "error": "the file name is not valid UTF-8: rename it"})
        self._tick("start", files=len(files))
        docs = {r["doc_id"]: r for r in store.documents.rows(columns=["doc_id", "path", "paths", "status", "n_pages"])}
        # Documents left half-written by a run that died (we hold the writer lock: nobody is writing them): those
        # indexed again now resume from their written pages, the others are deleted.
        unfinished = {d: docs.pop(d) for d in [d for d, r in docs.items() if r["status"] != "ready"]}
        by_path: dict[str, str] = {p: d["doc_id"] for d in docs.values() for p in d["paths"]}
        # Files met that are not documents of this run (another format, or left out by ``formats``) are still
        # there: what was indexed from them is not forgotten.
        seen: set[str] = {str(Path(p).resolve()) for p in listing.not_documents}
        paths_now: dict[str, list[str]] = {d: list(r["paths"]) for d, r in docs.items()}
        todo: dict[str, _Doc] = {}
        self._kept: set[str] = set()  # documents already stored that these paths name
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
                self._kept.add(doc_id)
                if key not in paths_now[doc_id]:
                    paths_now[doc_id].append(key)
                    report.duplicates += 1
                else:
                    report.skipped += 1
                self._tick("skipped", file=key)
                continue
            todo[doc_id] = _Doc(doc_id, key, [key], Job(len(todo), key, self.options))
            if doc_id in unfinished:
                self._resume(todo[doc_id], unfinished[doc_id]["n_pages"])
        gone = [d for d in unfinished if d not in todo]
        if gone:
            log.info("deleting %d document(s) left unfinished by an interrupted run", len(gone))
            store.delete_documents(gone)
        # Paths indexed from a folder given now that are no longer in it: forgotten.
        for doc_id, plist in paths_now.items():
            plist[:] = [p for p in plist if p in seen or not any(is_under(p, r) for r in roots)]
            if plist == docs[doc_id]["paths"]:
                continue
            if not plist:
                store.delete_documents([doc_id])
                report.removed += 1
            else:
                store.documents.set_paths(doc_id, plist)
        return list(todo.values())

    def _resume(self, doc: _Doc, n_pages: int) -> None:
        """An unfinished document goes on from its written pages (they stay hidden until it is ready)."""
        pages, counts, routes = self.store.keep_written_pages(doc.doc_id)
        doc.started, doc.n_pages, doc.routes = True, n_pages, routes
        doc.counts.update(counts)
        doc.job.options = self.options.model_copy(update={"skip_pages": frozenset(pages)})

    # -- the engines --------------------------------------------------------------------------------------------
    def _events(self, todo: list[_Doc]) -> Iterator[Event]:
        jobs = [d.job for d in todo]
        if self.engine == "ray":
            from .ray_engine import ray_events

            return ray_events(
                [(d.job.id, d.doc_id, d.path, d.job.options.skip_pages) for d in todo],
                self.options,
                self.settings,
                visual=self._models["visual"] is not None,
                address=self.ray_address,
                preload=plan_preload(self.settings),
            )
        doc_of = {d.job.id: d.doc_id for d in todo}

        def embed(batch: list[tuple[int, Any]]) -> EmbeddedRows:
            m = self._embedders()  # the models load at the first batch
            plans = [(doc_of[j], p) for j, p in batch]
            return embed_plans(plans, m["text"], m["image"], m["visual"], self.settings.ingest)

        self._start_loading()  # while the workers plan the first documents
        own = self.pool is None
        pool = start_pool(self.settings, self.workers) if own else self.pool

        def events() -> Iterator[Event]:
            try:
                yield from local_events(
                    jobs, pool, embed, self.settings.ingest.page_batch, self._models_ready, run_inline
                )
            finally:
                if pool is not None and own:
                    pool.close()

        return events()

    # -- the bookkeeper -----------------------------------------------------------------------------------------
    def _consume(
        self, events: Iterator[Event], todo: list[_Doc], metadata: dict[str, Any], report: IngestReport
    ) -> None:
        """Write what the engine's events say, in their order; stop the run on a storage or engine failure."""
        by_job = {d.job.id: d for d in todo}
        by_id = {d.doc_id: d for d in todo}
        try:
            with contextlib.closing(events):  # a failure here stops the engine too
                for ev in events:
                    if isinstance(ev, Started):
                        self._start(by_job[ev.job], ev, metadata, report)
                    elif isinstance(ev, Embedded):
                        for header in ev.starts:
                            self._start(by_job[header.job], header, metadata, report)
                        self._write(ev.rows, by_id, report)
                    elif isinstance(ev, Planned):
                        doc = by_job[ev.job]
                        if doc.failed:
                            continue
                        self._start(doc, ev.header or Started(ev.job, 0), metadata, report)
                        doc.planned = ev.planned
                        report.warnings.extend({"file": doc.path, **w} for w in ev.warnings)
                        self._maybe_finish(doc, report)
                    elif isinstance(ev, Failed) and not by_job[ev.job].failed:
                        self._fail(by_job[ev.job], ev.reason, report)
                        self._tick("skipped", file=by_job[ev.job].path)
        except StoreError as exc:
            self._stopped(todo, self.store.uri, str(exc), report)
        except EngineError as exc:
            self._stopped(todo, f"{self.engine} ({self.ray_address or 'local'})", str(exc), report)
        finally:
            report.pending = sum(1 for d in todo if not d.failed and not d.ready)

    def _start(self, doc: _Doc, header: Started, metadata: dict[str, Any], report: IngestReport) -> None:
        """The document's row (status ``indexing``), at the first of its events."""
        if doc.started or doc.failed:
            return
        doc.n_pages = header.n_pages
        report.warnings.extend({"file": doc.path, "warning": w} for w in header.warnings)
        try:
            st = os.stat(doc.path)
            size, mtime = st.st_size, st.st_mtime
        except OSError:
            size, mtime = 0, 0.0
        try:
            self.store.documents.add(doc.doc_id, doc.path, size, mtime, doc.n_pages, metadata)
        except StoreError as exc:
            self._fail(doc, str(exc), report)
            raise
        doc.started = True
        self._tick("document", file=doc.path, pages=doc.n_pages)

    def _write(self, rows: EmbeddedRows, by_id: dict[str, _Doc], report: IngestReport) -> None:
        """Write embedded rows of started documents and count them against their documents."""
        rows = rows.only({d for d, doc in by_id.items() if doc.started and not doc.failed})
        if not rows.n_pages:
            return
        have, made = self.store.dims, rows.dims
        if any(getattr(made, leg) and not getattr(have, leg) for leg in ("text", "image", "visual")):
            self.store.make_writable(text_dim=made.text, image_dim=made.image, visual_dim=made.visual)
        docs = {d: by_id[d] for d in set(rows.doc_ids(PAGES))}
        try:
            self.store.write(rows.tables, rows.visual)
        except StoreError as exc:
            for d in docs.values():
                self._fail(d, str(exc), report)
            raise
        for doc_id, n in rows.counts().items():
            for k, v in n.items():
                docs[doc_id].counts[k] += v
        for doc_id, lost in rows.unsearchable.items():
            docs[doc_id].unsearchable.extend(lost)
        for doc_id, routes in rows.routes().items():
            for r, v in routes.items():
                docs[doc_id].routes[r] = docs[doc_id].routes.get(r, 0) + v
        for leg, n in rows.legs().items():
            if n:
                self._tick("leg", leg=leg, n=n)
        self._tick("pages", n=rows.n_pages)
        for d in docs.values():
            self._maybe_finish(d, report)

    def _maybe_finish(self, doc: _Doc, report: IngestReport) -> None:
        """All of the document's planned pages are in: it becomes visible."""
        if doc.ready or doc.failed or not doc.started or doc.planned is None:
            return
        if doc.counts[PAGES.name] < doc.planned:
            return
        self.store.documents.mark_ready(doc.doc_id, doc.counts, doc.paths)
        doc.ready = True
        report.indexed += 1
        report.pages += doc.counts[PAGES.name]
        for r, n in doc.routes.items():
            report.routes[r] = report.routes.get(r, 0) + n
        if doc.unsearchable:
            report.unsearchable.append({"file": doc.path, "pages": sorted(doc.unsearchable), "reason": UNSEARCHABLE})

    def _fail(self, doc: _Doc, reason: str, report: IngestReport) -> None:
        doc.failed = True
        report.failed.extend({"file": p, "error": reason} for p in doc.paths)  # its copies failed with it
        report.duplicates -= len(doc.paths) - 1
        try:
            self.store.delete_documents([doc.doc_id])
        except StoreError as exc:  # it stays invisible (status indexing); the next run cleans it up
            log.warning("%s: partial rows left (not visible): %s", doc.path, exc)

    def _stopped(self, todo: list[_Doc], where: str, why: str, report: IngestReport) -> None:
        """The run cannot go on (storage failed, the engine died): the documents not finished are deleted (or
        left invisible) for the next run."""
        report.failed.append({"file": where, "error": f"the run stopped: {why}"})
        for d in todo:
            if not d.failed and not d.ready:
                with contextlib.suppress(StoreError):
                    self.store.delete_documents([d.doc_id])


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
