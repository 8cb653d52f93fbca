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
    max_page_chars: int = Field(
        200_000,
        description="Characters of a page's text layer measured for positions and signals; the rest is kept as "
        "text but not measured (a page of 200,000 words stays linear and bounded).",
    )
    max_unpacked_bytes: int = Field(
        1 << 30,
        description="Office and OpenDocument files (ZIP archives) whose parts unpack to more than this are refused "
        "(ZIP bombs).",
    )
    max_text_page_chars: int = Field(
        4000,
        gt=100,
        description="HTML, Markdown and plain-text documents are cut into pages of at most this many characters.",
    )
