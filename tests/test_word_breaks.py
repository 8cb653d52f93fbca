"""Word breaks that the text layer has no space for (issue 25, item 9).

Ghostscript writes PostScript's word spacing as character spacing (``Tc``) over the few letters around each
gap, with no space character: ``(gi) Tj (ve) Tj 3.1 Tc (nn) Tj 0 Tc (umeric) Tj``. PDFium makes no space of
such a gap, and the words run together ("givennumeric"); docrag finds the gap in the character boxes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

import docrag.parsers.pdf_text as pdf_text
from docrag.parsers import open_document
from docrag.testing import pdfgen

SENTENCE = "Here is a venn diagram produced with Asymptote, drawn to width 4cm"


def _pdf(path: Path, content: bytes, fonts: tuple[bytes, ...] = ()) -> Path:
    """A one-page PDF with ``content`` as its content stream, Helvetica as /F1 and ``fonts`` as /F2, ..."""
    fonts = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", *fonts)
    names = b" ".join(b"/F%d %d 0 R" % (i + 1, 5 + i) for i in range(len(fonts)))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << %s >> >> >>"
    path.write_bytes(
        pdfgen.raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                page % names,
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                *fonts,
            ]
        )
    )
    return path


def _spaced_by_tc(text: str, x: float, y: float, size: float = 10.0, space: float = 0.3) -> bytes:
    """``text`` drawn without its spaces, Ghostscript's way: each word gap is the character spacing (``Tc``,
    ``space`` ems) of a string of the letters on either side of it; the other letters go in strings of
    their own, each string placed where the one before it ends."""
    letters, gaps = [], []
    for word in text.split():
        gaps[-1:] = [space * size] if gaps else []
        letters += word
        gaps += [0.0] * len(word)
    pieces: list[tuple[str, float]] = []  # (letters, Tc): chains of letters with a gap after each but the last
    i = 0
    while i < len(letters):
        j = i
        if gaps[i]:
            while gaps[j]:
                j += 1
        else:
            while j + 1 < len(letters) and not gaps[j + 1]:
                j += 1
        pieces.append(("".join(letters[i : j + 1]), gaps[i]))
        i = j + 1
    out = [b"BT /F1 %g Tf" % size]
    for s, tc in pieces:
        out.append(b"%.3f Tc 1 0 0 1 %.3f %.3f Tm (%s) Tj" % (tc, x, y, s.encode()))
        x += stringWidth(s, "Helvetica", size) + tc * (len(s) - 1)
    return b"\n".join([*out, b"0 Tc ET"])


def _page(path: Path):
    with open_document(path) as doc:
        return doc.page(1)


def test_words_set_apart_by_character_spacing_get_their_spaces(tmp_path):
    content = _spaced_by_tc(SENTENCE, 72, 700) + b"\nBT /F1 10 Tf 72 680 Td (An ordinary line, with spaces.) Tj ET"
    page = _page(_pdf(tmp_path / "tc.pdf", content))
    words = SENTENCE.split()
    lines = page.text.splitlines()
    assert lines == [SENTENCE, "An ordinary line, with spaces."], page.text  # was "Hereisavenndiagram..."
    assert page.signals.n_words == len(words) + 5
    assert [w.text for w in page.words][: len(words)] == words  # the word boxes break where the text does
    # The spans (one per text object: "Her", "ei", "sav", ...) break there too: none straddles two words.
    tokens = [t for s in page.spans if s.bbox[3] < 792 - 690 for t in s.text.split()]
    assert "".join(tokens) == "".join(words)
    assert all(any(t in w for w in words) for t in tokens), tokens


def test_pages_with_their_spaces_are_unchanged(tmp_path, monkeypatch):
    """Text with space characters, words apart by TJ kerning (justified), kerning inside words, a heading set
    with letter spacing, and Chinese written with character spacing: nothing to add, whether PDFium made its
    spaces or the text has them (or, between Chinese characters, has none by design)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    files = [pdfgen.prose_pdf(tmp_path / "prose.pdf"), pdfgen.typeset_pdf(tmp_path / "typeset.pdf")]
    files += [pdfgen.table_pdf(tmp_path / "table.pdf"), pdfgen.refcard_pdf(tmp_path / "refcard.pdf")]
    content = b"\n".join(
        [
            b"BT /F1 10 Tf 72 700 Td [(Justified) -420 (lines) -380 (of) -450 (words) -333 (apart)] TJ ET",
            b"BT /F1 10 Tf 72 680 Td [(W) 80 (a) 40 (v) 60 (es) -20 (, T) 70 (o) 60 (y) 30 (s)] TJ ET",
            b"BT /F1 14 Tf 72 650 Td 4 Tc (LETTERSPACED) Tj 0 Tc ET",
            b"BT /F1 10 Tf 72 630 Td 3 Tc [(wide)] TJ 0 Tc ( and narrow) Tj ET",
        ]
    )
    files.append(_pdf(tmp_path / "kerned.pdf", content))
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(tmp_path / "cjk.pdf"), invariant=1)
    t = c.beginText(72, 700)
    t.setFont("STSong-Light", 12)
    t.textOut("中文")
    t.setCharSpace(4)  # PDFium makes no space of this gap either: two characters set apart by Tc
    t.textOut("字符")
    t.setCharSpace(0)
    t.textOut("检索")
    c.drawText(t)
    c.showPage()
    c.save()
    files.append(tmp_path / "cjk.pdf")

    def read(path: Path) -> list:
        with open_document(path) as doc:
            return [
                (p.text, [(s.text, s.bbox) for s in p.spans], [(w.text, w.bbox) for w in p.words], p.signals.to_dict())
                for p in doc.pages()
            ]

    found = [read(f) for f in files]
    assert "中文字符" in found[-1][0][0]
    assert "Justified lines of words apart" in found[-2][0][0] and "LETTERSPACED" in found[-2][0][0]
    monkeypatch.setattr(pdf_text, "WORD_GAP", float("inf"))  # no word breaks of docrag's own
    for f, pages in zip(files, found, strict=True):
        assert read(f) == pages, f.name


@pytest.mark.parametrize("bounded", [True, False])
def test_spans_break_the_same_on_either_path(tmp_path, monkeypatch, bounded):
    """A page with word breaks takes the one-pass spans whatever its size."""
    import docrag.parsers.pdf as pdf_parser

    monkeypatch.setattr(pdf_parser, "BOUNDED_TEXT_MAX_WORK", 10**18 if bounded else -1)
    page = _page(_pdf(tmp_path / "tc.pdf", _spaced_by_tc("one pass or bounded text", 72, 700)))
    assert page.text == "one pass or bounded text"
    assert "".join(s.text for s in page.spans).replace(" ", "") == "onepassorboundedtext"
    assert any(" " in s.text for s in page.spans)


def test_two_letters_break_at_a_table_gap_only(tmp_path):
    """Two letters alone have no usual gap to compare with: they break where the gap is a table's (a cell of
    "3" and a cell of "0" written as one string with character spacing), not at a word gap (or letter-spaced
    "xy")."""
    content = _spaced_by_tc("3 0", 72, 700, space=2.0) + b"\n" + _spaced_by_tc("x y", 72, 680)
    page = _page(_pdf(tmp_path / "cells.pdf", content))
    assert page.text == "3 0\nxy"  # was "30\nxy"
    assert [w.text for w in page.words] == ["3", "0", "xy"]
