"""Parser behaviour on generated PDFs: text with positions, signals, figures, rendering, golden files.

Golden files live in tests/golden/; regenerate them with ``DOCRAG_UPDATE_GOLDEN=1 pytest tests/test_parsers.py``
after an intended change, and review the diff.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

import docrag.parsers.pdf as pdf_parser
from docrag.config import Limits
from docrag.parsers import DocumentError, discover, list_documents, open_document
from docrag.pipeline.router import route_page
from docrag.testing import pdfgen

GOLDEN = Path(__file__).parent / "golden"
FLOAT_TOL = 0.02  # absolute, for coverage fractions and sizes rounded by the parser
UPDATE = os.environ.get("DOCRAG_UPDATE_GOLDEN") == "1"
GOLDEN_NAMES = [
    "prose",
    "rotated",
    "code",
    "table",
    "chart",
    "slide",
    "scan",
    "scan_ocr",
    "photo_png",
    "scan_png",
    "unruled_table",
    "refcard",
    "form_diagram",
    "prose_small_table",
]


def _snapshot(path: Path) -> dict:
    with open_document(path) as doc:
        page = doc.page(1)
        r = route_page(page)
        return {
            "n_pages": doc.n_pages,
            "text_head": " ".join(page.text.split())[:120],
            "n_spans": len(page.spans),
            "n_figures": len(page.figures),
            "regions": sorted(reg.kind for reg in page.regions),
            "route": r.route,
            "label": r.label,
            "signals": page.signals.to_dict(),
        }


def _compare(actual, expected, where=""):
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{where}: keys differ"
        for k in expected:
            _compare(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert math.isclose(actual, expected, abs_tol=FLOAT_TOL), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden(docs, name):
    snap = _snapshot(docs[name])
    golden = GOLDEN / f"{name}.json"
    if UPDATE or not golden.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {golden}; run with DOCRAG_UPDATE_GOLDEN=1 to create it")
        golden.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    _compare(snap, json.loads(golden.read_text()), name)


def test_text_layer_has_positions_inside_the_page(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
    assert page.text.startswith("On routing pages to the right index")
    assert len(page.spans) > 40
    first = page.spans[0]
    assert first.text.startswith("On routing pages")
    x0, top, x1, bottom = first.bbox
    assert 60 < x0 < 80 and 50 < top < 70 and x1 > x0 and bottom > top  # top-left origin, points
    for s in page.spans:
        assert 0 <= s.bbox[0] <= s.bbox[2] <= page.width_pt + 1
        assert 0 <= s.bbox[1] <= s.bbox[3] <= page.height_pt + 1


def test_signals_separate_kinds_of_page(docs):
    sig = {}
    for name in ("prose", "code", "table", "chart", "scan", "scan_ocr", "rotated"):
        with open_document(docs[name]) as doc:
            sig[name] = doc.page(1).signals
    assert sig["prose"].n_chars > 2000 and sig["prose"].text_coverage > 0.2
    assert sig["prose"].visual_share == 0 and sig["prose"].n_images == 0
    assert sig["code"].mono_text_fraction > 0.9 and sig["prose"].mono_text_fraction == 0
    assert sig["table"].n_tables == 1 and sig["table"].n_rules_h >= 3 and sig["table"].table_share > 0.3
    assert sig["chart"].n_graphics_regions >= 1 and sig["chart"].n_paths > 30 and sig["chart"].n_tables == 0
    assert sig["scan"].n_chars == 0 and sig["scan"].largest_image_coverage > 0.95
    assert (sig["scan"].pixel_width, sig["scan"].pixel_height) == (1240, 1754)
    assert sig["scan_ocr"].invisible_text_fraction == 1.0 and sig["scan_ocr"].n_chars > 1000
    assert sig["scan_ocr"].text_coverage == 0  # invisible text does not count as visible text
    assert sig["rotated"].rotation == 90 and sig["prose"].rotation == 0


def test_scan_ocr_page_keeps_a_diagnostic(docs):
    with open_document(docs["scan_ocr"]) as doc:
        page = doc.page(1)
    assert any("invisible" in d for d in page.diagnostics)


def test_figures_are_embedded_images_with_boxes(docs):
    with open_document(docs["scan"]) as doc:
        (fig,) = doc.page(1).figures
    assert (fig.width_px, fig.height_px) == (1240, 1754)
    assert fig.bbox[0] == pytest.approx(0, abs=1) and fig.bbox[2] == pytest.approx(595.3, abs=1)


def test_rendering_respects_dpi_rotation_and_the_pixel_cap(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
        img = page.render(72)
        assert img.mode == "RGB" and abs(img.size[0] - 595) <= 1 and abs(img.size[1] - 842) <= 1
    with open_document(docs["rotated"]) as doc:
        page = doc.page(1)
        img = page.render(72)
    # The generator draws a portrait page as a landscape MediaBox with /Rotate 90: boxes are in the
    # unrotated (landscape) space, and rendering applies the rotation (portrait, as displayed).
    assert page.width_pt > page.height_pt
    assert img.height > img.width
    with open_document(docs["prose"], Limits(max_render_pixels=100_000)) as doc:
        img = doc.page(1).render(300)
        assert img.width * img.height <= 100_000 and img.width > 200


def test_render_after_close_is_a_clear_error(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
    with pytest.raises(DocumentError, match="closed"):
        page.render(50)


def test_pages_stream_one_at_a_time(docs):
    with open_document(docs["multi"]) as doc:
        assert doc.n_pages == 3
        numbers = [p.number for p in doc.pages()]
    assert numbers == [1, 2, 3]


def test_max_pages_caps_and_warns(docs):
    with open_document(docs["multi"], Limits(max_pages=2)) as doc:
        assert doc.n_pages == 2
        assert "only the first 2" in doc.warnings[0]


def test_image_files_are_documents(docs, tmp_path):
    from PIL import Image

    tiff = tmp_path / "two.tiff"
    a = Image.open(docs["scan_png"]).convert("L")
    a.save(tiff, save_all=True, append_images=[Image.open(docs["photo_png"])])
    with open_document(tiff) as doc:
        assert doc.n_pages == 2
        pages = list(doc.pages())
    assert [p.signals.source for p in pages] == ["image", "image"]
    assert [route_page(p).label for p in pages] == ["scanned", "text"]
    with open_document(docs["photo_png"]) as doc:
        img = doc.page(1).render(72)
    assert img.size == (640, 480)


def test_discover_recurses_and_flags_unsupported(tmp_path, docs):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.pdf").write_bytes(docs["prose"].read_bytes())
    (tmp_path / "notes.xyz").write_text("x")  # an unknown suffix: never read as text
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.pdf").write_bytes(b"x")
    found = {f.path.name: f.supported for f in discover([tmp_path])}
    assert found == {"a.pdf": True, "notes.xyz": False}


def test_listing_leaves_out_what_it_is_told_however_it_is_spelt(tmp_path, docs):
    (tmp_path / "db" / "documents.lance").mkdir(parents=True)
    (tmp_path / "db" / "documents.lance" / "0.manifest").write_bytes(b"x")
    (tmp_path / "db" / "a.pdf").write_bytes(docs["prose"].read_bytes())
    (tmp_path / "b.pdf").write_bytes(docs["prose"].read_bytes())
    spelt = tmp_path / "db" / ".." / "db" / "documents.lance"
    listing = list_documents([tmp_path], exclude=[spelt, tmp_path / "no-such"])
    assert listing.excluded == [str(tmp_path / "db" / "documents.lance")]
    assert sorted(p.name for p in listing.files) == ["a.pdf", "b.pdf"] and listing.not_documents == []


# --- text layers that used to cost rectangles x characters -------------------------------------------------


def _one_page_pdf(
    path: Path,
    content: bytes,
    size: tuple[int, int] = (612, 792),
    fonts: list[bytes] | None = None,
    more: tuple[bytes, ...] = (),
) -> Path:
    """A one-page PDF with ``content`` as its content stream and Helvetica as /F1 (or ``fonts`` as /F1, /F2, ...,
    objects 5, 6, ...; then the objects ``more``)."""
    fonts = fonts or [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    names = b" ".join(b"/F%d %d 0 R" % (i + 1, 5 + i) for i in range(len(fonts)))
    path.write_bytes(
        pdfgen.raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R /Resources << /Font << %s >> >> >>"
                % (*size, names),
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                *fonts,
                *more,
            ]
        )
    )
    return path


def _small_words_pdf(path: Path, n_words: int = 200_000, size: float = 2.0) -> list[str]:
    """One 1800 x 1800 pt page of ``n_words`` words of ``size``-pt Helvetica, 80 a line; returns the words."""
    rng = random.Random(0)
    words = [rng.choice(pdfgen.WORDS) for _ in range(n_words)]
    lines = (" ".join(words[i : i + 80]).encode() for i in range(0, n_words, 80))
    content = b"BT /F1 %.1f Tf %.2f TL 10 1790 Td\n" % (size, size * 1.2) + b"\n".join(b"(%s) '" % ln for ln in lines)
    _one_page_pdf(path, content + b"\nET", size=(1800, 1800))
    return words


def test_a_page_of_200000_small_words_parses_in_bounded_time(tmp_path):
    words = _small_words_pdf(tmp_path / "small_words.pdf")
    start = time.perf_counter()
    with open_document(tmp_path / "small_words.pdf") as doc:
        page = doc.page(1)
    assert time.perf_counter() - start < 60  # a hang guard: spans used to cost rectangles x characters (minutes)
    assert page.text.split() == words and page.signals.n_words == len(words)  # the text stays whole
    # 1.4M characters, over the default max_page_chars: the first 200,000 are measured, and the page says so.
    assert any("only the first 200,000 of" in d and "(max_page_chars)" in d for d in page.diagnostics)
    with open_document(tmp_path / "small_words.pdf", Limits(max_page_chars=5_000)) as doc:
        capped = doc.page(1)
    assert capped.text == page.text
    assert any(d.startswith("only the first 5,000 of 1,3") for d in capped.diagnostics)
    measured = " ".join(s.text for s in capped.spans).split()
    assert 0 < len(capped.spans) < len(page.spans) and measured[:-1] == words[: len(measured) - 1]


def _overlapping_text_pdf(path: Path) -> Path:
    """Text whose boxes overlap other text: lines closer than their glyphs are tall, glyphs kerned into each
    other (one object each), text drawn twice, raised and rotated text."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica-Bold", 12)
    for dx in (0, 0.3):
        c.drawString(72 + dx, 800, "Heading drawn twice")
    t = c.beginText(72, 780)
    t.setFont("Times-Roman", 10)
    t.setLeading(7)
    for line in pdfgen._sentences(6, seed=4):
        t.textLine(line + " gjpqy Tfhkl")
    c.drawText(t)
    c.setFont("Helvetica-Oblique", 11)
    for i, ch in enumerate("Waffles AVAWAY fjord"):
        c.drawString(72 + 5.2 * i, 700, ch)
    t = c.beginText(72, 680)
    t.setFont("Helvetica", 10)
    t.textOut("E = mc")
    t.setRise(4)
    t.textOut("2")
    t.setRise(0)
    t.setCharSpace(-1.5)
    t.textOut(" squeezed letters")
    c.drawText(t)
    for angle in (30, 90, 200):
        c.saveState()
        c.translate(300, 400)
        c.rotate(angle)
        c.drawString(0, 0, f"rotated by {angle} degrees")
        c.restoreState()
    c.showPage()
    c.save()
    return path


def test_one_pass_spans_are_pdfium_bounded_text(docs, tmp_path, monkeypatch):
    """Small pages take their spans from PDFium's get_text_bounded, larger ones from the one-pass grid: the
    two must agree exactly, foreign characters of overlapping neighbours and PDFium's line breaks included."""
    files = [docs[k] for k in ("prose", "rotated", "code", "table", "chart", "slide", "scan_ocr", "multi")]
    files.append(_overlapping_text_pdf(tmp_path / "overlap.pdf"))

    def spans(path: Path) -> list:
        with open_document(path) as doc:
            return [([(s.text, s.bbox) for s in p.spans], p.signals.to_dict(), p.diagnostics) for p in doc.pages()]

    monkeypatch.setattr(pdf_parser, "BOUNDED_TEXT_MAX_WORK", 10**18)
    bounded = [spans(f) for f in files]
    assert any("\r\n" in text for text, _ in bounded[-1][0][0])  # overlapping lines do take each other's text
    monkeypatch.setattr(pdf_parser, "BOUNDED_TEXT_MAX_WORK", -1)
    for f, expected in zip(files, bounded, strict=True):
        assert spans(f) == expected, f.name


def test_text_drawn_over_itself_thousands_of_times_stays_bounded(tmp_path):
    lines = b"\n".join(b"1 0 0 1 72 700 Tm (overlapping words here %d) Tj" % i for i in range(3000))
    pdf = _one_page_pdf(tmp_path / "stacked.pdf", b"BT /F1 10 Tf\n" + lines + b"\nET")
    start = time.perf_counter()
    with open_document(pdf) as doc:
        page = doc.page(1)
    assert time.perf_counter() - start < 60
    assert any("overlaps heavily" in d for d in page.diagnostics)
    assert len(page.spans) == 3000 and page.spans[-1].text == "overlapping words here 2999"


def test_a_page_of_leading_control_characters_keeps_its_text(tmp_path):
    """3,000 characters mapped to U+0002 (which PDFium leaves out of the text) before the words: reading the
    text must not step over them one recursive call at a time."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def 1 begincodespacerange"
        b" <00> <FF> endcodespacerange 1 beginbfchar <41> <0002> endbfchar endcmap"
        b" CMapName currentdict /CMap defineresource pop end end"
    )
    fonts = [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 7 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    to_unicode = b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream"
    content = b"BT /F1 10 Tf 72 700 Td (" + b"A" * 3000 + b") Tj 0 -20 Td /F2 10 Tf (visible words after) Tj ET"
    with open_document(_one_page_pdf(tmp_path / "control.pdf", content, fonts=fonts, more=(to_unicode,))) as doc:
        page = doc.page(1)
    assert page.text.strip() == "visible words after"


def test_thousands_of_rule_groups_are_checked_up_to_a_cap(tmp_path):
    rules = []
    for i in range(300):  # 300 pairs of rules, each pair its own x-extent: 300 candidate tables
        x0 = 10 + 5 * (i % 50)
        x1 = x0 + 100 + 5 * (i // 50)
        rules += [b"%d 100 m %d 100 l S" % (x0, x1), b"%d 120 m %d 120 l S" % (x0, x1)]
    with open_document(_one_page_pdf(tmp_path / "rules.pdf", b"\n".join(rules))) as doc:
        page = doc.page(1)
    assert page.signals.n_rules_h == 600
    cap = f"only the first {pdf_parser.MAX_TABLE_CANDIDATES} of 300 groups of ruling lines were checked for tables"
    assert cap in page.diagnostics


def test_rule_grouping_matches_first_fit(tmp_path):
    """_table_regions groups rules through a grid; the result is the first-fit grouping it replaced."""

    def first_fit(rules):
        groups = []
        for rule in sorted(rules, key=lambda b: (round(b[0]), round(b[2]))):
            for g in groups:
                if abs(g[0][0] - rule[0]) <= 4 and abs(g[0][2] - rule[2]) <= 4:
                    g.append(rule)
                    break
            else:
                groups.append([rule])
        return groups

    rng = random.Random(1)
    for _ in range(200):
        rules = []
        for _ in range(rng.randint(0, 60)):
            x0 = rng.choice([rng.uniform(0, 40), rng.randint(0, 10) * 4.0, 100.0])
            y = rng.uniform(0, 800)
            rules.append((x0, y, x0 + rng.choice([rng.uniform(80, 90), 200.0, 204.0, 196.5]), y + 0.5))
        expected = []
        for g in first_fit(rules):
            ys = sorted((b[1] + b[3]) / 2 for b in g)
            if len(g) >= 2 and ys[-1] - ys[0] >= 12 and not (len(g) == 2 and ys[-1] - ys[0] > 0.45 * 800):
                expected.append(((min(b[0] for b in g), ys[0], max(b[2] for b in g), ys[-1]), len(g)))
        assert pdf_parser._table_regions(rules, 800) == expected
