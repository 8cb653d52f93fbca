"""Configuration: resource limits for untrusted inputs and the router's thresholds.

Every knob is a pydantic field with a description, so the options document themselves
(``docrag.config.RouterConfig.model_json_schema()``) and can come from a TOML file or the environment.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limits", "RouterConfig", "VisualPages"]


class Limits(BaseModel):
    """Caps that keep a hostile PDF or image from exhausting time or memory."""

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(1 << 30, description="Files larger than this are refused (bytes).")
    max_pages: int = Field(5000, description="Pages beyond this are not read; the document keeps a warning.")
    max_render_pixels: int = Field(
        25_000_000, description="A page render is scaled down so width*height stays under this."
    )
    max_image_pixels: int = Field(
        100_000_000,
        description="Images (files, frames, embedded images) larger than this are refused, not decoded.",
    )
    max_page_objects: int = Field(
        20_000, description="Page objects inspected for signals; the rest are counted but not measured."
    )
    min_figure_px: int = Field(64, description="Embedded images smaller than this on both sides are ignored.")
    min_figure_fraction: float = Field(
        0.01, description="Embedded images covering less than this share of the page are ignored."
    )


class VisualPages(StrEnum):
    """Which pages go to the visual (ColPali-family) leg."""

    auto = "auto"  # the router decides per page
    all = "all"  # every page (e.g. a GPU budget that allows it)
    none = "none"  # no page (text legs only)


class RouterConfig(BaseModel):
    """Thresholds of the page router. Coverages are fractions of the page area."""

    model_config = ConfigDict(extra="forbid")

    visual_pages: VisualPages = Field(VisualPages.auto, description="auto: decide per page; all | none.")
    min_text_chars: int = Field(
        40, description="A page with fewer visible non-space characters has no usable text layer."
    )
    scan_image_coverage: float = Field(
        0.5, description="An image covering at least this share of a page without usable text makes it a scan."
    )
    layout_min_share: float = Field(
        0.09,
        description=(
            "A page is 'layout' when detected regions — clusters of vector paths (charts, diagrams), ruled "
            "tables, images — cover at least this share of its content box. Regions are measured tightly "
            "(plot area without axis labels, table body between its rules, no captions), so 0.09 matches a "
            "figure or table that takes roughly a quarter of the printed page."
        ),
    )
    layout_confident_share: float = Field(
        0.3, description="At this region share (or above) the layout decision is fully confident."
    )
    slide_max_chars: int = Field(
        900, description="Landscape pages with fewer characters and large type look like slides."
    )
    slide_min_font_size: float = Field(16.0, description="Median font size (pt) that marks slide-like type.")
    form_min_fields: int = Field(3, description="Interactive form fields that make a page a form ('layout').")
    photo_max_document_likeness: float = Field(
        0.5,
        description="Image files scoring below this document-likeness (paper background, grey) are photos.",
    )
