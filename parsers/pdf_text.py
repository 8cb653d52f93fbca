"""The text layer of a PDF page through PDFium's text page: the whole text, positioned runs and words.

The per-character PDFium calls go through ctypes prototypes that take output addresses as integers (``_fill``),
one C call per character and no ctypes objects; the rest is vectorised over numpy arrays of code points and
boxes. Runs are ``(left, bottom, right, top, text)`` in PDF space (y up).

Word breaks: PDFium makes the spaces of text written without space characters from the gaps between glyphs,
but not all of them: words set apart only by character spacing (``Tc``) over a few letters, as Ghostscript
writes PostScript's word spacing, come out run together ("givennumeric"). ``char_runs`` finds those gaps in
the character boxes it reads anyway (``_word_breaks``); ``page_text`` and ``text_spans`` take the breaks it
found and put a space there, and its words break there, so text, spans and words agree.
"""

from __future__ import annotations

import codecs
import ctypes
import itertools
import re

import numpy as np

from .layout import GAP_EM
from .pdf_grid import Frame, Run, map_boxes
from .text import normalise

__all__ = ["WORD_GAP", "char_runs", "page_text", "text_spans", "text_turn"]

WORD_GAP = 0.15  # a gap between letters wider than their usual one by this many character heights is a word break
WORD_GAP_USUAL = 0.25  # the usual gap of a stretch of letters: this quantile of its gaps (low: most are in words)
TURN_SAMPLE = (32, 256)  # characters whose angle is read: a first look, then a count where many are turned
TURN_MIN_SHARE = 0.6  # the text of a page is turned when this share of its characters is turned one way
TURN_TOLERANCE = 10.0  # degrees off a quarter turn that still count as that turn
_TEXT_BLANKS = np.array([9, 10, 13, 32, 0xA0, 0x2002, 0x2003, 0x2009, 0xFEFF, 0xFFFE], dtype=np.uint16)
# Scripts written without spaces between words (CJK, Hangul, Thai, Lao, Myanmar, Khmer, Yi): no break between
# two of their characters. Ranges (first, last) in order.
_UNSPACED = np.array(
    [
        (0x0E00, 0x0EFF),
        (0x1000, 0x109F),
        (0x1100, 0x11FF),
        (0x1780, 0x17FF),
        (0x2E80, 0xA4CF),
        (0xA960, 0xA97F),
        (0xAC00, 0xD7FF),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFFEF),
        (0x20000, 0x3FFFF),
    ],
    dtype=np.int64,
)


def page_text(textpage: object, breaks: np.ndarray | None = None) -> str:
    """The whole text layer, as ``PdfTextPage.get_text_range()`` returns it, with a space before each of the
    characters ``breaks`` (character indices, from ``char_runs``) where the text has no whitespace there.

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
    if breaks is None or not len(breaks):
        return codecs.decode(memoryview(buf)[: got - 1], "utf-16-le", errors="ignore")
    units = np.frombuffer(buf, dtype="<u2", count=got - 1)
    tp = textpage.raw
    at = np.fromiter(map(raw.FPDFText_GetTextIndexFromCharIndex, itertools.repeat(tp), breaks), dtype=np.int64)
    at = at[(at > 0) & (at < units.size)]
    at = at[~np.isin(units[at - 1], _TEXT_BLANKS) & ~np.isin(units[at], _TEXT_BLANKS)]
    return codecs.decode(np.insert(units, at, 32).tobytes(), "utf-16-le", errors="ignore")


def text_turn(textpage: object) -> int:
    """The quarter turn, clockwise (0, 90, 180 or 270 degrees: PDFium's character angle, rounded), by which the
    text of the page is turned inside its content stream: a landscape table printed on a portrait page runs
    up it (270). 0 unless ``TURN_MIN_SHARE`` of the characters counted (spaces and line breaks left out) are
    turned the same way, to within ``TURN_TOLERANCE``: a turned caption on an upright page leaves it upright.

    The characters counted are a sample evenly through the text: a first look at ``TURN_SAMPLE[0]`` of them
    ends it where fewer than half that share are turned at all (an ordinary page: all are upright), then
    ``TURN_SAMPLE[1]``."""
    import pypdfium2.raw as raw

    n, tp = textpage.count_chars(), textpage.raw
    for size in TURN_SAMPLE:
        at = range(0, max(n, 0), max(1, n // size))
        deg = np.degrees(np.fromiter(map(raw.FPDFText_GetCharAngle, itertools.repeat(tp), at), float, len(at)))
        if np.count_nonzero(np.abs(deg) > TURN_TOLERANCE) < TURN_MIN_SHARE / 2 * max(len(at), 1):
            return 0  # line breaks PDFium puts in read 0, and are not turned
    uni = np.fromiter(map(raw.FPDFText_GetUnicode, itertools.repeat(tp), at), np.int64, len(at))
    deg = deg[(uni > 32) & ~np.isin(uni, _SPACES) & (deg >= 0)]  # an error reads -1
    quarter = np.round(deg / 90.0)
    turned = quarter[np.abs(deg - 90.0 * quarter) <= TURN_TOLERANCE].astype(np.int64) % 4
    counts = np.bincount(turned, minlength=4)
    best = int(np.argmax(counts))
    return 90 * best if counts[best] >= TURN_MIN_SHARE * max(deg.size, 1) else 0


GRID_MAX_CELLS = 64  # a character box over more grid cells than this is checked against every rectangle
MATCH_WORK_PER_CHAR = 16  # grid cells and candidates examined per measured character, at most (see text_spans)
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


def text_spans(
    textpage: object, limit: int, max_bounded_work: int, breaks: np.ndarray | None = None
) -> tuple[list[Run], int, int, bool]:
    """The positioned text runs of a page, one per PDFium text rectangle: ``(left, bottom, right, top, text)``
    in PDF space, text normalised and stripped, empty runs left out.

    The text of a rectangle is PDFium's bounded text of it (``get_text_bounded``): every character of the
    page whose box intersects the rectangle (its own, and any neighbour's that overlaps it), joined by
    CPDF_TextPage::GetTextByPredicate's rules (a space after a taken character is kept; a line break goes
    before a taken character that follows other text on a new baseline). PDFium walks all the characters of
    the page for each rectangle, so that costs rectangles x characters: minutes on a page of 200,000 small
    words. It is used as it is on pages where that product is at most ``max_bounded_work`` (most pages;
    there it is the quicker way). On others the same text is computed in one pass over the characters:
    their boxes go on a grid of cells about a rectangle high, each rectangle takes the characters in its
    cells whose boxes intersect it, and the characters are joined by the same rules, here in Python.

    Only the first ``limit`` characters are measured (rectangles and text). Heavily overlapping text (many
    rectangles over the same characters) would make even the grid's work rectangles x characters: past
    ``MATCH_WORK_PER_CHAR`` units per character, the remaining rectangles take only their own characters.

    ``breaks`` (character indices, sorted, from ``char_runs``): a space goes before each of them that a run
    of consecutive characters takes after its first. A page with breaks takes the one pass (whose text is
    PDFium's otherwise: tests/test_parsers.py checks), where the characters behind each text are known.

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
    has_breaks = breaks is not None and len(breaks) > 0
    if m == n and n_rects * n <= max_bounded_work and not has_breaks:
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
    split: dict[int, list[int]] = {}  # run -> the breaks inside it, as offsets from its first character
    if has_breaks:
        brk = np.asarray(breaks, dtype=np.int64)
        first, after = np.searchsorted(brk, pair_char[starts], "right"), np.searchsorted(brk, pair_char[ends], "right")
        for j in np.flatnonzero(after > first).tolist():
            split[j] = (brk[first[j] : after[j]] - run_first[j]).tolist()

    c_x, c_y = ctypes.c_double(), ctypes.c_double()

    def origin_y(i: int) -> float:
        raw.FPDFText_GetCharOrigin(tp, i, ctypes.byref(c_x), ctypes.byref(c_y))
        return c_y.value

    runs: list[Run] = []
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
        if j in split:
            cuts = [0, *split[j], b + 1 - a]
            out.append(" ".join(chars[a + x : a + y] for x, y in itertools.pairwise(cuts)))
        else:
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


def _join_runs(
    uni: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray, brk: np.ndarray
) -> list[Run]:
    """Characters (code points and boxes, in text order) joined into runs, a new run at each ``brk``:
    ``(left, bottom, right, top, text)`` with the union box of each run."""
    starts = np.flatnonzero(brk)
    rl, rr = np.minimum.reduceat(left, starts).tolist(), np.maximum.reduceat(right, starts).tolist()
    rb, rt = np.minimum.reduceat(bottom, starts).tolist(), np.maximum.reduceat(top, starts).tolist()
    text = np.where(uni > 0x10FFFF, 0xFFFD, uni).astype("<u4").tobytes().decode("utf-32-le", "replace")
    bounds = [*starts.tolist(), len(uni)]
    return [(rl[i], rb[i], rr[i], rt[i], text[bounds[i] : bounds[i + 1]]) for i in range(len(rl))]


def _word_breaks(uni: np.ndarray, gap: np.ndarray, em: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """Which pairs of neighbouring letters have a word break between them. The pairs ``linked`` (next to each
    other in the text, nothing between them, on one line) make stretches of letters without a space; a pair
    breaks where its ``gap`` is wider than the usual one of its stretch (the ``WORD_GAP_USUAL`` quantile of
    its gaps) by more than ``WORD_GAP`` character heights (``em``), or where it is wider than ``GAP_EM``
    (a gap between table cells), unless both its letters are of scripts written without spaces. The usual gap
    keeps a letter-spaced word whole ("P a g e" is "Page"); a stretch of two letters has no other gap to
    compare with, and breaks at table-cell gaps only. ``uni`` has one entry more than there are pairs.
    Returns pair indices, in order; cost: nothing measurable where the letters of words touch."""
    ratio = gap / em
    pairs = np.flatnonzero(linked & (ratio > WORD_GAP))
    if pairs.size == 0:  # an ordinary page: the letters of its words touch, and spaces are characters
        return pairs
    ends = np.searchsorted(_UNSPACED[:, 0], uni, "right") - 1
    unspaced = (ends >= 0) & (uni <= _UNSPACED[ends, 1])
    pairs = pairs[~(unspaced[pairs] & unspaced[pairs + 1])]
    stretch = np.cumsum(~linked)  # the same number along a stretch of linked pairs
    wanted = np.unique(stretch[pairs])
    members = np.flatnonzero(linked & np.isin(stretch, wanted))
    order = members[np.lexsort((ratio[members], stretch[members]))]  # by stretch, then by gap
    _, first, count = np.unique(stretch[order], return_index=True, return_counts=True)
    usual = ratio[order[first + ((count - 1) * WORD_GAP_USUAL).astype(np.int64)]]
    usual = usual[np.searchsorted(wanted, stretch[pairs])]
    return pairs[(ratio[pairs] - np.maximum(usual, 0.0) > WORD_GAP) | (ratio[pairs] > GAP_EM)]


def _words(
    uni: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray
) -> tuple[list[Run], np.ndarray]:
    """Words from the characters' own boxes: ``(left, bottom, right, top, text)`` in PDF space, one per run of
    visible characters between whitespace (or a jump to another line, back left, a gap of a third of a
    character's height, or a word break that the text has no space for: ``_word_breaks``). Also returns
    those word breaks: the indices of the characters they go before, in order."""
    ok = (right > left) & (top > bottom) & np.isfinite(left) & np.isfinite(top) & (uni > 32) & ~np.isin(uni, _SPACES)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return [], idx
    lo, r, b, t = left[idx], right[idx], bottom[idx], top[idx]
    h = np.maximum(t - b, 1e-6)
    cy = (t + b) / 2
    gap = lo[1:] - r[:-1]
    other_line = np.abs(cy[1:] - cy[:-1]) > 0.5 * np.minimum(h[1:], h[:-1])
    back = lo[1:] < lo[:-1] - 0.5 * h[1:]
    apart = idx[1:] - idx[:-1] > 1  # whitespace (or a character without a box) between them
    breaks = 1 + _word_breaks(uni[idx], gap, np.maximum(h[1:], h[:-1]), ~(apart | other_line | back))
    brk = np.ones(idx.size, dtype=bool)
    brk[1:] = apart | other_line | (gap > 0.33 * np.minimum(h[1:], h[:-1])) | back
    brk[breaks] = True
    return _join_runs(uni[idx], lo, b, r, t, brk), idx[breaks]


def char_runs(textpage: object, limit: int, frame: Frame | None = None) -> tuple[list[Run], int, list[Run], np.ndarray]:
    """Runs of characters for the line geometry, cut where the characters themselves leave a gap.

    PDFium's text rectangles follow the text objects: a table row written as one string padded with spaces
    is one rectangle. Here characters are taken in text order with their own boxes; spaces, characters
    without area and dot leaders (three or more dots, dashes or underscores in a row) are dropped, and a run
    ends where the next character is on another line, goes back left, or starts more than ``GAP_EM`` character
    heights to the right. ``(left, bottom, right, top, text)`` in PDF space, the first ``limit`` characters.
    Also returns the number of dot leaders, the page's words (``_words``, from the same character boxes) and
    the word breaks the text has no space for (character indices, for ``page_text`` and ``text_spans``).

    ``frame`` (``pdf_grid.turned_frame``): the character boxes are taken in the frame where turned text reads
    upright, and the runs and words are boxes there.
    """
    import pypdfium2.raw as raw

    tp = textpage.raw
    m = max(0, min(textpage.count_chars(), limit))
    if m == 0:
        return [], 0, [], np.empty(0, dtype=np.int64)
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
    if frame is not None:
        left, bottom, right, top = map_boxes(frame, np.stack((left, bottom, right, top), axis=1)).T
    words, breaks = _words(uni, left, bottom, right, top)
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
        return [], n_leaders, words, breaks
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
    return _join_runs(uni[idx], lo, b, r, t, brk), n_leaders, words, breaks
