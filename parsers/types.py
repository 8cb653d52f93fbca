"""Plain data types the parsers produce: documents, pages, text spans, figures and signals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["BBox", "Figure", "LayoutRegion", "OpenContext", "Page", "PageSignals", "TextSpan"]

# (x0, top, x1, bottom) in PDF points (1/72 inch), origin at the top-left of the page as displayed.
BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class TextSpan:
    """A run of text from the text layer (or OCR) with its box."""

    text: str
    bbox: BBox


@dataclass(frozen=True, slots=True)
class Figure:
    """An embedded image (or a standalone image file) large enough to matter."""

    bbox: BBox
    width_px: int
    height_px: int
    kind: str = "image"


@dataclass(frozen=True, slots=True)
class LayoutRegion:
    """A part of the page that carries non-prose meaning: a ruled table, a drawing/chart, an image."""

    kind: str  # "table" | "graphics" | "image"
    bbox: BBox
    n_items: int  # rules, vector paths or images inside

    @property
    def area(self) -> float:
        return max(self.bbox[2] - self.bbox[0], 0.0) * max(self.bbox[3] - self.bbox[1], 0.0)


@dataclass(slots=True)
class PageSignals:
    """Cheap per-page measurements the router decides from. Coverages are fractions of the page area."""

    width_pt: float = 0.0
    height_pt: float = 0.0
    rotation: int = 0
    n_chars: int = 0  # non-whitespace characters in the text layer
    n_words: int = 0
    text_coverage: float = 0.0  # area under text-layer boxes (visible text only)
    n_text_objects: int = 0
    invisible_text_fraction: float = 0.0  # share of text objects drawn with render mode 3 (OCR layers)
    n_fonts: int = 0
    mono_text_fraction: float = 0.0  # share of text objects in fixed-pitch fonts (code, printed output)
    median_font_size: float = 0.0
    n_images: int = 0
    image_coverage: float = 0.0  # union of embedded image boxes
    largest_image_coverage: float = 0.0
    n_paths: int = 0
    graphics_coverage: float = 0.0  # area of clusters of vector paths (charts, diagrams)
    n_graphics_regions: int = 0
    graphics_text_chars: int = 0  # characters inside graphics regions (axis labels, node text)
    n_rules_h: int = 0  # thin horizontal lines (table rules, underlines)
    n_rules_v: int = 0
    table_coverage: float = 0.0  # area spanned by groups of ruling lines around non-prose text
    n_tables: int = 0  # ruled and unruled
    n_unruled_tables: int = 0  # tables found from aligned cells alone, no rules (counted in n_tables)
    content_coverage: float = 0.0  # bounding box of everything printed (text and graphics)
    visual_share: float = 0.0  # union of table/graphics/image regions over the content box
    table_share: float = 0.0  # ruled tables over the content box
    figure_share: float = 0.0  # drawings, charts and images over the content box
    n_form_fields: int = 0
    # Layout signals (see docrag.parsers.layout): lines of text, their segments and the page's columns.
    n_lines: int = 0
    segments_per_line: float = 0.0
    multi_segment_lines: float = 0.0  # share of lines with 3+ segments (2+ wide gaps inside the line)
    n_columns: int = 0  # 1 + vertical gutters across the text area
    aligned_columns: int = 0  # whitespace columns: x positions where many lines start (or end) a segment
    aligned_line_share: float = 0.0  # share of lines with a segment edge on a whitespace column
    short_segment_share: float = 0.0  # share of segments under 30% of their column's width
    numeric_segment_share: float = 0.0  # share of segments that are numbers
    median_segment_chars: float = 0.0
    line_height: float = 0.0  # median text-run height, pt
    toc_line_share: float = 0.0  # share of lines that end in a lone page number after words (contents, index)
    leader_line_share: float = 0.0  # dot leaders (". . . ." runs) per text line: contents pages, indexes
    n_small_boxes: int = 0  # square paths of 4-16 pt (checkboxes, markers)
    char_density: float = 0.0  # characters of the text layer per 1,000 pt² of the content box
    n_font_sizes: int = 0  # distinct font sizes (to 0.5 pt)
    large_text_share: float = 0.0  # share of text objects at 1.4x the median size or more (headings, slides)
    bold_text_share: float = 0.0
    drawing_coverage: float = 0.0  # union of vector-path boxes (any number of paths) over the page
    drawing_share: float = 0.0  # drawn cells without text on them, over the content box
    drawing_extent_share: float = 0.0  # bounding boxes of drawings (paths close together), over the content box
    n_form_paths: int = 0  # vector paths inside Form XObjects (counted in n_paths too)
    n_boxed_text: int = 0  # drawing regions that are frames around dense text (listings, notes): not figures
    n_shaded_boxes: int = 0  # filled rectangles with text on them (shading, highlights): not drawings
    n_objects: int = 0
    objects_truncated: bool = False  # the page had more objects than the inspection cap
    has_text_layer: bool = False
    source: str = "pdf"  # "pdf", "image" or "text" (HTML, Markdown, plain text)
    pixel_width: int = 0  # image pages: the image's own size (PDF pages: the largest figure's)
    pixel_height: int = 0
    # Image pages, and the largest figure of a PDF page when it was looked at (tone_levels > 0):
    paper_fraction: float = 0.0  # share of near-white, unsaturated pixels (paper)
    colorfulness: float = 0.0  # mean saturation, 0 (grey) to 1
    tone_levels: int = 0  # PDF pages: of 32 grey levels, how many hold 1% of its pixels (0: not looked at)
    n_photos: int = 0  # PDF pages: figures that look like photographs (continuous tone, no paper ground)
    photo_coverage: float = 0.0  # union of those photos over the page (they are figures, not layout regions)

    @property
    def visible_chars(self) -> float:
        """Characters of the text layer that are drawn visibly (an invisible OCR layer does not count)."""
        return self.n_chars * (1.0 - self.invisible_text_fraction)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


@dataclass(slots=True)
class Page:
    """One page of a document: its text layer, signals, figures and a way to render it."""

    file: str
    number: int  # 1-based
    width_pt: float
    height_pt: float
    text: str
    spans: list[TextSpan]
    signals: PageSignals
    figures: list[Figure] = field(default_factory=list)
    regions: list[LayoutRegion] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    words: list[TextSpan] = field(default_factory=list)  # the text layer's words, each with its own box
    # Text documents (HTML, Markdown): local image files the page shows, checked to lie inside the folder
    # being indexed (``parsers.textdoc``); the image leg reads them.
    linked_images: list[str] = field(default_factory=list)
    _renderer: Callable[[float], Image.Image] | None = field(default=None, repr=False)

    def render(self, dpi: float = 100.0) -> Image.Image:
        """Render the page to an RGB PIL image (capped in pixels, see ``Limits.max_render_pixels``)."""
        if self._renderer is None:
            raise RuntimeError(f"{self.file} page {self.number}: the document is closed; render inside `with`")
        return self._renderer(dpi)


@dataclass(slots=True)
class OpenContext:
    """What opening a file may need beyond the file and the limits: how to convert (Office files), the folders
    being indexed (local images a web page links to must lie inside one), and who to tell about a converter
    process (its process group, so a worker's parent can kill it)."""

    convert: Any = None  # parsers.office.ConvertOptions
    roots: tuple[str, ...] = ()
    on_process: Callable[[int], None] | None = None
