"""Page geometry the PDF analyses share: a coarse occupancy grid, text runs indexed by their centres, the content
box and the running-text check.

Boxes here are ``(left, bottom, right, top)`` in PDF points with the y axis pointing up (PDF space), as PDFium
reports them; ``docrag.parsers.pdf`` turns the results into top-left boxes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from .layout import line_geometry
from .types import BBox

__all__ = [
    "GRID",
    "Frame",
    "Mask",
    "PdfBox",
    "PdfRegion",
    "Run",
    "Runs",
    "content_box",
    "inverse",
    "map_boxes",
    "map_runs",
    "running_text",
    "top_left",
    "turned_frame",
]

PdfBox = tuple[float, float, float, float]  # (left, bottom, right, top) in PDF space
Run = tuple[float, float, float, float, str]  # (left, bottom, right, top, text) in PDF space
# A map of PDF space, (a, b, c, d, e, f): the point (x, y) goes to (a x + c y + e, b x + d y + f) (PDF's order).
Frame = tuple[float, float, float, float, float, float]

GRID = 64  # coverage is measured on a GRID x GRID mask of the page
MAX_RUNNING_CHECKS = 64  # boxes per page and purpose whose text is measured for running lines (see running_text)
RUNNING_MIN_LINES = 3  # running text has this many lines or more...
RUNNING_MIN_SEGMENT_CHARS = 25  # ...whose segments have this many characters (median) or more...
RUNNING_MAX_MULTI_SEGMENT = 0.25  # ...under this share of lines split in 3+ segments...
RUNNING_MAX_ALIGNED = 0.3  # ...and under this share of lines with an edge on a whitespace column


class PdfRegion(NamedTuple):
    """A layout region in PDF space, as the analyses find it (``docrag.parsers.pdf`` turns it into a
    ``LayoutRegion`` with a top-left box)."""

    kind: str  # "table" | "graphics" | "image"
    box: PdfBox
    n_items: int  # rules, vector paths or images inside


class Mask:
    """A coarse occupancy grid over the page, so overlapping boxes are not counted twice.

    ``cells`` is (GRID, GRID) bool, row 0 at the page's bottom edge."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x0, self.y0 = x0, y0
        self.sx = GRID / max(x1 - x0, 1e-6)
        self.sy = GRID / max(y1 - y0, 1e-6)
        self.cells = np.zeros((GRID, GRID), dtype=bool)

    @classmethod
    def of(cls, boxes: Iterable[PdfBox], page: PdfBox) -> Mask:
        """The grid of ``page`` with every box of ``boxes`` marked."""
        mask = cls(*page)
        for b in boxes:
            mask.add(b)
        return mask

    def window(self, box: PdfBox) -> tuple[slice, slice]:
        """The rows and columns of the cells ``box`` touches (at least one cell, clipped to the grid)."""
        left, bottom, right, top = box
        c0 = min(max(int((left - self.x0) * self.sx), 0), GRID - 1)
        c1 = min(max(math.ceil((right - self.x0) * self.sx), c0 + 1), GRID)
        r0 = min(max(int((bottom - self.y0) * self.sy), 0), GRID - 1)
        r1 = min(max(math.ceil((top - self.y0) * self.sy), r0 + 1), GRID)
        return slice(r0, r1), slice(c0, c1)

    def add(self, box: PdfBox) -> None:
        self.cells[self.window(box)] = True

    def hits(self, box: PdfBox) -> bool:
        return bool(self.cells[self.window(box)].any())

    def count_box(self, box: PdfBox) -> int:
        """Cells under ``box``, marked or not."""
        rows, cols = self.window(box)
        return (rows.stop - rows.start) * (cols.stop - cols.start)

    def cells_in(self, box: PdfBox) -> int:
        """Marked cells under ``box``."""
        return int(self.cells[self.window(box)].sum())

    @property
    def fraction(self) -> float:
        return float(self.cells.mean())


class Runs:
    """Text runs with their centres as arrays, so that asking which runs lie in a box costs one vectorised
    comparison, however many boxes a page has.

    ``checks`` counts the ``running_text`` checks made per purpose (see ``MAX_RUNNING_CHECKS``)."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        arr = np.asarray([r[:4] for r in runs], dtype=float).reshape(-1, 4)  # (n, 4): left, bottom, right, top
        self.cx, self.cy = (arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2  # (n,) centres
        self.chars = np.asarray([len(r[4].replace(" ", "")) for r in runs], dtype=float)  # (n,) non-spaces
        self.checks: dict[str, int] = {}

    def _hits(self, box: PdfBox) -> np.ndarray:
        left, bottom, right, top = box
        return (self.cx >= left) & (self.cx <= right) & (self.cy >= bottom) & (self.cy <= top)

    def inside(self, box: PdfBox) -> list[Run]:
        """The runs centred in ``box``, in their order."""
        return [self.runs[i] for i in np.flatnonzero(self._hits(box)).tolist()]

    def chars_in(self, box: PdfBox) -> float:
        """Non-space characters of the runs centred in ``box``."""
        return float(self.chars[self._hits(box)].sum())


def running_text(runs: Runs, box: PdfBox, purpose: str = "") -> bool:
    """Whether the text inside ``box`` runs in long single lines (prose, formulas, code), not in cells.

    Only the first ``MAX_RUNNING_CHECKS`` boxes of a page per ``purpose`` are looked into (a hostile page can
    draw thousands); the rest count as not running text."""
    runs.checks[purpose] = runs.checks.get(purpose, 0) + 1
    if runs.checks[purpose] > MAX_RUNNING_CHECKS:
        return False
    geo = line_geometry(runs.inside(box))
    return (
        geo.n_lines >= RUNNING_MIN_LINES
        and geo.median_segment_chars >= RUNNING_MIN_SEGMENT_CHARS
        and geo.multi_segment_lines < RUNNING_MAX_MULTI_SEGMENT
        and geo.aligned_line_share < RUNNING_MAX_ALIGNED
    )


def content_box(boxes: list[PdfBox], page: PdfBox) -> PdfBox:
    """The bounding box of ``boxes`` clipped to the page (the page itself when there are none)."""
    if not boxes:
        return page
    arr = np.asarray(boxes, dtype=float)  # (n, 4)
    return (
        max(arr[:, 0].min(), page[0]),
        max(arr[:, 1].min(), page[1]),
        min(arr[:, 2].max(), page[2]),
        min(arr[:, 3].max(), page[3]),
    )


def top_left(box: PdfBox, page: PdfBox) -> BBox:
    """``box`` as ``(x0, top, x1, bottom)`` from the top-left corner of ``page`` (the boxes of ``Page``)."""
    return (box[0] - page[0], page[3] - box[3], box[2] - page[0], page[3] - box[1])


def turned_frame(page: PdfBox, turn: int) -> tuple[Frame, PdfBox]:
    """The frame in which text turned ``turn`` degrees clockwise on ``page`` (90, 180 or 270: PDFium's
    character angle, rounded) reads upright: the map of PDF space into it, and the page's box there,
    ``(0, 0, width, height)`` of the page as that text reads (width and height swapped for a quarter turn)."""
    x0, y0, x1, y1 = page
    if turn == 90:  # the text runs down the page: its top is the page's right edge
        return (0.0, 1.0, -1.0, 0.0, y1, -x0), (0.0, 0.0, y1 - y0, x1 - x0)
    if turn == 270:  # up the page: its top is the page's left edge
        return (0.0, -1.0, 1.0, 0.0, -y0, x1), (0.0, 0.0, y1 - y0, x1 - x0)
    if turn == 180:
        return (-1.0, 0.0, 0.0, -1.0, x1, y1), (0.0, 0.0, x1 - x0, y1 - y0)
    raise ValueError(f"not a turn of the page: {turn}")


def inverse(frame: Frame) -> Frame:
    """The map that undoes ``frame``."""
    a, b, c, d, e, f = frame
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return (ia, ib, ic, id_, -(ia * e + ic * f), -(ib * e + id_ * f))


def map_boxes(frame: Frame, boxes: np.ndarray) -> np.ndarray:
    """Boxes ``(n, 4)`` of ``(left, bottom, right, top)`` mapped by ``frame`` (a quarter turn, a half turn or
    a move: boxes stay boxes): the same boxes, where the frame has them."""
    a, b, c, d, e, f = frame
    left, bottom, right, top = boxes.T
    xa, xb = a * left + c * bottom + e, a * right + c * top + e
    ya, yb = b * left + d * bottom + f, b * right + d * top + f
    return np.stack((np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)), axis=1)


def map_runs(frame: Frame, runs: list[Run]) -> list[Run]:
    """Runs (or words) with their boxes mapped by ``frame``; the text stays."""
    if not runs:
        return []
    boxes = map_boxes(frame, np.asarray([r[:4] for r in runs], dtype=float)).tolist()
    return [(*box, r[4]) for box, r in zip(boxes, runs, strict=True)]
