"""Batch indexing: files → parse → route → legs → LanceDB, with resume and per-file errors.

Documents are identified by the sha256 of their bytes. A run skips documents already indexed, re-indexes a
file whose content changed (its old rows are deleted), and completes documents a previous run left half
written. A document's ``documents`` row is written first with status ``indexing`` and flipped to ``ready``
only after all its rows are in: search only sees ``ready`` documents, so an interrupted run (Ctrl-C, kill)
never leaves a half-indexed document visible, and the next run deletes the partial rows and redoes it.

Pages stream through in batches of ``ingest.page_batch``: memory is bounded by one batch of rendered pages,
whatever the size of the document or the folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrag.parsers import DocumentError, discover, open_document
from docrag.parsers.elements import running_lines, strip_lines
from docrag.parsers.text import captions, dehyphenate, is_noise, vocabulary
from docrag.parsers.types import Page

from .router import Route, route_page

if TYPE_CHECKING:
    from docrag.api import Index

__all__ = ["IngestReport", "file_sha256", "index_paths"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]  # (event, data) for progress bars


@dataclass(slots=True)
class IngestReport:
    indexed: int = 0
    skipped: int = 0
    removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    pages: int = 0
    routes: dict[str, int] = field(default_factory=lambda: {"visual": 0, "text": 0})
    seconds: float = 0.0
    not_documents: list[str] = field(default_factory=list)  # files in folders that are not PDFs/images

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "removed": self.removed,
            "failed": list(self.failed),
            "pages": self.pages,
            "routes": dict(self.routes),
            "seconds": round(self.seconds, 3),
        }


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _thumbnail(image: Any, px: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((px, px))
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, format="WEBP", quality=70)
    return buf.getvalue()


def _render_cached(page: Page, dpi: float, cache: dict[float, Any]) -> Any:
    if dpi not in cache:
        cache[dpi] = page.render(dpi)
    return cache[dpi]


class _DocumentWriter:
    """Indexes one document's pages in batches; all rows carry the doc_id."""

    def __init__(self, index: Index, doc_id: str, path: Path, progress: Progress | None) -> None:
        self.index, self.doc_id, self.path, self.progress = index, doc_id, path, progress
        self.cfg = index.settings.ingest
        self.store = index.store
        self.visual = index.visual_embedder if index.settings.visual is not None else None
        self.unified = index.unified_embedder
        self.elements: tuple[dict[int, list[Any]], str] | None = None
        self.routes: list[Route] = []
        self.running: set[str] = set()  # running headers/footers of this document, left out of the text legs
        self.vocab: set[str] | None = None  # the document's words, to tell line-end hyphenation from compounds

    def _clean(self, text: str) -> str:
        """Running lines out, line-end hyphenation undone (text from any source: layer, elements, OCR)."""
        text = strip_lines(text, self.running)
        if not self.cfg.dehyphenate:
            return text
        return dehyphenate(text, self.vocab)

    def _elements_for(self, page: Page) -> list[str]:
        from docrag.parsers.elements import page_elements, text_layer_elements, unstructured_elements

        if page.signals.source != "pdf" or page.signals.n_chars == 0:
            return []
        if self.cfg.elements == "text-layer":
            return [e.text for e in text_layer_elements(page)]
        if self.elements is None:
            self.elements = unstructured_elements(self.path)
        return [e.text for e in page_elements(page, *self.elements)]

    def _ocr(self, page: Page, renders: dict[float, Any]) -> str:
        from docrag.parsers.ocr import ocr_image, tesseract_available

        if not self.cfg.ocr:
            return ""
        if not tesseract_available():
            page.diagnostics.append("no usable text layer and tesseract is not installed: page not OCR'd")
            return ""
        try:
            res = ocr_image(_render_cached(page, self.cfg.ocr_dpi, renders), lang=self.cfg.ocr_lang, file=page.file)
        except DocumentError as exc:
            page.diagnostics.append(f"OCR failed: {exc.reason}")
            return ""
        page.diagnostics.append(f"text from OCR (tesseract, mean confidence {res.confidence:.2f})")
        return res.text

    def write_batch(self, pages: Sequence[Page]) -> None:
        from docrag.indexes.unified import chunk_page_texts

        page_rows: dict[str, list[Any]] = {
            k: [] for k in ("doc_id", "page", "route", "label", "confidence", "reasons", "signals", "text", "thumbnail")
        }
        visual_pages, visual_images = [], []
        chunk_inputs: list[tuple[int, list[str]]] = []
        figure_pages, figure_boxes, figure_images = [], [], []
        for page in pages:
            route = route_page(page, self.index.settings.router)
            renders: dict[float, Any] = {}
            try:
                # Elements of a few characters (a lone page number) would only make noise chunks.
                texts = [
                    t
                    for t in (self._clean(x) for x in self._elements_for(page))
                    if len(t.strip()) >= 4 and not is_noise(t)
                ]
                visible = page.signals.n_chars * (1 - page.signals.invisible_text_fraction)
                text = self._clean(page.text)
                # No usable text layer: OCR (PDF pages and document-like image files; never photos).
                if visible < self.index.settings.router.min_text_chars and (
                    page.signals.source == "pdf" or route.label == "scanned"
                ):
                    ocr_text = page.text if page.signals.invisible_text_fraction > 0.5 else self._ocr(page, renders)
                    text = self._clean(ocr_text or page.text)
                    texts = [text] if text.strip() else []
                if route.route == "visual" and self.visual is not None:
                    visual_pages.append(page.number)
                    visual_images.append(_render_cached(page, self.cfg.visual_dpi, renders))
                if texts:
                    chunk_inputs.append((page.number, texts))
                if self.cfg.figures and "image" in self.unified.modalities:
                    self._collect_figures(page, route, renders, figure_pages, figure_boxes, figure_images)
                thumb = _thumbnail(
                    _render_cached(page, 72, renders) if not renders else next(iter(renders.values())),
                    self.cfg.thumbnail_px,
                )
            except DocumentError as exc:  # e.g. a page that may not be rendered (image bomb)
                page.diagnostics.append(exc.reason)
                text, thumb = page.text, b""
                if page.text.strip():
                    chunk_inputs.append((page.number, [page.text]))
            route.reasons = route.reasons + [d for d in page.diagnostics if d not in route.reasons]
            self.routes.append(route)
            page_rows["doc_id"].append(self.doc_id)
            page_rows["page"].append(page.number)
            page_rows["route"].append(route.route)
            page_rows["label"].append(route.label)
            page_rows["confidence"].append(route.confidence)
            page_rows["reasons"].append(json.dumps(route.reasons, ensure_ascii=False))
            page_rows["signals"].append(json.dumps(route.signals))
            page_rows["text"].append(text)
            page_rows["thumbnail"].append(thumb)

        if visual_pages:
            self.store.add_visual(self.doc_id, visual_pages, self.visual.embed_images(visual_images))
            self._tick("visual", len(visual_pages))
        contexts = {p: captions(t) for p, t in chunk_inputs} if self.cfg.caption_context else None
        chunks = chunk_page_texts(
            chunk_inputs, self.unified, self.cfg.chunk_max_tokens, self.cfg.chunk_overlap, contexts
        )
        if chunks:
            vectors = self.unified.embed_documents([c.embed_text for c in chunks])
            self.store.add_chunks(
                self.doc_id, [c.page for c in chunks], [c.index for c in chunks], [c.text for c in chunks], vectors
            )
            self._tick("text", len(chunks))
        if figure_images:
            self.store.add_images(self.doc_id, figure_pages, figure_boxes, self.unified.embed_images(figure_images))
            self._tick("image", len(figure_images))
        self.store.add_rows("pages", page_rows)

    def _collect_figures(
        self, page: Page, route: Route, renders: dict[float, Any], pages: list[int], boxes: list[Any], images: list[Any]
    ) -> None:
        if page.signals.source == "image":
            if route.label != "scanned":  # a photo or figure file: the image itself goes to the image leg
                pages.append(page.number)
                boxes.append((0.0, 0.0, page.width_pt, page.height_pt))
                images.append(_render_cached(page, 150, renders))
            return
        if route.label == "scanned":
            return  # a scan's "figure" is the whole page: the visual leg has it
        for fig in page.figures:
            x0, top, x1, bottom = fig.bbox
            if max(fig.width_px, fig.height_px) < self.cfg.min_figure_px:
                continue
            img = _render_cached(page, 150, renders)
            sx, sy = img.width / page.width_pt, img.height / page.height_pt
            if page.signals.rotation:
                continue  # boxes are in unrotated space; a rotated render would need the same rotation
            crop = img.crop((int(x0 * sx), int(top * sy), int(x1 * sx), int(bottom * sy)))
            if min(crop.size) >= 16:
                pages.append(page.number)
                boxes.append(fig.bbox)
                images.append(crop)

    def _tick(self, leg: str, n: int) -> None:
        if self.progress:
            self.progress("leg", {"leg": leg, "n": n})


def _index_document(
    index: Index, path: Path, doc_id: str, metadata: dict[str, Any], progress: Progress | None
) -> list[Route]:
    store, cfg = index.store, index.settings
    with open_document(path, cfg.limits) as doc:
        stat = path.stat()
        store.add_rows(
            "documents",
            {
                "doc_id": [doc_id],
                "path": [str(path)],
                "size": [stat.st_size],
                "mtime": [stat.st_mtime],
                "n_pages": [doc.n_pages],
                "status": ["indexing"],
                "metadata": [json.dumps(metadata, ensure_ascii=False)],
                "indexed_at": [dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
            },
        )
        if progress:
            progress("document", {"file": str(path), "pages": doc.n_pages})
        writer = _DocumentWriter(index, doc_id, path, progress)
        if cfg.ingest.strip_running_lines or cfg.ingest.dehyphenate:
            # A cheap pre-pass over the text layer (no rendering): running headers and footers, and the
            # document's vocabulary for dehyphenation.
            texts = []
            for number in range(1, doc.n_pages + 1):
                try:
                    texts.append(doc.page(number).text)
                except DocumentError:
                    continue
            if cfg.ingest.strip_running_lines:
                writer.running = running_lines(texts)
            if cfg.ingest.dehyphenate:
                writer.vocab = vocabulary(texts)
            del texts
        batch: list[Page] = []
        for number in range(1, doc.n_pages + 1):
            try:
                batch.append(doc.page(number))
            except DocumentError as exc:
                log.warning("%s", exc)
                continue
            if len(batch) >= cfg.ingest.page_batch:
                writer.write_batch(batch)
                if progress:
                    progress("pages", {"n": len(batch)})
                batch = []
        if batch:
            writer.write_batch(batch)
            if progress:
                progress("pages", {"n": len(batch)})
    # All rows are in: the document becomes visible.
    store.table("documents").update(where=f"doc_id = {_sql(doc_id)}", values={"status": "ready"})
    return writer.routes


def index_paths(
    index: Index, paths: Iterable[str | Path], metadata: dict[str, Any] | None = None, progress: Progress | None = None
) -> IngestReport:
    """Index every PDF and image under ``paths``; returns the run's summary. One bad file never stops it."""
    t0 = time.perf_counter()
    report = IngestReport()
    store = index.store
    files: list[Path] = []
    for path, supported in discover(paths):
        if supported:
            files.append(path.resolve())  # stored absolute: a file is the same file from any working directory
        elif not path.exists():
            report.failed.append({"file": str(path), "error": "no such file"})
        else:
            report.not_documents.append(str(path))
            log.info("skipped %s: not a PDF or image", path)
    if progress:
        progress("start", {"files": len(files)})
    docs = {r["doc_id"]: r for r in store.rows("documents", columns=["doc_id", "path", "status"])}
    by_path: dict[str, list[dict[str, Any]]] = {}
    for r in docs.values():
        by_path.setdefault(r["path"], []).append(r)
    changed = False
    for path in files:
        try:
            doc_id = file_sha256(path)
        except OSError as exc:
            report.failed.append({"file": str(path), "error": f"cannot read the file ({exc.strerror})"})
            continue
        # A file whose content changed: its old document goes.
        for old in by_path.get(str(path), []):
            if old["doc_id"] != doc_id:
                store.delete_document(old["doc_id"])
                docs.pop(old["doc_id"], None)
                report.removed += 1
                changed = True
        known = docs.get(doc_id)
        if known is not None and known["status"] == "ready":
            report.skipped += 1
            if progress:
                progress("skipped", {"file": str(path)})
            continue
        if known is not None:  # left half-written by an interrupted run: start it again
            log.info("%s: completing an interrupted indexing run", path)
            store.delete_document(doc_id)
        try:
            routes = _index_document(index, path, doc_id, metadata or {}, progress)
        except DocumentError as exc:
            store.delete_document(doc_id)
            report.failed.append({"file": exc.file, "error": exc.reason})
            continue
        except Exception as exc:  # one bad file never stops the batch
            store.delete_document(doc_id)
            log.exception("%s: indexing failed", path)
            report.failed.append({"file": str(path), "error": f"{exc.__class__.__name__}: {exc}"})
            continue
        docs[doc_id] = {"doc_id": doc_id, "path": str(path), "status": "ready"}
        report.indexed += 1
        report.pages += len(routes)
        for r in routes:
            report.routes[r.route] = report.routes.get(r.route, 0) + 1
        changed = True
    if changed:
        store.maintain()
    report.seconds = time.perf_counter() - t0
    return report


def remove_documents(index: Index, targets: Iterable[str]) -> int:
    """Delete documents by path (file or folder prefix) or doc_id; returns how many were removed."""
    store = index.store
    rows = store.rows("documents", columns=["doc_id", "path"])
    removed = 0
    for target in targets:
        resolved = str(Path(target).resolve())
        for r in rows:
            if r["doc_id"] == target or r["path"] == resolved or r["path"].startswith(resolved.rstrip("/") + "/"):
                store.delete_document(r["doc_id"])
                removed += 1
    if removed:
        store.maintain()
    return removed
