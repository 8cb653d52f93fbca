"""PDF pages, streamed one at a time with pypdfium2: text layer with positions, router signals, rendering.

pypdfium2 reads the file lazily (a path, not bytes), so memory stays bounded by the page in hand, and
its page objects give the router cheap signals (see ``benchmarks/RESULTS.md`` for the measurements that
chose it over pdf2image/poppler: 3–4× faster rendering, and no whole-document buffering).

Coordinates: boxes are ``(x0, top, x1, bottom)`` in PDF points with the origin at the top-left of the
*unrotated* page (the page's ``/Rotate`` is reported in ``signals.rotation`` and applied when rendering).
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import itertools
import logging
import math
import re
import statistics
from pathlib import Path

import numpy as np

from .errors import DocumentError
from .layout import LineGeometry, line_geometry
from .limits import Limits
from .reader import DocumentReader, check_file
from .text import normalise
from .types import BBox, Figure, Page, PageSignals, Region, TextSpan

__all__ = ["PdfReader", "check_pdf_header", "render_pdf_page"]

log = logging.getLogger(__name__)

GRID = 64  # coverage is measured on a GRID x GRID mask of the page
# Embedded images smaller than this on both sides, or covering less than this share of the page, are not figures
# (nor counted in the image signals the router was fitted on).
IMAGE_MIN_PX = 64
IMAGE_MIN_FRACTION = 0.01
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


# The line-geometry measurements that are page signals too (all but the table boxes).
LINE_FIELDS = tuple(f.name for f in dataclasses.fields(LineGeometry) if f.name in PageSignals.__dataclass_fields__)
BACKGROUND_MIN_CHARS = 200  # images with at least this much visible text...
BACKGROUND_TEXT_SHARE = 0.5  # ...this share of it printed over them are a background...
BACKGROUND_IMAGE_TEXT = 0.2  # ...each image with text on this share of its grid cells, that is
CHECKBOX_MIN, CHECKBOX_MAX = 4.0, 16.0  # pt: square paths this size are checkboxes (or markers)
EXTENT_GROW = 2  # grid cells: paths this close belong to one drawing (for drawing_extent_share)
MAX_RUNNING_CHECKS = 64  # boxes per page whose text is measured for running lines (see _running_text)
BOXED_MIN_CHARS = 80  # a drawing region with at least this many characters inside...
BOXED_MIN_SEGMENT_CHARS = 25  # ...in lines of this many characters (median) or more
BOXED_DENSITY = 0.6  # ...at this share of the page's text density or more is boxed text, not a figure
SHADE_MIN_SIDE = 3.0  # pt: filled rectangles at least this tall and wide may be shading behind text
SHADE_MIN_WIDTH = 0.3  # ...and this share of the page wide (a diagram's labelled nodes are narrower)
SHADE_TEXT_SHARE = 0.25  # ...when text lies on this share of their grid cells
MAX_FORM_DEPTH = 12  # Form XObjects nested deeper than this are not looked into
MAX_TABLE_CANDIDATES = 256  # groups of ruling lines checked for table text (a hostile page can draw thousands)
GRAPHICS_MIN_PATHS = 8  # fewer paths than this in a small cluster (a logo, a fraction bar) is not a drawing...
GRAPHICS_MIN_AREA = 0.02  # ...unless the cluster spans this share of the page
GRAPHICS_MIN_SIDE = 30.0  # ...and this many points on its shorter side


def _clusters(
    boxes: list[tuple[float, float, float, float]], page: tuple[float, float, float, float]
) -> list[tuple[BBox, int]]:
    """Cluster vector-path boxes that touch (on the grid, grown by one cell): drawings and charts.

    A cluster is a drawing when it has ``GRAPHICS_MIN_PATHS`` paths or more, or when it is large whatever its
    path count (a diagram of a few long strokes: a 3-D box, a ring): ``GRAPHICS_MIN_AREA`` of the page and
    ``GRAPHICS_MIN_SIDE`` points on its shorter side.
    """
    if not boxes:
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
    page_area = max((page[2] - page[0]) * (page[3] - page[1]), 1e-6)
    out = []
    for group in members.values():
        box = (
            min(b[0] for b in group),
            min(b[1] for b in group),
            max(b[2] for b in group),
            max(b[3] for b in group),
        )
        w, h = box[2] - box[0], box[3] - box[1]
        large = w * h >= GRAPHICS_MIN_AREA * page_area and min(w, h) >= GRAPHICS_MIN_SIDE
        if len(group) >= GRAPHICS_MIN_PATHS or large:
            out.append((box, len(group)))
    return out


_NUMBER = re.compile(r"^[-+−–(<>=±$€£]*\d[\d.,:%]*[)*%]*$")
_WORD = re.compile(r"^[A-Za-z][a-z]{3,}[,.;:]?$")


class _TableText:
    """Judges whether the text between ruled lines reads like a table, not prose (a ruled abstract) or nothing
    (chart gridlines).

    Tables are made of short cells: numbers, codes, labels. Prose is made of words. The share of
    tokens that are plain words (4+ letters) against those that are numbers tells them apart.

    The spans are tokenised once, so judging many regions costs one vectorised pass over the spans each, not
    a re-tokenisation of the page per region.
    """

    def __init__(self, spans: list[tuple[float, float, float, float, str]]) -> None:
        self._spans = spans
        self._arrays: tuple[np.ndarray, ...] | None = None

    def _build(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            counts = []
            for s in self._spans:
                tokens = s[4].split()
                counts.append(
                    (
                        len(tokens),
                        sum(bool(_WORD.match(t)) for t in tokens),
                        sum(bool(_NUMBER.match(t)) for t in tokens),
                    )
                )
            arr = np.asarray([s[:4] for s in self._spans], dtype=float).reshape(-1, 4)
            c = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
            self._arrays = (arr[:, 0], arr[:, 2], (arr[:, 1] + arr[:, 3]) / 2, c[:, 0], c[:, 1], c[:, 2])
        return self._arrays

    def looks_like_table(self, region: BBox) -> bool:
        left, bottom, right, top = region
        x0, x1, cy, n_tokens, n_words, n_numbers = self._build()
        sel = (bottom - 1 <= cy) & (cy <= top + 1) & (x1 >= left - 2) & (x0 <= right + 2)
        n = int(n_tokens[sel].sum())
        if n < 4:
            return False  # rules around (almost) nothing readable: gridlines, a drawn frame
        words = int(n_words[sel].sum()) / n
        numbers = int(n_numbers[sel].sum()) / n
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


Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _matrix(obj: object) -> Matrix:
    import pypdfium2.raw as raw

    m = raw.FS_MATRIX()
    if not raw.FPDFPageObj_GetMatrix(obj, m):
        return IDENTITY
    return (m.a, m.b, m.c, m.d, m.e, m.f)


def _compose(inner: Matrix, outer: Matrix) -> Matrix:
    """The matrix that applies ``inner`` then ``outer`` (PDF row-vector convention)."""
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _transform(box: tuple[float, float, float, float], m: Matrix) -> tuple[float, float, float, float]:
    """The bounding box of ``box`` mapped by ``m`` (objects inside a Form XObject report form-space bounds)."""
    if m == IDENTITY:
        return box
    a, b, c, d, e, f = m
    xs, ys = [], []
    for x in (box[0], box[2]):
        for y in (box[1], box[3]):
            xs.append(a * x + c * y + e)
            ys.append(b * x + d * y + f)
    return min(xs), min(ys), max(xs), max(ys)


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


_BOLD = re.compile(r"bold|black|heavy|semibold|demi|-bd|cmbx", re.IGNORECASE)


def _scale(m: Matrix) -> float:
    return math.sqrt(abs(m[0] * m[3] - m[1] * m[2])) or 1.0


def _font_size(obj: object) -> float:
    import pypdfium2.raw as raw

    size = ctypes.c_float()
    if not raw.FPDFTextObj_GetFontSize(obj, size):
        return 0.0
    m = raw.FS_MATRIX()
    scale = math.sqrt(abs(m.a * m.d - m.b * m.c)) if raw.FPDFPageObj_GetMatrix(obj, m) else 1.0
    return size.value * (scale or 1.0)


def _page_text(textpage: object) -> str:
    """The whole text layer, as ``PdfTextPage.get_text_range()`` returns it.

    One FPDFText_GetText call over all characters: get_text_range first steps over leading and trailing
    control characters one recursive call (and one PDFium index lookup) at a time, which a page that starts
    with thousands of them turns into a RecursionError. PDFium skips them by itself for the whole range.
    """
    import pypdfium2.raw as raw

    n = textpage.count_chars()
    if n <= 0:
        return ""
    buf = (ctypes.c_ushort * (n + 1))()  # the API's bound: count characters and a NUL
    got = raw.FPDFText_GetText(textpage.raw, 0, n, buf)
    if got <= 1:
        return ""
    return codecs.decode(memoryview(buf)[: got - 1], "utf-16-le", errors="ignore")


BOUNDED_TEXT_MAX_WORK = 500_000  # rectangles x characters up to which PDFium's get_text_bounded is used
GRID_MAX_CELLS = 64  # a character box over more grid cells than this is checked against every rectangle
MATCH_WORK_PER_CHAR = 16  # grid cells and candidates examined per measured character, at most (see _text_spans)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_VOID = ctypes.c_void_p
_GETTER1 = ctypes.CFUNCTYPE(ctypes.c_int, _VOID, ctypes.c_int, _VOID)
_GETTER4 = ctypes.CFUNCTYPE(ctypes.c_int, _VOID, ctypes.c_int, _VOID, _VOID, _VOID, _VOID)


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of ``counts`` items: the run of each item and its position in the run."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - starts[owner]


def _fill(func: object, handle: int, n: int, out: np.ndarray) -> None:
    """Call ``func(handle, i, &a, &b, &c, &d)`` for i < n, writing the four doubles into row i of ``out``.

    ``func`` is a PDFium getter with four ``double*`` outputs (FPDFText_GetCharBox, FPDFText_GetRect), called
    through a prototype that takes the addresses as integers: one C call per item, no ctypes objects."""
    call = _GETTER4(ctypes.cast(func, _VOID).value)
    for start in range(0, n, 1 << 16):  # in chunks, to keep the address lists small
        stop = min(n, start + (1 << 16))
        rows = out.ctypes.data + 32 * np.arange(start, stop, dtype=np.int64)
        addresses = ((rows + 8 * c).tolist() for c in range(4))
        list(map(call, itertools.repeat(handle, stop - start), range(start, stop), *addresses))


def _text_spans(textpage: object, limit: int) -> tuple[list[tuple[float, float, float, float, str]], int, int, bool]:
    """The positioned text runs of a page, one per PDFium text rectangle: ``(left, bottom, right, top, text)``
    in PDF space, text normalised and stripped, empty runs left out.

    The text of a rectangle is PDFium's bounded text of it (``get_text_bounded``): every character of the
    page whose box intersects the rectangle (its own, and any neighbour's that overlaps it), joined by
    CPDF_TextPage::GetTextByPredicate's rules (a space after a taken character is kept; a line break goes
    before a taken character that follows other text on a new baseline). PDFium walks all the characters of
    the page for each rectangle, so that costs rectangles x characters: minutes on a page of 200,000 small
    words. It is used as it is on pages where that product is at most ``BOUNDED_TEXT_MAX_WORK`` (most pages;
    there it is the quicker way). On others the same text is computed in one pass over the characters:
    their boxes go on a grid of cells about a rectangle high, each rectangle takes the characters in its
    cells whose boxes intersect it, and the characters are joined by the same rules, here in Python.

    Only the first ``limit`` characters are measured (rectangles and text). Heavily overlapping text (many
    rectangles over the same characters) would make even the grid's work rectangles x characters: past
    ``MATCH_WORK_PER_CHAR`` units per character, the remaining rectangles take only their own characters.

    Returns (runs, characters on the page, characters measured, whether the overlap budget ran out).
    """
    import pypdfium2.raw as raw

    tp = textpage.raw
    handle = ctypes.cast(tp, _VOID).value
    n = textpage.count_chars()
    m = max(0, min(n, limit))
    if m == 0:
        return [], n, 0, False
    n_rects = textpage.count_rects(0, m)
    rects = np.zeros((n_rects, 4))  # left, top, right, bottom (FPDFText_GetRect's order)
    _fill(raw.FPDFText_GetRect, handle, n_rects, rects)
    if m == n and n_rects * n <= BOUNDED_TEXT_MAX_WORK:
        # A small page: PDFium's own bounded text, one walk over the characters per rectangle, is quicker.
        runs = []
        for left, top, right, bottom in rects.tolist():
            s = normalise(textpage.get_text_bounded(left, bottom, right, top)).strip()
            if s:
                runs.append((left, bottom, right, top, s))
        return runs, n, m, False
    r_left, r_top, r_right, r_bottom = rects.T

    # One pass over the characters: code points and boxes (left, right, bottom, top: FPDFText_GetCharBox's).
    uni = np.fromiter(map(raw.FPDFText_GetUnicode, itertools.repeat(tp, m), range(m)), dtype=np.int64, count=m)
    boxes = np.zeros((m, 4))
    _fill(raw.FPDFText_GetCharBox, handle, m, boxes)
    c_left, c_right = np.minimum(boxes[:, 0], boxes[:, 1]), np.maximum(boxes[:, 0], boxes[:, 1])
    c_bottom, c_top = np.minimum(boxes[:, 2], boxes[:, 3]), np.maximum(boxes[:, 2], boxes[:, 3])
    has_area = (c_left < c_right) & (c_bottom < c_top)  # a box without area intersects nothing
    width, height = c_right - c_left, c_top - c_bottom
    placed = np.flatnonzero(has_area & np.isfinite(width) & np.isfinite(height))
    wide = np.flatnonzero(has_area & ~(np.isfinite(width) & np.isfinite(height)))
    # The page's characters as one string (code points beyond Unicode cut to 16 bits, as PDFium's UTF-16
    # encoder does; NUL stands for "no character"), and the count of non-spaces before each character.
    cps = np.where(uni > 0x10FFFF, uni & 0xFFFF, uni).astype("<u4")
    chars = cps.tobytes().decode("utf-32-le", "surrogatepass")
    space = (uni == 32).tolist()
    nonspace = np.concatenate(([0], np.cumsum(uni != 32))).tolist()
    filled = np.concatenate(([0], np.cumsum(uni != 0))).tolist()

    # A grid of square cells as high as a typical rectangle (a line or a word); each character goes into the
    # cells its box touches. (Cells a character high would be dots high on a page of dot leaders.)
    gx0 = gy0 = 0.0
    inv, side = 1.0, 1
    keys = ids = np.empty(0, dtype=np.int64)
    if placed.size:
        gx0, gy0 = float(c_left[placed].min()), float(c_bottom[placed].min())
        extent = max(float(c_right[placed].max()) - gx0, float(c_top[placed].max()) - gy0)
        with np.errstate(invalid="ignore"):
            line = r_top - r_bottom
        line = line[np.isfinite(line) & (line > 0)]
        typical = float(np.median(line)) if line.size else float(np.median(height[placed]))
        inv = 1.0 / max(typical, extent / 1024, 1e-3)
        side = int(extent * inv) + 2
        x0 = ((c_left[placed] - gx0) * inv).astype(np.int64)
        x1 = ((c_right[placed] - gx0) * inv).astype(np.int64)
        y0 = ((c_bottom[placed] - gy0) * inv).astype(np.int64)
        y1 = ((c_top[placed] - gy0) * inv).astype(np.int64)
        rows = y1 - y0 + 1
        n_cells = (x1 - x0 + 1) * rows
        big = n_cells > GRID_MAX_CELLS
        if big.any():
            wide = np.union1d(wide, placed[big])
            keep = ~big
            placed, x0, y0, rows, n_cells = placed[keep], x0[keep], y0[keep], rows[keep], n_cells[keep]
        owner, pos = _ragged(n_cells)
        cell_keys = (x0[owner] + pos // rows[owner]) * side + y0[owner] + pos % rows[owner]
        order = np.argsort(cell_keys, kind="stable")
        keys, ids = cell_keys[order], placed[owner[order]]

    # The rectangles' cells, and the characters in them: the candidates, within the work budget.
    budget = MATCH_WORK_PER_CHAR * m + 10_000
    with np.errstate(invalid="ignore"):
        usable = np.flatnonzero((r_left < r_right) & (r_bottom < r_top))  # PDFium's empty rectangle: no text
    all_usable = usable

    def span_cells(lo: np.ndarray, hi: np.ndarray, origin: float) -> tuple[np.ndarray, np.ndarray]:
        a = np.clip((lo - origin) * inv, 0, side - 1).astype(np.int64)
        b = np.clip((hi - origin) * inv, 0, side - 1).astype(np.int64)
        return a, b - a + 1

    rx0, rcols = span_cells(r_left[usable], r_right[usable], gx0)
    ry0, rrows = span_cells(r_bottom[usable], r_top[usable], gy0)
    cost = rcols * rrows + wide.size
    usable = usable[np.cumsum(cost) <= budget]
    k = usable.size
    owner, pos = _ragged((rcols * rrows)[:k])
    wanted = (rx0[owner] + pos // rrows[owner]) * side + ry0[owner] + pos % rrows[owner]
    lo, hi = np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right")
    found = np.bincount(owner, weights=hi - lo, minlength=k).astype(np.int64)
    k = int(np.count_nonzero(np.cumsum(cost[:k] + found) <= budget))  # a prefix: costs are not negative
    overlapped = k < all_usable.size
    keep = owner < k
    owner, lo, hi = owner[keep], lo[keep], hi[keep]
    pair_rect, pos = _ragged(hi - lo)
    pair_char = ids[lo[pair_rect] + pos]
    pair_rect = usable[owner[pair_rect]]
    if wide.size and k:
        pair_rect = np.concatenate((pair_rect, np.repeat(usable[:k], wide.size)))
        pair_char = np.concatenate((pair_char, np.tile(wide, k)))
    hit = (np.maximum(c_left[pair_char], r_left[pair_rect]) < np.minimum(c_right[pair_char], r_right[pair_rect])) & (
        np.maximum(c_bottom[pair_char], r_bottom[pair_rect]) < np.minimum(c_top[pair_char], r_top[pair_rect])
    )
    pairs = np.sort(pair_rect[hit] * m + pair_char[hit])
    if pairs.size:
        pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])]  # a character in several cells counts once

    if overlapped:
        # Out of budget: the remaining rectangles take their own characters only, found as PDFium's
        # CPDF_TextPage::GetRectArray groups them: characters in order, generated ones and boxes under
        # 0.01 pt (float arithmetic) left out, a new rectangle where the text object changes.
        first = int(all_usable[k])
        generated = np.fromiter(
            map(raw.FPDFText_IsGenerated, itertools.repeat(tp, m), range(m)), dtype=np.int64, count=m
        )
        f32 = boxes.astype(np.float32)
        eps = np.float32(0.01)
        member = np.flatnonzero((generated != 1) & ~(f32[:, 1] - f32[:, 0] < eps) & ~(f32[:, 3] - f32[:, 2] < eps))
        text_object = ctypes.CFUNCTYPE(_VOID, _VOID, ctypes.c_int)(ctypes.cast(raw.FPDFText_GetTextObject, _VOID).value)
        own = []
        rect, current = 0, None
        for i, obj in zip(member.tolist(), map(text_object, itertools.repeat(handle), member.tolist()), strict=True):
            if not current:
                current = obj
            if current != obj:
                rect += 1
                current = obj
            if rect >= first and has_area[i]:
                own.append(rect * m + i)
        pairs = np.concatenate((pairs, np.asarray(own, dtype=np.int64)))

    # Runs of consecutive characters per rectangle, joined by GetTextByPredicate's rules.
    pair_rect, pair_char = np.divmod(pairs, m)
    new_run = np.ones(pairs.size, dtype=bool)
    new_run[1:] = (pair_rect[1:] != pair_rect[:-1]) | (pair_char[1:] != pair_char[:-1] + 1)
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], pairs.size) - 1
    run_rect, run_first, run_last = pair_rect[starts].tolist(), pair_char[starts].tolist(), pair_char[ends].tolist()

    c_x, c_y = ctypes.c_double(), ctypes.c_double()

    def origin_y(i: int) -> float:
        raw.FPDFText_GetCharOrigin(tp, i, ctypes.byref(c_x), ctypes.byref(c_y))
        return c_y.value

    runs: list[tuple[float, float, float, float, str]] = []
    out: list[str] = []
    posy: float | None = 0.0  # None: the y of the rectangle's first character, not read yet
    first_char = 0
    written = False  # whether the text so far has a character (PDFium's "strText is not empty")
    for j, (q, a, b) in enumerate(zip(run_rect, run_first, run_last, strict=True)):
        if j == 0 or run_rect[j - 1] != q:
            out = []
            posy = None if nonspace[a] > 0 else 0.0
            first_char = a
            written = False
        else:  # a gap of characters not taken since the previous run
            prev = run_last[j - 1]
            if space[prev + 1]:
                out.append(" ")
                written = True
                line_feed = nonspace[a] - nonspace[prev + 2] > 0
            else:
                line_feed = True
            if line_feed:
                if posy is None:
                    posy = origin_y(first_char)
                y = origin_y(a)
                if abs(posy - y) > 0:
                    posy = y
                    if written:
                        out.append("\r\n")
        out.append(chars[a : b + 1])
        written = written or filled[b + 1] > filled[a]
        if j + 1 == len(run_rect) or run_rect[j + 1] != q:
            s = "".join(out)
            if "\0" in s:
                s = s.replace("\0", "")
            if _SURROGATE.search(s):  # lone surrogates drop out, split pairs join, as decoding UTF-16 does
                s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
            s = normalise(s).strip()
            if s:
                runs.append((float(r_left[q]), float(r_bottom[q]), float(r_right[q]), float(r_top[q]), s))
    return runs, n, m, overlapped


_DOTS = np.array([ord(c) for c in ".·…‥⋯"], dtype=np.int64)
_LEADERS = np.array([ord(c) for c in ".·…_-‥⋯"], dtype=np.int64)


_SPACES = (0xA0, 0x2002, 0x2003, 0x2009, 0xFEFF, 0xFFFE)
_RunList = list[tuple[float, float, float, float, str]]


def _join_runs(
    uni: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray, brk: np.ndarray
) -> _RunList:
    """Characters (code points and boxes, in text order) joined into runs, a new run at each ``brk``:
    ``(left, bottom, right, top, text)`` with the union box of each run."""
    starts = np.flatnonzero(brk)
    rl, rr = np.minimum.reduceat(left, starts).tolist(), np.maximum.reduceat(right, starts).tolist()
    rb, rt = np.minimum.reduceat(bottom, starts).tolist(), np.maximum.reduceat(top, starts).tolist()
    text = np.where(uni > 0x10FFFF, 0xFFFD, uni).astype("<u4").tobytes().decode("utf-32-le", "replace")
    bounds = [*starts.tolist(), len(uni)]
    return [(rl[i], rb[i], rr[i], rt[i], text[bounds[i] : bounds[i + 1]]) for i in range(len(rl))]


def _words(uni: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray) -> _RunList:
    """Words from the characters' own boxes: ``(left, bottom, right, top, text)`` in PDF space, one per run of
    visible characters between whitespace (or a jump to another line, back left, or a gap of a third of a
    character's height)."""
    ok = (right > left) & (top > bottom) & np.isfinite(left) & np.isfinite(top) & (uni > 32) & ~np.isin(uni, _SPACES)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    lo, r, b, t = left[idx], right[idx], bottom[idx], top[idx]
    h = np.maximum(t - b, 1e-6)
    cy = (t + b) / 2
    brk = np.ones(idx.size, dtype=bool)
    brk[1:] = (
        (idx[1:] - idx[:-1] > 1)  # whitespace (or a character without a box) between them
        | (np.abs(cy[1:] - cy[:-1]) > 0.5 * np.minimum(h[1:], h[:-1]))
        | (lo[1:] - r[:-1] > 0.33 * np.minimum(h[1:], h[:-1]))
        | (lo[1:] < lo[:-1] - 0.5 * h[1:])
    )
    return _join_runs(uni[idx], lo, b, r, t, brk)


def _char_runs(textpage: object, limit: int) -> tuple[_RunList, int, _RunList]:
    """Runs of characters for the line geometry, cut where the characters themselves leave a gap.

    PDFium's text rectangles follow the text objects: a table row written as one string padded with spaces
    is one rectangle. Here characters are taken in text order with their own boxes; spaces, characters
    without area and dot leaders (three or more dots, dashes or underscores in a row) are dropped, and a run
    ends where the next character is on another line, goes back left, or starts more than ``GAP_EM`` character
    heights to the right. ``(left, bottom, right, top, text)`` in PDF space, the first ``limit`` characters.
    Also returns the number of dot leaders and the page's words (``_words``, from the same character boxes).
    """
    import pypdfium2.raw as raw

    from .layout import GAP_EM

    tp = textpage.raw
    m = max(0, min(textpage.count_chars(), limit))
    if m == 0:
        return [], 0, []
    uni = np.fromiter(map(raw.FPDFText_GetUnicode, itertools.repeat(tp, m), range(m)), dtype=np.int64, count=m)
    # Loose boxes (the font's ascent to descent): a line's characters share them, unlike glyph boxes.
    rects = np.zeros((m, 4), dtype=np.float32)  # FS_RECTF: left, top, right, bottom
    call = _GETTER1(ctypes.cast(raw.FPDFText_GetLooseCharBox, _VOID).value)
    handle = ctypes.cast(tp, _VOID).value
    rows = (rects.ctypes.data + 16 * np.arange(m, dtype=np.int64)).tolist()
    list(map(call, itertools.repeat(handle, m), range(m), rows))
    boxes = rects.astype(float)
    left, right = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    bottom, top = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    words = _words(uni, left, bottom, right, top)
    # Leaders: three or more leader characters in a row, spaces between them ignored (". . . ." too).
    solid = np.flatnonzero(uni != 32)
    lead = np.isin(uni[solid], _LEADERS)
    pad = np.concatenate(([False, False], lead, [False, False]))
    row = lead & ((pad[:-4] & pad[1:-3]) | (pad[1:-3] & pad[3:-1]) | (pad[3:-1] & pad[4:]))
    in_row = np.zeros(m, dtype=bool)
    in_row[solid[row]] = True
    keep = (right > left) & (top > bottom) & np.isfinite(boxes).all(axis=1) & (uni > 32) & ~in_row
    keep &= ~np.isin(uni, _SPACES)
    idx = np.flatnonzero(keep)
    dots = row & np.isin(uni[solid], _DOTS)
    n_leaders = int(np.count_nonzero(dots[1:] & ~dots[:-1])) + int(dots[0]) if dots.size else 0
    if idx.size == 0:
        return [], n_leaders, words
    lo, r, b, t = left[idx], right[idx], bottom[idx], top[idx]
    h = t - b
    lh = float(np.median(h))
    cy = (t + b) / 2
    brk = np.ones(idx.size, dtype=bool)
    brk[1:] = (
        (np.abs(cy[1:] - cy[:-1]) > 0.5 * np.maximum(np.minimum(h[1:], h[:-1]), 1e-6))
        | (lo[1:] - r[:-1] > GAP_EM * lh)
        | (lo[1:] < lo[:-1] - 0.5 * lh)
    )
    return _join_runs(uni[idx], lo, b, r, t, brk), n_leaders, words


def _boxed_text(regions: list[Region], spans: _Runs, page_density: float, runs: _Runs) -> list[Region]:
    """Clusters of paths that are boxes around running text (a framed code listing, a shaded note): the text
    inside is as dense as the page's own (``page_density``: characters per pt² of the text's bounding box),
    where a chart or a diagram holds only sparse labels, and it runs in long single lines, where a table's
    rows are split into aligned cells and a diagram's labels are short."""
    if not regions or not spans.runs or page_density <= 0:
        return []
    out = []
    for r in regions:
        left, bottom, right, top = r.bbox
        n = spans.chars_in(r.bbox)
        area = max((right - left) * (top - bottom), 1.0)
        if n >= BOXED_MIN_CHARS and n / area >= BOXED_DENSITY * page_density and _running_text(runs, r.bbox, "boxed"):
            out.append(r)
    return out


def _drawing_extent(
    drawings: _Mask,
    page: tuple[float, float, float, float],
    content: tuple[float, float, float, float],
    spans: _Runs,
    page_density: float,
    runs: _Runs,
) -> float:
    """The share of the content box spanned by drawings (``drawings``: the grid of path boxes), however few
    their paths: paths within about two grid cells (~25 pt) of each other form one drawing, measured by its
    bounding box (a figure of six long strokes spans its whole frame). Boxes around running text do not count."""
    if not drawings.cells.any():
        return 0.0
    from scipy import ndimage

    labels, n = ndimage.label(ndimage.binary_dilation(drawings.cells, iterations=EXTENT_GROW))
    if n == 0:
        return 0.0
    regions = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        r0, r1, c0, c1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        # back to page space, without the growth
        r0, c0 = r0 + EXTENT_GROW, c0 + EXTENT_GROW
        r1, c1 = max(r1 - EXTENT_GROW, r0 + 1), max(c1 - EXTENT_GROW, c0 + 1)
        left, right = page[0] + c0 / drawings.sx, page[0] + c1 / drawings.sx
        bottom, top = page[1] + r0 / drawings.sy, page[1] + r1 / drawings.sy
        regions.append(Region("graphics", (left, bottom, right, top), 0))
    boxed = _boxed_text(regions, spans, page_density, runs)
    extent = _Mask(*page)
    for r in regions:
        if r not in boxed:
            extent.add(r.bbox)
    return extent.cells_in(content) / max(extent.count_box(content), 1)


class _Runs:
    """Character runs with their centres as arrays, so that asking which runs lie in a box costs one
    vectorised comparison, however many boxes a page has."""

    def __init__(self, runs: list[tuple[float, float, float, float, str]]) -> None:
        self.runs = runs
        arr = np.asarray([r[:4] for r in runs], dtype=float).reshape(-1, 4)
        self.cx, self.cy = (arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2
        self.chars = np.asarray([len(r[4].replace(" ", "")) for r in runs], dtype=float)
        self.checks: dict[str, int] = {}

    def _hits(self, box: tuple[float, float, float, float]) -> np.ndarray:
        left, bottom, right, top = box
        return (self.cx >= left) & (self.cx <= right) & (self.cy >= bottom) & (self.cy <= top)

    def inside(self, box: tuple[float, float, float, float]) -> list[tuple[float, float, float, float, str]]:
        return [self.runs[i] for i in np.flatnonzero(self._hits(box)).tolist()]

    def chars_in(self, box: tuple[float, float, float, float]) -> float:
        """Non-space characters of the runs centred in ``box``."""
        return float(self.chars[self._hits(box)].sum())


def _running_text(runs: _Runs, box: tuple[float, float, float, float], purpose: str = "") -> bool:
    """Whether the text inside ``box`` runs in long single lines (prose, formulas, code), not in cells.

    Only the first ``MAX_RUNNING_CHECKS`` boxes of a page per ``purpose`` are looked into (a hostile page can
    draw thousands); the rest count as not running text."""
    runs.checks[purpose] = runs.checks.get(purpose, 0) + 1
    if runs.checks[purpose] > MAX_RUNNING_CHECKS:
        return False
    geo = line_geometry(runs.inside(box))
    return (
        geo.n_lines >= 3
        and geo.median_segment_chars >= BOXED_MIN_SEGMENT_CHARS
        and geo.multi_segment_lines < 0.25
        and geo.aligned_line_share < 0.3
    )


def _table_regions(rules: list[tuple[float, float, float, float]], page_h: float) -> list[tuple[BBox, int]]:
    """Groups of horizontal rules sharing an x-extent, like booktabs or grid tables, as (l, b, r, t)."""
    # A rule joins the first group (in order of creation) whose first rule starts and ends within 4 pt of
    # its own. The first rules are indexed by (x0 // 4, x1 // 4): two of them never share a cell (the later
    # one would have joined the earlier one's group), and a match lies in the 3 x 3 cells around the rule,
    # so grouping is linear in the rules instead of rules x groups.
    groups: list[list[tuple[float, float, float, float]]] = []
    firsts: dict[tuple[int, int], int] = {}
    finite = [b for b in rules if all(math.isfinite(v) for v in b)]
    for rule in sorted(finite, key=lambda b: (round(b[0]), round(b[2]))):
        cx, cw = math.floor(rule[0] / 4), math.floor(rule[2] / 4)
        best = -1
        for dx in (-1, 0, 1):
            for dw in (-1, 0, 1):
                gi = firsts.get((cx + dx, cw + dw), -1)
                if gi >= 0 and (best < 0 or gi < best):
                    first = groups[gi][0]
                    if abs(first[0] - rule[0]) <= 4 and abs(first[2] - rule[2]) <= 4:
                        best = gi
        if best >= 0:
            groups[best].append(rule)
        else:
            firsts[(cx, cw)] = len(groups)
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
            elif code in (None, 1, 3):
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
        import pypdfium2.raw as raw

        x0, y0, x1, y1 = pdf_page.get_cropbox()
        if not (x1 > x0 and y1 > y0):
            x0, y0, x1, y1 = pdf_page.get_mediabox()
        page_w, page_h = x1 - x0, y1 - y0
        page_area = max(page_w * page_h, 1e-6)
        sig = PageSignals(width_pt=round(page_w, 2), height_pt=round(page_h, 2), rotation=pdf_page.get_rotation())
        diagnostics: list[str] = []

        # Text layer: whole text and positioned spans (one per run of characters on a line).
        # Only the first max_page_chars characters are measured for spans; the text stays whole.
        textpage = pdf_page.get_textpage()
        try:
            text = _page_text(textpage)
            spans_pdf, n_chars_all, n_measured, overlapped = _text_spans(textpage, self.limits.max_page_chars)
            char_runs, n_leaders, words_pdf = _char_runs(textpage, self.limits.max_page_chars)
        finally:
            textpage.close()
        span_boxes = [s[:4] for s in spans_pdf]
        spans = [
            TextSpan(s, (left - x0, y1 - top, right - x0, y1 - bottom)) for left, bottom, right, top, s in spans_pdf
        ]
        page_words = [
            TextSpan(normalise(w), (left - x0, y1 - top, right - x0, y1 - bottom))
            for left, bottom, right, top, w in words_pdf
        ]
        text = normalise(text.replace("\r\n", "\n").replace("\r", "\n"))
        words = text.split()  # split() and isspace() agree on what is whitespace
        sig.n_chars = sum(map(len, words))
        sig.n_words = len(words)

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

        # (container, objects in it, whether it is a Form XObject, form space -> page space, nesting depth)
        stack = [(pdf_page.raw, raw.FPDFPage_CountObjects(pdf_page.raw), False, IDENTITY, 0)]
        total_objects = stack[0][1]
        bold = 0
        filled_rects: list[int] = []  # indices into gfx_boxes of filled, unstroked rectangles
        vlines: list[tuple[float, float, float, float]] = []  # thin vertical strokes: cell separators, borders
        while stack:
            parent, count, is_form, to_page, depth = stack.pop()
            for j in range(count):
                if inspected >= budget:
                    sig.objects_truncated = True
                    break
                inspected += 1
                obj = raw.FPDFFormObj_GetObject(parent, j) if is_form else raw.FPDFPage_GetObject(parent, j)
                kind = raw.FPDFPageObj_GetType(obj)
                if kind == raw.FPDF_PAGEOBJ_FORM:
                    if depth >= MAX_FORM_DEPTH:  # a form drawing itself, or nested without end
                        continue
                    n_inner = raw.FPDFFormObj_CountObjects(obj)
                    total_objects += n_inner
                    stack.append((obj, n_inner, True, _compose(_matrix(obj), to_page), depth + 1))
                    continue
                box = _bounds(obj)
                if box is None:
                    continue
                if is_form:
                    box = _transform(box, to_page)
                    if kind in (raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING):
                        sig.n_form_paths += 1
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
                    bold += _BOLD.search(name) is not None
                    size = _font_size(obj)
                    if size > 0:
                        sizes.append(size * _scale(to_page))
                elif kind == raw.FPDF_PAGEOBJ_IMAGE:
                    sig.n_images += 1
                    wpx, hpx = ctypes.c_uint(), ctypes.c_uint()
                    if not raw.FPDFImageObj_GetImagePixelSize(obj, wpx, hpx):
                        wpx.value = hpx.value = 0
                    max_image_px = max(max_image_px, wpx.value * hpx.value)
                    frac = bw * bh / page_area
                    if frac < IMAGE_MIN_FRACTION or max(wpx.value, hpx.value) < IMAGE_MIN_PX:
                        continue
                    img_mask.add(box)
                    image_boxes.append(box)
                    if frac > largest_image:
                        largest_image = frac
                        sig.pixel_width, sig.pixel_height = wpx.value, hpx.value
                    figures.append(Figure((box[0] - x0, y1 - box[3], box[2] - x0, y1 - box[1]), wpx.value, hpx.value))
                elif kind in (raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING):
                    sig.n_paths += 1
                    if bw <= RULE_MAX_THICKNESS and 6.0 <= bh < RULE_MIN_LENGTH * page_h:
                        vlines.append(box)  # a short vertical stroke: a cell separator, maybe
                    if bh <= RULE_MAX_THICKNESS and bw >= RULE_MIN_LENGTH * page_w:
                        sig.n_rules_h += 1
                        hrules.append(box)
                    elif bw <= RULE_MAX_THICKNESS and bh >= RULE_MIN_LENGTH * page_h:
                        sig.n_rules_v += 1
                        vlines.append(box)
                    elif bw * bh < 0.6 * page_area and max(bw, bh) > 0.5:
                        # Frames and page backgrounds would cover everything: they are left out.
                        gfx_boxes.append(box)
                        if (
                            CHECKBOX_MIN <= bw <= CHECKBOX_MAX
                            and CHECKBOX_MIN <= bh <= CHECKBOX_MAX
                            and 0.75 <= bw / bh <= 1.33
                        ):
                            sig.n_small_boxes += 1
                        if (
                            kind == raw.FPDF_PAGEOBJ_PATH
                            and min(bw, bh) >= SHADE_MIN_SIDE
                            # long along the text: across the page, or down it where the text runs rotated
                            and (bw >= SHADE_MIN_WIDTH * page_w or bh >= SHADE_MIN_WIDTH * page_h)
                        ):
                            fill, stroke = ctypes.c_int(), ctypes.c_int()
                            if (
                                raw.FPDFPath_GetDrawMode(obj, fill, stroke)
                                and fill.value
                                and not stroke.value
                                and raw.FPDFPath_CountSegments(obj) <= 5
                            ):
                                filled_rects.append(len(gfx_boxes) - 1)
        sig.n_objects = total_objects
        # A wide filled rectangle with text on it is shading (a code listing's background, a highlighted line,
        # a table's banded row), not a drawing; bars of a chart carry no text, a diagram's nodes are narrow.
        if filled_rects:
            shade = {
                i
                for i in filled_rects
                if text_mask.cells_in(gfx_boxes[i]) >= max(1, SHADE_TEXT_SHARE * text_mask.count_box(gfx_boxes[i]))
            }
            gfx_boxes = [b for i, b in enumerate(gfx_boxes) if i not in shade]
            sig.n_shaded_boxes = len(shade)

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
        if sizes:
            sz = np.asarray(sizes)
            sig.n_font_sizes = int(np.unique(np.round(sz * 2)).size)
            sig.large_text_share = round(float((sz >= 1.4 * sig.median_font_size).mean()), 4)
        sig.bold_text_share = bold / visible if visible else 0.0
        sig.text_coverage = text_mask.fraction
        sig.image_coverage = img_mask.fraction
        sig.largest_image_coverage = largest_image

        # Images under most of the visible text are a background (letterhead, paper texture, a page tiled in
        # strips), not figures: they stay out of the regions. A scan keeps its image: its text, if any, is an
        # invisible OCR layer, and a figure's caption sits beside the figure, not on it.
        visible_chars = sig.visible_chars
        if image_boxes and visible_chars >= BACKGROUND_MIN_CHARS:
            on_images = int((text_mask.cells & img_mask.cells).sum())
            if on_images >= BACKGROUND_TEXT_SHARE * max(int(text_mask.cells.sum()), 1):
                # only the images with text printed on them; a photo beside the text stays a figure
                under = [
                    b for b in image_boxes if text_mask.cells_in(b) >= BACKGROUND_IMAGE_TEXT * text_mask.count_box(b)
                ]
                under_set = set(under)
                image_boxes = [b for b in image_boxes if b not in under_set]
                kept = {(round(b[0] - x0, 3), round(y1 - b[3], 3)) for b in image_boxes}
                figures = [f for f in figures if (round(f.bbox[0], 3), round(f.bbox[1], 3)) in kept]
                img_mask = _Mask(x0, y0, x1, y1)
                for b in image_boxes:
                    img_mask.add(b)
                sig.image_coverage = img_mask.fraction
                diagnostics.append(
                    f"text is printed over {len(under)} image{'s' * (len(under) != 1)}: taken for a background"
                )
        # Regions that carry non-prose meaning: clusters of vector paths, ruled tables, images.
        geo = line_geometry(char_runs)
        runs_index, spans_index = _Runs(char_runs), _Runs(spans_pdf)
        text_box = _content_box(span_boxes, (x0, y0, x1, y1))
        text_area = max((text_box[2] - text_box[0]) * (text_box[3] - text_box[1]), 1.0)
        # characters per pt² of the text's bounding box (0 below BOXED_MIN_CHARS: no box holds running text)
        page_density = visible_chars / text_area if spans_pdf and visible_chars >= BOXED_MIN_CHARS else 0.0
        for name in LINE_FIELDS:
            setattr(sig, name, getattr(geo, name))
        regions = [Region("graphics", b, n) for b, n in _clusters(gfx_boxes, (x0, y0, x1, y1))]
        boxed = _boxed_text(regions, spans_index, page_density, runs_index)
        if boxed:
            regions = [r for r in regions if r not in boxed]
            sig.n_boxed_text = len(boxed)
        drawn = _Mask(x0, y0, x1, y1)
        for r in regions:
            drawn.add(r.bbox)
        ruled = _table_regions(hrules, page_h)
        if len(ruled) > MAX_TABLE_CANDIDATES:
            diagnostics.append(
                f"only the first {MAX_TABLE_CANDIDATES} of {len(ruled):,} groups of ruling lines were checked "
                "for tables"
            )
            ruled = ruled[:MAX_TABLE_CANDIDATES]
        table_text = _TableText(spans_pdf)
        for t, n in ruled:
            # Rules inside a chart are its axes and gridlines, not a table.
            inside_chart = drawn.cells_in(t) >= 0.5 * drawn.count_box(t)
            # Rules around running text (a theorem box, a framed listing) are not a table either, unless a
            # vertical rule inside them separates cells.
            inner_rule = any(
                t[0] + 5 < (v[0] + v[2]) / 2 < t[2] - 5 and v[3] > t[1] + 2 and v[1] < t[3] - 2 for v in vlines
            )
            # A grid (a vertical rule between cells) is a table whatever its words; so are rows of text between
            # several rules, unless the text runs in long lines; two rules around prose are a ruled abstract.
            if inside_chart:
                continue
            if inner_rule or (not _running_text(runs_index, t, "ruled") and (n >= 4 or table_text.looks_like_table(t))):
                regions.append(Region("table", t, n))
        # Tables without rules: runs of lines split into aligned cells (see docrag.parsers.layout).
        ruled_mask = _Mask(x0, y0, x1, y1)
        for r in regions:
            if r.kind == "table":
                ruled_mask.add(r.bbox)
        sig.leader_line_share = round(min(n_leaders / max(sig.n_lines, 1), 1.0), 4)
        # Contents pages (dot leaders) and fixed-pitch printed output keep their columns in the extracted text:
        # their aligned cells are not a table to be seen.
        text_tables = sig.leader_line_share < 0.3 and sig.mono_text_fraction < 0.6
        for b in geo.table_boxes if text_tables else []:
            if ruled_mask.cells_in(b) < 0.5 * ruled_mask.count_box(b) and drawn.cells_in(b) < 0.5 * drawn.count_box(b):
                regions.append(Region("table", b, 0))
                sig.n_unruled_tables += 1
        regions += [Region("image", b, 1) for b in image_boxes]
        content = _content_box(span_boxes + [r.bbox for r in regions], (x0, y0, x1, y1))
        sig.content_coverage = (content[2] - content[0]) * (content[3] - content[1]) / page_area
        masks = {k: _Mask(x0, y0, x1, y1) for k in ("graphics", "table", "figure", "all")}
        for r in regions:
            masks[r.kind if r.kind == "table" else "figure"].add(r.bbox)
            if r.kind == "graphics":
                masks["graphics"].add(r.bbox)
            masks["all"].add(r.bbox)
        drawings = _Mask(x0, y0, x1, y1)
        for b in gfx_boxes:
            drawings.add(b)
        sig.drawing_coverage = drawings.fraction
        sig.drawing_extent_share = _drawing_extent(
            drawings, (x0, y0, x1, y1), content, spans_index, page_density, runs_index
        )
        # Drawn area without text on it: a shaded box behind code or a quote is not a drawing.
        for r in boxed:
            rr, cc = drawings._slice(r.bbox)
            drawings.cells[rr, cc] = False
        drawn_only = drawings.cells & ~text_mask.cells
        rows, cols = drawings._slice(content)
        sig.drawing_share = float(drawn_only[rows, cols].sum()) / max(drawings.count_box(content), 1)
        area_k = max((content[2] - content[0]) * (content[3] - content[1]), 1.0) / 1000
        sig.char_density = round(float(sig.n_chars) / float(area_k), 3)
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
        if n_measured < n_chars_all:
            diagnostics.append(
                f"only the first {n_measured:,} of {n_chars_all:,} characters were measured for positions "
                "(max_page_chars)"
            )
        if overlapped:
            diagnostics.append("text overlaps heavily: some spans were measured from their own characters only")

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
            words=page_words,
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
