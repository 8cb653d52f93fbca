"""Caps for untrusted inputs, owned by the parsers (``docrag.config`` assembles them into the settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limits"]


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
    max_page_chars: int = Field(
        200_000,
        description="Characters of a page's text layer measured for positions and signals; the rest is kept as "
        "text but not measured (a page of 200,000 words stays linear and bounded).",
    )
    page_timeout_s: float = Field(
        120.0, gt=0, description="Wall time one page may take to parse, OCR and render before its worker is killed."
    )
    document_timeout_s: float = Field(
        1800.0, gt=0, description="Wall time one document may take in its worker before the worker is killed."
    )
    elements_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Wall time for element extraction (unstructured) of one document; past it the text layer "
        "is used instead and the pages say so.",
    )
    worker_memory_bytes: int = Field(
        4 << 30,
        description="Address-space cap of each parsing worker (RLIMIT_AS); a worker that needs more is stopped "
        "and its file reported. 0: no cap.",
    )
