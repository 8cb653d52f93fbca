"""Parsers: PDFs and image files in, pages with text, signals, figures and a renderer out.

Heavy dependencies (pypdfium2, PIL, unstructured) are imported when a document is opened, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from docrag.config import Limits

from .errors import DocumentError
from .reader import DocumentReader
from .types import BBox, Figure, Page, PageSignals, Region, TextSpan

__all__ = [
    "SUPPORTED_SUFFIXES",
    "BBox",
    "DocumentError",
    "DocumentReader",
    "Figure",
    "Page",
    "PageSignals",
    "Region",
    "TextSpan",
    "discover",
    "open_document",
]

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
SUPPORTED_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES


def open_document(path: str | Path, limits: Limits | None = None):
    """Open a PDF or an image file as a reader of pages; raises DocumentError naming file and reason."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(str(path), "no such file" if not path.exists() else "not a regular file")
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        from .pdf import PdfReader

        return PdfReader(path, limits)
    if suffix in IMAGE_SUFFIXES:
        from .images import ImageReader

        return ImageReader(path, limits)
    raise DocumentError(str(path), f"unsupported file type {suffix or '(none)'}; docrag reads PDFs and images")


def discover(paths: Iterable[str | Path]) -> Iterator[tuple[Path, bool]]:
    """Walk files and folders (recursively, sorted): yields (path, supported) for every file found.

    A path that does not exist is yielded as unsupported so the caller can report it.
    """
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(p).parts):
                    yield child, child.suffix.lower() in SUPPORTED_SUFFIXES
        else:
            yield p, p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
