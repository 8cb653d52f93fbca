"""Configuration: resource limits for untrusted inputs and the router's thresholds.

Every knob is a pydantic field with a description, so the options document themselves
(``docrag.config.RouterConfig.model_json_schema()``) and can come from a TOML file or the environment.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from docrag.indexes.models import ModelSpec
from docrag.parsers.limits import Limits

__all__ = [
    "PROFILES",
    "IngestConfig",
    "Limits",
    "RouterConfig",
    "SearchConfig",
    "Settings",
    "VisualPages",
    "load_settings",
]


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
    figures: bool = Field(True, description="Embed figures and image files with the unified image side.")
    min_figure_px: int = Field(96, description="Figures smaller than this on their longest side are not embedded.")
    chunk_max_tokens: int | None = Field(None, description="Chunk size in tokens (default: the model's limit).")
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


class SearchConfig(BaseModel):
    """How legs are searched and fused."""

    model_config = ConfigDict(extra="forbid")

    fusion: Literal["rrf", "weighted"] = Field("rrf", description="Reciprocal-rank fusion, or calibrated weighted sum.")
    rrf_k: int = Field(60, ge=1, description="RRF constant: score = sum of weight / (rrf_k + rank).")
    candidates: int = Field(50, ge=1, description="Pages each leg returns before fusion.")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"visual": 1.0, "text": 1.0, "image": 0.5, "bm25": 1.0},
        description="Per-leg weights (both fusion methods).",
    )


def _spec(**kw: Any) -> dict[str, Any]:
    return kw


# Built-in profiles. Specs are plain dicts so a TOML file or the environment can override single fields.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {
        "visual": _spec(
            type="colidefics3",
            model="vidore/colSmol-256M",
            revision="a59110fdf114638b8018e6c9a018907e12f14855",
            batch_size=2,
        ),
        "unified": _spec(
            type="nomic-v1.5",
            model="nomic-ai/nomic-embed-text-v1.5",
            vision_model="nomic-ai/nomic-embed-vision-v1.5",
            batch_size=16,
        ),
    },
    "gpu": {
        "visual": _spec(type="colqwen2_5", model="vidore/colqwen2.5-v0.2", batch_size=8),
        "unified": _spec(
            type="nomic-v1.5",
            model="nomic-ai/nomic-embed-text-v1.5",
            vision_model="nomic-ai/nomic-embed-vision-v1.5",
            batch_size=64,
        ),
    },
    "lite": {
        "visual": None,
        "unified": _spec(type="sentence-transformers", model="sentence-transformers/all-MiniLM-L6-v2", batch_size=32),
        "router": {"visual_pages": "none"},
        # Two text legs: calibrated scores keep the margins that ranks throw away (dev set: fused nDCG@5
        # 0.916 weighted vs 0.869 RRF; benchmarks/RESULTS.md). RRF stays the default where legs differ in kind.
        "search": {"fusion": "weighted"},
    },
}
PROFILE_NOTES = {
    "cpu": "colSmol-256M (ColIdefics3) for visual pages + nomic-embed v1.5 text/vision; the default",
    "gpu": "ColQwen2.5-v0.2 for visual pages + nomic-embed v1.5; needs a GPU and torchvision",
    "lite": "no visual model: all-MiniLM-L6-v2 text leg + BM25, OCR for scanned pages; fully offline",
}


class Settings(BaseSettings):
    """Everything docrag needs: models, router, limits, ingest and search options.

    Sources, later wins: the profile's defaults < a TOML file < environment variables
    (``DOCRAG_SEARCH__FUSION=weighted``, ``DOCRAG_VISUAL__DEVICE=cuda`` …).
    """

    model_config = SettingsConfigDict(env_prefix="DOCRAG_", env_nested_delimiter="__", extra="forbid")

    profile: str = Field("cpu", description="Built-in profile the settings started from: cpu, gpu or lite.")
    visual: ModelSpec | None = Field(None, description="Multi-vector model for visual pages (None: no visual leg).")
    unified: ModelSpec | None = Field(None, description="Single-vector text+image embedder.")
    router: RouterConfig = Field(default_factory=RouterConfig)
    limits: Limits = Field(default_factory=Limits)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return env_settings, init_settings  # the environment overrides the profile and the file


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(profile: str | None = None, config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a built-in profile, a TOML file (optional) and the environment.

    The file may set ``profile`` itself; an explicit ``profile`` argument wins over it.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the config file ({exc})") from None
    name = profile or data.get("profile") or os.environ.get("DOCRAG_PROFILE") or "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    merged = _merge(_merge({"profile": name, **PROFILES[name]}, data), overrides)
    merged["profile"] = name
    return Settings(**merged)
