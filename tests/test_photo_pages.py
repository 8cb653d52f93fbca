"""Photos embedded in PDFs (issue 25 item 16): a page whose meaning is a photograph is not a scan, nor a chart.

The pages are drawn around real photographs that ship with installed packages (scikit-learn's sample images,
CC BY 2.0; matplotlib's sample data): a full-page photo, a grey one, a photo with a caption or prose, a grid,
a framed photo, photos on slides. They are ``text`` (the README's rule: natural photos go to the image
embedder) with their photos kept as figures, and cost no OCR; scans (also of a page with a photo), raster and
vector charts and slides keep their routes. Near-empty pages (a word, a title, a word under a logo) are text.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from docrag.config import RouterConfig
from docrag.parsers import open_document
from docrag.pipeline.router import route_page
from docrag.testing import pdfgen

SLIDE = (720.0, 405.0)
PROSE = " ".join([pdfgen.PROSE] * 3)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        pytest.skip(f"{package} has no {'/'.join(parts)}")
    return path


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {
        "china": Image.open(_package_file("sklearn", "datasets", "images", "china.jpg")).convert("RGB"),
        "flower": Image.open(_package_file("sklearn", "datasets", "images", "flower.jpg")).convert("RGB"),
        "grace": Image.open(_package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")).convert("RGB"),
    }


def _reader(img: Image.Image, fmt: str = "JPEG", quality: int = 85) -> ImageReader:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    buf.seek(0)
    return ImageReader(buf)


def _pdf(path: Path, draw, size=A4) -> Path:
    c = canvas.Canvas(str(path), pagesize=size, invariant=1)
    draw(c)
    c.showPage()
    c.save()
    return path


def _prose(c, y: float, x: float = 60, width: float = 475, size: float = 10) -> None:
    from reportlab.lib.utils import simpleSplit

    c.setFont("Helvetica", size)
    for line in simpleSplit(PROSE, "Helvetica", size, width):
        c.drawString(x, y, line)
        y -= size * 1.25


def _route(path: Path, cfg: RouterConfig | None = None):
    with open_document(path) as doc:
        page = doc.page(1)
        return route_page(page, cfg), page


@pytest.fixture(scope="module")
def pages(tmp_path_factory, photos) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photo_pages")
    china, flower, grace = photos["china"], photos["flower"], photos["grace"]
    grey = ImageOps.grayscale(grace)
    out = {
        "full_page": _pdf(d / "full.pdf", lambda c: c.drawImage(_reader(flower), 0, 0, 640, 427), (640, 427)),
        "grey_portrait": _pdf(d / "grey.pdf", lambda c: c.drawImage(_reader(grey, quality=60), 40, 40, 515, 604)),
        "lossless": _pdf(d / "png.pdf", lambda c: c.drawImage(_reader(china, "PNG"), 30, 250, 535, 357)),
        "grid": _pdf(
            d / "grid.pdf",
            lambda c: [
                c.drawImage(_reader(im), 40 + 265 * (i % 2), 440 - 390 * (i // 2), 250, 250 * im.height / im.width)
                for i, im in enumerate([china, flower, grace, ImageOps.grayscale(china)])
            ],
        ),
    }

    def captioned(c):
        c.drawImage(_reader(china), 60, 420, 475, 317)
        c.setFont("Helvetica-Oblique", 10)
        c.drawString(60, 400, "Figure 3. The temple seen from the south gate, late afternoon.")

    def with_prose(c):
        c.drawImage(_reader(grey, "PNG"), 150, 480, 300, 352)
        _prose(c, 450)

    def framed(c):
        c.rect(70, 380, 455, 400)
        c.drawImage(_reader(china), 80, 430, 435, 290)
        c.setFont("Helvetica", 10)
        c.drawString(70, 360, "A framed photograph of the temple, printed for the exhibition catalogue.")

    def titled_slide(c):
        c.setFont("Helvetica-Bold", 28)
        c.drawString(40, 350, "Field trip: the old temple")
        c.drawImage(_reader(china), 140, 30, 435, 290)

    def bullet_slide(c):
        c.setFont("Helvetica-Bold", 28)
        c.drawString(40, 350, "What we saw")
        c.setFont("Helvetica", 18)
        for i, t in enumerate(("The temple from the south gate", "Roof tiles restored", "Gardens", "Tours")):
            c.drawString(50, 290 - 36 * i, f"\u2022 {t}")
        c.drawImage(_reader(flower), 400, 60, 290, 193)

    out["captioned"] = _pdf(d / "captioned.pdf", captioned)
    out["with_prose"] = _pdf(d / "prose.pdf", with_prose)
    out["framed"] = _pdf(d / "framed.pdf", framed)
    out["titled_slide"] = _pdf(d / "titled_slide.pdf", titled_slide, SLIDE)
    out["bullet_slide"] = _pdf(d / "bullet_slide.pdf", bullet_slide, SLIDE)

    # What a photo must not be taken for: scans (also of a page with a photo, also on tinted paper), charts.
    import pypdfium2 as pdfium

    with pdfium.PdfDocument(str(out["with_prose"])) as doc:
        printed = doc[0].render(scale=150 / 72).to_pil().convert("RGB")
    grey_scan = ImageOps.grayscale(printed).rotate(0.8, fillcolor=235).filter(ImageFilter.GaussianBlur(0.7))
    tinted = Image.fromarray((np.asarray(printed, dtype=np.float32) * (1.0, 0.94, 0.82)).astype(np.uint8))
    out["scan_of_photo_page"] = _pdf(d / "scan1.pdf", lambda c: c.drawImage(_reader(grey_scan, quality=70), 0, 0, *A4))
    out["tinted_scan"] = _pdf(d / "scan2.pdf", lambda c: c.drawImage(_reader(tinted, quality=72), 0, 0, *A4))
    out["scan"] = pdfgen.scan_pdf(d / "scan.pdf")
    out["vector_chart"] = pdfgen.chart_pdf(d / "chart.pdf")
    chart = _reader(_chart(), "PNG")
    out["raster_chart"] = _pdf(d / "raster_chart.pdf", lambda c: c.drawImage(chart, 60, 400, 475, 312))
    return out


def _chart() -> Image.Image:
    """A line chart as a raster image (white ground, axes, three coloured lines), as a plotting tool saves it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    x = np.linspace(0, 10, 200)
    for k in range(3):
        ax.plot(x, np.sin(x + k) * (1 + 0.2 * k), label=f"series {k + 1}")
    ax.legend()
    ax.set_xlabel("time (s)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(buf).convert("RGB")


PHOTO_PAGES = ("full_page", "grey_portrait", "lossless", "grid", "captioned", "with_prose", "framed", "titled_slide")


@pytest.mark.parametrize("name", PHOTO_PAGES)
def test_a_photo_page_is_text_with_its_photos_for_the_image_leg(pages, name):
    r, page = _route(pages[name])
    assert (r.route, r.label) == ("text", "text"), r.reasons
    assert not r.ocr, r.reasons  # a photograph has nothing to read
    assert page.signals.n_photos >= 1 and page.signals.photo_coverage > 0
    assert page.figures and all(f.kind == "photo" for f in page.figures)  # kept: the image leg embeds them
    assert not [g for g in page.regions if g.kind == "image"]  # a photograph is no layout region
    assert any("photograph" in x for x in r.reasons), r.reasons


def test_the_rules_decision_takes_photo_pages_for_text_too(pages):
    for name in ("full_page", "grid", "captioned", "with_prose"):
        r, _ = _route(pages[name], RouterConfig(decision="rules"))
        assert r.label == "text", (name, r.reasons)


def test_a_photo_page_says_what_it_saw(pages):
    r, page = _route(pages["full_page"])
    assert "1 photograph covers 100% of the page" in r.reasons[0]
    assert "not a scanned page" in r.reasons[0]
    assert page.signals.tone_levels >= 12 and page.signals.paper_fraction < 0.1
    r, _ = _route(pages["grid"])
    assert r.reasons[0].startswith("4 photographs cover")


def test_a_slide_with_a_photo_and_bullet_points_is_still_a_slide(pages):
    r, _ = _route(pages["bullet_slide"])
    assert (r.route, r.label) == ("visual", "layout"), r.reasons
    assert "slide-like" in r.reasons[0]


@pytest.mark.parametrize("name", ["scan_of_photo_page", "tinted_scan", "scan"])
def test_scans_stay_scans(pages, name):
    r, _ = _route(pages[name])
    assert (r.route, r.label, r.ocr) == ("visual", "scanned", True), r.reasons


@pytest.mark.parametrize("name", ["raster_chart", "vector_chart"])
def test_charts_stay_layout(pages, name):
    r, _ = _route(pages[name])
    assert (r.route, r.label) == ("visual", "layout"), r.reasons


@pytest.mark.parametrize("name", ["scan_of_photo_page", "tinted_scan", "scan", "raster_chart", "bullet_slide"])
def test_only_photographs_are_taken_for_photographs(pages, name):
    _, page = _route(pages[name])
    expected = 1 if name == "bullet_slide" else 0  # a scan's or a chart's pixels are a plain ground and inks
    assert page.signals.n_photos == expected
    assert sum(f.kind == "photo" for f in page.figures) == expected


def test_a_scan_with_an_ocr_layer_is_not_looked_at(tmp_path):
    r, page = _route(pdfgen.scan_pdf(tmp_path / "ocr.pdf", ocr_layer=True))
    assert r.label == "scanned"
    assert page.signals.tone_levels == 0  # not decoded: the OCR layer says it is a scan


def test_image_tone_tells_photos_from_pages_and_charts(photos):
    from docrag.parsers.pdf_signals import image_tone

    def tone(img: Image.Image):
        small = img.convert("RGB")
        small.thumbnail((128, 128))
        return image_tone(np.asarray(small))

    for img in photos.values():
        assert tone(img).photo
        assert tone(ImageOps.grayscale(img)).photo  # a black-and-white photo is continuous tone too
    page = tone(pdfgen.scan_image())
    assert not page.photo and page.paper > 0.5
    chart = tone(_chart())
    assert not chart.photo and chart.levels < 12
    blank = image_tone(np.full((8, 8, 3), 255, np.uint8))
    assert not blank.photo and blank.paper == 1.0 and blank.levels == 1


def test_image_thumbnails_are_small_and_capped(pages, monkeypatch):
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    from docrag.parsers import pdf_objects

    with pdfium.PdfDocument(str(pages["lossless"])) as doc:
        page = doc[0]
        (obj,) = [o for o in page.get_objects() if o.type == raw.FPDF_PAGEOBJ_IMAGE]
        rgb = pdf_objects.image_thumbnail(obj.raw, page.raw)
        assert rgb is not None and rgb.dtype == np.uint8 and max(rgb.shape[:2]) <= pdf_objects.THUMB_SIDE
        monkeypatch.setattr(pdf_objects, "THUMB_MAX_PIXELS", 1000)  # a lossless image PDFium decodes whole
        assert pdf_objects.image_thumbnail(obj.raw, page.raw) is None
    with pdfium.PdfDocument(str(pages["grey_portrait"])) as doc:  # a JPEG: decoded at reduced scale
        page = doc[0]
        (obj,) = [o for o in page.get_objects() if o.type == raw.FPDF_PAGEOBJ_IMAGE]
        rgb = pdf_objects.image_thumbnail(obj.raw, page.raw)
        assert rgb is not None and max(rgb.shape[:2]) <= pdf_objects.THUMB_SIDE
        monkeypatch.setattr(pdf_objects, "THUMB_MAX_JPEG_PIXELS", 1000)
        assert pdf_objects.image_thumbnail(obj.raw, page.raw) is None


def test_a_frame_around_a_photo_is_not_a_drawing():
    from docrag.parsers.pdf_figures import photo_frames
    from docrag.parsers.pdf_grid import PdfRegion

    frame = PdfRegion("graphics", (70, 380, 525, 780), 1)
    chart = PdfRegion("graphics", (70, 380, 525, 780), 40)  # a chart's many paths around an image
    wide = PdfRegion("graphics", (0, 0, 595, 842), 1)  # a page border: the photo fills little of it
    assert photo_frames([frame, chart, wide], [(80, 430, 515, 720)]) == [frame]
    assert photo_frames([frame], []) == []


# -- near-empty pages -----------------------------------------------------------------------------------------
def _logo() -> Image.Image:
    """A small flat logo: two coloured shapes on white (not a photo)."""
    img = Image.new("RGB", (300, 72), "white")
    img.paste((20, 60, 140), (0, 0, 72, 72))
    img.paste((230, 120, 20), (90, 20, 300, 52))
    return img


@pytest.mark.parametrize(
    "draw, size",
    [
        (lambda c: (c.setFont("Helvetica", 14), c.drawString(270, 420, "Notes")), A4),
        (lambda c: (c.setFont("Helvetica-Bold", 40), c.drawCentredString(360, 190, "Part II: Results")), SLIDE),
        (
            lambda c: (c.setFont("Helvetica", 8), c.drawString(60, 810, "Annual report"), c.drawString(297, 30, "17")),
            A4,
        ),
        (
            lambda c: (
                c.drawImage(_reader(_logo(), "PNG"), 222, 600, 150, 36),
                c.setFont("Helvetica", 14),
                c.drawString(270, 420, "Notes"),
            ),
            A4,
        ),
    ],
    ids=["one-word", "section-title-slide", "header-and-page-number", "word-under-a-logo"],
)
def test_a_near_empty_page_is_text(tmp_path, draw, size):
    r, _ = _route(_pdf(tmp_path / "near_empty.pdf", draw, size))
    assert (r.route, r.label, r.ocr) == ("text", "text", False), r.reasons
    assert r.reasons[0].startswith("nearly blank page"), r.reasons
