"""PDF pages, streamed one at a time with pypdfium2: text layer with positions, router signals, rendering.

pypdfium2 reads the file lazily (a path, not bytes), so memory stays bounded by the page in hand, and
its page objects give the router cheap signals (see ``benchmarks/RESULTS.md`` for the measurements that
chose it over pdf2image/poppler: 3–4× faster rendering, and no whole-document buffering).

Coordinates: boxes are ``(x0, top, x1, bottom)`` in PDF points with the origin at the top-left of the
*unrotated* page (the page's ``/Rotate`` is reported in ``signals.rotation`` and applied when rendering).
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import statistics
from pathlib import Path

import numpy as np

from docrag.config import Limits

from .errors import DocumentError
from .reader import DocumentReader, check_file
from .text import normalise
from .types import BBox, Figure, Page, PageSignals, Region, TextSpan

__all__ = ["PdfReader", "check_pdf_header", "render_pdf_page"]

log = logging.getLogger(__name__)

GRID = 64  # coverage is measured on a GRID x GRID mask of the page
RULE_MAX_THICKNESS = 2.0  # pt: thinner than this and long, a path is a ruling line
RULE_MIN_LENGTH = 0.12  # share of the page width (height for vertical rules)
MONO_NAME_HINTS = ("mono", "courier", "cmtt", "typewriter", "consol", "inconsolata", "lmtt", "sfrm")
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


class _Mask:
    """A coarse occupancy grid over the page, so overlapping boxes are not counted twice."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x0, self.y0 = x0, y0
        self.sx = GRID / max(x1 - x0, 1e-6)
        self.sy = GRID / max(y1 - y0, 1e-6)
        self.cells = np.zeros((GRID, GRID), dtype=bool)

    def _slice(self, box: tuple[float, float, float, float]) -> tuple[slice, slice]:
        left, bottom, right, top = box
        c0 = min(max(int((left - self.x0) * self.sx), 0), GRID - 1)
        c1 = min(max(math.ceil((right - self.x0) * self.sx), c0 + 1), GRID)
        r0 = min(max(int((bottom - self.y0) * self.sy), 0), GRID - 1)
        r1 = min(max(math.ceil((top - self.y0) * self.sy), r0 + 1), GRID)
        return slice(r0, r1), slice(c0, c1)

    def add(self, box: tuple[float, float, float, float]) -> None:
        self.cells[self._slice(box)] = True

    def hits(self, box: tuple[float, float, float, float]) -> bool:
        return bool(self.cells[self._slice(box)].any())

    def count_box(self, box: tuple[float, float, float, float]) -> int:
        rows, cols = self._slice(box)
        return (rows.stop - rows.start) * (cols.stop - cols.start)

    def cells_in(self, box: tuple[float, float, float, float]) -> int:
        return int(self.cells[self._slice(box)].sum())

    @property
    def fraction(self) -> float:
        return float(self.cells.mean())


GRAPHICS_MIN_PATHS = 8  # fewer paths than this in a cluster (a logo, a fraction bar) is not a drawing


def _clusters(
    boxes: list[tuple[float, float, float, float]], page: tuple[float, float, float, float]
) -> list[tuple[BBox, int]]:
    """Cluster vector-path boxes that touch (on the grid, grown by one cell): drawings and charts."""
    if len(boxes) < GRAPHICS_MIN_PATHS:
        return []
    from scipy import ndimage

    mask = _Mask(*page)
    for b in boxes:
        mask.add(b)
    labels, _n = ndimage.label(ndimage.binary_dilation(mask.cells, iterations=1))
    members: dict[int, list[tuple[float, float, float, float]]] = {}
    for b in boxes:
        rows, cols = mask._slice(b)
        members.setdefault(int(labels[rows.start, cols.start]), []).append(b)
    out = []
    for group in members.values():
        if len(group) >= GRAPHICS_MIN_PATHS:
            box = (
                min(b[0] for b in group),
                min(b[1] for b in group),
                max(b[2] for b in group),
                max(b[3] for b in group),
            )
            out.append((box, len(group)))
    return out


_NUMBER = re.compile(r"^[-+−–(<>=±$€£]*\d[\d.,:%]*[)*%]*$")
_WORD = re.compile(r"^[A-Za-z][a-z]{3,}[,.;:]?$")


def _looks_like_table(region: BBox, spans: list[tuple[float, float, float, float, str]]) -> bool:
    """True when the text between the rules reads like a table, not prose (a ruled abstract) or nothing
    (chart gridlines).

    Tables are made of short cells: numbers, codes, labels. Prose is made of words. The share of
    tokens that are plain words (4+ letters) against those that are numbers tells them apart.
    """
    left, bottom, right, top = region
    tokens = [
        tok
        for s in spans
        if bottom - 1 <= (s[1] + s[3]) / 2 <= top + 1 and s[2] >= left - 2 and s[0] <= right + 2
        for tok in s[4].split()
    ]
    if len(tokens) < 4:
        return False  # rules around (almost) nothing readable: gridlines, a drawn frame
    words = sum(bool(_WORD.match(t)) for t in tokens) / len(tokens)
    numbers = sum(bool(_NUMBER.match(t)) for t in tokens) / len(tokens)
    return not (words >= 0.45 and numbers < 0.15)


def _content_box(
    boxes: list[tuple[float, float, float, float]], page: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """The bounding box of everything printed on the page (the page itself when it is blank)."""
    if not boxes:
        return page
    arr = np.asarray(boxes, dtype=float)
    return (
        max(arr[:, 0].min(), page[0]),
        max(arr[:, 1].min(), page[1]),
        min(arr[:, 2].max(), page[2]),
        min(arr[:, 3].max(), page[3]),
    )


def _bounds(obj: object) -> tuple[float, float, float, float] | None:
    """(left, bottom, right, top) of a page object in page space, or None."""
    import pypdfium2.raw as raw

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not raw.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
        return None
    return left.value, bottom.value, right.value, top.value


def _font_info(obj: object, cache: dict[int, tuple[str, bool]]) -> tuple[str, bool]:
    import pypdfium2.raw as raw

    font = raw.FPDFTextObj_GetFont(obj)
    key = ctypes.cast(font, ctypes.c_void_p).value or 0
    if key in cache:
        return cache[key]
    n = raw.FPDFFont_GetBaseFontName(font, None, 0)
    buf = ctypes.create_string_buffer(max(n, 1))
    raw.FPDFFont_GetBaseFontName(font, buf, n)
    name = buf.value.decode("latin-1", "replace")
    fixed = bool(raw.FPDFFont_GetFlags(font) & 1) or any(h in name.lower() for h in MONO_NAME_HINTS)
    cache[key] = (name, fixed)
    return name, fixed


def _font_size(obj: object) -> float:
    import pypdfium2.raw as raw

    size = ctypes.c_float()
    if not raw.FPDFTextObj_GetFontSize(obj, size):
        return 0.0
    m = raw.FS_MATRIX()
    scale = math.sqrt(abs(m.a * m.d - m.b * m.c)) if raw.FPDFPageObj_GetMatrix(obj, m) else 1.0
    return size.value * (scale or 1.0)


def _table_regions(rules: list[tuple[float, float, float, float]], page_h: float) -> list[tuple[BBox, int]]:
    """Groups of horizontal rules sharing an x-extent, like booktabs or grid tables, as (l, b, r, t)."""
    groups: list[list[tuple[float, float, float, float]]] = []
    for rule in sorted(rules, key=lambda b: (round(b[0]), round(b[2]))):
        for g in groups:
            if abs(g[0][0] - rule[0]) <= 4 and abs(g[0][2] - rule[2]) <= 4:
                g.append(rule)
                break
        else:
            groups.append([rule])
    regions: list[tuple[BBox, int]] = []
    for g in groups:
        if len(g) < 2:
            continue
        ys = sorted((b[1] + b[3]) / 2 for b in g)
        span = ys[-1] - ys[0]
        if span < 12:  # a double rule, not a table
            continue
        # Two rules far apart (a page header and footer line) are not a table; three or more can be.
        if len(g) == 2 and span > 0.45 * page_h:
            continue
        regions.append(((min(b[0] for b in g), ys[0], max(b[2] for b in g), ys[-1]), len(g)))
    return regions


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
        try:
            self._pdf = pdfium.PdfDocument(self.path)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None) or 1
            reason = _explain_format_error(self.path) if code == 3 else _PDFIUM_LOAD_ERRORS.get(code, str(exc))
            raise DocumentError(self.file, reason) from None
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
        import pypdfium2.raw as raw

        x0, y0, x1, y1 = pdf_page.get_cropbox()
        if not (x1 > x0 and y1 > y0):
            x0, y0, x1, y1 = pdf_page.get_mediabox()
        page_w, page_h = x1 - x0, y1 - y0
        page_area = max(page_w * page_h, 1e-6)
        sig = PageSignals(width_pt=round(page_w, 2), height_pt=round(page_h, 2), rotation=pdf_page.get_rotation())
        diagnostics: list[str] = []

        # Text layer: whole text and positioned spans (one per run of characters on a line).
        textpage = pdf_page.get_textpage()
        try:
            text = textpage.get_text_range()
            spans: list[TextSpan] = []
            span_boxes: list[tuple[float, float, float, float]] = []
            spans_pdf: list[tuple[float, float, float, float, str]] = []
            for i in range(textpage.count_rects()):
                left, bottom, right, top = textpage.get_rect(i)
                s = normalise(textpage.get_text_bounded(left, bottom, right, top)).strip()
                if s:
                    span_boxes.append((left, bottom, right, top))
                    spans_pdf.append((left, bottom, right, top, s))
                    spans.append(TextSpan(s, (left - x0, y1 - top, right - x0, y1 - bottom)))
        finally:
            textpage.close()
        text = normalise(text.replace("\r\n", "\n").replace("\r", "\n"))
        sig.n_chars = sum(1 for c in text if not c.isspace())
        sig.n_words = len(text.split())

        text_mask, img_mask = _Mask(x0, y0, x1, y1), _Mask(x0, y0, x1, y1)
        gfx_boxes: list[tuple[float, float, float, float]] = []
        fonts: dict[int, tuple[str, bool]] = {}
        font_names: set[str] = set()
        sizes: list[float] = []
        n_text = n_invisible = n_mono = 0
        hrules: list[tuple[float, float, float, float]] = []
        figures: list[Figure] = []
        image_boxes: list[tuple[float, float, float, float]] = []
        largest_image = 0.0
        budget = self.limits.max_page_objects
        max_image_px = 0
        inspected = 0

        stack = [(pdf_page.raw, raw.FPDFPage_CountObjects(pdf_page.raw), False)]
        total_objects = stack[0][1]
        while stack:
            parent, count, is_form = stack.pop()
            for j in range(count):
                if inspected >= budget:
                    sig.objects_truncated = True
                    break
                inspected += 1
                obj = raw.FPDFFormObj_GetObject(parent, j) if is_form else raw.FPDFPage_GetObject(parent, j)
                kind = raw.FPDFPageObj_GetType(obj)
                if kind == raw.FPDF_PAGEOBJ_FORM:
                    n_inner = raw.FPDFFormObj_CountObjects(obj)
                    total_objects += n_inner
                    stack.append((obj, n_inner, True))
                    continue
                box = _bounds(obj)
                if box is None:
                    continue
                bw, bh = box[2] - box[0], box[3] - box[1]
                if kind == raw.FPDF_PAGEOBJ_TEXT:
                    n_text += 1
                    if raw.FPDFTextObj_GetTextRenderMode(obj) == raw.FPDF_TEXTRENDERMODE_INVISIBLE:
                        n_invisible += 1
                        continue
                    text_mask.add(box)
                    name, fixed = _font_info(obj, fonts)
                    font_names.add(name)
                    n_mono += fixed
                    size = _font_size(obj)
                    if size > 0:
                        sizes.append(size)
                elif kind == raw.FPDF_PAGEOBJ_IMAGE:
                    sig.n_images += 1
                    wpx, hpx = ctypes.c_uint(), ctypes.c_uint()
                    if not raw.FPDFImageObj_GetImagePixelSize(obj, wpx, hpx):
                        wpx.value = hpx.value = 0
                    max_image_px = max(max_image_px, wpx.value * hpx.value)
                    frac = bw * bh / page_area
                    lim = self.limits
                    if frac < lim.min_figure_fraction or max(wpx.value, hpx.value) < lim.min_figure_px:
                        continue
                    img_mask.add(box)
                    image_boxes.append(box)
                    if frac > largest_image:
                        largest_image = frac
                        sig.pixel_width, sig.pixel_height = wpx.value, hpx.value
                    figures.append(Figure((box[0] - x0, y1 - box[3], box[2] - x0, y1 - box[1]), wpx.value, hpx.value))
                elif kind in (raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING):
                    sig.n_paths += 1
                    if bh <= RULE_MAX_THICKNESS and bw >= RULE_MIN_LENGTH * page_w:
                        sig.n_rules_h += 1
                        hrules.append(box)
                    elif bw <= RULE_MAX_THICKNESS and bh >= RULE_MIN_LENGTH * page_h:
                        sig.n_rules_v += 1
                    elif bw * bh < 0.6 * page_area and max(bw, bh) > 0.5:
                        # Frames and page backgrounds would cover everything: they are left out.
                        gfx_boxes.append(box)
        sig.n_objects = total_objects

        # Form fields (interactive widgets) make a page a form.
        for k in range(raw.FPDFPage_GetAnnotCount(pdf_page.raw)):
            annot = raw.FPDFPage_GetAnnot(pdf_page.raw, k)
            if annot:
                if raw.FPDFAnnot_GetSubtype(annot) == raw.FPDF_ANNOT_WIDGET:
                    sig.n_form_fields += 1
                raw.FPDFPage_CloseAnnot(annot)

        sig.n_text_objects = n_text
        sig.invisible_text_fraction = n_invisible / n_text if n_text else 0.0
        visible = n_text - n_invisible
        sig.mono_text_fraction = n_mono / visible if visible else 0.0
        sig.n_fonts = len(font_names)
        sig.median_font_size = round(statistics.median(sizes), 2) if sizes else 0.0
        sig.text_coverage = text_mask.fraction
        sig.image_coverage = img_mask.fraction
        sig.largest_image_coverage = largest_image

        # Regions that carry non-prose meaning: clusters of vector paths, ruled tables, images.
        regions = [Region("graphics", b, n) for b, n in _clusters(gfx_boxes, (x0, y0, x1, y1))]
        drawn = _Mask(x0, y0, x1, y1)
        for r in regions:
            drawn.add(r.bbox)
        for t, n in _table_regions(hrules, page_h):
            # Rules inside a chart are its axes and gridlines, not a table.
            inside_chart = drawn.cells_in(t) >= 0.5 * drawn.count_box(t)
            if not inside_chart and _looks_like_table(t, spans_pdf):
                regions.append(Region("table", t, n))
        regions += [Region("image", b, 1) for b in image_boxes]
        content = _content_box(span_boxes + [r.bbox for r in regions], (x0, y0, x1, y1))
        sig.content_coverage = (content[2] - content[0]) * (content[3] - content[1]) / page_area
        masks = {k: _Mask(x0, y0, x1, y1) for k in ("graphics", "table", "figure", "all")}
        for r in regions:
            masks[r.kind if r.kind == "table" else "figure"].add(r.bbox)
            if r.kind == "graphics":
                masks["graphics"].add(r.bbox)
            masks["all"].add(r.bbox)
        sig.graphics_coverage = masks["graphics"].fraction
        sig.n_graphics_regions = sum(r.kind == "graphics" for r in regions)
        sig.table_coverage = masks["table"].fraction
        sig.n_tables = sum(r.kind == "table" for r in regions)
        n_content = max(masks["all"].count_box(content), 1)
        sig.visual_share = masks["all"].cells_in(content) / n_content
        sig.table_share = masks["table"].cells_in(content) / n_content
        sig.figure_share = masks["figure"].cells_in(content) / n_content
        if regions:
            gfx = masks["all"]
            sig.graphics_text_chars = sum(len(t.text) for t, b in zip(spans, span_boxes, strict=True) if gfx.hits(b))
        sig.has_text_layer = sig.n_chars > 0
        if sig.invisible_text_fraction > 0.5:
            diagnostics.append("text layer is invisible (render mode 3): an OCR layer over an image")
        if sig.objects_truncated:
            diagnostics.append(f"only the first {budget} of {total_objects} page objects were inspected")

        file, limits = self.file, self.limits

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
            page = self._pdf[_n - 1]
            try:
                return render_pdf_page(page, dpi, limits.max_render_pixels, file=file, number=_n)
            finally:
                page.close()

        return Page(
            file=self.file,
            number=number,
            width_pt=page_w,
            height_pt=page_h,
            text=text,
            spans=spans,
            signals=sig,
            figures=figures,
            regions=[
                Region(r.kind, (r.bbox[0] - x0, y1 - r.bbox[3], r.bbox[2] - x0, y1 - r.bbox[1]), r.n_items)
                for r in regions
            ],
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
