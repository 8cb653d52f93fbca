"""What a page's objects say, object by object: text styles, ruling lines, drawings, images, shading.

Pure functions over the arrays of ``PageObjects`` (``docrag.parsers.pdf_objects``) and occupancy grids
(``Mask``); boxes are ``(left, bottom, right, top)`` in PDF space. Each keeps the order of the walk.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

import numpy as np

from .pdf_grid import Mask, PdfBox
from .pdf_objects import PageObjects

__all__ = [
    "IMAGE_MIN_FRACTION",
    "IMAGE_MIN_PX",
    "ImageChoice",
    "ImageTone",
    "PathKinds",
    "background_images",
    "classify_paths",
    "image_tone",
    "photo_candidates",
    "select_images",
    "shaded_boxes",
    "text_signals",
]

# Embedded images smaller than this on both sides, or covering less than this share of the page, are not figures
# (nor counted in the image signals the router was fitted on).
IMAGE_MIN_PX = 64
IMAGE_MIN_FRACTION = 0.01
RULE_MAX_THICKNESS = 2.0  # pt: thinner than this and long, a path is a ruling line
RULE_MIN_LENGTH = 0.12  # share of the page width (height for vertical rules)
SEPARATOR_MIN_LENGTH = 6.0  # pt: a thin vertical stroke at least this long (and short of a rule) separates cells
DRAWING_MAX_AREA = 0.6  # share of the page: larger paths are frames or backgrounds, not drawings
DRAWING_MIN_SIDE = 0.5  # pt: a path's longer side must reach this to count as a drawing
CHECKBOX_MIN, CHECKBOX_MAX = 4.0, 16.0  # pt: square paths this size are checkboxes (or markers)
CHECKBOX_ASPECT = (0.75, 1.33)  # width / height of a square path
SHADE_MIN_SIDE = 3.0  # pt: filled rectangles at least this tall and wide may be shading behind text
SHADE_MIN_WIDTH = 0.3  # ...and this share of the page wide (a diagram's labelled nodes are narrower)
SHADE_TEXT_SHARE = 0.25  # ...when text lies on this share of their grid cells
SHADE_MAX_SEGMENTS = 5  # a rectangle is a path of this many segments at most
BACKGROUND_MIN_CHARS = 200  # images with at least this much visible text...
BACKGROUND_TEXT_SHARE = 0.5  # ...this share of it printed over them are a background...
BACKGROUND_IMAGE_TEXT = 0.2  # ...each image with text on this share of its grid cells, that is
PHOTO_MIN_FRACTION = 0.03  # figures covering this share of the page or more are looked at for photos...
PHOTO_MAX_IMAGES = 8  # ...the largest this many of them
TONE_LEVELS = 32  # grey levels of a tone histogram
PHOTO_MIN_LEVELS = 20  # a photo's tones spread over this many grey levels (1% of its pixels each) or more...
PHOTO_MAX_PAPER = 0.5  # ...with less than this share of paper-white pixels;
PHOTO_BARE_PAPER = 0.1  # or, a dark or colourful picture: less than this share of paper-white,
PHOTO_DARK_LEVELS = 12  # this many grey levels or more...
PHOTO_MAX_GROUND = 0.5  # ...and no light ground (tinted paper, a screen) under this share of the pixels
LARGE_TEXT = 1.4  # text at this many times the median font size or more is large (headings, slides)
MONO_NAME_HINTS = ("mono", "courier", "cmtt", "typewriter", "consol", "inconsolata", "lmtt", "sfrm")
_BOLD = re.compile(r"bold|black|heavy|semibold|demi|-bd|cmbx", re.IGNORECASE)


def text_signals(objs: PageObjects) -> dict[str, float | int]:
    """The text-object signals of a page, by ``PageSignals`` field name: how many text objects, how many are
    invisible (an OCR layer), and of the visible ones the share in fixed-pitch or bold fonts, the fonts and
    font sizes used."""
    n_text = len(objs.text_boxes)
    visible_ix = np.flatnonzero(~objs.text_invisible).tolist()
    visible = len(visible_ix)
    names = [objs.text_fonts[i] for i in visible_ix]
    hinted = {name: any(h in name.lower() for h in MONO_NAME_HINTS) for name in set(names)}
    fixed = objs.text_fixed_pitch.tolist()
    n_mono = sum(fixed[i] or hinted[name] for i, name in zip(visible_ix, names, strict=True))
    bold = sum(_BOLD.search(name) is not None for name in names)
    sizes = objs.text_sizes[objs.text_sized & ~objs.text_invisible].tolist()
    out: dict[str, float | int] = {
        "n_text_objects": n_text,
        "invisible_text_fraction": (n_text - visible) / n_text if n_text else 0.0,
        "mono_text_fraction": n_mono / visible if visible else 0.0,
        "n_fonts": len(hinted),
        "median_font_size": round(statistics.median(sizes), 2) if sizes else 0.0,
        "bold_text_share": bold / visible if visible else 0.0,
    }
    if sizes:
        sz = np.asarray(sizes)  # (n_sized,)
        out["n_font_sizes"] = int(np.unique(np.round(sz * 2)).size)
        out["large_text_share"] = round(float((sz >= LARGE_TEXT * out["median_font_size"]).mean()), 4)
    return out


@dataclass(slots=True)
class PathKinds:
    """Paths sorted by shape. Lists of boxes keep the order of the walk."""

    hrules: list[PdfBox] = field(default_factory=list)  # long thin horizontal strokes: table rules, underlines
    vlines: list[PdfBox] = field(default_factory=list)  # thin vertical strokes: rules and short cell separators
    n_rules_v: int = 0  # long thin vertical strokes (in vlines, with the separators)
    drawings: list[PdfBox] = field(default_factory=list)  # the other paths, frames and backgrounds left out
    filled: list[int] = field(default_factory=list)  # indices into drawings: wide filled, unstroked rectangles
    n_small_boxes: int = 0  # square paths of CHECKBOX_MIN to CHECKBOX_MAX pt


def classify_paths(
    boxes: np.ndarray, fill_only: np.ndarray, segments: np.ndarray, page_w: float, page_h: float
) -> PathKinds:
    """Sort paths (``boxes`` (n, 4); ``fill_only`` (n,) filled and not stroked; ``segments`` (n,)) into
    ruling lines, cell separators and drawings, and count the checkboxes among the drawings."""
    page_area = max(page_w * page_h, 1e-6)
    out = PathKinds()
    lo_aspect, hi_aspect = CHECKBOX_ASPECT
    for box, filled, n_seg in zip(map(tuple, boxes.tolist()), fill_only.tolist(), segments.tolist(), strict=True):
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bw <= RULE_MAX_THICKNESS and SEPARATOR_MIN_LENGTH <= bh < RULE_MIN_LENGTH * page_h:
            out.vlines.append(box)  # a short vertical stroke: a cell separator, maybe
        if bh <= RULE_MAX_THICKNESS and bw >= RULE_MIN_LENGTH * page_w:
            out.hrules.append(box)
        elif bw <= RULE_MAX_THICKNESS and bh >= RULE_MIN_LENGTH * page_h:
            out.n_rules_v += 1
            out.vlines.append(box)
        elif bw * bh < DRAWING_MAX_AREA * page_area and max(bw, bh) > DRAWING_MIN_SIDE:
            out.drawings.append(box)
            if (
                CHECKBOX_MIN <= bw <= CHECKBOX_MAX
                and CHECKBOX_MIN <= bh <= CHECKBOX_MAX
                and lo_aspect <= bw / bh <= hi_aspect
            ):
                out.n_small_boxes += 1
            if (
                filled
                and min(bw, bh) >= SHADE_MIN_SIDE
                # long along the text: across the page, or down it where the text runs rotated
                and (bw >= SHADE_MIN_WIDTH * page_w or bh >= SHADE_MIN_WIDTH * page_h)
                and n_seg <= SHADE_MAX_SEGMENTS
            ):
                out.filled.append(len(out.drawings) - 1)
    return out


def shaded_boxes(drawings: list[PdfBox], filled: list[int], text: Mask) -> set[int]:
    """The filled rectangles (``filled``: indices into ``drawings``) with text on ``SHADE_TEXT_SHARE`` of their
    grid cells or more: shading (a code listing's background, a highlighted line, a table's banded row), not a
    drawing. Bars of a chart carry no text; a diagram's nodes are narrower than ``SHADE_MIN_WIDTH``."""
    return {i for i in filled if text.cells_in(drawings[i]) >= max(1, SHADE_TEXT_SHARE * text.count_box(drawings[i]))}


@dataclass(slots=True)
class ImageChoice:
    """The embedded images large enough to be figures, and the page's image measurements."""

    keep: list[int] = field(default_factory=list)  # indices of the figures among the images, in order
    largest_fraction: float = 0.0  # share of the page under the largest figure
    largest_px: tuple[int, int] = (0, 0)  # that figure's pixel width and height
    max_px: int = 0  # pixels of the largest image, figure or not


def select_images(boxes: np.ndarray, px: np.ndarray, page_area: float) -> ImageChoice:
    """The images (``boxes`` (n, 4), ``px`` (n, 2) pixel width and height) that are figures: at least
    ``IMAGE_MIN_FRACTION`` of ``page_area`` and ``IMAGE_MIN_PX`` on their longer pixel side."""
    out = ImageChoice()
    for i, (box, (wpx, hpx)) in enumerate(zip(boxes.tolist(), px.tolist(), strict=True)):
        out.max_px = max(out.max_px, wpx * hpx)
        frac = (box[2] - box[0]) * (box[3] - box[1]) / page_area
        if frac < IMAGE_MIN_FRACTION or max(wpx, hpx) < IMAGE_MIN_PX:
            continue
        out.keep.append(i)
        if frac > out.largest_fraction:
            out.largest_fraction = frac
            out.largest_px = (wpx, hpx)
    return out


def background_images(images: list[PdfBox], text: Mask, image_mask: Mask, visible_chars: float) -> list[PdfBox] | None:
    """The figures that are a background to the text (letterhead, paper texture, a page tiled in strips), or None
    when the page's images are not its background.

    A page has a background when it has ``BACKGROUND_MIN_CHARS`` visible characters or more and at least
    ``BACKGROUND_TEXT_SHARE`` of the text's grid cells lie on images; the background is then the images with
    text on ``BACKGROUND_IMAGE_TEXT`` of their cells (a photo beside the text stays a figure). A scan keeps its
    image: its text, if any, is an invisible OCR layer, and a figure's caption sits beside the figure, not on it.
    """
    if not images or visible_chars < BACKGROUND_MIN_CHARS:
        return None
    on_images = int((text.cells & image_mask.cells).sum())
    if on_images < BACKGROUND_TEXT_SHARE * max(int(text.cells.sum()), 1):
        return None
    return [b for b in images if text.cells_in(b) >= BACKGROUND_IMAGE_TEXT * text.count_box(b)]


@dataclass(frozen=True, slots=True)
class ImageTone:
    """What an image's pixels look like: paper and ink (a page, a chart, a screenshot) or continuous tone."""

    paper: float  # share of near-white, unsaturated pixels
    colour: float  # mean saturation, 0 (grey) to 1
    levels: int  # of TONE_LEVELS grey levels, how many hold 1% of the pixels or more
    ground: float  # share of the pixels on the most common light tone (two neighbouring grey levels)

    @property
    def photo(self) -> bool:
        """Continuous tone over a wide range of grey levels without a paper-white ground, or a dark or colourful
        picture of many tones without a light ground: a photograph (or a painting), not a page, chart or
        screenshot, whose pixels are a plain ground and a few inks (a page on tinted paper has a light ground
        that is not paper-white)."""
        spread = self.levels >= PHOTO_MIN_LEVELS and self.paper < PHOTO_MAX_PAPER
        dark = self.levels >= PHOTO_DARK_LEVELS and self.paper < PHOTO_BARE_PAPER and self.ground < PHOTO_MAX_GROUND
        return spread or dark


def image_tone(rgb: np.ndarray) -> ImageTone:
    """The tone of a small RGB image (``rgb`` (h, w, 3) uint8, a thumbnail)."""
    px = rgb.reshape(-1, 3).astype(np.float32) / 255.0  # (n, 3)
    hi, lo = px.max(axis=1), px.min(axis=1)
    sat = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-6), 0.0)
    grey = px @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    hist = np.bincount(np.minimum((grey * TONE_LEVELS).astype(np.int64), TONE_LEVELS - 1), minlength=TONE_LEVELS)
    share = hist / max(len(grey), 1)
    light = share[TONE_LEVELS // 2 :]
    return ImageTone(
        paper=float(((hi > 0.75) & (sat < 0.15)).mean()) if len(px) else 0.0,
        colour=float(sat.mean()) if len(px) else 0.0,
        levels=int((share >= 0.01).sum()),
        ground=float((light[:-1] + light[1:]).max()),
    )


def photo_candidates(boxes: list[PdfBox], page_area: float) -> list[int]:
    """Indices into ``boxes`` of the figures worth looking at for photos: the ``PHOTO_MAX_IMAGES`` largest that
    cover ``PHOTO_MIN_FRACTION`` of the page or more, largest first."""
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: -areas[i])
    return [i for i in order if areas[i] >= PHOTO_MIN_FRACTION * page_area][:PHOTO_MAX_IMAGES]
