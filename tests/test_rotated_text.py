"""Text rotated inside the content stream, with no ``/Rotate`` (issue 25, item 15).

A landscape table printed on a portrait page is drawn under ``q 0 1 -1 0 612 0 cm ... Q`` (or with a rotated
text matrix): PDFium's character boxes are upright in page space but the characters run down or up the page.
docrag measures the characters' angle and reads such a page in the frame where its text is upright: its
lines, columns and tables, the order of its text, and its words, whose boxes go back to where they are drawn.

The rotated pages here are the generated test pages (``docrag.testing.pdfgen``) drawn through a canvas that
turns everything by a quarter turn (counter-clockwise degrees) on a page of the turned size: the upright page
is their twin, and each should read, and route, like it.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from reportlab.pdfgen import canvas

from docrag.parsers import open_document
from docrag.parsers.words import span_words
from docrag.pipeline.router import route_page
from docrag.testing import pdfgen

_Canvas = canvas.Canvas


def _turned(make, path: Path, turn: int, rotate: int = 0) -> Path:
    """The one-page PDF ``make(path)`` draws, turned ``turn`` degrees counter-clockwise inside its content stream
    (one ``cm`` before everything), on a page of the turned size with a ``/Rotate`` of ``rotate`` (none: 0)."""

    class Turned(_Canvas):
        def __init__(self, filename, pagesize, **kw):
            w, h = pagesize
            size = (h, w) if turn in (90, 270) else (w, h)
            # reportlab writes the page size as displayed: the media box of a page shown turned is swapped
            super().__init__(filename, pagesize=size[::-1] if rotate % 180 else size, **kw)
            m = {0: (1, 0, 0, 1, 0, 0), 90: (0, 1, -1, 0, h, 0), 180: (-1, 0, 0, -1, w, h), 270: (0, -1, 1, 0, 0, w)}
            self.transform(*m[turn])
            if rotate:
                self.setPageRotation(rotate)

    with mock.patch.object(pdfgen.canvas, "Canvas", Turned):
        return make(path)


def _figure_pdf(path: Path) -> Path:
    """Prose around an embedded image (a 160 x 120 pixel gradient) and a small bar chart drawn in vectors."""
    from PIL import Image

    img = path.with_suffix(".png")
    Image.linear_gradient("L").resize((160, 120)).convert("RGB").save(img)
    c = canvas.Canvas(str(path), pagesize=(595.27, 841.89), invariant=1)
    c.setFont("Helvetica", 10)
    y = pdfgen._prose_lines(c, 72, 780, 95, 12)
    c.drawImage(str(img), 100, y - 230, width=240, height=180)
    for k in range(6):
        c.rect(380 + 25 * k, y - 230, 15, 30 + 20 * k, fill=1)
    pdfgen._prose_lines(c, 72, y - 260, 95, 12, seed=3)
    c.showPage()
    c.save()
    return path


def _label_pdf(path: Path) -> Path:
    """An upright page of prose with a small label turned 90° in the left margin (a rotated caption)."""
    c = _Canvas(str(path), pagesize=(595.27, 841.89), invariant=1)
    c.setFont("Helvetica", 10)
    pdfgen._prose_lines(c, 72, 780, 95, 50)
    c.saveState()
    c.translate(40, 300)
    c.rotate(90)
    c.setFont("Helvetica", 8)
    c.drawString(0, 0, "Preprint, not peer reviewed")
    c.restoreState()
    c.showPage()
    c.save()
    return path


def _read(path: Path):
    with open_document(path) as doc:
        page = doc.page(1)
        return page, route_page(page)


def _turn_box(box, turn: int, w: float, h: float):
    """A top-left box ``(x0, top, x1, bottom)`` of the upright ``w`` x ``h`` page, where the page turned ``turn``
    degrees counter-clockwise (on a page of the turned size) draws it."""
    x0, top, x1, bottom = box
    if turn == 90:  # the upright page's top edge is now its left edge
        return (top, w - x1, bottom, w - x0)
    if turn == 270:
        return (h - bottom, x0, h - top, x1)
    if turn == 180:
        return (w - x1, h - bottom, w - x0, h - top)
    return box


def _overlap(a, b) -> float:
    """Intersection over union of two boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    d = tmp_path_factory.mktemp("rotated")
    makers = {
        "prose": pdfgen.prose_pdf,
        "table": pdfgen.table_pdf,
        "unruled_table": pdfgen.unruled_table_pdf,
        "figure": _figure_pdf,
    }
    return {
        (name, turn): _turned(make, d / f"{name}_{turn}.pdf", turn)
        for name, make in makers.items()
        for turn in (0, 90, 180, 270)
    }


@pytest.mark.parametrize("turn", [90, 270, 180])
def test_rotated_prose_reads_in_lines_like_its_upright_twin(twins, turn):
    upright, r0 = _read(twins[("prose", 0)])
    page, r = _read(twins[("prose", turn)])
    assert page.signals.rotation == 0  # nothing says the page is turned but its characters
    assert page.text.splitlines() == upright.text.splitlines()  # the lines, in order (270° read them bottom up)
    assert page.text.startswith("On routing pages to the right index\nLate interaction models")
    s, s0 = page.signals, upright.signals
    # the runs are lines of words in the turned frame (not a character each, on two "lines" across the page)
    assert s.n_lines == s0.n_lines == 51
    assert s.median_segment_chars == s0.median_segment_chars and s.median_segment_chars > 60
    assert s.segments_per_line == s0.segments_per_line == 1.0
    assert [w.text for w in page.words] == [w.text for w in upright.words]  # whole words, in reading order
    assert (r.route, r.label) == (r0.route, r0.label) == ("text", "text"), r.reasons
    assert any(f"text turned {(360 - turn) % 360}° clockwise" in d for d in page.diagnostics), page.diagnostics


@pytest.mark.parametrize("name", ["table", "unruled_table"])
@pytest.mark.parametrize("turn", [90, 270, 180])
def test_rotated_table_routes_like_its_upright_twin(twins, name, turn):
    upright, r0 = _read(twins[(name, 0)])
    page, r = _read(twins[(name, turn)])
    s, s0 = page.signals, upright.signals
    assert (r.route, r.label) == (r0.route, r0.label) == ("visual", "layout"), r.reasons
    # each cell is its own text object: PDFium orders them along the line as the page would be displayed
    assert page.text.splitlines() == upright.text.splitlines()
    assert [w.text for w in page.words] == [w.text for w in upright.words]
    assert s.n_tables == s0.n_tables == 1
    assert (s.n_rules_h, s.n_unruled_tables) == (s0.n_rules_h, s0.n_unruled_tables)
    assert s.n_lines == s0.n_lines and s.aligned_columns == s0.aligned_columns
    assert s.table_share == pytest.approx(s0.table_share, abs=0.05)
    assert s.visual_share == pytest.approx(s0.visual_share, abs=0.05)
    # the table region is where the table is drawn on the turned page
    (box,) = [g.bbox for g in page.regions if g.kind == "table"]
    (box0,) = [g.bbox for g in upright.regions if g.kind == "table"]
    assert _overlap(box, _turn_box(box0, turn, upright.width_pt, upright.height_pt)) > 0.9


@pytest.mark.parametrize("turn", [90, 270, 180])
def test_word_boxes_land_where_the_words_are_drawn(twins, turn):
    upright, _ = _read(twins[("prose", 0)])
    with open_document(twins[("prose", turn)]) as doc:
        page = doc.page(1)
        image = np.asarray(page.render(72).convert("L"))
    w, h = upright.width_pt, upright.height_pt
    for k in (1, 9, 40):  # "routing" in the heading, and two words of the prose
        word, word0 = page.words[k], upright.words[k]
        assert word.text == word0.text
        assert _overlap(word.bbox, _turn_box(word0.bbox, turn, w, h)) > 0.8, (word, word0)
        x0, top, x1, bottom = (round(v) for v in word.bbox)
        assert (image[top:bottom, x0:x1] < 128).mean() > 0.05  # ink under the box: the word is drawn there
    # the words the search shows (fractions of the page as drawn) say the same
    shown = span_words(page.words, page.width_pt, page.height_pt)
    x0, top, x1, bottom = page.words[1].bbox
    assert shown[1][0] == "routing"
    assert shown[1][1:] == pytest.approx(
        (x0 / page.width_pt, top / page.height_pt, x1 / page.width_pt, bottom / page.height_pt)
    )


@pytest.mark.parametrize("turn", [90, 270, 180])
def test_figures_and_drawings_land_where_they_are_drawn(twins, turn):
    upright, r0 = _read(twins[("figure", 0)])
    page, r = _read(twins[("figure", turn)])
    w, h = upright.width_pt, upright.height_pt
    assert len(page.figures) == len(upright.figures) == 1
    assert _overlap(page.figures[0].bbox, _turn_box(upright.figures[0].bbox, turn, w, h)) > 0.95
    kinds = sorted(g.kind for g in upright.regions)
    assert sorted(g.kind for g in page.regions) == kinds and "graphics" in kinds
    for kind in set(kinds):
        (box0,) = [g.bbox for g in upright.regions if g.kind == kind]
        (box,) = [g.bbox for g in page.regions if g.kind == kind]
        assert _overlap(box, _turn_box(box0, turn, w, h)) > 0.95, kind
    assert page.signals.visual_share == pytest.approx(upright.signals.visual_share, abs=0.03)
    assert (r.route, r.label) == (r0.route, r0.label)


def test_a_page_whose_rotate_shows_its_turned_text_upright(twins, tmp_path):
    """LaTeX's pdflscape: the content turned a quarter turn, and a /Rotate that turns it back for the reader."""
    upright, r0 = _read(twins[("unruled_table", 0)])
    page, r = _read(_turned(pdfgen.unruled_table_pdf, tmp_path / "lscape.pdf", 90, rotate=90))
    assert page.signals.rotation == 90
    assert any(
        "270° clockwise in the page's content (the page's /Rotate shows it upright)" in d for d in page.diagnostics
    )
    assert page.text.splitlines() == upright.text.splitlines()
    assert [w.text for w in page.words] == [w.text for w in upright.words]
    s, s0 = page.signals, upright.signals
    assert (s.n_lines, s.aligned_columns, s.n_unruled_tables) == (s0.n_lines, s0.aligned_columns, s0.n_unruled_tables)
    assert (r.route, r.label) == (r0.route, r0.label)


def test_a_rotated_label_on_an_upright_page_changes_nothing_else(twins, tmp_path):
    page, r = _read(_label_pdf(tmp_path / "label.pdf"))
    upright, _ = _read(twins[("prose", 0)])
    s = page.signals
    assert not any("text turned" in d for d in page.diagnostics)
    lines = page.text.splitlines()
    assert lines[:50] == upright.text.splitlines()[1:51]  # the prose, upright, as it was
    assert "Preprint, not peer reviewed" in page.text
    assert s.median_segment_chars > 60 and s.segments_per_line < 1.1
    assert [w.text for w in page.words[:20]] == [w.text for w in upright.words[7:27]]
    assert (r.route, r.label) == ("text", "text"), r.reasons
