"""The PDF page analyses, each alone, on objects and text runs built here (no PDF): ruling lines -> rule groups ->
tables, path boxes -> drawings, frames around text -> boxed text, filled rectangles under text -> shading,
images -> figures and backgrounds, text objects -> font signals; then the walk's caps on tiny hand-built PDFs.

Boxes are ``(left, bottom, right, top)`` in PDF space (y up) on a 612 x 792 pt page.
"""

from __future__ import annotations

import numpy as np
import pytest

from docrag.parsers.pdf_analysis import analyse_page, drawing_share, region_shares
from docrag.parsers.pdf_figures import boxed_text, drawing_extent, graphics_regions
from docrag.parsers.pdf_grid import GRID, MAX_RUNNING_CHECKS, Mask, PdfRegion, Runs, content_box, running_text, top_left
from docrag.parsers.pdf_objects import MAX_FORM_DEPTH, PageObjects, compose, transform, walk_objects
from docrag.parsers.pdf_signals import (
    IMAGE_MIN_PX,
    background_images,
    classify_paths,
    select_images,
    shaded_boxes,
    text_signals,
)
from docrag.parsers.pdf_tables import TableText, rule_groups, ruled_tables, unruled_tables
from docrag.parsers.types import PageSignals
from docrag.testing import pdfgen

PAGE = (0.0, 0.0, 612.0, 792.0)
PROSE = "the quick brown fox jumps over the lazy dog and keeps running far"


def _objects(
    text: list | None = None,
    invisible: list | None = None,
    fonts: list | None = None,
    fixed: list | None = None,
    sizes: list | None = None,
    images: list | None = None,
    px: list | None = None,
    paths: list | None = None,
    fill_only: list | None = None,
    segments: list | None = None,
    **extra: object,
) -> PageObjects:
    """PageObjects from plain lists; unset per-object fields default to visible Helvetica at 10 pt, strokes."""
    text, images, paths = text or [], images or [], paths or []
    n_text, n_paths = len(text), len(paths)
    sizes = sizes if sizes is not None else [10.0] * n_text
    return PageObjects(
        page=PAGE,
        text_boxes=np.asarray(text, dtype=float).reshape(-1, 4),
        text_invisible=np.asarray(invisible or [False] * n_text, dtype=bool),
        text_fonts=fonts or ["Helvetica"] * n_text,
        text_fixed_pitch=np.asarray(fixed or [False] * n_text, dtype=bool),
        text_sizes=np.asarray(sizes, dtype=float),
        text_sized=np.asarray([s > 0 for s in sizes], dtype=bool),
        image_boxes=np.asarray(images, dtype=float).reshape(-1, 4),
        image_px=np.asarray(px or [], dtype=np.int64).reshape(-1, 2),
        path_boxes=np.asarray(paths, dtype=float).reshape(-1, 4),
        path_in_form=np.zeros(n_paths, dtype=bool),
        path_fill_only=np.asarray(fill_only or [False] * n_paths, dtype=bool),
        path_segments=np.asarray(segments or [4] * n_paths, dtype=np.int64),
        **extra,
    )


def _hrule(y: float, x0: float = 100.0, x1: float = 400.0) -> tuple:
    return (x0, y - 0.25, x1, y + 0.25)


def _vrule(x: float, y0: float, y1: float) -> tuple:
    return (x - 0.25, y0, x + 0.25, y1)


def _number_rows(n_rows: int = 5, top: float = 690.0) -> list:
    """Rows of three numeric cells, 100 pt apart, between x = 110 and 335."""
    return [
        (x, top - 14 * i, x + 25, top - 14 * i + 10, f"{3 * i + j}.{j}5")
        for i in range(n_rows)
        for j, x in enumerate((110.0, 210.0, 310.0))
    ]


def _prose_rows(n_rows: int = 5, top: float = 690.0, left: float = 110.0) -> list:
    """Lines of running prose, one run each, 14 pt apart."""
    return [(left, top - 14 * i, left + 4.5 * len(PROSE), top - 14 * i + 10, PROSE) for i in range(n_rows)]


def _grid(columns: int, rows: int, x0: float, y0: float, side: float = 8.0, step: float = 11.0) -> list:
    return [
        (x0 + step * c, y0 + step * r, x0 + step * c + side, y0 + step * r + side)
        for r in range(rows)
        for c in range(columns)
    ]


# --- shared geometry -------------------------------------------------------------------------------------------


def test_mask_counts_cells_once_and_clips_to_the_page():
    mask = Mask.of([(0, 0, 306, 396), (0, 0, 306, 396), (-50, -50, 5, 5)], PAGE)
    assert mask.fraction == pytest.approx(0.25)  # the quarter page once; the box off the corner in its cell
    assert mask.count_box((0, 0, 612, 792)) == GRID * GRID
    assert mask.cells_in((306, 396, 612, 792)) == 0 and not mask.hits((400, 500, 450, 550))
    assert mask.count_box((1000, 1000, 1001, 1001)) == 1  # off the page: the nearest cell, never none


def test_runs_are_found_by_their_centres():
    runs = Runs([(10, 10, 30, 20, "a b c"), (100, 100, 300, 120, "wide run")])
    assert runs.inside((0, 0, 50, 50)) == [runs.runs[0]]
    assert runs.chars_in((0, 0, 50, 50)) == 3  # spaces do not count
    assert runs.inside((150, 105, 250, 115)) == [runs.runs[1]]  # the centre is inside, the edges are not


def test_running_text_is_long_single_lines_and_is_capped_per_purpose():
    assert running_text(Runs(_prose_rows()), (100, 600, 420, 710))
    assert not running_text(Runs(_number_rows()), (100, 600, 420, 710))  # cells, not lines
    runs = Runs(_prose_rows())
    answers = [running_text(runs, (100, 600, 420, 710), "boxed") for _ in range(MAX_RUNNING_CHECKS + 2)]
    assert all(answers[:MAX_RUNNING_CHECKS]) and not any(answers[MAX_RUNNING_CHECKS:])
    assert running_text(runs, (100, 600, 420, 710), "ruled")  # another purpose has its own budget


def test_content_box_and_top_left():
    assert content_box([], PAGE) == PAGE
    assert content_box([(10, 20, 30, 40), (-5, 700, 50, 900)], PAGE) == (0, 20, 50, 792)  # clipped to the page
    assert top_left((10, 700, 30, 780), PAGE) == (10, 12, 30, 92)


# --- object signals --------------------------------------------------------------------------------------------


def test_text_signals_count_visible_fonts_sizes_and_styles():
    objs = _objects(
        text=[(0, 0, 10, 10)] * 5,
        invisible=[False, False, False, False, True],
        fonts=["Helvetica", "Helvetica-Bold", "CourierNew", "Helvetica", ""],
        fixed=[False, False, False, True, False],  # a font flagged fixed-pitch whatever its name
        sizes=[10.0, 10.0, 10.0, 20.0, 0.0],
    )
    s = text_signals(objs)
    assert s["n_text_objects"] == 5 and s["invisible_text_fraction"] == pytest.approx(0.2)
    assert s["n_fonts"] == 3  # the invisible object's font does not count
    assert s["mono_text_fraction"] == pytest.approx(0.5)  # Courier by its name, the flagged one by its flag
    assert s["bold_text_share"] == pytest.approx(0.25)
    assert s["median_font_size"] == 10.0 and s["n_font_sizes"] == 2 and s["large_text_share"] == pytest.approx(0.25)
    assert text_signals(_objects())["median_font_size"] == 0.0


def test_paths_sort_into_rules_separators_drawings_and_checkboxes():
    paths = [
        _hrule(700),  # a long horizontal rule
        _vrule(50, 100, 700),  # a long vertical rule
        _vrule(200, 600, 620),  # a short vertical stroke: a cell separator
        (300, 300, 310, 310),  # a checkbox
        (300, 300, 340, 310),  # a small oblong: a drawing, not a checkbox
        (5, 5, 607, 787),  # a page frame: left out
        (20, 20, 20.3, 20.3),  # a dot: left out
        (50, 400, 500, 420),  # a wide filled rectangle: shading, maybe
        (50, 450, 100, 470),  # a narrow filled one: a diagram's node
    ]
    kinds = classify_paths(
        np.asarray(paths, dtype=float), np.asarray([False] * 7 + [True, True]), np.full(9, 4), 612.0, 792.0
    )
    assert kinds.hrules == [paths[0]] and kinds.n_rules_v == 1
    assert kinds.vlines == [paths[1], paths[2]]  # the separator is drawn too: it stays among the drawings
    assert kinds.drawings == [paths[2], paths[3], paths[4], paths[7], paths[8]] and kinds.n_small_boxes == 1
    assert kinds.filled == [3]  # an index into drawings: the wide one only
    curvy = classify_paths(np.asarray([paths[7]], dtype=float), np.asarray([True]), np.asarray([12]), 612.0, 792.0)
    assert curvy.filled == []  # twelve segments are not a rectangle


def test_filled_rectangles_under_text_are_shading_and_bare_bars_are_not():
    drawings = [(50, 400, 500, 420), (50, 300, 500, 320), (50, 200, 100, 220)]
    text = Mask.of([(60, 405, 490, 415)], PAGE)  # a line of text on the first rectangle only
    assert shaded_boxes(drawings, [0, 1], text) == {0}
    objs = _objects(text=[(60, 405, 490, 415)], paths=drawings, fill_only=[True, True, False])
    sig = PageSignals(n_chars=60, n_words=10)
    analyse_page(objs, [], [], 0, sig)
    assert sig.n_shaded_boxes == 1 and sig.drawing_coverage > 0  # the bar stays a drawing


def test_images_below_the_size_thresholds_are_not_figures():
    boxes = np.asarray([(100, 100, 400, 400), (100, 500, 400, 700), (10, 10, 20, 20)], dtype=float)
    px = np.asarray([(IMAGE_MIN_PX - 1, 40), (800, 600), (4000, 4000)])  # the last is a tiny box on the page
    chosen = select_images(boxes, px, 612.0 * 792.0)
    assert chosen.keep == [1] and chosen.largest_px == (800, 600)
    assert chosen.largest_fraction == pytest.approx(300 * 200 / (612 * 792))
    assert chosen.max_px == 4000 * 4000  # counted for the render guard, figure or not


def test_an_image_under_most_of_the_text_is_a_background():
    image = (0, 0, 612, 792)
    photo = (400, 50, 600, 150)
    text = Mask.of([(72, 200 + 14 * i, 540, 210 + 14 * i) for i in range(30)], PAGE)
    images = Mask.of([image, photo], PAGE)
    assert background_images([image, photo], text, images, visible_chars=2000) == [image]
    assert background_images([image, photo], text, images, visible_chars=50) is None  # too little text to tell
    assert background_images([photo], text, Mask.of([photo], PAGE), visible_chars=2000) is None


# --- tables ----------------------------------------------------------------------------------------------------


def test_rules_sharing_an_extent_group_into_candidates():
    assert rule_groups([_hrule(700), _hrule(680), _hrule(600)], 792.0) == [((100, 600, 400, 700), 3)]
    assert rule_groups([_hrule(700), _hrule(697)], 792.0) == []  # a double rule
    assert rule_groups([_hrule(780), _hrule(20)], 792.0) == []  # a header line and a footer line
    assert rule_groups([_hrule(700), _hrule(600, 102, 398), _hrule(500, 300, 600)], 792.0) == [
        ((100, 600, 400, 700), 2)
    ]
    assert rule_groups([(float("nan"), 700, 400, 700.5), _hrule(600)], 792.0) == []


def test_table_text_tells_cells_from_prose():
    assert TableText(_number_rows()).looks_like_table((100, 600, 420, 710))
    assert not TableText(_prose_rows()).looks_like_table((100, 600, 420, 710))
    assert not TableText(_number_rows()).looks_like_table((100, 100, 420, 200))  # nothing between the rules


def test_a_grid_of_rules_around_numbers_is_a_table():
    groups = rule_groups([_hrule(705), _hrule(680), _hrule(628)], 792.0)
    spans = _number_rows()
    empty = Mask(*PAGE)
    assert ruled_tables(groups, [], spans, Runs(spans), empty) == [PdfRegion("table", (100, 628, 400, 705), 3)]


def test_rules_around_prose_are_no_table_unless_a_vertical_rule_splits_cells():
    groups = rule_groups([_hrule(705), _hrule(628)], 792.0)
    spans = _prose_rows()
    empty = Mask(*PAGE)
    assert ruled_tables(groups, [], spans, Runs(spans), empty) == []  # a ruled abstract
    separator = _vrule(250, 640, 700)
    assert len(ruled_tables(groups, [separator], spans, Runs(spans), empty)) == 1


def test_rules_inside_a_chart_are_its_gridlines():
    groups = rule_groups([_hrule(705), _hrule(680), _hrule(628)], 792.0)
    spans = _number_rows()
    chart = Mask.of([(90, 600, 420, 720)], PAGE)
    assert ruled_tables(groups, [], spans, Runs(spans), chart) == []


def test_unruled_tables_stay_out_of_ruled_tables_and_drawings():
    box = (110, 600, 340, 700)
    empty = Mask(*PAGE)
    assert unruled_tables([box], empty, empty) == [PdfRegion("table", box, 0)]
    assert unruled_tables([box], Mask.of([box], PAGE), empty) == []
    assert unruled_tables([box], empty, Mask.of([(100, 590, 350, 710)], PAGE)) == []


# --- drawings --------------------------------------------------------------------------------------------------


def test_a_cluster_of_small_paths_is_a_graphics_region():
    dots = _grid(5, 4, 300, 300)
    assert graphics_regions(dots, PAGE) == [PdfRegion("graphics", (300, 300, 352, 341), 20)]


def test_a_tiny_logo_is_not_a_drawing_but_a_few_long_strokes_are():
    logo = _grid(3, 1, 40, 750, side=4, step=5)
    assert graphics_regions(logo, PAGE) == []
    strokes = [(100, 100, 300, 102), (100, 100, 102, 250), (100, 248, 300, 250)]  # a large frame of 3 strokes
    assert graphics_regions(strokes, PAGE) == [PdfRegion("graphics", (100, 100, 300, 250), 3)]
    apart = _grid(5, 4, 300, 300) + _grid(3, 1, 40, 40, side=4, step=5)
    assert [r.n_items for r in graphics_regions(apart, PAGE)] == [20]  # two clusters, the small one dropped


def test_a_frame_around_dense_text_is_boxed_text_not_a_figure():
    frame = PdfRegion("graphics", (100, 620, 420, 710), 12)
    spans = _prose_rows()
    assert boxed_text([frame], Runs(spans), 0.008, Runs(spans)) == [frame]
    labels = [(150, 650, 170, 658, "x"), (300, 640, 330, 648, "f(x)"), (250, 700, 280, 708, "peak")]
    assert boxed_text([frame], Runs(labels), 0.008, Runs(labels)) == []  # a chart's sparse labels
    assert boxed_text([frame], Runs(spans), 0.0, Runs(spans)) == []  # no running text on the page
    cells = _number_rows(10, top=700)
    dense = PdfRegion("graphics", (100, 560, 420, 715), 12)
    assert boxed_text([dense], Runs(cells), 0.002, Runs(cells)) == []  # a framed table: dense, but in cells


def test_drawing_extent_spans_the_drawings_and_leaves_out_boxed_text():
    def extent(boxes: list, spans: list = (), density: float = 0.0) -> float:
        return drawing_extent(Mask.of(boxes, PAGE), PAGE, PAGE, Runs(list(spans)), density, Runs(list(spans)))

    stroke = (100, 100, 300, 102)
    single = extent([stroke])
    assert 0 < single < 0.05
    assert extent([stroke, (100, 248, 300, 250)]) == pytest.approx(2 * single)  # far apart: two thin drawings
    assert extent([stroke, (100, 140, 300, 142)]) > 2.5 * single  # within EXTENT_GROW cells: one, gap included
    frame = [(100, 620, 420, 622), (100, 708, 420, 710), (100, 620, 102, 710), (418, 620, 420, 710)]
    assert extent(frame) > 0.05
    assert extent(frame, _prose_rows(), 0.008) == 0.0  # a box around running text
    assert extent([]) == 0.0


def test_region_shares_and_drawing_share():
    regions = [PdfRegion("table", (0, 0, 306, 396), 3), PdfRegion("graphics", (306, 396, 612, 792), 20)]
    s = region_shares(regions, PAGE, PAGE)
    assert s["n_tables"] == 1 and s["n_graphics_regions"] == 1
    assert s["table_coverage"] == pytest.approx(0.25) and s["graphics_coverage"] == pytest.approx(0.25)
    assert s["visual_share"] == pytest.approx(0.5) and s["figure_share"] == pytest.approx(0.25)
    drawings = Mask.of([(0, 0, 612, 396)], PAGE)
    text = Mask.of([(0, 0, 306, 396)], PAGE)
    assert drawing_share(drawings, [], text, PAGE) == pytest.approx(0.25)
    assert drawing_share(drawings, [PdfRegion("graphics", (306, 0, 612, 396), 0)], text, PAGE) == 0.0
    assert drawings.fraction == pytest.approx(0.5)  # the grid handed in is left as it was


# --- the composition -------------------------------------------------------------------------------------------


def test_analyse_page_finds_a_ruled_table_a_drawing_and_no_small_image():
    spans = _number_rows()
    dots = _grid(5, 4, 300, 200)
    objs = _objects(
        text=[s[:4] for s in spans],
        paths=[_hrule(705), _hrule(680), _hrule(628), *dots],
        images=[(50, 50, 80, 80)],
        px=[(30, 30)],
        n_objects=25,
    )
    sig = PageSignals(n_chars=45, n_words=15)
    found = analyse_page(objs, spans, spans, 0, sig)
    assert sorted(r.kind for r in found.regions) == ["graphics", "table"]
    assert sig.n_rules_h == 3 and sig.n_tables == 1 and sig.n_graphics_regions == 1 and sig.n_paths == 23
    assert sig.n_images == 1 and found.figures == [] and found.max_image_px == 900
    assert sig.n_objects == 25 and not sig.objects_truncated


def test_analyse_page_says_when_rule_groups_are_capped():
    rules = [_hrule(y, 10 + 5 * i, 200 + 5 * i) for i in range(300) for y in (100, 120)]
    sig = PageSignals()
    found = analyse_page(_objects(paths=rules), [], [], 0, sig)
    assert found.diagnostics == ["only the first 256 of 300 groups of ruling lines were checked for tables"]


# --- the walk over PDFium objects ------------------------------------------------------------------------------


def _pdf(content: bytes, forms: list[bytes] = ()) -> object:
    import pypdfium2 as pdfium

    xobjects = b" ".join(b"/Fm%d %d 0 R" % (i, 5 + i) for i in range(len(forms)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /XObject << %s >> >> >>"
        % xobjects,
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    for body in forms:
        objects.append(
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << %s >> >> /Length %d >>"
            b"\nstream\n" % (xobjects, len(body)) + body + b"\nendstream"
        )
    return pdfium.PdfDocument(pdfgen.raw_pdf(objects))


def test_the_walk_stops_at_the_object_cap_and_says_so():
    doc = _pdf(b"\n".join(b"%d 100 5 5 re f" % (10 * i) for i in range(30)))
    page = doc[0]
    try:
        capped = walk_objects(page, PAGE, 10)
        whole = walk_objects(page, PAGE, 1000)
    finally:
        page.close()
        doc.close()
    assert capped.truncated and capped.n_objects == 30 and len(capped.path_boxes) == 10
    assert not whole.truncated and len(whole.path_boxes) == 30
    assert whole.path_fill_only.all() and (whole.path_segments <= 5).all()
    assert whole.path_boxes[3].tolist() == pytest.approx([30, 100, 35, 105], abs=0.01)


def test_forms_are_placed_on_the_page_and_not_followed_past_max_depth():
    # The page draws Fm0 moved by (100, 50); Fm0 draws a square and Fm1, each FmK (K >= 1) draws Fm(K+1), and
    # the last one a square.
    depth = MAX_FORM_DEPTH + 3
    forms = [b"10 10 5 5 re f /Fm1 Do"]
    forms += [b"/Fm%d Do" % (k + 1) for k in range(1, depth)] + [b"10 10 5 5 re f"]
    doc = _pdf(b"1 0 0 1 100 50 cm /Fm0 Do", forms)
    page = doc[0]
    try:
        objs = walk_objects(page, PAGE, 1000)
    finally:
        page.close()
        doc.close()
    assert len(objs.path_boxes) == 1 and objs.path_in_form.all()  # the square of Fm0, not the one too deep
    assert objs.path_boxes[0].tolist() == pytest.approx([110, 60, 115, 65], abs=0.01)  # in page space
    assert objs.n_objects == 1 + 2 + MAX_FORM_DEPTH - 1


def test_form_space_maps_to_page_space():
    m = compose((2, 0, 0, 2, 0, 0), (1, 0, 0, 1, 100, 50))  # scale by 2, then move
    assert m == (2, 0, 0, 2, 100, 50)
    assert transform((10, 10, 15, 15), m) == (120, 70, 130, 80)
    assert transform((10, 10, 15, 15), (0, 1, -1, 0, 0, 0)) == (-15, 10, -10, 15)  # a quarter turn
