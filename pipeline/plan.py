"""Pages as plans: the pure first step of ingestion, run in isolated worker processes.

``plan_document`` reads one file and turns every page into a ``PagePlan``: the router's decision (OCR
included), the page text for BM25 and snippets, the element texts to embed with their caption context, the
page image for the visual leg, figure crops for the image leg and a thumbnail. No model is involved, so a
plan can be made (and tested) anywhere; embedding and storing the plans is the second step, in the parent
(``pipeline.ingest``).

``plan_document`` is a generator: it yields ``("header", {"n_pages", "warnings"})`` once, then
``("pages", [PagePlan, ...])`` a batch at a time, so the memory of one document is bounded by one batch of
rendered pages whatever the document's size, and nothing is planned before the consumer asks for it, and
last ``("page_errors", [{"page", "error"}, ...])`` when pages could not be read or a parser had something to
say (``pipeline.chatter``: those also go in the page's reasons, and have ``"source": "parser"``). It
raises ``DocumentError`` when the file cannot be read. ``on_stage(data)`` hears what it is doing now (open,
elements, page N, OCR of page N …): the worker pool's time budgets and error messages come from it.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from docrag.parsers import DocumentError, OpenContext, open_document
from docrag.parsers.elements import running_lines, strip_lines
from docrag.parsers.limits import Limits
from docrag.parsers.office import ConvertOptions
from docrag.parsers.text import captions, dehyphenate, is_noise, vocabulary
from docrag.parsers.types import BBox, Page
from docrag.parsers.words import Word, pixel_words, span_words

from .chatter import Chatter
from .router import Route, route_page

if TYPE_CHECKING:
    from PIL import Image

    from .options import IngestConfig, RouterConfig

__all__ = ["FigureCrop", "PagePlan", "PlanOptions", "plan_document", "render_page"]

log = logging.getLogger(__name__)

OnStage = Callable[[dict[str, Any]], None]
_PARAGRAPH = re.compile(r"\n\s*\n")
LINKED_IMAGE_PX = 1024  # a local image a text document shows is read at most this large for the image leg


def _quiet(data: dict[str, Any]) -> None:
    return None


class PlanOptions(BaseModel):
    """Everything the plan step needs: plain settings, no models (it crosses into worker processes)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    router: Any = Field(description="RouterConfig")
    ingest: Any = Field(description="IngestConfig")
    limits: Limits = Field(default_factory=Limits)
    visual: bool = Field(True, description="Render visual pages for a multi-vector model.")
    figures: bool = Field(True, description="Crop figures (and keep image files) for an image-capable embedder.")
    elements_fallback: str = Field(
        "", description="Why element extraction is skipped for this document (e.g. it timed out): text layer used."
    )
    skip_pages: frozenset[int] = Field(
        frozenset(), description="Pages whose rows are written already (a resumed document): not planned again."
    )
    route_only: bool = Field(False, description="Route the pages, nothing more (docrag route): no text, no renders.")
    convert: ConvertOptions = Field(
        default_factory=ConvertOptions, description="How Office files are converted to PDF (LibreOffice)."
    )
    roots: tuple[str, ...] = Field(
        (), description="The folders being indexed: local images a web page or Markdown file shows must lie inside."
    )

    @classmethod
    def build(
        cls,
        router: RouterConfig,
        ingest: IngestConfig,
        limits: Limits,
        *,
        visual: bool,
        figures: bool,
        convert_cache: str | Path = "",
    ) -> PlanOptions:
        convert = ConvertOptions(
            cache_dir=str(convert_cache),
            timeout_s=ingest.convert_timeout_s,
            memory_bytes=ingest.worker_memory_bytes,
        )
        return cls(router=router, ingest=ingest, limits=limits, visual=visual, figures=figures, convert=convert)


@dataclass(slots=True)
class FigureCrop:
    bbox: BBox  # in PDF points, top-left origin (the whole page for an image file)
    image: Image.Image


@dataclass(slots=True)
class PagePlan:
    """What one page becomes in the index, decided without any model."""

    number: int
    route: Route
    text: str  # the page's text (layer or OCR), cleaned: BM25 and snippets
    texts: list[str] = field(default_factory=list)  # element texts to chunk and embed
    captions: list[str] = field(default_factory=list)  # figure/table captions: the chunks' context header
    visual_image: Image.Image | None = None  # the page rendered for the visual leg (visual pages only)
    figures: list[FigureCrop] = field(default_factory=list)
    thumbnail: bytes = b""
    # The words of ``text`` where they are on the page (fractions, top-left origin): answer regions.
    words: list[Word] = field(default_factory=list)


def _thumbnail(image: Image.Image, px: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((px, px))
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, format="WEBP", quality=70)
    return buf.getvalue()


class _Planner:
    """Plans the pages of one open document; holds the document-wide text context (running lines, vocabulary,
    elements)."""

    def __init__(self, path: Path, options: PlanOptions, on_stage: OnStage) -> None:
        self.path, self.opt, self.stage = path, options, on_stage
        self.cfg = options.ingest
        self.chatter = Chatter()  # what the parsers say, by page (``plan_document`` catches it)
        self.elements: tuple[dict[int, list[Any]], str] | None = None
        self.running: set[str] = set()
        self.vocab: set[str] | None = None

    def _clean(self, text: str) -> str:
        """Running lines out, line-end hyphenation undone (text from any source: layer, elements, OCR)."""
        text = strip_lines(text, self.running)
        return dehyphenate(text, self.vocab) if self.cfg.dehyphenate else text

    def _elements_for(self, page: Page) -> list[str]:
        from docrag.parsers.elements import page_elements, text_layer_elements, unstructured_elements

        if page.signals.source == "text":  # HTML, Markdown, plain text: its paragraphs
            return [p for p in _PARAGRAPH.split(page.text) if p.strip()]
        if page.signals.source != "pdf" or page.signals.n_chars == 0:
            return []
        if self.cfg.elements == "text-layer":
            return [e.text for e in text_layer_elements(page)]
        if self.opt.elements_fallback:
            page.diagnostics.append(f"{self.opt.elements_fallback}: elements taken from the text layer")
            return [e.text for e in text_layer_elements(page)]
        if self.elements is None:
            self.stage({"stage": "elements"})
            with self.chatter.whole_document():
                self.elements = unstructured_elements(self.path)
        self.stage({"stage": "page", "page": page.number})
        return [e.text for e in page_elements(page, *self.elements)]

    def _ocr(self, page: Page, render: Callable[[float], Image.Image]) -> tuple[str, list[Word]]:
        from docrag.parsers.ocr import ocr_image, tesseract_available

        if not self.cfg.ocr:
            return "", []
        if not tesseract_available():
            page.diagnostics.append("no usable text layer and tesseract is not installed: page not OCR'd")
            return "", []
        image = render(self.cfg.ocr_dpi)
        self.stage({"stage": "ocr", "page": page.number})
        try:
            res = ocr_image(image, lang=self.cfg.ocr_lang, file=page.file)
        except DocumentError as exc:
            page.diagnostics.append(f"OCR failed: {exc.reason}")
            return "", []
        page.diagnostics.append(f"text from OCR (tesseract, mean confidence {res.confidence:.2f})")
        return res.text, pixel_words(res.spans, image.width, image.height)

    @staticmethod
    def _layer_words(page: Page) -> list[Word]:
        """The text layer's words (each with its own box; a parser that gives only runs of words: split by
        characters); none on a rotated page (its boxes are in unrotated space)."""
        if page.signals.source != "pdf" or page.signals.rotation:
            return []
        return span_words(page.words or page.spans, page.width_pt, page.height_pt)

    def plan(self, page: Page) -> PagePlan:
        route = route_page(page, self.opt.router)
        if self.opt.route_only:
            return PagePlan(page.number, route, "")
        renders: dict[float, Image.Image] = {}

        def render(dpi: float) -> Image.Image:
            if dpi not in renders:
                self.stage({"stage": "render", "page": page.number})
                renders[dpi] = page.render(dpi)
            return renders[dpi]

        plan = PagePlan(page.number, route, page.text)
        try:
            # Elements of a few characters (a lone page number) would only make noise chunks.
            plan.texts = [
                t for t in (self._clean(x) for x in self._elements_for(page)) if len(t.strip()) >= 4 and not is_noise(t)
            ]
            plan.text = self._clean(page.text)
            plan.words = self._layer_words(page)
            if route.ocr or (page.signals.invisible_text_fraction > 0.5 and page.signals.source == "pdf"):
                # The router found no usable visible text: an invisible OCR layer is the text, else OCR.
                if page.signals.invisible_text_fraction > 0.5:
                    ocr_text = page.text
                else:
                    ocr_text, ocr_words = self._ocr(page, render)
                    plan.words = ocr_words or plan.words
                plan.text = self._clean(ocr_text or page.text)
                plan.texts = [plan.text] if plan.text.strip() else []
            if route.route == "visual" and self.opt.visual:
                plan.visual_image = render(self.cfg.visual_dpi)
            if self.cfg.figures and self.opt.figures:
                plan.figures = self._figures(page, route, render)
            plan.thumbnail = _thumbnail(next(iter(renders.values())) if renders else render(72), self.cfg.thumbnail_px)
        except DocumentError as exc:  # e.g. a page that may not be rendered (image bomb): keep its text
            page.diagnostics.append(exc.reason)
            plan.text, plan.thumbnail, plan.visual_image, plan.figures = page.text, b"", None, []
            plan.texts = [page.text] if page.text.strip() else []
        if plan.texts and self.cfg.caption_context:
            plan.captions = captions(plan.texts)
        route.reasons = route.reasons + [d for d in page.diagnostics if d not in route.reasons]
        return plan

    def _linked(self, page: Page) -> list[FigureCrop]:
        """The local images a text page shows (already checked to lie inside the folder being indexed)."""
        from PIL import Image

        out = []
        for path in page.linked_images:
            try:
                with Image.open(path) as img:
                    w, h = img.size
                    if w * h > self.opt.limits.max_image_pixels:
                        page.diagnostics.append(f"linked image {Path(path).name} is {w}×{h}: over max_image_pixels")
                        continue
                    img.draft("RGB", (LINKED_IMAGE_PX, LINKED_IMAGE_PX))
                    image = img.convert("RGB")
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                page.diagnostics.append(f"linked image {Path(path).name} not read ({exc.__class__.__name__})")
                continue
            image.thumbnail((LINKED_IMAGE_PX, LINKED_IMAGE_PX))
            if min(image.size) >= 16:
                out.append(FigureCrop((0.0, 0.0, page.width_pt, page.height_pt), image))
        return out

    def _figures(self, page: Page, route: Route, render: Callable[[float], Image.Image]) -> list[FigureCrop]:
        if page.signals.source == "text":
            return self._linked(page)
        if page.signals.source == "image":
            # A photo or figure file: the image itself goes to the image leg (a scan's is the visual leg's).
            if route.label == "scanned":
                return []
            return [FigureCrop((0.0, 0.0, page.width_pt, page.height_pt), render(150))]
        if route.label == "scanned" or page.signals.rotation:
            return []  # a scan's "figure" is the whole page; boxes are in unrotated space
        out = []
        for fig in page.figures:
            if max(fig.width_px, fig.height_px) < self.cfg.min_figure_px:
                continue
            img = render(150)
            sx, sy = img.width / page.width_pt, img.height / page.height_pt
            x0, top, x1, bottom = fig.bbox
            crop = img.crop((int(x0 * sx), int(top * sy), int(x1 * sx), int(bottom * sy)))
            if min(crop.size) >= 16:
                out.append(FigureCrop(fig.bbox, crop))
        return out


def plan_document(path: str | Path, options: PlanOptions, on_stage: OnStage | None = None) -> Iterator[tuple[str, Any]]:
    """Plan every page of the file at ``path``: yields the header, then batches of pages (module docstring)."""
    path = Path(path)
    cfg = options.ingest
    stage = on_stage or _quiet
    stage({"stage": "open"})
    planner = _Planner(path, options, stage)
    chatter = planner.chatter  # what the parsers say goes on the page it is about, never bare on stderr
    # An Office file is converted as it opens: its converter's process group is announced with the stage, so a
    # parent that kills this worker kills the converter too (``pipeline.workers``).
    context = OpenContext(options.convert, options.roots, lambda pgid: stage({"stage": "convert", "pgid": pgid}))
    with chatter.catching(0):
        doc = open_document(path, options.limits, context=context)
    planner.path = doc.parse_path  # element extraction reads the converted PDF of an Office file
    stage({"stage": "open"})  # (the converter, if any, is gone)
    with doc:
        yield "header", {"n_pages": doc.n_pages, "warnings": list(doc.warnings)}
        if (cfg.strip_running_lines or cfg.dehyphenate) and not options.route_only:
            # A cheap pre-pass over the text layer (no rendering): running headers and footers, and the
            # document's vocabulary for dehyphenation. (What the parsers say here, they say again below.)
            stage({"stage": "text pre-pass"})
            texts = []
            with Chatter().catching(0):
                for number in range(1, doc.n_pages + 1):
                    try:
                        texts.append(doc.page(number).text)
                    except DocumentError:
                        continue
            if cfg.strip_running_lines:
                planner.running = running_lines(texts)
            if cfg.dehyphenate:
                planner.vocab = vocabulary(texts)
            del texts
        batch: list[PagePlan] = []
        errors: list[DocumentError] = []
        planned = 0
        for number in range(1, doc.n_pages + 1):
            if number in options.skip_pages:
                continue
            stage({"stage": "page", "page": number})
            with chatter.catching(number):
                try:
                    page = doc.page(number)
                except DocumentError as exc:
                    errors.append(exc)
                    continue
                plan = planner.plan(page)
            chatter.place(path)
            said = chatter.lines(number)
            plan.route.reasons = plan.route.reasons + [x for x in said if x not in plan.route.reasons]
            batch.append(plan)
            planned += 1
            if len(batch) >= cfg.page_batch:
                yield "pages", batch
                batch = []
        if batch:
            yield "pages", batch
        if errors and not planned and not options.skip_pages:  # no page could be read (an undecodable image)
            raise DocumentError(errors[0].file, errors[0].reason)
        chatter.place(path)
        unread = [{"page": e.page, "error": e.reason} for e in errors]
        if unread or chatter.pages:  # the document's warnings (the summary names them)
            yield "page_errors", unread + chatter.report()


def render_page(
    paths: list[str], number: int, dpi: float, limits: Limits, convert_cache: str | Path = ""
) -> Image.Image | None:
    """Page ``number`` of the first of ``paths`` that reads, rendered (an Office file from its converted PDF,
    cached in ``convert_cache``); None when none reads."""
    context = OpenContext(ConvertOptions(cache_dir=str(convert_cache)))
    for path in paths:
        try:
            with open_document(path, limits, context=context) as reader:
                return reader.page(number).render(dpi)
        except DocumentError:
            continue
    return None
