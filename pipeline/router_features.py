"""The router's features: what the learned decision reads off a page's signals, each with the words that explain it.

Every feature has words: the reasons of a decision are the features that pushed it furthest, in sentences a
person can check on the page ("3 whitespace-aligned columns over 60% of the text lines: an unruled table").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from docrag.parsers.types import PageSignals

__all__ = ["BY_NAME", "FEATURES", "REGION_FEATURES", "Feature", "feature_vector"]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    value: Callable[[PageSignals], float]
    words: Callable[[PageSignals], str]  # what the page shows, checkable by eye
    layout_hint: str = ""  # what it suggests when it pushes towards layout (from the side ``direction`` says)
    text_hint: str = ""  # ... towards text
    direction: int = 1  # +1: high values look like layout, -1: like text (hints are given only on that side)


def _n_regions(s: PageSignals) -> int:
    return s.n_tables + s.n_graphics_regions + (s.n_images if s.image_coverage > 0 else 0)


def _regions(s: PageSignals) -> str:
    """The page's regions in words: '1 table without rules (cells aligned by whitespace) and 2 drawings'."""
    ruled = s.n_tables - s.n_unruled_tables
    parts = []
    if ruled:
        parts.append(f"{ruled} ruled table{'s' * (ruled != 1)}")
    if s.n_unruled_tables:
        n = s.n_unruled_tables
        parts.append(f"{n} table{'s' * (n != 1)} without rules (cells aligned by whitespace)")
    if s.n_graphics_regions:
        n = s.n_graphics_regions
        parts.append(f"{n} drawing{'s' * (n != 1)} or chart{'s' * (n != 1)}")
    if s.n_images and s.image_coverage > 0:
        parts.append(f"{s.n_images} image{'s' * (s.n_images != 1)}")
    if not parts:
        return "tables, drawings and images"
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _lg(x: float) -> float:
    return math.log1p(max(x, 0.0))


FEATURES: tuple[Feature, ...] = (
    Feature(
        "aligned_line_share",
        lambda s: s.aligned_line_share,
        lambda s: (
            f"{s.aligned_columns} whitespace-aligned column{'s' * (s.aligned_columns != 1)} over "
            f"{_pct(s.aligned_line_share)} of the {s.n_lines} text lines"
        ),
        "an unruled table or a reference card",
        "no aligned columns inside the lines: running text",
    ),
    Feature(
        "aligned_columns",
        lambda s: _lg(s.aligned_columns),
        lambda s: f"{s.aligned_columns} whitespace-aligned column{'s' * (s.aligned_columns != 1)} inside the lines",
        "table-like columns",
    ),
    Feature(
        "multi_segment_lines",
        lambda s: s.multi_segment_lines,
        lambda s: f"{_pct(s.multi_segment_lines)} of the text lines are split by 2 or more wide gaps",
        "cells side by side",
    ),
    Feature(
        "segments_per_line",
        lambda s: _lg(s.segments_per_line),
        lambda s: f"{s.segments_per_line:.1f} text segments per line",
    ),
    Feature(
        "short_segment_share",
        lambda s: s.short_segment_share,
        lambda s: f"{_pct(s.short_segment_share)} of the text segments are short (under 30% of their column)",
        "terse entries or cells",
        "long lines of prose",
    ),
    Feature(
        "numeric_segment_share",
        lambda s: s.numeric_segment_share,
        lambda s: f"{_pct(s.numeric_segment_share)} of the text segments are numbers",
        "a table of figures",
    ),
    Feature(
        "median_segment_chars",
        lambda s: _lg(s.median_segment_chars),
        lambda s: f"text segments of {s.median_segment_chars:.0f} characters (median)",
        "short entries",
        "long lines",
        direction=-1,
    ),
    Feature(
        "toc_line_share",
        lambda s: s.toc_line_share,
        lambda s: f"{_pct(s.toc_line_share)} of the lines are words then a page number",
        "",
        "a table of contents or an index",
        direction=-1,
    ),
    Feature(
        "leader_line_share",
        lambda s: s.leader_line_share,
        lambda s: f"dot leaders on {_pct(s.leader_line_share)} of the lines",
        "",
        "a table of contents or an index",
        direction=-1,
    ),
    Feature(
        "small_boxes",
        lambda s: _lg(s.n_small_boxes),
        lambda s: f"{s.n_small_boxes} small square boxes (checkboxes)",
        "a form to fill in",
    ),
    Feature(
        "n_columns",
        lambda s: float(min(s.n_columns, 8)),
        lambda s: f"{s.n_columns} text column{'s' * (s.n_columns != 1)} separated by gutters",
        "a multi-column layout",
    ),
    Feature(
        "n_lines",
        lambda s: _lg(s.n_lines),
        lambda s: f"{s.n_lines} text lines",
        "",
        "a full page of lines",
        direction=-1,
    ),
    Feature(
        "visible_chars",
        lambda s: _lg(s.visible_chars),
        lambda s: f"{s.visible_chars:.0f} visible characters",
        "little text",
        "plenty of text",
        direction=-1,
    ),
    Feature(
        "char_density",
        lambda s: _lg(s.char_density),
        lambda s: f"{s.char_density:.1f} characters per 1,000 pt² of the printed area",
        "sparse text",
        "dense text",
        direction=-1,
    ),
    Feature(
        "text_coverage",
        lambda s: s.text_coverage,
        lambda s: f"text covers {_pct(s.text_coverage)} of the page",
    ),
    Feature(
        "visual_share",
        lambda s: s.visual_share,
        lambda s: f"{_regions(s)} {'take' if _n_regions(s) != 1 else 'takes'} {_pct(s.visual_share)} of the content",
        "tables or figures",
        "no sizeable table or figure",
    ),
    Feature(
        "table_share",
        lambda s: s.table_share,
        lambda s: (
            f"{s.n_tables} table{'s' * (s.n_tables != 1)} over {_pct(s.table_share)} of the content"
            + (f" ({s.n_unruled_tables} without rules: cells aligned by whitespace)" if s.n_unruled_tables else "")
        ),
        "a ruled table",
    ),
    Feature(
        "figure_share",
        lambda s: s.figure_share,
        lambda s: f"drawings and images over {_pct(s.figure_share)} of the content",
        "a figure",
    ),
    Feature(
        "drawing_share",
        lambda s: s.drawing_share,
        lambda s: (
            f"vector drawing covers {_pct(s.drawing_share)} of the content ({s.n_paths} paths"
            + (f", {s.n_form_paths} inside Form XObjects" if s.n_form_paths else "")
            + ")"
        ),
        "a diagram or chart",
    ),
    Feature(
        "drawing_extent_share",
        lambda s: s.drawing_extent_share,
        lambda s: f"vector drawings span {_pct(s.drawing_extent_share)} of the content ({s.n_paths} paths)",
        "a diagram or chart",
        "no drawing of any size",
    ),
    Feature(
        "rules",
        lambda s: _lg(s.n_rules_h + s.n_rules_v),
        lambda s: f"{s.n_rules_h} horizontal and {s.n_rules_v} vertical ruling lines",
        "ruled cells or boxes",
    ),
    Feature(
        "image_coverage",
        lambda s: max(s.image_coverage - s.photo_coverage, 0.0),
        lambda s: (
            f"embedded images cover {_pct(s.image_coverage)} of the page"
            + (f", photographs {_pct(s.photo_coverage)} of it" if s.n_photos else "")
        ),
        "a picture",
    ),
    Feature(
        "graphics_text_share",
        lambda s: min(s.graphics_text_chars / max(s.visible_chars, 1.0), 1.0),
        lambda s: (
            f"{_pct(min(s.graphics_text_chars / max(s.visible_chars, 1.0), 1.0))} of the text sits inside "
            "tables or drawings"
        ),
        "labels inside a figure or table",
    ),
    Feature(
        "mono_text_fraction",
        lambda s: s.mono_text_fraction,
        lambda s: f"{_pct(s.mono_text_fraction)} of the text in fixed-pitch fonts",
        "",
        "code or printed output",
        direction=-1,
    ),
    Feature(
        "median_font_size",
        lambda s: _lg(s.median_font_size),
        lambda s: f"median font size {s.median_font_size:.0f} pt",
        "large type",
        "body-size type",
    ),
    Feature(
        "relative_font_size",
        lambda s: 100 * s.median_font_size / max(min(s.width_pt, s.height_pt), 1.0),
        lambda s: (
            f"type {s.median_font_size:.0f} pt on a {min(s.width_pt, s.height_pt):.0f} pt wide page "
            f"({100 * s.median_font_size / max(min(s.width_pt, s.height_pt), 1.0):.1f}% of it)"
        ),
        "type large for the page: a slide or poster",
        "body text for the page size",
    ),
    Feature(
        "aspect",
        lambda s: max(s.width_pt, s.height_pt) / max(min(s.width_pt, s.height_pt), 1.0),
        lambda s: f"page aspect {max(s.width_pt, s.height_pt) / max(min(s.width_pt, s.height_pt), 1.0):.2f}",
        "a screen-shaped page (16:9, 4:3)",
    ),
    Feature(
        "large_text_share",
        lambda s: s.large_text_share,
        lambda s: f"{_pct(s.large_text_share)} of the text objects in large type",
        "headline-sized type",
    ),
    Feature(
        "n_font_sizes",
        lambda s: _lg(s.n_font_sizes),
        lambda s: f"{s.n_font_sizes} font sizes",
        "varied type sizes",
    ),
    Feature(
        "bold_text_share",
        lambda s: s.bold_text_share,
        lambda s: f"{_pct(s.bold_text_share)} of the text objects in bold",
        "many bold labels",
    ),
    Feature(
        "landscape",
        lambda s: (
            float(s.width_pt > 1.15 * s.height_pt) if s.rotation in (0, 180) else float(s.height_pt > 1.15 * s.width_pt)
        ),
        lambda s: "landscape page" if (s.width_pt > s.height_pt) == (s.rotation in (0, 180)) else "portrait page",
        "a slide, chart or wide table",
    ),
    Feature(
        "form_fields",
        lambda s: _lg(s.n_form_fields),
        lambda s: f"{s.n_form_fields} interactive form fields",
        "a form",
    ),
)
BY_NAME = {f.name: f for f in FEATURES}
REGION_FEATURES = {"visual_share", "table_share", "figure_share", "image_coverage"}  # what the region rule says


def feature_vector(s: PageSignals, names: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
    return np.asarray([BY_NAME[n].value(s) for n in (names or [f.name for f in FEATURES])], dtype=float)
