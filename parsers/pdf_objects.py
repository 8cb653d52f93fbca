"""One walk over a PDF page's objects (PDFium), into typed arrays: text, images and paths with their boxes.

The walk looks into Form XObjects (up to ``MAX_FORM_DEPTH`` deep), maps their objects' boxes to page space,
and stops after ``max_objects`` objects (``PageObjects.truncated``). It only reads what PDFium says of each
object; what the objects mean for the page (rules, drawings, figures, tables) is decided by pure functions
over the arrays (``docrag.parsers.pdf_signals``, ``pdf_tables``, ``pdf_figures``).
"""

from __future__ import annotations

import ctypes
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .pdf_grid import PdfBox

__all__ = ["MAX_FORM_DEPTH", "PageObjects", "image_thumbnail", "walk_objects"]

MAX_FORM_DEPTH = 12  # Form XObjects nested deeper than this are not looked into
THUMB_SIDE = 128  # px: an image is looked at (``PageObjects.thumbnail``) this small, on its longer side
THUMB_MAX_PIXELS = 4_000_000  # images PDFium must decode whole (not JPEG) are not looked at above this...
THUMB_MAX_JPEG_PIXELS = 40_000_000  # ...JPEG ones (decoded at 1/8 scale) above this

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _boxes(n: int = 0) -> np.ndarray:
    return np.zeros((n, 4), dtype=float)


@dataclass(slots=True)
class PageObjects:
    """What one walk over a page's objects found. Boxes are (n, 4) float arrays of ``(left, bottom, right, top)``
    in page space (PDF points, y up), in the order of the walk; objects without bounds are left out.

    Font fields are read for visible text only (``""``, False and no size for invisible text)."""

    page: PdfBox  # the page box the walk measured against (crop box, or media box when that is empty)
    text_boxes: np.ndarray = field(default_factory=_boxes)  # (n_text, 4)
    text_invisible: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n_text,) render mode 3
    text_fonts: list[str] = field(default_factory=list)  # (n_text,) base font names
    text_fixed_pitch: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n_text,) FixedPitch flag
    text_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_text,) pt, on the page
    text_sized: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n_text,) the size is known
    image_boxes: np.ndarray = field(default_factory=_boxes)  # (n_images, 4)
    image_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (n_images, 2) width, height
    path_boxes: np.ndarray = field(default_factory=_boxes)  # (n_paths, 4) paths and shading objects
    path_in_form: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n_paths,) inside a Form XObject
    path_fill_only: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n_paths,) filled, not stroked
    path_segments: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (n_paths,) -1: a shading
    n_objects: int = 0  # objects on the page and in the forms looked into, inspected or not
    truncated: bool = False  # the walk stopped at max_objects
    n_form_fields: int = 0  # interactive form widgets (annotations)
    # image i (in the order of image_boxes) as a small RGB array, (h, w, 3) uint8 of at most THUMB_SIDE a side,
    # or None (too large, one bit per pixel, undecodable); only while the page is open
    thumbnail: Callable[[int], np.ndarray | None] | None = field(default=None, repr=False)


def _bounds(obj: object) -> PdfBox | None:
    """(left, bottom, right, top) of a page object in page space, or None."""
    import pypdfium2.raw as raw

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not raw.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
        return None
    return left.value, bottom.value, right.value, top.value


def _matrix(obj: object) -> Matrix:
    import pypdfium2.raw as raw

    m = raw.FS_MATRIX()
    if not raw.FPDFPageObj_GetMatrix(obj, m):
        return IDENTITY
    return (m.a, m.b, m.c, m.d, m.e, m.f)


def compose(inner: Matrix, outer: Matrix) -> Matrix:
    """The matrix that applies ``inner`` then ``outer`` (PDF row-vector convention)."""
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def transform(box: PdfBox, m: Matrix) -> PdfBox:
    """The bounding box of ``box`` mapped by ``m`` (objects inside a Form XObject report form-space bounds)."""
    if m == IDENTITY:
        return box
    a, b, c, d, e, f = m
    xs, ys = [], []
    for x in (box[0], box[2]):
        for y in (box[1], box[3]):
            xs.append(a * x + c * y + e)
            ys.append(b * x + d * y + f)
    return min(xs), min(ys), max(xs), max(ys)


def scale(m: Matrix) -> float:
    """The linear scale of ``m`` (the square root of its determinant; 1 for a degenerate matrix)."""
    return math.sqrt(abs(m[0] * m[3] - m[1] * m[2])) or 1.0


def _font_info(obj: object, cache: dict[int, tuple[str, bool]]) -> tuple[str, bool]:
    """The base font name of a text object and whether its font has the FixedPitch flag, cached per font."""
    import pypdfium2.raw as raw

    font = raw.FPDFTextObj_GetFont(obj)
    key = ctypes.cast(font, ctypes.c_void_p).value or 0
    if key in cache:
        return cache[key]
    n = raw.FPDFFont_GetBaseFontName(font, None, 0)
    buf = ctypes.create_string_buffer(max(n, 1))
    raw.FPDFFont_GetBaseFontName(font, buf, n)
    name = buf.value.decode("latin-1", "replace")
    cache[key] = (name, bool(raw.FPDFFont_GetFlags(font) & 1))
    return cache[key]


def _font_size(obj: object) -> float:
    """The font size of a text object scaled by the object's matrix (0 when PDFium gives none)."""
    import pypdfium2.raw as raw

    size = ctypes.c_float()
    if not raw.FPDFTextObj_GetFontSize(obj, size):
        return 0.0
    m = raw.FS_MATRIX()
    s = math.sqrt(abs(m.a * m.d - m.b * m.c)) if raw.FPDFPageObj_GetMatrix(obj, m) else 1.0
    return size.value * (s or 1.0)


def _form_fields(pdf_page: object) -> int:
    """Interactive form widgets among the page's annotations."""
    import pypdfium2.raw as raw

    n = 0
    for k in range(raw.FPDFPage_GetAnnotCount(pdf_page.raw)):
        annot = raw.FPDFPage_GetAnnot(pdf_page.raw, k)
        if annot:
            if raw.FPDFAnnot_GetSubtype(annot) == raw.FPDF_ANNOT_WIDGET:
                n += 1
            raw.FPDFPage_CloseAnnot(annot)
    return n


def _filters(obj: object) -> list[str]:
    import pypdfium2.raw as raw

    out = []
    for i in range(raw.FPDFImageObj_GetImageFilterCount(obj)):
        n = raw.FPDFImageObj_GetImageFilter(obj, i, None, 0)
        buf = ctypes.create_string_buffer(max(n, 1))
        raw.FPDFImageObj_GetImageFilter(obj, i, buf, n)
        out.append(buf.value.decode("latin-1"))
    return out


def _jpeg_thumbnail(data: bytes, side: int) -> np.ndarray | None:
    """A JPEG stream decoded at the smallest DCT scale (1/2 to 1/8) that keeps ``side`` pixels, then shrunk."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > THUMB_MAX_JPEG_PIXELS:
            return None
        img.draft("RGB" if img.mode not in ("L", "RGB") else img.mode, (side, side))
        small = img.convert("RGB")
    small.thumbnail((side, side))
    return np.asarray(small)


def _bitmap_thumbnail(bitmap: object, side: int) -> np.ndarray | None:
    """Every k-th pixel of a PDFium bitmap (grey, BGR, BGRx or BGRA) as RGB, at most ``side`` a side."""
    import pypdfium2.raw as raw

    w, h = raw.FPDFBitmap_GetWidth(bitmap), raw.FPDFBitmap_GetHeight(bitmap)
    stride, fmt = raw.FPDFBitmap_GetStride(bitmap), raw.FPDFBitmap_GetFormat(bitmap)
    channels = {raw.FPDFBitmap_Gray: 1, raw.FPDFBitmap_BGR: 3, raw.FPDFBitmap_BGRx: 4, raw.FPDFBitmap_BGRA: 4}
    if fmt not in channels or w <= 0 or h <= 0:
        return None
    n = channels[fmt]
    buf = ctypes.cast(raw.FPDFBitmap_GetBuffer(bitmap), ctypes.POINTER(ctypes.c_ubyte))
    rows = np.ctypeslib.as_array(buf, shape=(h * stride,)).reshape(h, stride)
    step = max(1, math.ceil(max(w, h) / side))
    px = np.array(rows[::step, : w * n].reshape(-1, w, n)[:, ::step])  # (h', w', n), copied out of the bitmap
    return np.repeat(px, 3, axis=2) if n == 1 else np.ascontiguousarray(px[..., 2::-1])


def image_thumbnail(obj: object, pdf_page: object, side: int = THUMB_SIDE) -> np.ndarray | None:
    """An embedded image (a PDFium image object) as a small RGB array, cheaply: a JPEG is decoded at reduced
    scale by PIL; another image is decoded by PDFium only up to ``THUMB_MAX_PIXELS`` and sampled. One bit per
    pixel (fax, JBIG2: scans, line art) is not decoded. None when the image is not looked at."""
    import pypdfium2.raw as raw

    meta = raw.FPDF_IMAGEOBJ_METADATA()
    if not raw.FPDFImageObj_GetImageMetadata(obj, pdf_page, meta) or meta.bits_per_pixel <= 1:
        return None
    try:
        if _filters(obj)[-1:] == ["DCTDecode"]:
            n = raw.FPDFImageObj_GetImageDataDecoded(obj, None, 0)  # simple filters undone: the JPEG stream
            data = (ctypes.c_ubyte * n)()
            raw.FPDFImageObj_GetImageDataDecoded(obj, data, n)
            return _jpeg_thumbnail(bytes(data), side)
        if meta.width * meta.height > THUMB_MAX_PIXELS:
            return None
        bitmap = raw.FPDFImageObj_GetBitmap(obj)
        if not bitmap:
            return None
        try:
            return _bitmap_thumbnail(bitmap, side)
        finally:
            raw.FPDFBitmap_Destroy(bitmap)
    except Exception:  # a broken image stream (PIL raises many kinds): not looked at
        return None


def walk_objects(pdf_page: object, page: PdfBox, max_objects: int) -> PageObjects:
    """Walk the objects of ``pdf_page`` (a pypdfium2 page) once, Form XObjects included, into ``PageObjects``.

    At most ``max_objects`` objects are inspected (forms count as one each); ``n_objects`` counts the page's
    objects and those of every form looked into. Forms nested deeper than ``MAX_FORM_DEPTH`` are skipped.
    """
    import pypdfium2.raw as raw

    text_boxes: list[PdfBox] = []
    text_invisible: list[bool] = []
    text_fonts: list[str] = []
    text_fixed: list[bool] = []
    text_sizes: list[float] = []
    text_sized: list[bool] = []
    image_boxes: list[PdfBox] = []
    image_px: list[tuple[int, int]] = []
    image_objs: list[object] = []
    path_boxes: list[PdfBox] = []
    path_in_form: list[bool] = []
    path_fill_only: list[bool] = []
    path_segments: list[int] = []
    fonts: dict[int, tuple[str, bool]] = {}
    truncated = False
    inspected = 0

    # (container, objects in it, whether it is a Form XObject, form space -> page space, nesting depth)
    stack = [(pdf_page.raw, raw.FPDFPage_CountObjects(pdf_page.raw), False, IDENTITY, 0)]
    total_objects = stack[0][1]
    while stack:
        parent, count, is_form, to_page, depth = stack.pop()
        for j in range(count):
            if inspected >= max_objects:
                truncated = True
                break
            inspected += 1
            obj = raw.FPDFFormObj_GetObject(parent, j) if is_form else raw.FPDFPage_GetObject(parent, j)
            kind = raw.FPDFPageObj_GetType(obj)
            if kind == raw.FPDF_PAGEOBJ_FORM:
                if depth >= MAX_FORM_DEPTH:  # a form drawing itself, or nested without end
                    continue
                n_inner = raw.FPDFFormObj_CountObjects(obj)
                total_objects += n_inner
                stack.append((obj, n_inner, True, compose(_matrix(obj), to_page), depth + 1))
                continue
            box = _bounds(obj)
            if box is None:
                continue
            if is_form:
                box = transform(box, to_page)
            if kind == raw.FPDF_PAGEOBJ_TEXT:
                invisible = raw.FPDFTextObj_GetTextRenderMode(obj) == raw.FPDF_TEXTRENDERMODE_INVISIBLE
                text_boxes.append(box)
                text_invisible.append(invisible)
                name, fixed, size = "", False, 0.0
                if not invisible:
                    name, fixed = _font_info(obj, fonts)
                    size = _font_size(obj)
                text_fonts.append(name)
                text_fixed.append(fixed)
                text_sized.append(size > 0)
                text_sizes.append(size * scale(to_page) if size > 0 else 0.0)
            elif kind == raw.FPDF_PAGEOBJ_IMAGE:
                wpx, hpx = ctypes.c_uint(), ctypes.c_uint()
                if not raw.FPDFImageObj_GetImagePixelSize(obj, wpx, hpx):
                    wpx.value = hpx.value = 0
                image_boxes.append(box)
                image_px.append((wpx.value, hpx.value))
                image_objs.append(obj)
            elif kind in (raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING):
                fill_only, segments = False, -1
                if kind == raw.FPDF_PAGEOBJ_PATH:
                    fill, stroke = ctypes.c_int(), ctypes.c_int()
                    fill_only = bool(raw.FPDFPath_GetDrawMode(obj, fill, stroke) and fill.value and not stroke.value)
                    segments = raw.FPDFPath_CountSegments(obj)
                path_boxes.append(box)
                path_in_form.append(is_form)
                path_fill_only.append(fill_only)
                path_segments.append(segments)

    return PageObjects(
        page=page,
        text_boxes=np.asarray(text_boxes, dtype=float).reshape(-1, 4),
        text_invisible=np.asarray(text_invisible, dtype=bool),
        text_fonts=text_fonts,
        text_fixed_pitch=np.asarray(text_fixed, dtype=bool),
        text_sizes=np.asarray(text_sizes, dtype=float),
        text_sized=np.asarray(text_sized, dtype=bool),
        image_boxes=np.asarray(image_boxes, dtype=float).reshape(-1, 4),
        image_px=np.asarray(image_px, dtype=np.int64).reshape(-1, 2),
        path_boxes=np.asarray(path_boxes, dtype=float).reshape(-1, 4),
        path_in_form=np.asarray(path_in_form, dtype=bool),
        path_fill_only=np.asarray(path_fill_only, dtype=bool),
        path_segments=np.asarray(path_segments, dtype=np.int64),
        n_objects=total_objects,
        truncated=truncated,
        n_form_fields=_form_fields(pdf_page),
        thumbnail=lambda i: image_thumbnail(image_objs[i], pdf_page.raw),
    )
