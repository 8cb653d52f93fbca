"""Drawings on a PDF page: clusters of vector paths, frames around running text, and how far drawings extend.

Pure functions over path boxes (``(left, bottom, right, top)`` in PDF space), occupancy grids and text runs:
``graphics_regions`` clusters the paths into drawings and charts, ``boxed_text`` tells the frames around dense
running text (a listing, a note) from figures, ``photo_frames`` the frames around a photograph,
``drawing_extent`` measures the drawings' bounding boxes however few their paths.
"""

from __future__ import annotations

from .pdf_grid import Mask, PdfBox, PdfRegion, Runs, running_text

__all__ = ["boxed_text", "drawing_extent", "graphics_regions", "photo_frames"]

GRAPHICS_MIN_PATHS = 8  # fewer paths than this in a small cluster (a logo, a fraction bar) is not a drawing...
GRAPHICS_MIN_AREA = 0.02  # ...unless the cluster spans this share of the page
GRAPHICS_MIN_SIDE = 30.0  # ...and this many points on its shorter side
BOXED_MIN_CHARS = 80  # a drawing region with at least this many characters inside...
BOXED_DENSITY = 0.6  # ...at this share of the page's text density or more, in running lines, is boxed text
FRAME_MAX_PATHS = 4  # a drawing region of this few paths...
FRAME_PHOTO_SHARE = 0.6  # ...around a photograph that fills this share of it is the photo's frame (a border)
EXTENT_GROW = 2  # grid cells: paths this close belong to one drawing (for drawing_extent)


def graphics_regions(boxes: list[PdfBox], page: PdfBox) -> list[PdfRegion]:
    """Cluster vector-path boxes that touch (on the grid, grown by one cell): drawings and charts.

    A cluster is a drawing when it has ``GRAPHICS_MIN_PATHS`` paths or more, or when it is large whatever its
    path count (a diagram of a few long strokes: a 3-D box, a ring): ``GRAPHICS_MIN_AREA`` of the page and
    ``GRAPHICS_MIN_SIDE`` points on its shorter side. Clusters come in the order of their first path.
    """
    if not boxes:
        return []
    from scipy import ndimage

    mask = Mask.of(boxes, page)
    labels, _n = ndimage.label(ndimage.binary_dilation(mask.cells, iterations=1))  # (GRID, GRID) cluster ids
    members: dict[int, list[PdfBox]] = {}
    for b in boxes:
        rows, cols = mask.window(b)
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
            out.append(PdfRegion("graphics", box, len(group)))
    return out


def boxed_text(regions: list[PdfRegion], spans: Runs, page_density: float, runs: Runs) -> list[PdfRegion]:
    """The regions that are boxes around running text (a framed code listing, a shaded note): the text
    inside (``spans``) is as dense as the page's own (``page_density``: characters per pt² of the text's
    bounding box), where a chart or a diagram holds only sparse labels, and it runs in long single lines
    (``runs``, see ``running_text``), where a table's rows are split into aligned cells and a diagram's labels
    are short."""
    if not regions or not spans.runs or page_density <= 0:
        return []
    out = []
    for r in regions:
        left, bottom, right, top = r.box
        n = spans.chars_in(r.box)
        area = max((right - left) * (top - bottom), 1.0)
        if n >= BOXED_MIN_CHARS and n / area >= BOXED_DENSITY * page_density and running_text(runs, r.box, "boxed"):
            out.append(r)
    return out


def photo_frames(regions: list[PdfRegion], photos: list[PdfBox]) -> list[PdfRegion]:
    """The drawing regions that are frames around a photograph (a border, a mount, a shadow): at most
    ``FRAME_MAX_PATHS`` paths, around a photo (``photos``) that fills ``FRAME_PHOTO_SHARE`` of the region."""
    out = []
    for r in regions:
        if r.kind != "graphics" or r.n_items > FRAME_MAX_PATHS:
            continue
        left, bottom, right, top = r.box
        area = max((right - left) * (top - bottom), 1e-6)
        for p in photos:
            inside = p[0] >= left - 1 and p[1] >= bottom - 1 and p[2] <= right + 1 and p[3] <= top + 1
            if inside and (p[2] - p[0]) * (p[3] - p[1]) >= FRAME_PHOTO_SHARE * area:
                out.append(r)
                break
    return out


def drawing_extent(
    drawings: Mask, page: PdfBox, content: PdfBox, spans: Runs, page_density: float, runs: Runs
) -> float:
    """The share of the content box spanned by drawings (``drawings``: the grid of path boxes), however few
    their paths: paths within about two grid cells (~25 pt) of each other form one drawing, measured by its
    bounding box (a figure of six long strokes spans its whole frame). Boxes around running text (see
    ``boxed_text``) do not count."""
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
        regions.append(PdfRegion("graphics", (left, bottom, right, top), 0))
    boxed = boxed_text(regions, spans, page_density, runs)
    extent = Mask.of((r.box for r in regions if r not in boxed), page)
    return extent.cells_in(content) / max(extent.count_box(content), 1)
