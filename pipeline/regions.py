"""Answer regions: where on a page each leg's score comes from, and the page drawn with them.

Every box is ``(x0, y0, x1, y1)`` in fractions of the page's width and height, top-left origin, as the
page is displayed: multiply by a rendering's size for pixels, by the page size in points for PDF space.
A region's ``weight`` is its share of the leg's score on that page (visual: the MaxSim contributions of the
query tokens whose best patch lies in it; text: 1 for the best chunk; image: 1 for the matched figure;
bm25: each matched query term's share of the matched terms).

- visual: a page's MaxSim score is the sum over query tokens of their best patch's similarity. Each patch
  is credited with the similarities of the tokens that chose it, so the credits add up to the score
  (minus what tokens gave to vectors that are not image patches: the prompt's text). Patches with at least
  ``VISUAL_THRESHOLD`` of the best patch's credit are joined into boxes (connected on their grid).
- text: the best chunk, found among the page's words (the chunk's words in order, ``difflib``), one box
  per block of consecutive lines; computed at indexing time (``chunk_boxes``) and stored with the chunk.
- bm25: the page's words that match a query term, after the same kind of folding as the full-text index
  (lower case, ASCII, English stop words out, a light suffix stemmer standing in for its Snowball stemmer).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from docrag.indexes.multivector import PatchGrid
    from docrag.parsers.words import Word

__all__ = [
    "LEG_COLOURS",
    "VISUAL_THRESHOLD",
    "AnswerRegion",
    "PageRegions",
    "bm25_regions",
    "chunk_boxes",
    "draw_regions",
    "match_terms",
    "page_keys",
    "visual_regions",
]

Box = tuple[float, float, float, float]

VISUAL_THRESHOLD = 0.5  # share of the best patch's credit a patch needs to be part of a visual region
MAX_VISUAL_REGIONS = 6
MAX_TERM_BOXES = 40  # occurrences drawn per query term

LEG_COLOURS: dict[str, tuple[int, int, int]] = {
    "visual": (230, 60, 40),
    "text": (40, 110, 230),
    "image": (150, 60, 200),
    "bm25": (20, 160, 80),
}


@dataclass(frozen=True, slots=True)
class AnswerRegion:
    """An area of a page behind one leg's score."""

    leg: str
    box: Box
    weight: float
    label: str = ""  # the matched term (bm25), the chunk's start (text), "patches" (visual), the figure (image)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leg": self.leg,
            "box": [round(v, 4) for v in self.box],
            "weight": round(self.weight, 4),
            "label": self.label,
        }

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = self.box
        return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


@dataclass(slots=True)
class PageRegions:
    """The regions of one hit, with what could not be located (``notes``: leg -> why) and the visual leg's
    per-patch credit (``heat``: (box, share) pairs) for a heatmap."""

    regions: list[AnswerRegion] = field(default_factory=list)
    heat: list[tuple[Box, float]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def by_leg(self, leg: str) -> list[AnswerRegion]:
        return [r for r in self.regions if r.leg == leg]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"regions": [r.to_dict() for r in self.regions]}
        if self.notes:
            out["notes"] = dict(self.notes)
        return out

    def __iter__(self) -> Iterator[AnswerRegion]:
        return iter(self.regions)

    def __len__(self) -> int:
        return len(self.regions)


# -- words: folding shared by the text and bm25 legs ----------------------------------------------------------

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# The English stop words of the full-text index's tokenizer (tantivy's list).
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)


def _fold(word: str) -> str:
    word = unicodedata.normalize("NFKD", word.lower())
    word = "".join(ch for ch in word if not unicodedata.combining(ch))
    return _NON_WORD.sub("", word)


def _stem(word: str) -> str:
    """A light English suffix stemmer: plurals, -ed, -ing, -ly (the index's Snowball stemmer, roughly)."""
    for suffix, repl, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("edly", "", 7),
        ("ed", "", 5),
        ("ly", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len and not (suffix == "s" and word.endswith("ss")):
            return word[: len(word) - len(suffix)] + repl
    return word


def term_key(word: str) -> str:
    """A word as a query term (folded and stemmed); "" for stop words and punctuation."""
    folded = _fold(word)
    return "" if not folded or folded in STOP_WORDS else _stem(folded)


def match_terms(query: str, words: Sequence[Word]) -> dict[str, list[Word]]:
    """Query term -> the page words it matches (in page order)."""
    terms: dict[str, str] = {}
    for raw in query.split():
        for part in _NON_WORD.split(raw):
            key = term_key(part)
            if key and key not in terms:
                terms[key] = part.lower()
    out: dict[str, list[Word]] = {}
    for w in words:
        for part in _NON_WORD.split(w[0]):
            key = term_key(part)
            if key in terms:
                out.setdefault(terms[key], []).append(w)
                break
    return out


def bm25_regions(query: str, words: Sequence[Word]) -> list[AnswerRegion]:
    """The boxes of the page words matching the query's terms; each term's boxes share its weight."""
    found = match_terms(query, words)
    if not found:
        return []
    share = 1.0 / len(found)
    return [AnswerRegion("bm25", w[1:], share, term) for term, ws in found.items() for w in ws[:MAX_TERM_BOXES]]


# -- text: a chunk among the page's words ---------------------------------------------------------------------


def _lines(words: Sequence[Word], drop_specks: bool = False) -> list[Box]:
    """Boxes of runs of words on one line (in the order given); a wide gap (twice the line's height) starts a
    new run. ``drop_specks``: leave out runs of one word of at most two characters (OCR specks in a picture)."""
    runs: list[tuple[list[float], list[str]]] = []
    for text, x0, y0, x1, y1 in words:
        if runs:
            b, texts = runs[-1]
            h = min(y1 - y0, b[3] - b[1])
            overlap = min(y1, b[3]) - max(y0, b[1])
            if h > 0 and overlap > 0.5 * h and b[0] - 0.01 <= x0 <= b[2] + 2 * max(y1 - y0, b[3] - b[1]):
                b[0], b[1], b[2], b[3] = min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)
                texts.append(text)
                continue
        runs.append(([x0, y0, x1, y1], [text]))
    return [
        tuple(b)
        for b, texts in runs  # type: ignore[misc]
        if not (drop_specks and len(texts) == 1 and len(_fold(texts[0])) <= 2)
    ]


def _blocks(lines: Sequence[Box]) -> list[Box]:
    """Consecutive lines joined into blocks where each starts just below the last and lies mostly within its
    width (a full-width line under a column's lines starts a block of its own: no box over the figure beside
    them; a paragraph's short last line stays in)."""
    out: list[list[float]] = []
    for x0, y0, x1, y1 in lines:
        if out:
            b = out[-1]
            gap = y0 - b[3]
            height = y1 - y0
            across = min(x1, b[2]) - max(x0, b[0])
            if -0.5 * height <= gap <= 1.5 * height and x1 > x0 and across >= 0.6 * (x1 - x0):
                b[0], b[1], b[2], b[3] = min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)
                continue
        out.append([x0, y0, x1, y1])
    boxes = [tuple(b) for b in out]
    inside = lambda a, b: a is not b and b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]  # noqa: E731
    return [a for a in boxes if not any(inside(a, b) for b in boxes)]  # type: ignore[misc]


def page_keys(words: Sequence[Word]) -> list[str]:
    """The page's words folded as ``chunk_boxes`` compares them (fold a page once for all its chunks)."""
    return [_fold(w[0]) for w in words]


def chunk_boxes(
    text: str, words: Sequence[Word], min_share: float = 0.3, keys: Sequence[str] | None = None
) -> list[Box]:
    """Where the chunk ``text`` lies among the page's ``words``: one box per block of its lines ([] when
    less than ``min_share`` of its words are found in order: text that is not the page's words). ``keys``:
    ``page_keys(words)``, when the caller places several chunks on the page."""
    folded = keys if keys is not None else page_keys(words)
    chunk_keys = [k for k in (_fold(t) for t in text.split()) if k]
    if not chunk_keys or not words:
        return []
    matcher = difflib.SequenceMatcher(None, folded, chunk_keys, autojunk=False)
    # Short runs of common words match anywhere: the longer the chunk, the longer a run must be to count.
    least = 1 if len(chunk_keys) <= 3 else 2 if len(chunk_keys) <= 12 else 3
    hits = [i for a, _, size in matcher.get_matching_blocks() if size >= least for i in range(a, a + size) if folded[i]]
    if len(hits) < min_share * len(chunk_keys):
        return []
    return _blocks(_lines([words[i] for i in hits], drop_specks=len(chunk_keys) > 3))


# -- visual: MaxSim credit per patch --------------------------------------------------------------------------


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """4-connected components of a boolean grid."""
    seen = np.zeros_like(mask, dtype=bool)
    rows, cols = mask.shape
    out = []
    for r0, c0 in zip(*np.nonzero(mask), strict=True):
        if seen[r0, c0]:
            continue
        stack, comp = [(int(r0), int(c0))], []
        seen[r0, c0] = True
        while stack:
            r, c = stack.pop()
            comp.append((r, c))
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < rows and 0 <= cc < cols and mask[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        out.append(comp)
    return out


def patch_credit(query: np.ndarray, page: np.ndarray) -> np.ndarray:
    """Each page vector's share of the MaxSim score: the similarities of the query tokens that chose it."""
    sims = np.asarray(query, np.float32) @ np.asarray(page, np.float32).T  # (n_query, n_page)
    best = sims.argmax(axis=1)
    credit = np.zeros(page.shape[0], np.float64)
    np.add.at(credit, best, sims[np.arange(len(best)), best])
    return credit


def visual_regions(
    query: np.ndarray, page: np.ndarray, layout: Sequence[PatchGrid], threshold: float = VISUAL_THRESHOLD
) -> PageRegions:
    """The visual leg's regions on a page: patch credit mapped through the page's layout, thresholded into
    connected boxes (best first), and every credited patch as heat."""
    credit = patch_credit(query, page)
    total = float(credit.sum())
    out = PageRegions()
    if total <= 0:
        out.notes["visual"] = "no positive similarity"
        return out
    cells: list[tuple[float, PatchGrid, np.ndarray]] = []
    located = 0.0
    for grid in layout:
        g = credit[grid.start : grid.start + grid.size]
        if len(g) < grid.size:
            continue
        located += float(g.sum())
        out.heat.extend((grid.cell(k), float(v) / total) for k, v in enumerate(g) if v > 0)
        cells.append((float(g.max()), grid, g.reshape(grid.rows, grid.cols)))
    if not cells:
        out.notes["visual"] = "no patch vectors on this page"
        return out
    top = max(m for m, _, _ in cells)
    found = []
    for _, grid, g in cells:
        for comp in _components(g >= threshold * top):
            boxes = [grid.cell(r * grid.cols + c) for r, c in comp]
            box = (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
            found.append(AnswerRegion("visual", box, float(sum(g[r, c] for r, c in comp)) / total, "patches"))
    found.sort(key=lambda r: -r.weight)
    out.regions = found[:MAX_VISUAL_REGIONS]
    if located < 0.999 * total:
        out.notes["visual"] = f"{1 - located / total:.0%} of the score is on the prompt's text tokens, not on patches"
    return out


# -- drawing --------------------------------------------------------------------------------------------------


def draw_regions(image: Image.Image, found: PageRegions, legs: Iterable[str] | None = None) -> Image.Image:
    """``image`` (the page, any size) with the regions drawn: the visual leg's credit as a red heatmap,
    each leg's boxes in its colour (line width by weight), and a legend in a band below the page (the page
    keeps its size and nothing of it is covered)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    base = image.convert("RGB")
    w, h = base.size
    wanted = set(legs) if legs is not None else None
    heat = PILImage.new("L", (w, h), 0)
    if found.heat and (wanted is None or "visual" in wanted):
        peak = max(v for _, v in found.heat)
        d = ImageDraw.Draw(heat)
        for box, v in found.heat:
            x0, y0, x1, y1 = box
            d.rectangle(
                [round(x0 * w), round(y0 * h), round(x1 * w) - 1, round(y1 * h) - 1], fill=min(255, int(170 * v / peak))
            )
        red = PILImage.new("RGB", (w, h), LEG_COLOURS["visual"])
        base = PILImage.composite(red, base, heat)
    # Boxes: a light wash of the leg's colour and a thin outline, a little outside the words (text stays legible).
    wash = PILImage.new("RGBA", (w, h), (0, 0, 0, 0))
    wd = ImageDraw.Draw(wash)
    line = max(2, round(min(w, h) / 400))
    pad = max(2, round(min(w, h) / 300))
    shown: list[str] = []
    for r in found.regions:
        if wanted is not None and r.leg not in wanted:
            continue
        colour = LEG_COLOURS.get(r.leg, (90, 90, 90))
        x0, y0, x1, y1 = r.pixels(w, h)
        alpha = 40 + round(50 * min(1.0, r.weight))
        wd.rectangle(
            [x0 - pad, y0 - pad, x1 + pad, y1 + pad], fill=(*colour, alpha), outline=(*colour, 255), width=line
        )
        if r.leg not in shown:
            shown.append(r.leg)
    base = PILImage.alpha_composite(base.convert("RGBA"), wash).convert("RGB")
    if found.heat and "visual" not in shown and (wanted is None or "visual" in wanted):
        shown.insert(0, "visual")
    return _with_legend(base, shown) if shown else base


LEGEND = {
    "visual": "visual (heat: MaxSim credit)",
    "text": "text (best chunk)",
    "image": "image (figure)",
    "bm25": "bm25 (query terms)",
}


def _with_legend(page: Image.Image, legs: list[str]) -> Image.Image:
    """``page`` above a white band with a swatch and a name per leg, left to right (a new row where the page's
    width runs out)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    w, h = page.size
    size = max(12, round(max(w, h) / 60))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    measure = ImageDraw.Draw(page)
    gap, row = size, size + 8
    places: list[tuple[int, int, str]] = []  # (x, row index, leg)
    x, n_row = gap, 0
    for leg in legs:
        width = size + 6 + int(measure.textlength(LEGEND.get(leg, leg), font=font))
        if x > gap and x + width > w - gap:
            x, n_row = gap, n_row + 1
        places.append((x, n_row, leg))
        x += width + 2 * gap
    band = row * (n_row + 1) + 8
    out = PILImage.new("RGB", (w, h + band), (255, 255, 255))
    out.paste(page, (0, 0))
    draw = ImageDraw.Draw(out)
    draw.line([(0, h), (w, h)], fill=(160, 160, 160), width=1)
    for x, r, leg in places:
        y = h + 6 + r * row
        draw.rectangle([x, y, x + size, y + size], fill=LEG_COLOURS.get(leg, (90, 90, 90)))
        draw.text((x + size + 6, y), LEGEND.get(leg, leg), fill=(0, 0, 0), font=font)
    return out
