"""Synthetic document pages, drawn deterministically: the calibration set of a statically quantised visual model
(``accel``) and the varied page set of ``benchmarks/visual_cpu.py``.

Each page is one of several kinds a visual leg sees — prose, a ruled table, a bar chart, a slide with a big title,
a form with boxes, a photo-like image, a grey scan — with its own words, sizes and positions from a seeded
generator, so that activation ranges and MaxSim rankings are not those of one repeated layout.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["KINDS", "synthetic_page", "synthetic_pages"]

KINDS = ("prose", "table", "chart", "slide", "form", "photo", "scan")
_WORDS = (
    "revenue quarter region growth margin table figure results model accuracy recall precision invoice total "
    "amount date signature customer policy section report annual summary chart diagram system network layer "
    "input output value budget forecast risk compliance audit water energy carbon supply chain market share "
    "patient dose trial protocol safety engineering drawing part number tolerance assembly contract clause"
).split()


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def synthetic_page(i: int, size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """Page ``i`` (kind ``KINDS[i % len(KINDS)]``), an RGB image of ``size`` (A4 at 150 dpi by default;
    slides are landscape)."""
    from PIL import Image, ImageDraw

    rng = random.Random(i)
    kind = KINDS[i % len(KINDS)]
    w, h = (size[1], size[0]) if kind == "slide" else size
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    body = _font(rng.choice((18, 20, 22, 26)))
    d.text((100, 70), _words(rng, rng.randint(3, 7)).title(), fill="black", font=_font(rng.choice((34, 40, 48))))
    if kind == "prose":
        y = 160
        while y < h - 120:
            d.text((100, y), _words(rng, rng.randint(8, 12)), fill=(20, 20, 20), font=body)
            y += rng.choice((30, 34, 40)) + (40 if rng.random() < 0.1 else 0)
    elif kind == "table":
        rows, cols = rng.randint(6, 20), rng.randint(3, 6)
        x0, y0, cw, rh = 100, 180, (w - 200) // cols, min(60, (h - 300) // rows)
        for r in range(rows + 1):
            d.line([(x0, y0 + r * rh), (x0 + cols * cw, y0 + r * rh)], fill="black", width=2)
        for c in range(cols + 1):
            d.line([(x0 + c * cw, y0), (x0 + c * cw, y0 + rows * rh)], fill="black", width=2)
        for r in range(rows):
            for c in range(cols):
                cell = _words(rng, 1) if c == 0 or r == 0 else f"{rng.uniform(0, 1000):.1f}"
                d.text((x0 + c * cw + 8, y0 + r * rh + 10), cell, fill="black", font=body)
    elif kind == "chart":
        n, base, top = rng.randint(4, 12), h // 2 + 300, 300
        bw = (w - 300) // n
        d.line([(150, top), (150, base), (w - 100, base)], fill="black", width=3)
        for k in range(n):
            bh = rng.randint(40, base - top - 20)
            color = (rng.randint(0, 200), rng.randint(0, 200), rng.randint(60, 255))
            d.rectangle([160 + k * bw, base - bh, 160 + k * bw + bw * 2 // 3, base], fill=color)
            d.text((160 + k * bw, base + 10), _words(rng, 1), fill="black", font=body)
        d.text((100, base + 80), _words(rng, 14), fill="black", font=body)
    elif kind == "slide":
        d.rectangle([0, 0, w, 50], fill=(rng.randint(0, 90), rng.randint(0, 90), rng.randint(90, 200)))
        big = _font(rng.choice((44, 52, 60)))
        for k in range(rng.randint(3, 6)):
            d.text((140, 260 + k * 130), "- " + _words(rng, rng.randint(3, 6)), fill="black", font=big)
    elif kind == "form":
        y = 180
        while y < h - 200:
            d.text((100, y), _words(rng, 2).title() + ":", fill="black", font=body)
            d.rectangle([420, y - 6, w - 120, y + 36], outline="black", width=2)
            if rng.random() < 0.5:
                d.text((430, y), _words(rng, rng.randint(1, 4)), fill=(0, 0, 120), font=body)
            y += rng.choice((70, 80, 90))
    elif kind == "photo":
        import numpy as np

        g = np.random.default_rng(i)
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        chans = [np.sin(xx * g.uniform(2, 9) + yy * g.uniform(2, 9) + g.uniform(0, 6)) for _ in range(3)]
        pixels = np.stack(chans, -1) * 90 + 128 + g.normal(0, 12, (h, w, 3))
        img = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
        ImageDraw.Draw(img).text((100, h - 120), _words(rng, 6), fill="white", font=body)
    else:  # scan: grey paper, slanted dark lines of "text", speckle
        import numpy as np

        g = np.random.default_rng(i)
        paper = np.full((h, w), 225, np.float32) + g.normal(0, 10, (h, w))
        for y in range(160, h - 150, 34):
            x1 = w - 100 - int(g.integers(0, 400))
            paper[y : y + 14, 100:x1] -= g.uniform(120, 180)
        img = Image.fromarray(np.clip(paper, 0, 255).astype("uint8")).rotate(g.uniform(-1.5, 1.5), fillcolor=225)
        img = img.convert("RGB")
    return img


def synthetic_pages(n: int, start: int = 0, size: tuple[int, int] = (1240, 1754)) -> list[Image.Image]:
    """Pages ``start`` … ``start + n - 1`` (every kind in turn)."""
    return [synthetic_page(i, size) for i in range(start, start + n)]
