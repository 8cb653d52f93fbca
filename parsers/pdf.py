"""PDF pages, streamed one at a time with pypdfium2: text layer with positions, router signals, rendering.

pypdfium2 reads the file lazily (a path, not bytes), so memory stays bounded by the page in hand, and
its page objects give the router cheap signals (see ``benchmarks/RESULTS.md`` for the measurements that
chose it over pdf2image/poppler: 3–4× faster rendering, and no whole-document buffering).

A page is read in two passes over PDFium: its text layer (``pdf_text``) and one walk over its objects into
typed arrays (``pdf_objects``). Everything else is pure functions over those (``pdf_analysis`` composes
``pdf_signals``, ``pdf_figures`` and ``pdf_tables``).

Coordinates: boxes are ``(x0, top, x1, bottom)`` in PDF points with the origin at the top-left of the
*unrotated* page (the page's ``/Rotate`` is reported in ``signals.rotation`` and applied when rendering).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

from .errors import DocumentError
from .limits import Limits
from .pdf_analysis import analyse_page
from .pdf_grid import top_left
from .pdf_objects import walk_objects
from .pdf_tables import MAX_TABLE_CANDIDATES, rule_groups
from .pdf_text import char_runs, page_text, text_spans
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
        # characters are measured for spans, words and breaks; the text stays whole.
        textpage = pdf_page.get_textpage()
        try:
            runs, n_leaders, words_pdf, breaks = char_runs(textpage, self.limits.max_page_chars)
            text = page_text(textpage, breaks)
            spans_pdf, n_chars_all, n_measured, overlapped = text_spans(
                textpage, self.limits.max_page_chars, BOUNDED_TEXT_MAX_WORK, breaks
            )
        finally:
            textpage.close()
        spans = [TextSpan(s[4], top_left(s[:4], page)) for s in spans_pdf]
        page_words = [TextSpan(normalise(w[4]), top_left(w[:4], page)) for w in words_pdf]
        text = normalise(text.replace("\r\n", "\n").replace("\r", "\n"))
        words = text.split()  # split() and isspace() agree on what is whitespace
        sig.n_chars = sum(map(len, words))
        sig.n_words = len(words)

        # Objects, walked once; then the analyses over them.
        objs = walk_objects(pdf_page, page, self.limits.max_page_objects)
        found = analyse_page(objs, spans_pdf, runs, n_leaders, sig)
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
