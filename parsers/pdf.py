"""PDF pages, streamed one at a time with pypdfium2: text layer with positions, router signals, rendering.

pypdfium2 reads the file lazily (a path, not bytes), so memory stays bounded by the page in hand, and
its page objects give the router cheap signals (see ``benchmarks/RESULTS.md`` for the measurements that
chose it over pdf2image/poppler: 3–4× faster rendering, and no whole-document buffering).

A page is read in two passes over PDFium: its text layer (``pdf_text``) and one walk over its objects into
typed arrays (``pdf_objects``). Everything else is pure functions over those (``pdf_analysis`` composes
``pdf_signals``, ``pdf_figures`` and ``pdf_tables``).

Coordinates: boxes are ``(x0, top, x1, bottom)`` in PDF points with the origin at the top-left of the
*unrotated* page (the page's ``/Rotate`` is reported in ``signals.rotation`` and applied when rendering).

Text turned inside the content stream (a landscape table printed on a portrait page, with no ``/Rotate``;
or LaTeX's pdflscape, whose ``/Rotate`` turns it back for the reader): when most characters are turned the
same quarter or half turn (``pdf_text.text_turn``), the page is read in the frame where its text is upright
(``pdf_grid.turned_frame``). PDFium orders the text as if the page were displayed that way, and the character
runs, the page's objects and its text spans are analysed there, so that its lines, columns and tables are
found as on an upright page. Spans, words, regions and figures are then put back where they are drawn on the
page; the signals measure the page as read, but its size and ``rotation`` stay the page's own.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from pathlib import Path

import numpy as np

from .errors import DocumentError
from .limits import Limits
from .pdf_analysis import PageAnalysis, analyse_page
from .pdf_grid import Frame, PdfBox, inverse, map_boxes, map_runs, top_left, turned_frame
from .pdf_objects import PageObjects, walk_objects
from .pdf_tables import MAX_TABLE_CANDIDATES, rule_groups
from .pdf_text import char_runs, page_text, text_spans, text_turn
from .reader import DocumentReader, check_file
from .text import normalise
from .types import LayoutRegion, Page, PageSignals, TextSpan

__all__ = [
    "BOUNDED_TEXT_MAX_WORK",
    "MAX_TABLE_CANDIDATES",
    "PdfReader",
    "capped_scale",
    "check_pdf_header",
    "render_pdf_page",
]

log = logging.getLogger(__name__)

BOUNDED_TEXT_MAX_WORK = 500_000  # rectangles x characters up to which PDFium's get_text_bounded is used for spans
_table_regions = rule_groups  # the rule grouping, where tests/test_parsers.py reaches it

_PDFIUM_LOAD_ERRORS = {
    1: "unknown error while opening (PDFium)",
    2: "cannot open the file",
    3: "not a valid PDF or damaged/truncated (PDFium: data format error)",
    4: "encrypted: a password is required to open it",
    5: "uses an unsupported security handler",
}


def check_pdf_header(path: Path, limits: Limits) -> None:
    """Refuse files that are empty, too large or not PDFs, before PDFium sees them."""
    check_file(path, limits)
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise DocumentError(str(path), f"not a PDF: no %PDF- header (starts with {head[:8]!r})")


def _explain_format_error(path: Path) -> str:
    """PDFium says only 'data format error': look closer to tell the user which kind."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 2048))
        tail = fh.read()
        small = size <= 4 << 20
        if small:
            fh.seek(0)
            whole = fh.read()
    if b"%%EOF" not in tail:
        return "truncated or damaged: the file ends without a PDF trailer (%%EOF)"
    if small and not re.search(rb"/Type\s*/Page(?!s)", whole):
        return "the PDF has zero pages (its page tree is empty)"
    return _PDFIUM_LOAD_ERRORS[3]


def _mentions(path: Path, token: bytes) -> bool:
    """Whether the file's bytes contain ``token`` (memory-mapped: no copy of a large file)."""
    import mmap

    with path.open("rb") as fh:
        try:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return mm.find(token) >= 0
        except ValueError:  # an empty file cannot be mapped
            return False


_TURNS = {90: "it runs down the page", 180: "upside down", 270: "it runs up the page"}


def _upright_textpage(pdf_page: object, textpage: object, turn: int) -> object:
    """The text page of ``pdf_page``, whose text is turned ``turn`` degrees clockwise, made as if the page were
    displayed with that text upright: its ``/Rotate`` is set to turn it back (in memory, while PDFium reads the
    text; then put back) and ``textpage`` is closed. PDFium orders the text objects of a line by where they
    are displayed: shown turned, the lines of a page could come out last first, or its table cells from the
    right. Character boxes and rectangles stay in PDF space."""
    rotation, upright = pdf_page.get_rotation(), (360 - turn) % 360
    if rotation == upright:
        return textpage
    textpage.close()
    pdf_page.set_rotation(upright)
    try:
        return pdf_page.get_textpage()
    finally:
        pdf_page.set_rotation(rotation)


def _turned_objects(objs: PageObjects, frame: Frame, box: PdfBox) -> PageObjects:
    """The page's objects with their boxes in ``frame``, whose page box is ``box``."""
    return dataclasses.replace(
        objs,
        page=box,
        text_boxes=map_boxes(frame, objs.text_boxes),
        image_boxes=map_boxes(frame, objs.image_boxes),
        path_boxes=map_boxes(frame, objs.path_boxes),
    )


def _back_on_page(found: PageAnalysis, frame: Frame, box: PdfBox, page: PdfBox) -> None:
    """The regions and figures found in ``frame`` (whose page box is ``box``) put back on ``page``."""
    back = inverse(frame)
    if found.regions:
        boxes = map_boxes(back, np.asarray([r.box for r in found.regions], dtype=float)).tolist()
        found.regions = [r._replace(box=tuple(b)) for r, b in zip(found.regions, boxes, strict=True)]
    if found.figures:  # top-left boxes of the frame's page: PDF boxes there first
        framed = [(x0, box[3] - bottom, x1, box[3] - top) for x0, top, x1, bottom in (f.bbox for f in found.figures)]
        boxes = map_boxes(back, np.asarray(framed, dtype=float)).tolist()
        found.figures = [
            dataclasses.replace(f, bbox=top_left(tuple(b), page)) for f, b in zip(found.figures, boxes, strict=True)
        ]


class PdfReader(DocumentReader):
    """Open a PDF and stream its pages. Use as a context manager; pages can render only while open.

    >>> with PdfReader("paper.pdf") as pdf:          # doctest: +SKIP
    ...     for page in pdf.pages():
    ...         print(page.number, page.signals.n_chars)
    """

    def __init__(self, path: str | Path, limits: Limits | None = None) -> None:
        import pypdfium2 as pdfium

        self._pdf = None
        super().__init__(path, limits)
        check_pdf_header(self.path, self.limits)
        # Opened from a file object we own: when PDFium finds no pages, pypdfium2 raises without closing what
        # it opened, and a path's C-level handle would stay open for the life of the (long-lived) worker.
        fh = self.path.open("rb")
        try:
            self._pdf = pdfium.PdfDocument(fh, autoclose=True)
        except pdfium.PdfiumError as exc:
            fh.close()
            code = getattr(exc, "err_code", None)
            if code == 0:  # "success", but no page: an empty page tree
                reason = "the PDF has zero pages (its page tree is empty)"
            elif code in (None, 1, 3) or (code in (4, 5) and not _mentions(self.path, b"/Encrypt")):
                # PDFium's last error is per thread and stale when the load itself succeeded (a page tree with no
                # pages after an encrypted file in the same worker): a file with no /Encrypt needs no password.
                reason = _explain_format_error(self.path)
            else:
                reason = _PDFIUM_LOAD_ERRORS.get(code, str(exc))
            raise DocumentError(self.file, reason) from None
        except BaseException:
            fh.close()
            raise
        n = len(self._pdf)
        if n == 0:
            self._pdf.close()
            raise DocumentError(self.file, "the PDF has zero pages")
        self.n_pages_total = n
        self._cap_pages(n)

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    def page(self, number: int) -> Page:
        """Parse page ``number`` (1-based). A page that cannot be parsed raises DocumentError."""
        if self._pdf is None:
            raise DocumentError(self.file, "the document is closed")
        if not 1 <= number <= self.n_pages:
            raise DocumentError(self.file, f"no page {number} (the document has {self.n_pages})")
        try:
            pdf_page = self._pdf[number - 1]
        except Exception as exc:  # pdfium raises on pages it cannot load
            raise DocumentError(self.file, f"cannot load the page ({exc})", page=number) from None
        try:
            return self._parse(pdf_page, number)
        finally:
            pdf_page.close()

    # -- parsing ---------------------------------------------------------------------------------------
    def _parse(self, pdf_page: object, number: int) -> Page:
        x0, y0, x1, y1 = pdf_page.get_cropbox()
        if not (x1 > x0 and y1 > y0):
            x0, y0, x1, y1 = pdf_page.get_mediabox()
        page = (x0, y0, x1, y1)
        page_w, page_h = x1 - x0, y1 - y0
        sig = PageSignals(width_pt=round(page_w, 2), height_pt=round(page_h, 2), rotation=pdf_page.get_rotation())

        # Text layer: whole text and positioned spans (one per run of characters on a line), with a space at the
        # word breaks found in the character boxes where PDFium gave none. Only the first max_page_chars
        # characters are measured for spans, words and breaks; the text stays whole. Text turned in the content
        # stream is read upright (module docstring): runs in that frame, words put back on the page.
        textpage = pdf_page.get_textpage()
        frame, frame_box = None, page
        try:
            turn = text_turn(textpage)
            if turn:
                textpage = _upright_textpage(pdf_page, textpage, turn)
                frame, frame_box = turned_frame(page, turn)
            runs, n_leaders, words_pdf, breaks = char_runs(textpage, self.limits.max_page_chars, frame)
            text = page_text(textpage, breaks)
            spans_pdf, n_chars_all, n_measured, overlapped = text_spans(
                textpage, self.limits.max_page_chars, BOUNDED_TEXT_MAX_WORK, breaks
            )
        finally:
            textpage.close()
        if frame is not None:
            words_pdf = map_runs(inverse(frame), words_pdf)
        spans = [TextSpan(s[4], top_left(s[:4], page)) for s in spans_pdf]
        page_words = [TextSpan(normalise(w[4]), top_left(w[:4], page)) for w in words_pdf]
        text = normalise(text.replace("\r\n", "\n").replace("\r", "\n"))
        words = text.split()  # split() and isspace() agree on what is whitespace
        sig.n_chars = sum(map(len, words))
        sig.n_words = len(words)

        # Objects, walked once; then the analyses over them.
        objs = walk_objects(pdf_page, page, self.limits.max_page_objects)
        if frame is None:
            found = analyse_page(objs, spans_pdf, runs, n_leaders, sig)
        else:
            found = analyse_page(
                _turned_objects(objs, frame, frame_box), map_runs(frame, spans_pdf), runs, n_leaders, sig
            )
            _back_on_page(found, frame, frame_box, page)
            shown = "the page's /Rotate shows it upright" if sig.rotation == (360 - turn) % 360 else _TURNS[turn]
            found.diagnostics.insert(0, f"text turned {turn}° clockwise in the page's content ({shown}): read upright")
        sig.has_text_layer = sig.n_chars > 0
        diagnostics = found.diagnostics
        if sig.invisible_text_fraction > 0.5:
            diagnostics.append("text layer is invisible (render mode 3): an OCR layer over an image")
        if sig.objects_truncated:
            diagnostics.append(
                f"only the first {self.limits.max_page_objects} of {objs.n_objects} page objects were inspected"
            )
        if n_measured < n_chars_all:
            diagnostics.append(
                f"only the first {n_measured:,} of {n_chars_all:,} characters were measured for positions "
                "(max_page_chars)"
            )
        if overlapped:
            diagnostics.append("text overlaps heavily: some spans were measured from their own characters only")

        file, limits, max_image_px = self.file, self.limits, found.max_image_px

        def renderer(dpi: float, _n: int = number) -> object:
            if self._pdf is None:
                raise DocumentError(file, "the document is closed; render inside `with`", page=_n)
            if max_image_px > limits.max_image_pixels:
                raise DocumentError(
                    file,
                    f"an embedded image has {max_image_px:,} pixels, over max_image_pixels "
                    f"({limits.max_image_pixels:,}): not rendered",
                    page=_n,
                )
            to_render = self._pdf[_n - 1]
            try:
                return render_pdf_page(to_render, dpi, limits.max_render_pixels, file=file, number=_n)
            finally:
                to_render.close()

        return Page(
            file=self.file,
            number=number,
            width_pt=page_w,
            height_pt=page_h,
            text=text,
            spans=spans,
            signals=sig,
            figures=found.figures,
            words=page_words,
            regions=[LayoutRegion(r.kind, top_left(r.box, page), r.n_items) for r in found.regions],
            diagnostics=diagnostics,
            _renderer=renderer,
        )


def capped_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """The render scale (pixels per point) for ``dpi``, lowered so the image stays under ``max_pixels``."""
    scale = dpi / 72.0
    pixels = width_pt * scale * height_pt * scale
    if pixels > max_pixels:
        scale *= math.sqrt(max_pixels / pixels)
        while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:  # renderers round up
            scale *= 0.995
    return scale


def render_pdf_page(
    page: object,
    dpi: float,
    max_pixels: int,
    *,
    file: str = "",
    number: int = 0,
    backend: str = "pdfium",
    path: str | Path | None = None,
) -> object:
    """Render one PDF page to an RGB PIL image at ``dpi``, scaled down to at most ``max_pixels``.

    The one rendering function of docrag. ``backend="pdfium"`` (default) renders the open pypdfium2
    page; ``backend="poppler"`` renders the same page through pdf2image (poppler's pdftoppm, one page per
    call so nothing else is buffered) for comparison — see benchmarks/render.py.
    """
    w, h = page.get_size()
    scale = capped_scale(w, h, dpi, max_pixels)
    if scale < dpi / 72.0 - 1e-9:
        log.info("%s page %d: render capped at %.0f dpi (max_render_pixels=%d)", file, number, scale * 72, max_pixels)
    if backend == "pdfium":
        return page.render(scale=scale).to_pil().convert("RGB")
    if backend == "poppler":
        from pdf2image import convert_from_path

        if path is None:
            raise ValueError("backend='poppler' needs the file path")
        images = convert_from_path(str(path), dpi=scale * 72.0, first_page=number, last_page=number)
        return images[0].convert("RGB")
    raise ValueError(f"unknown render backend {backend!r}: use 'pdfium' or 'poppler'")
