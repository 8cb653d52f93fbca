"""The pipeline's options: which pages go where (router), how documents become rows (ingest), how legs are
searched and fused (search). Pydantic fields with descriptions; ``docrag.config`` assembles them, with the
parsers' ``Limits`` and the model specs, into ``Settings``."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["IngestConfig", "RouterConfig", "SearchConfig", "VisualPages"]


class VisualPages(StrEnum):
    """Which pages go to the visual (ColPali-family) leg."""

    auto = "auto"  # the router decides per page
    all = "all"  # every page (e.g. a GPU budget that allows it)
    none = "none"  # no page (text legs only)
    ambiguous_both = "ambiguous-both"  # as auto, and pages the router is unsure of get visual vectors too


class RouterConfig(BaseModel):
    """Thresholds of the page router. Coverages are fractions of the page area."""

    model_config = ConfigDict(extra="forbid")

    visual_pages: VisualPages = Field(
        VisualPages.auto,
        description="auto: decide per page; all | none: a policy; ambiguous-both: as auto, and text pages whose "
        "confidence is under ambiguous_below also get visual vectors (every page's text is indexed anyway).",
    )
    decision: Literal["learned", "rules"] = Field(
        "learned",
        description="learned: the fitted layout-vs-text model (router_model.json); rules: the hand-set "
        "thresholds below (layout_min_share, slide_*).",
    )
    model: str | None = Field(
        None, description="A router model JSON of your own (benchmarks/router.py --fit writes one)."
    )

    @field_validator("model")
    @classmethod
    def _model_loads(cls, value: str | None) -> str | None:
        """A router model of the user's is read when the settings are, so a bad path fails before any page."""
        if value is not None:
            from .router_model import load_model

            load_model(value)
        return value

    layout_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="learned: a page is layout when P(layout) is at least this."
    )
    ambiguous_below: float = Field(
        0.75,
        ge=0.5,
        le=1.0,
        description="Confidence (0.5 a coin flip .. 1.0) under which a page counts as ambiguous "
        "(visual_pages=ambiguous-both sends it to both legs).",
    )
    min_text_chars: int = Field(
        40, description="A page with fewer visible non-space characters has no usable text layer."
    )
    blank_max_image_coverage: float = Field(
        0.05,
        description="A page with fewer than min_text_chars visible characters, no drawing and images under this "
        "share of it (a logo) is nearly blank: text.",
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
    slide_min_font_size: float = Field(16.0, description="Median font size (pt) that marks slide-like type...")
    slide_min_relative_font: float = Field(
        0.028, description="... or this share of the page height, whichever is smaller (a 14 pt slide 445 pt high)."
    )
    form_min_fields: int = Field(3, description="Interactive form fields that make a page a form ('layout').")
    ocr_min_image_coverage: float = Field(
        0.1,
        description="A page without a usable text layer is OCR'd when an image covers at least this share of it "
        "(a scan, a photographed page).",
    )
    ocr_min_glyph_paths: int = Field(
        200,
        description="... or when it has at least this many vector paths (text drawn as outlines). Other pages "
        "without text have nothing to read: no OCR.",
    )
    photo_max_document_likeness: float = Field(
        0.5,
        description="Image files scoring below this document-likeness (paper background, grey) are photos.",
    )
    photo_page_share: float = Field(
        0.8,
        description="A PDF page without usable text whose figures are photographs (continuous tone, no paper "
        "ground) over at least this share of their area is a photo page: text, its photos for the image leg, "
        "no OCR. (Photographs are never layout regions: a page of prose and a photo is text.)",
    )


class IngestConfig(BaseModel):
    """How documents become rows: elements, OCR, rendering, batching."""

    model_config = ConfigDict(extra="forbid")

    elements: Literal["unstructured", "text-layer"] = Field(
        "unstructured",
        description="Element partitioning for born-digital text: unstructured's fast strategy (guarded; falls back "
        "to the text layer), or the text layer alone (faster).",
    )
    ocr: bool = Field(True, description="OCR pages without a usable text layer (tesseract).")
    ocr_dpi: int = Field(300, ge=72, le=600, description="Render resolution for OCR.")
    ocr_lang: str = Field("eng", description="tesseract language(s), e.g. 'eng+deu'.")
    visual_dpi: int = Field(150, ge=50, le=400, description="Render resolution for the visual (ColPali) leg.")
    page_batch: int = Field(8, ge=1, description="Pages parsed, rendered and embedded together (bounds memory).")
    thumbnail_px: int = Field(256, ge=32, le=1024, description="Longest side of the stored page thumbnail.")
    figures: bool = Field(True, description="Embed figures and image files with the image leg's model.")
    min_figure_px: int = Field(
        96,
        description="Figures smaller than this on their longest side are not embedded (the parser does not count "
        "images under 64 px as figures at all).",
    )
    chunk_max_tokens: int | None = Field(
        None, description="Chunk size in tokens (default: the text model's window, at most 512)."
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by consecutive windows of a long element.")
    strip_running_lines: bool = Field(
        True, description="Leave running headers/footers (lines repeated at page edges) out of the text legs."
    )
    caption_context: bool = Field(
        True,
        description="Embed each text chunk with its page's figure and table captions in front (a contextual "
        "chunk header): a chart's page rarely says in prose what the chart shows.",
    )
    dehyphenate: bool = Field(
        True, description="Rejoin words hyphenated across lines, guided by the document's own vocabulary."
    )
    # Budgets of the isolated plan workers (``pipeline.workers``): past one, the worker is killed and its file
    # reported, and the batch goes on.
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
    convert_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Wall time LibreOffice may take to convert one Office or OpenDocument file to PDF before it is "
        "killed and the file reported.",
    )
    worker_memory_bytes: int = Field(
        4 << 30,
        description="Address-space cap of each parsing worker (RLIMIT_AS); a worker that needs more is stopped "
        "and its file reported. 0: no cap.",
    )
    writer_lease_s: float = Field(
        60.0,
        ge=2.0,
        description="s3:// databases: the writer's lease, renewed every third of it. A writer killed while it held "
        "the lease keeps other writers waiting this long; one that cannot renew it for most of it stops writing.",
    )


class SearchConfig(BaseModel):
    """How legs are searched and fused."""

    model_config = ConfigDict(extra="forbid")

    fusion: Literal["rrf", "weighted"] = Field("rrf", description="Reciprocal-rank fusion, or calibrated weighted sum.")
    rrf_k: int = Field(60, ge=1, description="RRF constant: score = sum of weight / (rrf_k + rank).")
    candidates: int = Field(50, ge=1, description="Pages each leg returns before fusion.")
    visual_search: Literal["auto", "exact", "two-stage"] = Field(
        "auto",
        description="Visual leg: exact MaxSim over every page, or two-stage (the database's first stage proposes "
        "candidates, scored exactly from their stored vectors); auto: exact below 20,000 visual pages while "
        "their vectors fit in 2 GiB of RAM.",
    )
    visual_candidates: int = Field(
        96,
        ge=1,
        description="Two-stage visual search: pages the first stage hands to the exact rerank (from the compact "
        "codes: 4 times as many from the codes, of 20 times as many kept by the token-level stage, and the best 32 "
        "of those at 12 bits).",
    )
    visual_rerank: Literal["auto", "exact"] = Field(
        "auto",
        description="Two-stage visual search: auto reranks from the compact codes when they are current (a local "
        "database's visual_codes folder, an s3:// database's local cache), else from the stored vectors; exact "
        "always from the stored vectors.",
    )
    weights: dict[str, float] = Field(
        default_factory=lambda: {"visual": 1.0, "text": 1.0, "image": 0.5, "bm25": 1.0},
        description="Per-leg weights (both fusion methods).",
    )
