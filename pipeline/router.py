"""The page router: per page, which index it belongs in, and why — in words a person can check.

``visual`` pages (scanned, or whose meaning lives in tables, charts, diagrams, slides, forms) go to the
ColPali-family late-interaction leg; ``text`` pages (prose) go to the text leg, and their figures and
natural images to the image leg. Text found on every page still feeds BM25 and snippets.

The decision reads only cheap signals (``docrag.parsers.types.PageSignals``). Scans, forms, slides, blank
pages and text-less drawings are decided by plain rules. Layout-vs-text for everything else starts from the
region rule (regions over ``layout_min_share`` of the content: layout) and is corrected by small boosted trees
fitted on labelled pages (``router_model.py``, numbers in ``router_model.json``); the rule and the features
that moved the decision furthest become the reasons. Settings live in
``docrag.pipeline.options.RouterConfig`` (``decision = "rules"``: the region rule alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from docrag.parsers.types import Page, PageSignals

from .options import RouterConfig, VisualPages

__all__ = ["Route", "RoutingReport", "needs_ocr", "route_page", "route_signals"]

LABELS = ("scanned", "layout", "text")
ROUTES = ("visual", "text")


@dataclass(slots=True)
class Route:
    """Where a page goes, what it looks like, how sure the router is, and why."""

    file: str
    page: int  # 1-based
    route: str  # "visual" | "text"
    label: str  # "scanned" | "layout" | "text"
    confidence: float  # 0.5 (a coin flip) .. 1.0
    reasons: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    ocr: bool = False  # no usable text layer, and something to read: an image or text drawn as outlines
    ambiguous: bool = False  # confidence under ambiguous_below

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "page": self.page,
            "route": self.route,
            "label": self.label,
            "ocr": self.ocr,
            "ambiguous": self.ambiguous,
            "confidence": round(self.confidence, 3),
            "reasons": list(self.reasons),
            "signals": dict(self.signals),
        }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _covers(n: int, noun: str, detail: str = "") -> str:
    """'1 ruled table covers' / '3 ruled tables cover'."""
    return f"{n} {noun}{detail} covers" if n == 1 else f"{n} {noun}s{detail} cover"


def _confidence(value: float, threshold: float, confident_at: float) -> float:
    """0.5 at the threshold, rising linearly to 1.0 at ``confident_at`` (on either side)."""
    span = abs(confident_at - threshold) or 1e-9
    return 0.5 + 0.5 * min(abs(value - threshold) / span, 1.0)


def _classify_image_file(s: PageSignals, cfg: RouterConfig) -> tuple[str, float, list[str]]:
    size = f"{s.pixel_width}×{s.pixel_height}"
    likeness = s.paper_fraction * (1.0 - s.colorfulness)
    detail = f"paper-like background {_pct(s.paper_fraction)}, colourfulness {s.colorfulness:.2f}"
    if likeness >= cfg.photo_max_document_likeness:
        conf = _confidence(likeness, cfg.photo_max_document_likeness, 0.9)
        return "scanned", conf, [f"image file ({size}) looks like a document page: {detail}"]
    conf = _confidence(likeness, cfg.photo_max_document_likeness, 0.1)
    return "text", conf, [f"image file ({size}) looks like a photo or figure: {detail}"]


def _photo_page(s: PageSignals, cfg: RouterConfig) -> bool:
    """The page's figures are photographs (``photo_page_share`` of their area or more)."""
    return s.n_photos > 0 and s.photo_coverage >= cfg.photo_page_share * s.image_coverage


def _photos(s: PageSignals) -> str:
    """'1 photograph covers 40% of the page' / '4 photographs cover 43% of the page'."""
    return f"{_covers(s.n_photos, 'photograph')} {_pct(s.photo_coverage)} of the page"


def _classify_pdf_page(s: PageSignals, cfg: RouterConfig, model: Any = None) -> tuple[str, float, list[str]]:
    visible_chars = round(s.visible_chars)
    # 1. Photographs and no usable text (a full-page photo, a grid of photos): natural images for the image leg,
    # not a scan (a picture of a printed page: paper and ink) nor a figure whose arrangement carries the meaning.
    if visible_chars < cfg.min_text_chars and _photo_page(s, cfg):
        tone = f"{s.tone_levels} of 32 grey levels, {_pct(s.paper_fraction)} paper-white"
        conf = min(_confidence(s.photo_coverage / max(s.image_coverage, 1e-9), cfg.photo_page_share, 1.0), 0.9)
        return (
            "text",
            conf,
            [
                f"{_photos(s)} and there is no usable text ({visible_chars} visible characters): natural images "
                f"for the image leg, not a scanned page (the largest looked at: continuous tone, {tone})"
            ],
        )
    # 2. Scans: a page-sized image and no usable visible text (an invisible OCR layer does not count).
    if visible_chars < cfg.min_text_chars and s.largest_image_coverage >= cfg.scan_image_coverage:
        w, h = s.pixel_width, s.pixel_height
        img = f"one {w}×{h} image" if w and h else "an image"
        if s.invisible_text_fraction > 0.5:
            first = f"invisible OCR text layer ({s.n_chars} chars) over a page-sized image"
        elif s.n_chars == 0:
            first = "no text layer"
        else:
            first = f"only {s.n_chars} visible characters"
        reasons = [f"{first}; page is {img} covering {_pct(s.largest_image_coverage)}"]
        conf = _confidence(s.largest_image_coverage, cfg.scan_image_coverage, 0.9)
        return "scanned", conf, reasons

    reasons: list[str] = []
    # 3. Forms and slides are layout whatever their regions.
    if s.n_form_fields >= cfg.form_min_fields:
        return "layout", 0.9, [f"{s.n_form_fields} interactive form fields"]
    # A few words and nothing to see (a section divider, a page of one word): not worth the visual leg,
    # slide-shaped or not, and not when unsure pages go there either.
    # A small image (a logo) leaves it nearly blank: its figure still goes to the image leg.
    small = s.image_coverage < cfg.blank_max_image_coverage
    nearly_blank = visible_chars < cfg.min_text_chars and small and s.drawing_extent_share < 0.05
    if nearly_blank and cfg.decision == "learned":
        drawn = f"an image over {_pct(s.image_coverage)} of the page" if s.image_coverage else "nothing drawn"
        return "text", 0.9, [f"nearly blank page ({visible_chars} visible characters, {drawn})"]
    w, h = (s.height_pt, s.width_pt) if s.rotation in (90, 270) else (s.width_pt, s.height_pt)
    landscape = w > h * 1.15
    large = s.median_font_size >= min(cfg.slide_min_font_size, cfg.slide_min_relative_font * h)
    if landscape and 0 < s.n_chars <= cfg.slide_max_chars and large and not nearly_blank:
        return (
            "layout",
            0.8,
            [
                f"slide-like: landscape page, {s.n_chars} characters in type large for the page "
                f"(median {s.median_font_size:.0f} pt on a {h:.0f} pt high page)"
            ],
        )

    # 4. Regions that carry the meaning: tables, charts/diagrams, images (photographs are not such regions).
    reasons += _region_reasons(s)
    if visible_chars < cfg.min_text_chars and s.n_paths >= 50:
        reasons.append(f"no usable text layer ({visible_chars} chars) but {s.n_paths} vector paths: a drawing")
        return "layout", 0.8, reasons
    if cfg.decision == "learned":
        return _learned(s, cfg, model)
    return _region_rule(s, cfg, reasons)


def _region_reasons(s: PageSignals) -> list[str]:
    """The page's tables, drawings and images in words."""
    reasons = []
    if s.n_tables:
        ruled = s.n_tables - s.n_unruled_tables
        if not ruled:
            noun = "table without rules (cells aligned by whitespace)"
            what = (
                f"1 {noun} covers"
                if s.n_tables == 1
                else f"{s.n_tables} tables without rules (cells aligned by whitespace) cover"
            )
        elif not s.n_unruled_tables:
            what = _covers(s.n_tables, "ruled table")
        else:
            what = f"{s.n_tables} tables ({s.n_unruled_tables} without rules) cover"
        reasons.append(f"{what} {_pct(s.table_share)} of the content")
    if s.n_graphics_regions:
        share = min(s.graphics_coverage / max(s.content_coverage, 1e-9), 1.0)
        what = _covers(s.n_graphics_regions, "chart/drawing", f" ({s.n_paths} vector paths)")
        reasons.append(f"{what} {_pct(share)} of the content")
    if s.n_images and s.image_coverage > s.photo_coverage + 0.005:  # images other than photographs
        reasons.append(f"{_covers(s.n_images, 'embedded image')} {_pct(s.image_coverage)} of the page")
    if s.n_photos:
        reasons.append(f"{_photos(s)}: natural images for the image leg, not a layout region")
    return reasons


def _region_rule(s: PageSignals, cfg: RouterConfig, reasons: list[str]) -> tuple[str, float, list[str]]:
    """The hand-set rule: layout when regions cover ``layout_min_share`` of the content box."""
    visible_chars = round(s.visible_chars)
    share = s.visual_share
    if share >= cfg.layout_min_share:
        conf = _confidence(share, cfg.layout_min_share, cfg.layout_confident_share)
        reasons.append(f"tables/figures take {_pct(share)} of the content (layout at ≥ {_pct(cfg.layout_min_share)})")
        return "layout", conf, reasons

    conf = _confidence(share, cfg.layout_min_share, 0.0)
    if visible_chars < cfg.min_text_chars and not s.n_images:
        reasons.append(f"nearly blank page ({visible_chars} visible characters)")
        conf = 0.6
    else:
        what = "prose"
        if s.mono_text_fraction >= 0.5:
            what = "code or printed output"
        reasons.append(f"{what}: {visible_chars} characters of text")
        if share > 0:
            reasons.append(f"tables/figures take only {_pct(share)} of the content")
    return "text", conf, reasons


def rule_log_odds(s: PageSignals, cfg: RouterConfig) -> tuple[float, list[str]]:
    """The region rule's decision as signed log-odds of layout (its confidence), and its reasons."""
    label, conf, reasons = _region_rule(s, cfg, _region_reasons(s))
    c = min(max(conf, 0.5001), 0.9999)
    lo = math.log(c / (1 - c))
    return (lo if label == "layout" else -lo), reasons


def _learned(s: PageSignals, cfg: RouterConfig, model: Any = None) -> tuple[str, float, list[str]]:
    from .router_model import load_model

    model = model or load_model(cfg.model)
    prior, rule_words = rule_log_odds(s, cfg) if model.prior_scale else (0.0, [])
    p, contributions = model.probability(s, model.prior_scale * prior)
    t = cfg.layout_threshold
    layout = p >= t
    # 0.5 at the threshold, 1.0 at certainty on either side (the plain probability when the threshold is 0.5)
    conf = 0.5 + 0.5 * ((p - t) / max(1.0 - t, 1e-9) if layout else (t - p) / max(t, 1e-9))
    words = model.reasons(s, contributions, layout, prior=(model.prior_scale * prior, rule_words))
    head = f"P(layout) = {p:.2f}"
    if not words:
        words = ["no signal stands out"]
    return ("layout" if layout else "text"), conf, [f"{head}: {words[0]}", *words[1:]]


def route_signals(
    file: str, page: int, signals: PageSignals, config: RouterConfig | None = None, model: Any = None
) -> Route:
    """Route one page from its signals (``model``: a ``LearnedDecision`` instead of the configured one)."""
    cfg = config or RouterConfig()
    if signals.source == "text":  # HTML, Markdown, plain text: no layout to look at, nothing to OCR
        reason = "a text document (HTML, Markdown or plain text): text leg"
        return Route(file, page, "text", "text", 1.0, [reason], signals.to_dict(), False, False)
    if signals.source == "image":
        label, conf, reasons = _classify_image_file(signals, cfg)
    else:
        label, conf, reasons = _classify_pdf_page(signals, cfg, model)
    route = "visual" if label in ("scanned", "layout") else "text"
    if cfg.visual_pages == VisualPages.all and route == "text":
        route, reasons = "visual", [*reasons, "policy visual_pages=all"]
    elif cfg.visual_pages == VisualPages.none and route == "visual":
        route, reasons = "text", [*reasons, "policy visual_pages=none"]
    ambiguous = conf < cfg.ambiguous_below
    if ambiguous and route == "text" and cfg.visual_pages == VisualPages.ambiguous_both:
        route = "visual"
        reasons = [
            *reasons,
            f"unsure (confidence {conf:.2f} < {cfg.ambiguous_below:.2f}): visual vectors too "
            "(visual_pages=ambiguous-both)",
        ]
    ocr, why = needs_ocr(signals, label, cfg)
    if why:
        reasons = [*reasons, why]
    return Route(file, page, route, label, conf, reasons, signals.to_dict(), ocr, ambiguous)


def needs_ocr(s: PageSignals, label: str, cfg: RouterConfig) -> tuple[bool, str]:
    """Whether a page needs OCR, and why (in words; "" when the page has a usable text layer).

    Only pages without a usable visible text layer, and only where there is something to read: a scan-like
    image file, a PDF page with a large image, or text drawn as vector outlines. An invisible OCR layer is
    already text. A photo, or a PDF page that is blank or a plain drawing, costs no OCR call.
    """
    if s.source == "image":
        return (True, "image of a document page: OCR") if label == "scanned" else (False, "")
    visible = round(s.visible_chars)
    if visible >= cfg.min_text_chars or s.invisible_text_fraction > 0.5:
        return False, ""
    if _photo_page(s, cfg):
        return False, "no usable text layer, and the images are photographs: nothing to OCR"
    if s.largest_image_coverage >= cfg.ocr_min_image_coverage:
        return True, f"no usable text layer and an image covers {_pct(s.largest_image_coverage)} of the page: OCR"
    if s.n_paths >= cfg.ocr_min_glyph_paths:
        return True, f"no usable text layer but {s.n_paths} vector paths (text drawn as outlines?): OCR"
    return False, "no usable text layer and nothing to OCR (no large image, few vector paths)"


def route_page(page: Page, config: RouterConfig | None = None) -> Route:
    """Route a parsed page; the page's diagnostics are appended to the reasons."""
    r = route_signals(page.file, page.number, page.signals, config)
    r.reasons.extend(page.diagnostics)
    return r


@dataclass(slots=True)
class RoutingReport:
    """The routes of every page read, and a per-file error for everything that could not be read."""

    pages: list[Route] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files in folders that are not of a format read
    ambiguous_below: float = 0.75
    policy: str = "auto"

    def summary(self) -> dict[str, Any]:
        """Pages per route, the ambiguous ones, and what the ambiguity band costs (or costs already)."""
        visual = sum(r.route == "visual" for r in self.pages)
        ambiguous = [r for r in self.pages if r.ambiguous]
        unsure_text = sum(r.label == "text" for r in ambiguous)
        from_band = unsure_text if self.policy == "ambiguous-both" else 0
        return {
            "pages": len(self.pages),
            "visual": visual,
            "text": len(self.pages) - visual,
            "ambiguous": len(ambiguous),
            "ambiguous_below": self.ambiguous_below,
            # text pages that ambiguous-both sends to the visual leg too (already counted in "visual" when on)
            "visual_from_ambiguity": unsure_text,
            "visual_without_ambiguity": visual - from_band,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "pages": [r.to_dict() for r in self.pages],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "skipped": list(self.skipped),
        }
