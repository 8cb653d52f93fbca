"""A PDF page's analyses, composed: its objects and text runs in; signals, layout regions and figures out.

``analyse_page`` calls the pure analyses in order (object signals, shading, background images, drawings,
boxed text, ruled and unruled tables, coverages); each lives in its own module and is tested alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .layout import LineGeometry, line_geometry
from .pdf_figures import BOXED_MIN_CHARS, boxed_text, drawing_extent, graphics_regions, photo_frames
from .pdf_grid import Mask, PdfBox, PdfRegion, Run, Runs, content_box, top_left
from .pdf_objects import PageObjects
from .pdf_signals import (
    background_images,
    classify_paths,
    image_tone,
    photo_candidates,
    select_images,
    shaded_boxes,
    text_signals,
)
from .pdf_tables import MAX_TABLE_CANDIDATES, rule_groups, ruled_tables, unruled_tables
from .types import Figure, PageSignals

__all__ = ["PageAnalysis", "analyse_page", "drawing_share", "look_for_photos", "region_shares"]

# The line-geometry measurements that are page signals too (all but the table boxes).
LINE_FIELDS = tuple(f.name for f in dataclasses.fields(LineGeometry) if f.name in PageSignals.__dataclass_fields__)
MAX_LEADER_SHARE = 0.3  # pages with this many dot leaders per line (contents, indexes)...
MAX_MONO_SHARE = 0.6  # ...or this share of fixed-pitch text (printed output) have no unruled tables


@dataclass(slots=True)
class PageAnalysis:
    """What the analyses found besides the signals."""

    regions: list[PdfRegion] = field(default_factory=list)  # graphics, tables, images, in PDF space
    figures: list[Figure] = field(default_factory=list)  # embedded images that are figures (top-left boxes)
    diagnostics: list[str] = field(default_factory=list)
    max_image_px: int = 0  # pixels of the largest embedded image


def region_shares(regions: list[PdfRegion], page: PdfBox, content: PdfBox) -> dict[str, float | int]:
    """Coverage signals of the layout regions, by ``PageSignals`` field name: the page share under graphics and
    tables, and the content box's share under any region, under tables and under figures (graphics, images)."""
    masks = {k: Mask(*page) for k in ("graphics", "table", "figure", "all")}
    for r in regions:
        masks[r.kind if r.kind == "table" else "figure"].add(r.box)
        if r.kind == "graphics":
            masks["graphics"].add(r.box)
        masks["all"].add(r.box)
    n_content = max(masks["all"].count_box(content), 1)
    return {
        "graphics_coverage": masks["graphics"].fraction,
        "n_graphics_regions": sum(r.kind == "graphics" for r in regions),
        "table_coverage": masks["table"].fraction,
        "n_tables": sum(r.kind == "table" for r in regions),
        "visual_share": masks["all"].cells_in(content) / n_content,
        "table_share": masks["table"].cells_in(content) / n_content,
        "figure_share": masks["figure"].cells_in(content) / n_content,
    }


def drawing_share(drawings: Mask, boxed: list[PdfRegion], text: Mask, content: PdfBox) -> float:
    """The share of the content box's grid cells that are drawn (``drawings``) without text on them (``text``),
    boxes around running text (``boxed``) left out: a shaded box behind code or a quote is not a drawing."""
    cells = drawings.cells.copy()  # (GRID, GRID)
    for r in boxed:
        cells[drawings.window(r.box)] = False
    drawn_only = cells & ~text.cells
    rows, cols = drawings.window(content)
    return float(drawn_only[rows, cols].sum()) / max(drawings.count_box(content), 1)


def look_for_photos(objs: PageObjects, figures: list[int], page_area: float, sig: PageSignals) -> set[int]:
    """The figures (``figures``: indices into ``objs.image_boxes``) that look like photographs, from a small decode
    of the largest few (``photo_candidates``); the largest one looked at gives the page its image tone
    (``paper_fraction``, ``colorfulness``, ``tone_levels``). Nothing is decoded on a page with an invisible OCR
    layer (a scan) or without a decoder (objects built by hand)."""
    if objs.thumbnail is None or sig.invisible_text_fraction > 0.5:
        return set()
    boxes = [tuple(objs.image_boxes[i].tolist()) for i in figures]
    photos: set[int] = set()
    for k in photo_candidates(boxes, page_area):
        rgb = objs.thumbnail(figures[k])
        if rgb is None or not rgb.size:
            continue
        tone = image_tone(rgb)
        if not sig.tone_levels:
            sig.paper_fraction, sig.colorfulness = round(tone.paper, 4), round(tone.colour, 4)
            sig.tone_levels = tone.levels
        if tone.photo:
            photos.add(figures[k])
    return photos


def analyse_page(
    objs: PageObjects, spans: list[Run], char_runs: list[Run], n_leaders: int, sig: PageSignals
) -> PageAnalysis:
    """Fill the object and layout signals of ``sig`` (whose text counts, ``n_chars`` and ``n_words``, are set)
    from the page's objects, its text spans (PDFium's text rectangles) and its character runs (for the line
    geometry); return the layout regions, the figures and what the page should say about them."""
    page = objs.page
    x0, y0, x1, y1 = page
    page_w, page_h = x1 - x0, y1 - y0
    page_area = max(page_w * page_h, 1e-6)
    out = PageAnalysis()

    # Objects: text styles, paths sorted into rules and drawings, images large enough to be figures.
    sig.n_objects, sig.objects_truncated = objs.n_objects, objs.truncated
    sig.n_paths, sig.n_form_paths = len(objs.path_boxes), int(objs.path_in_form.sum())
    sig.n_images, sig.n_form_fields = len(objs.image_boxes), objs.n_form_fields
    for name, value in text_signals(objs).items():
        setattr(sig, name, value)
    paths = classify_paths(objs.path_boxes, objs.path_fill_only, objs.path_segments, page_w, page_h)
    sig.n_rules_h, sig.n_rules_v, sig.n_small_boxes = len(paths.hrules), paths.n_rules_v, paths.n_small_boxes
    text_mask = Mask.of(map(tuple, objs.text_boxes[~objs.text_invisible].tolist()), page)
    chosen = select_images(objs.image_boxes, objs.image_px, page_area)
    out.max_image_px = chosen.max_px
    all_images = [tuple(b) for b in objs.image_boxes.tolist()]
    figures = list(chosen.keep)  # indices into all_images
    image_boxes = [all_images[i] for i in figures]
    img_mask = Mask.of(image_boxes, page)
    sig.largest_image_coverage = chosen.largest_fraction
    sig.pixel_width, sig.pixel_height = chosen.largest_px
    gfx_boxes = paths.drawings
    if paths.filled:
        shade = shaded_boxes(gfx_boxes, paths.filled, text_mask)
        gfx_boxes = [b for i, b in enumerate(gfx_boxes) if i not in shade]
        sig.n_shaded_boxes = len(shade)
    sig.text_coverage = text_mask.fraction
    sig.image_coverage = img_mask.fraction

    # Images under most of the visible text are a background, not figures: they stay out of the regions.
    under = background_images(image_boxes, text_mask, img_mask, sig.visible_chars)
    if under is not None:
        under_set = set(under)
        figures = [i for i in figures if all_images[i] not in under_set]
        image_boxes = [all_images[i] for i in figures]
        sig.image_coverage = Mask.of(image_boxes, page).fraction
        out.diagnostics.append(
            f"text is printed over {len(under)} image{'s' * (len(under) != 1)}: taken for a background"
        )
    # Photographs are figures for the image leg, not regions whose arrangement carries the meaning.
    photos = look_for_photos(objs, figures, page_area, sig)
    image_px = objs.image_px.tolist()
    out.figures = [
        Figure(top_left(all_images[i], page), *image_px[i], kind="photo" if i in photos else "image") for i in figures
    ]
    photo_boxes = [all_images[i] for i in figures if i in photos]
    sig.n_photos, sig.photo_coverage = len(photo_boxes), Mask.of(photo_boxes, page).fraction
    image_boxes = [all_images[i] for i in figures if i not in photos]

    # Regions that carry non-prose meaning: clusters of vector paths, ruled tables, images.
    geo = line_geometry(char_runs)
    runs_index, spans_index = Runs(char_runs), Runs(spans)
    span_boxes = [s[:4] for s in spans]
    text_box = content_box(span_boxes, page)
    text_area = max((text_box[2] - text_box[0]) * (text_box[3] - text_box[1]), 1.0)
    # characters per pt² of the text's bounding box (0 below BOXED_MIN_CHARS: no box holds running text)
    page_density = sig.visible_chars / text_area if spans and sig.visible_chars >= BOXED_MIN_CHARS else 0.0
    for name in LINE_FIELDS:
        setattr(sig, name, getattr(geo, name))
    regions = graphics_regions(gfx_boxes, page)
    boxed = boxed_text(regions, spans_index, page_density, runs_index)
    if boxed:
        regions = [r for r in regions if r not in boxed]
        sig.n_boxed_text = len(boxed)
    frames = photo_frames(regions, photo_boxes)
    regions = [r for r in regions if r not in frames]
    drawn = Mask.of((r.box for r in regions), page)
    groups = rule_groups(paths.hrules, page_h)
    if len(groups) > MAX_TABLE_CANDIDATES:
        out.diagnostics.append(
            f"only the first {MAX_TABLE_CANDIDATES} of {len(groups):,} groups of ruling lines were checked for tables"
        )
        groups = groups[:MAX_TABLE_CANDIDATES]
    regions += ruled_tables(groups, paths.vlines, spans, runs_index, drawn)
    # Tables without rules: runs of lines split into aligned cells (see docrag.parsers.layout).
    ruled_mask = Mask.of((r.box for r in regions if r.kind == "table"), page)
    sig.leader_line_share = round(min(n_leaders / max(sig.n_lines, 1), 1.0), 4)
    # Contents pages (dot leaders) and fixed-pitch printed output keep their columns in the extracted text:
    # their aligned cells are not a table to be seen.
    if sig.leader_line_share < MAX_LEADER_SHARE and sig.mono_text_fraction < MAX_MONO_SHARE:
        unruled = unruled_tables(geo.table_boxes, ruled_mask, drawn)
        regions += unruled
        sig.n_unruled_tables = len(unruled)
    regions += [PdfRegion("image", b, 1) for b in image_boxes]

    # Coverages over the content box (everything printed).
    content = content_box(span_boxes + [r.box for r in regions] + photo_boxes, page)
    sig.content_coverage = (content[2] - content[0]) * (content[3] - content[1]) / page_area
    drawings = Mask.of(gfx_boxes, page)
    sig.drawing_coverage = drawings.fraction
    sig.drawing_extent_share = drawing_extent(drawings, page, content, spans_index, page_density, runs_index)
    sig.drawing_share = drawing_share(drawings, boxed, text_mask, content)
    area_k = max((content[2] - content[0]) * (content[3] - content[1]), 1.0) / 1000
    sig.char_density = round(float(sig.n_chars) / float(area_k), 3)
    for name, value in region_shares(regions, page, content).items():
        setattr(sig, name, value)
    if regions:
        in_regions = Mask.of((r.box for r in regions), page)
        sig.graphics_text_chars = sum(len(s[4]) for s in spans if in_regions.hits(s[:4]))
    out.regions = regions
    return out
