"""Layout signals on generated pages: whitespace columns, reference cards, Form XObject drawings, small boxes.

Values are also pinned in tests/golden/ (test_parsers.py); here each signal is checked for what it means.
"""

from __future__ import annotations

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from docrag.parsers import open_document
from docrag.parsers.layout import line_geometry
from docrag.pipeline.router import route_page


def _page(path):
    with open_document(path) as doc:
        page = doc.page(1)
        return page, route_page(page)


def test_unruled_table_shows_whitespace_columns(docs):
    page, r = _page(docs["unruled_table"])
    s = page.signals
    assert s.n_rules_h == 0 and s.n_rules_v == 0 and s.n_paths == 0  # nothing drawn
    assert s.n_tables == s.n_unruled_tables == 1 and s.table_share >= 0.5
    assert s.aligned_columns >= 3  # the function, distribution, parameters and support columns
    assert s.aligned_line_share >= 0.6 and s.multi_segment_lines >= 0.6
    assert s.short_segment_share >= 0.8
    assert (r.route, r.label) == ("visual", "layout"), r.reasons
    assert any("without rules (cells aligned by whitespace)" in x for x in r.reasons), r.reasons


def test_reference_card_has_four_columns_of_terse_entries(docs):
    page, r = _page(docs["refcard"])
    s = page.signals
    assert s.width_pt > s.height_pt and s.n_images == 0 and s.n_paths == 0
    assert s.n_columns == 4
    assert s.aligned_line_share >= 0.9 and s.segments_per_line >= 4
    assert s.median_segment_chars <= 16
    assert (r.route, r.label) == ("visual", "layout"), r.reasons


def test_diagram_inside_a_form_xobject_is_placed_on_the_page(docs):
    page, r = _page(docs["form_diagram"])
    s = page.signals
    assert s.n_form_paths == s.n_paths == 2  # a 3-D box as one long path, and a ring
    assert s.drawing_extent_share >= 0.2 and s.visual_share >= 0.2
    graphics = [reg.bbox for reg in page.regions if reg.kind == "graphics"]  # the box and the ring
    assert len(graphics) == 2
    # form space (0..155 x -8..55) scaled 2.4 and moved to x=110: page space
    x0, top = min(b[0] for b in graphics), min(b[1] for b in graphics)
    x1, bottom = max(b[2] for b in graphics), max(b[3] for b in graphics)
    assert 100 < x0 < 115 and 450 < x1 < 500 and x1 - x0 > 300
    assert 0 < top < bottom < page.height_pt
    assert (r.route, r.label) == ("visual", "layout"), r.reasons


def test_prose_with_a_small_boxed_table_stays_text(docs):
    page, r = _page(docs["prose_small_table"])
    s = page.signals
    assert s.aligned_columns == 0 and s.multi_segment_lines < 0.1
    assert s.visual_share < 0.05
    assert (r.route, r.label) == ("text", "text"), r.reasons


def test_space_padded_rows_split_into_cells(tmp_path):
    """A table row written as one string padded with spaces is still cells: gaps are measured per character."""
    path = tmp_path / "padded.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Courier", 9)
    for i in range(20):
        c.drawString(72, 760 - 12 * i, f"row{i:<6}        {i * 37:>6}        {i * 0.5:>6.1f}        x{i}")
    c.showPage()
    c.save()
    with open_document(path) as doc:
        s = doc.page(1).signals
    assert s.segments_per_line >= 3.5 and s.aligned_columns >= 3
    assert s.numeric_segment_share >= 0.4


def test_dot_leaders_do_not_make_cells(tmp_path):
    path = tmp_path / "toc.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 10)
    for i in range(25):
        title = f"Chapter {i + 1}: on the routing of pages"
        c.drawString(72, 760 - 14 * i, title + " " + "." * 60)
        c.drawRightString(520, 760 - 14 * i, str(3 + 7 * i))
    c.showPage()
    c.save()
    with open_document(path) as doc:
        s = doc.page(1).signals
    assert s.segments_per_line <= 2.2  # title, page number: the dots are dropped
    assert s.toc_line_share >= 0.9


def test_line_geometry_tells_two_columns_of_prose_from_a_table():
    words = "the router reads every page of the collection and decides where it belongs".split()
    prose = []
    for i in range(30):  # two columns of full lines, one run per line
        y = 700 - 12 * i
        prose.append((72, y, 290, y + 10, " ".join(words[: 10 + i % 3])))
        prose.append((310, y, 528, y + 10, " ".join(words[: 11 - i % 2])))
    g = line_geometry(prose)
    assert g.n_lines == 30 and g.n_columns == 2
    assert g.multi_segment_lines == 0.0 and g.short_segment_share < 0.1
    table = []
    for i in range(30):  # five short cells per line
        y = 700 - 12 * i
        table += [(72 + 100 * j, y, 72 + 100 * j + 30 + (i * j) % 20, y + 10, f"{i * j}") for j in range(5)]
    t = line_geometry(table)
    assert t.n_lines == 30 and t.multi_segment_lines == 1.0
    assert t.aligned_columns >= 4 and t.aligned_line_share == 1.0
    assert t.numeric_segment_share == 1.0


def test_line_geometry_of_nothing_is_zero():
    g = line_geometry([])
    assert g.n_lines == 0 and g.aligned_columns == 0
    assert line_geometry([(0, 0, 0, 0, "x"), (float("nan"), 0, 1, 1, "y")]).n_lines == 0


def test_one_character_and_far_away_text_parse(tmp_path):
    """A page of one character, and text placed far off the page, parse without error in bounded memory."""
    path = tmp_path / "odd.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.drawString(72, 700, "x")
    c.showPage()
    c.drawString(72, 700, "near the margin")
    c.drawString(72, 688, "and the next line")
    c.drawString(1.5e8, 676, "far away")
    c.showPage()
    c.save()
    with open_document(path) as doc:
        one, far = doc.page(1), doc.page(2)
    assert one.signals.n_chars == 1 and one.signals.n_lines == 1
    assert far.signals.n_lines >= 2
    g = line_geometry([(10, 700, 50, 710, "a"), (1.5e8, 700, 1.5e8 + 20, 710, "b"), (10, 680, 50, 690, "c")])
    assert g.n_lines == 2
