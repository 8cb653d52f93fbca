"""Words with their boxes on the page, for showing where a match is (answer regions).

A word is ``(text, x0, y0, x1, y1)`` with the box in fractions of the page's width and height, top-left
origin, as the page is drawn: the same numbers for any rendering size. Text-layer spans are runs of
characters with one box; a span's words get the share of its width their characters take (exact for
fixed-pitch text, close for proportional fonts). OCR gives word boxes in pixels of the image it read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .types import TextSpan

__all__ = ["MAX_WORDS", "Word", "decode_words", "encode_words", "pixel_words", "span_words"]

Word = tuple[str, float, float, float, float]

MAX_WORDS = 20_000  # per page: a page of more is unusual and its boxes would only be noise
_SCALE = 10_000  # stored as integers in 1/10,000 of the page
_WORD = re.compile(r"\S+")


def _clip(v: float) -> float:
    return min(max(v, 0.0), 1.0)


def span_words(spans: Iterable[TextSpan], width: float, height: float) -> list[Word]:
    """The words of text-layer ``spans`` (boxes in points on a ``width`` x ``height`` page)."""
    if width <= 0 or height <= 0:
        return []
    out: list[Word] = []
    for span in spans:
        x0, top, x1, bottom = span.bbox
        text = span.text
        n = len(text)
        if n == 0 or x1 <= x0 or bottom <= top:
            continue
        vertical = (bottom - top) > 1.5 * (x1 - x0) and n > 2  # rotated text runs down the page
        for m in _WORD.finditer(text):
            a, b = m.start() / n, m.end() / n
            if vertical:
                box = (x0, top + a * (bottom - top), x1, top + b * (bottom - top))
            else:
                box = (x0 + a * (x1 - x0), top, x0 + b * (x1 - x0), bottom)
            out.append(
                (
                    m.group(),
                    _clip(box[0] / width),
                    _clip(box[1] / height),
                    _clip(box[2] / width),
                    _clip(box[3] / height),
                )
            )
            if len(out) >= MAX_WORDS:
                return out
    return out


def pixel_words(spans: Sequence[TextSpan], width_px: int, height_px: int) -> list[Word]:
    """OCR word spans (boxes in pixels of a ``width_px`` x ``height_px`` image of the page)."""
    if width_px <= 0 or height_px <= 0:
        return []
    return [
        (
            s.text,
            _clip(s.bbox[0] / width_px),
            _clip(s.bbox[1] / height_px),
            _clip(s.bbox[2] / width_px),
            _clip(s.bbox[3] / height_px),
        )
        for s in spans[:MAX_WORDS]
        if s.text
    ]


def encode_words(words: Sequence[Word]) -> list[list[object]]:
    """Words as compact JSON-ready rows: ``[text, x0, y0, x1, y1]`` with integer coordinates (1/10,000)."""
    return [[w, *(round(v * _SCALE) for v in box)] for w, *box in words]


def decode_words(rows: Iterable[Sequence[object]]) -> list[Word]:
    out: list[Word] = []
    for row in rows:
        text, *box = row
        out.append((str(text), *(float(v) / _SCALE for v in box)))  # type: ignore[arg-type]
    return out
