"""Standalone image files (png, jpg, webp, tiff incl. multi-page) as documents of one page per frame."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DocumentError
from .limits import Limits
from .reader import DocumentReader
from .types import Figure, Page, PageSignals

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["ImageReader", "image_signals"]

log = logging.getLogger(__name__)

_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF", "MPO"}


def image_signals(img: Image.Image) -> tuple[float, float]:
    """(paper_fraction, colorfulness) from a small thumbnail: how much the image looks like paper."""
    thumb = img.convert("RGB")
    thumb.thumbnail((256, 256))
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32) / 255.0  # (h, w, 3)
    sat, val = hsv[..., 1], hsv[..., 2]
    paper = float(((val > 0.75) & (sat < 0.15)).mean())
    return paper, float(sat.mean())


class ImageReader(DocumentReader):
    """An image file as a document: one page per frame (multi-page TIFF), sizes checked before decoding."""

    unit = "frames"

    def __init__(self, path: str | Path, limits: Limits | None = None) -> None:
        from PIL import Image, UnidentifiedImageError

        self._img = None
        super().__init__(path, limits)
        try:
            # Image.open reads only the header: the pixel count is checked before anything is decoded.
            self._img = Image.open(self.path)
        except Image.DecompressionBombError as exc:
            raise DocumentError(self.file, f"image bomb refused: {exc}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DocumentError(self.file, f"not a readable image ({exc.__class__.__name__})") from None
        if self._img.format not in _FORMATS:
            fmt = self._img.format
            self._img.close()
            raise DocumentError(self.file, f"unsupported image format {fmt}")
        self._cap_pages(getattr(self._img, "n_frames", 1))

    def close(self) -> None:
        if self._img is not None:
            self._img.close()
            self._img = None

    def _frame(self, number: int) -> Image.Image:
        if self._img is None:
            raise DocumentError(self.file, "the document is closed", page=number)
        self._img.seek(number - 1)
        w, h = self._img.size
        if w * h > self.limits.max_image_pixels:
            raise DocumentError(
                self.file,
                f"image is {w}×{h} = {w * h:,} pixels, over max_image_pixels ({self.limits.max_image_pixels:,})",
                page=number,
            )
        try:
            frame = self._img.convert("RGB")  # decodes this frame only
        except (OSError, ValueError) as exc:
            raise DocumentError(self.file, f"cannot decode the image ({exc})", page=number) from None
        return frame

    def page(self, number: int) -> Page:
        if not 1 <= number <= self.n_pages:
            raise DocumentError(self.file, f"no page {number} (the image has {self.n_pages} frames)")
        frame = self._frame(number)
        w, h = frame.size
        dpi = self._img.info.get("dpi", (72, 72))[0] or 72
        dpi = float(dpi) if 20 <= float(dpi) <= 2400 else 72.0
        paper, colour = image_signals(frame)
        width_pt, height_pt = w * 72.0 / dpi, h * 72.0 / dpi
        sig = PageSignals(
            width_pt=round(width_pt, 2),
            height_pt=round(height_pt, 2),
            n_images=1,
            image_coverage=1.0,
            largest_image_coverage=1.0,
            content_coverage=1.0,
            visual_share=1.0,
            figure_share=1.0,
            source="image",
            pixel_width=w,
            pixel_height=h,
            paper_fraction=paper,
            colorfulness=colour,
        )
        limits, file = self.limits, self.file

        def renderer(want_dpi: float, _frame: Image.Image = frame) -> Image.Image:
            from PIL import Image

            scale = min(want_dpi / dpi, 1.0)  # never upsample an image file
            pixels = w * h * scale * scale
            if pixels > limits.max_render_pixels:
                scale *= math.sqrt(limits.max_render_pixels / pixels)
                log.info("%s page %d: image scaled to %.2f (max_render_pixels)", file, number, scale)
            if scale >= 0.999:
                return _frame.copy()
            return _frame.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)

        return Page(
            file=self.file,
            number=number,
            width_pt=width_pt,
            height_pt=height_pt,
            text="",
            spans=[],
            signals=sig,
            figures=[Figure((0.0, 0.0, width_pt, height_pt), w, h)],
            _renderer=renderer,
        )
