"""Small PDFs and images the tests generate (no test reads files from outside the repo).

Each builder writes one file and returns its path. Content is deterministic.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfgen import canvas

WORDS = (
    "retrieval page index query model vector layout table figure chart scanned document text embedding "
    "search ranking fusion router signal image patch score token chunk corpus library engine storage"
).split()

PROSE = (
    "Late interaction models compare every query token with every image patch of a page and keep the best "
    "match for each token. Ordinary prose pages are served well by text embeddings and by a lexical index "
    "over the words they contain, which costs far less to compute and to store."
)


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 14))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def _prose_lines(c: canvas.Canvas, x: float, y: float, width_chars: int, n_lines: int, seed: int = 0) -> float:
    text = PROSE + " " + " ".join(_sentences(80, seed))
    words, line, lines = text.split(), "", []
    for w in words:
        if len(line) + len(w) + 1 > width_chars:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    for ln in lines[:n_lines]:
        c.drawString(x, y, ln)
        y -= 13
    return y


def prose_pdf(path: Path, rotate: int = 0) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    if rotate:
        c.setPageRotation(rotate)
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, 780, "On routing pages to the right index")
    c.setFont("Helvetica", 10)
    _prose_lines(c, 72, 755, 95, 50)
    c.showPage()
    c.save()
    return path


def code_pdf(path: Path) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Courier", 9)
    y = 780
    for i in range(45):
        c.drawString(72, y, f"R> fit{i} <- lm(y ~ x{i % 5} + z, data = d{i % 3})   # residual {i * 0.37:.2f}")
        y -= 12
    c.showPage()
    c.save()
    return path


def table_pdf(path: Path) -> Path:
    """A paragraph, then a ruled (booktabs-like) numeric table over ~40% of the page."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 10)
    y = _prose_lines(c, 72, 780, 95, 8)
    c.drawString(200, y - 10, "Table 1: Simulation results by model and sample size.")
    top = y - 25
    rows = 22
    c.setLineWidth(0.8)
    c.line(100, top, 500, top)
    c.drawString(110, top - 14, "model")
    for j, h in enumerate(("n", "nDCG@5", "recall@5", "MRR")):
        c.drawString(210 + 70 * j, top - 14, h)
    c.setLineWidth(0.4)
    c.line(100, top - 20, 500, top - 20)
    rng = random.Random(3)
    yy = top - 34
    for i in range(rows):
        c.drawString(110, yy, ("colpali", "colqwen", "nomic", "bm25")[i % 4])
        c.drawString(210, yy, str(50 * (i + 1)))
        for j in range(3):
            c.drawString(280 + 70 * j, yy, f"{rng.random():.3f}")
        yy -= 13
    c.setLineWidth(0.8)
    c.line(100, yy + 5, 500, yy + 5)
    c.setFont("Helvetica", 10)
    _prose_lines(c, 72, yy - 20, 95, 6, seed=2)
    c.showPage()
    c.save()
    return path


def chart_pdf(path: Path) -> Path:
    """A paragraph and a vector bar chart with axes, ticks and gridlines (~40% of the page)."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 10)
    _prose_lines(c, 72, 780, 95, 10)
    x0, y0, w, h = 110, 300, 380, 300
    c.setLineWidth(0.5)
    c.rect(x0, y0, w, h)
    for k in range(1, 6):  # gridlines
        c.setDash(2, 2)
        c.line(x0, y0 + k * h / 6, x0 + w, y0 + k * h / 6)
    c.setDash()
    rng = random.Random(7)
    for i in range(16):
        bh = rng.uniform(0.1, 0.9) * h
        c.setFillGray(0.3 + 0.04 * i)
        c.rect(x0 + 8 + i * 23, y0, 16, bh, fill=1, stroke=1)
        c.line(x0 + 16 + i * 23, y0, x0 + 16 + i * 23, y0 - 4)  # ticks
    c.setFillGray(0)
    c.setFont("Helvetica", 7)
    for i in range(16):
        c.drawString(x0 + 10 + i * 23, y0 - 12, f"Q{i + 1}")
    c.drawString(200, y0 - 30, "Figure 1: Pages per second by quarter.")
    c.showPage()
    c.save()
    return path


def slide_pdf(path: Path) -> Path:
    c = canvas.Canvas(str(path), pagesize=(960, 540), invariant=1)
    c.setFont("Helvetica-Bold", 40)
    c.drawString(60, 450, "Why route pages?")
    c.setFont("Helvetica", 26)
    for i, b in enumerate(("Scans need vision", "Tables need layout", "Prose needs text", "Fuse the legs")):
        c.drawString(90, 360 - 60 * i, f"• {b}")
    c.showPage()
    c.save()
    return path


def scan_image(seed: int = 5, size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """A grey 'scanned page': dark text-like strokes on noisy paper, slightly blurred."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.full((h, w), 235, dtype=np.float32)
    for row in range(150, h - 150, 34):
        x = 120
        while x < w - 160:
            word = int(rng.integers(30, 110))
            arr[row : row + 16, x : x + word] = 40
            x += word + 18
    arr += rng.normal(0, 7, size=arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    return img.filter(ImageFilter.GaussianBlur(0.7))


def scan_pdf(path: Path, ocr_layer: bool = False) -> Path:
    """An image-only page (optionally with an invisible OCR text layer over it, as OCRmyPDF makes)."""
    img_path = path.with_suffix(".jpg")
    scan_image().save(img_path, quality=70)
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.drawImage(str(img_path), 0, 0, width=A4[0], height=A4[1])
    if ocr_layer:
        t = c.beginText(72, 760)
        t.setTextRenderMode(3)
        t.setFont("Helvetica", 10)
        for s in _sentences(40, seed=9):
            t.textLine(s)
        c.drawText(t)
    c.showPage()
    c.save()
    img_path.unlink()
    return path


def multi_pdf(path: Path) -> Path:
    """Three pages: prose, table, chart — for page streaming and CLI tests."""
    parts = [
        prose_pdf(path.with_name("_p1.pdf")),
        table_pdf(path.with_name("_p2.pdf")),
        chart_pdf(path.with_name("_p3.pdf")),
    ]
    import pypdfium2 as pdfium

    out = pdfium.PdfDocument.new()
    for p in parts:
        src = pdfium.PdfDocument(p)
        out.import_pages(src)
        src.close()
        p.unlink()
    out.save(path)
    out.close()
    return path


# --- hand-built PDFs for bad input ---------------------------------------------------------------------------


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered object bodies (1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def zero_pages_pdf(path: Path) -> Path:
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]))
    return path


def huge_page_pdf(path: Path) -> Path:
    """A 200 x 200 inch page (the PDF maximum) with a little text: rendering must be capped."""
    content = b"BT /F1 400 Tf 1000 7000 Td (Huge page) Tj ET"
    path.write_bytes(
        raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            ]
        )
    )
    return path


def image_bomb_pdf(path: Path, side: int = 60000) -> Path:
    """A page whose image XObject claims side x side pixels (3.6 Gpx) with a tiny stream."""
    data = zlib.compress(b"\x00" * 4096)
    content = b"q 500 0 0 700 50 50 cm /Im1 Do Q"
    path.write_bytes(
        raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /XObject << /Im1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
                b" /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
                % (side, side, len(data))
                + data
                + b"\nendstream",
            ]
        )
    )
    return path


def png_bomb(path: Path, side: int = 60000) -> Path:
    """A PNG whose header claims side x side pixels; its data is tiny."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def encrypted_pdf(path: Path) -> Path:
    from reportlab.lib.pdfencrypt import StandardEncryption

    c = canvas.Canvas(str(path), pagesize=A4, encrypt=StandardEncryption("secret", canPrint=0))
    c.drawString(72, 700, "secret text")
    c.showPage()
    c.save()
    return path


def photo_png(path: Path) -> Path:
    """A colourful, photo-like image (smooth colour gradients and blobs)."""
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 120 * np.sin(xx / 60.0)
    g = 128 + 120 * np.cos(yy / 45.0)
    b = 128 + 120 * np.sin((xx + yy) / 80.0)
    arr = np.stack([r, g, b], axis=-1)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB").save(path)
    return path


def landscape_size() -> tuple[float, float]:
    return landscape(A4)


def planted_pdf(path: Path, planted: str, n_pages: int = 3, planted_page: int = 2, seed: int = 0) -> Path:
    """Prose pages; page ``planted_page`` carries the sentence ``planted``."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for p in range(1, n_pages + 1):
        c.setFont("Helvetica-Bold", 14)
        c.drawString(72, 780, f"Section {p}")
        c.setFont("Helvetica", 10)
        y = _prose_lines(c, 72, 755, 95, 20, seed=seed * 10 + p)
        if p == planted_page:
            c.drawString(72, y - 20, planted)
        c.showPage()
    c.save()
    return path


def scans_pdf(path: Path, n_pages: int = 3, seed: int = 0) -> Path:
    """Several image-only pages (for slow, OCR-bound indexing)."""
    img_path = path.with_suffix(".jpg")
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for p in range(n_pages):
        scan_image(seed=seed * 100 + p).save(img_path, quality=70)
        c.drawImage(str(img_path), 0, 0, width=A4[0], height=A4[1])
        c.showPage()
    c.save()
    img_path.unlink()
    return path


def typeset_pdf(path: Path) -> Path:
    """Two pages of justified-style text: words hyphenated at line ends (a broken word and a real compound the
    document also writes whole), and on page 2 a chart whose caption is the only text saying what it shows."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 11)
    lines = [
        "Patients who were alcohol-dependent at intake were followed for two years. The",
        "analysis of smok-",
        "ing behaviour in alcohol-",
        "dependent patients used a new theoret-",
        "ical framework, and the theoretical results held.",
        "Final effect sizes were reported for each cohort.",
    ]
    for i, line in enumerate(lines):
        c.drawString(72, 760 - 14 * i, line)
    c.showPage()
    c.setFont("Helvetica", 10)
    y = _prose_lines(c, 72, 780, 95, 22, seed=7)
    c.setStrokeColorRGB(0.2, 0.2, 0.6)
    for k in range(8):  # a bar chart without words
        c.rect(90 + 40 * k, y - 200, 25, 20 + 15 * ((k * 5) % 7), fill=1)
    c.setFont("Helvetica", 9)
    c.drawString(72, y - 220, "Figure 3: Monthly rainfall in Lisbon and Porto over the winter of 1987.")
    c.setFont("Helvetica", 10)
    _prose_lines(c, 72, y - 245, 95, 8, seed=8)
    c.showPage()
    c.save()
    return path


def unruled_table_pdf(path: Path) -> Path:
    """A heading, a paragraph, then a table of functions aligned by whitespace only (no rules): 4 columns,
    28 rows, each cell its own string; the page ends with a short paragraph."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica-Bold", 13)
    c.drawString(72, 790, "Appendix B: distribution functions")
    c.setFont("Helvetica", 10)
    y = _prose_lines(c, 72, 770, 95, 4, seed=11)
    rng = random.Random(11)
    names = ("dnorm", "pnorm", "qnorm", "rnorm", "dbeta", "pbeta", "dgamma", "pgamma", "dpois", "ppois")
    cols = (72, 180, 330, 460)
    c.setFont("Helvetica-Bold", 9)
    for x, h in zip(cols, ("function", "distribution", "parameters", "support"), strict=True):
        c.drawString(x, y - 16, h)
    c.setFont("Helvetica", 9)
    yy = y - 32
    for i in range(28):
        c.drawString(cols[0], yy, f"{names[i % len(names)]}{i // len(names) or ''}")
        c.drawString(cols[1], yy, rng.choice(("normal", "beta", "gamma", "Poisson", "binomial")))
        c.drawString(cols[2], yy, f"{rng.choice(('mu, sigma', 'a, b', 'k, theta', 'lambda'))}")
        c.drawRightString(cols[3] + 60, yy, f"{rng.randint(0, 9)}..{rng.randint(10, 99)}")
        yy -= 12
    _prose_lines(c, 72, yy - 14, 95, 3, seed=12)
    c.showPage()
    c.save()
    return path


def refcard_pdf(path: Path) -> Path:
    """A landscape reference card: 4 columns of terse entries (a command, then its meaning beside it) under
    bold section headings, 7 pt type, no rules and no images."""
    c = canvas.Canvas(str(path), pagesize=landscape(A4), invariant=1)
    w, h = landscape(A4)
    rng = random.Random(21)
    verbs = ("list", "show", "remove", "install", "search", "update", "purge", "hold", "mark", "clean")
    nouns = ("packages", "files", "sources", "versions", "keys", "services", "logs", "users")
    col_w = (w - 60) / 4
    for col in range(4):
        x, y = 30 + col * col_w, h - 40
        for _section in range(3):
            c.setFont("Helvetica-Bold", 8)
            c.drawString(x, y, f"{rng.choice(nouns).title()} and {rng.choice(nouns)}")
            y -= 11
            c.setFont("Helvetica", 7)
            for _ in range(13):
                c.drawString(x, y, f"{rng.choice(verbs)} -{rng.choice('abcdefgh')} name")
                c.drawString(x + 70, y, f"{rng.choice(verbs).title()} {rng.choice(nouns)}")
                y -= 9
            y -= 8
    c.showPage()
    c.save()
    return path


def form_xobject_diagram_pdf(path: Path) -> Path:
    """A caption and a few sentences, and a diagram drawn inside a Form XObject placed scaled and moved: a
    3-D box of long strokes and a filled ring, with a few labels (few paths, a large drawing)."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 10)
    y = _prose_lines(c, 72, 780, 95, 5, seed=31)
    c.beginForm("diagram")
    c.setLineWidth(1.2)
    p = c.beginPath()  # a 3-D box as one long path
    p.moveTo(0, 0)
    for x, yy in ((60, 0), (60, 40), (0, 40), (0, 0), (20, 15), (80, 15), (80, 55), (20, 55), (20, 15)):
        p.lineTo(x, yy)
    p.moveTo(60, 0)
    p.lineTo(80, 15)
    p.moveTo(60, 40)
    p.lineTo(80, 55)
    p.moveTo(0, 40)
    p.lineTo(20, 55)
    c.drawPath(p)
    ring = c.beginPath()
    ring.circle(130, 30, 25)
    ring.circle(130, 30, 12)
    c.setFillGray(0.5)
    c.drawPath(ring, fill=1, fillMode=0)  # even-odd: a ring
    c.setFillGray(0)
    c.setFont("Helvetica", 5)
    c.drawString(25, -8, "x")
    c.drawString(-6, 20, "y")
    c.drawString(84, 35, "z")
    c.endForm()
    c.saveState()
    c.translate(110, y - 330)
    c.scale(2.4, 2.4)
    c.doForm("diagram")
    c.restoreState()
    c.drawString(180, y - 350, "Figure 2: a box and a ring.")
    c.showPage()
    c.save()
    return path


def prose_small_table_pdf(path: Path) -> Path:
    """A page of prose with one small boxed example table (3 rows, ~8% of the page) in the middle."""
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont("Helvetica", 10)
    y = _prose_lines(c, 72, 780, 95, 24, seed=41)
    top = y - 8
    c.setLineWidth(0.6)
    c.rect(200, top - 52, 200, 48)
    c.line(200, top - 18, 400, top - 18)
    c.line(290, top - 4, 290, top - 52)
    for i, (a, b) in enumerate((("term", "weight"), ("page", "0.41"), ("table", "0.17"))):
        c.drawString(208, top - 14 - 16 * i, a)
        c.drawString(298, top - 14 - 16 * i, b)
    _prose_lines(c, 72, top - 70, 95, 24, seed=42)
    c.showPage()
    c.save()
    return path
