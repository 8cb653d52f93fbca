"""The file formats docrag reads: one small protocol, a registry, and detection by extension and by content.

A ``Format`` names its family (``pdf``, ``image``, ``office``, ``html``, ``text``: what ``--formats`` chooses
from), the suffixes it owns, how its bytes look (``sniff``) and how to open a file of it as a
``DocumentReader``. ``detect(path)`` decides a file's format:

1. a suffix the registry knows decides (a ``.pdf`` that holds an HTML error page is a broken PDF, reported as
   such, not a web page);
2. otherwise the content does, by signature: ``%PDF-``; PNG, JPEG, WebP and TIFF magic; a ZIP holding
   ``word/document.xml``, ``ppt/presentation.xml`` or ``xl/workbook.xml`` (OOXML) or a ``mimetype`` member
   naming an OpenDocument type; the OLE2 magic of .doc/.ppt/.xls; ``{\\rtf``; an HTML doctype or ``<html``;
3. a file with no suffix at all whose first 8 KiB are UTF-8 text without control bytes is plain text
   (README, LICENSE). A file with an unknown suffix is never read as text (source code, logs and data files
   would flood the index).

Nothing here opens a document: readers are imported when a file of their format is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .sniff import Head
from .types import OpenContext

if TYPE_CHECKING:
    from .limits import Limits
    from .reader import DocumentReader

__all__ = [
    "FAMILIES",
    "Format",
    "Head",
    "OpenContext",
    "UnknownFormatError",
    "detect",
    "family_of",
    "formats",
    "parse_families",
    "register",
]

FAMILIES = ("pdf", "image", "office", "html", "text")


class UnknownFormatError(ValueError):
    """A format family that is not one of ``FAMILIES`` (``--formats``)."""


@runtime_checkable
class Format(Protocol):
    """A file format docrag reads."""

    name: str  # "docx", "markdown", …
    family: str  # one of FAMILIES
    suffixes: frozenset[str]  # lower case, with the dot

    def sniff(self, head: Head) -> bool:
        """Whether ``head`` looks like this format (a file whose suffix the registry does not know)."""
        ...

    def open(self, path: Path, limits: Limits, context: OpenContext) -> DocumentReader:
        """The file as a reader of pages; raises DocumentError naming the file and the reason."""
        ...


_REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add (or replace) a format; its suffixes then belong to it."""
    if fmt.family not in FAMILIES:
        raise ValueError(f"format {fmt.name}: unknown family {fmt.family!r} (one of {', '.join(FAMILIES)})")
    _REGISTRY[fmt.name] = fmt
    return fmt


def formats() -> list[Format]:
    """Every registered format, in detection order."""
    return list(_REGISTRY.values())


def family_of(name: str) -> str:
    return _REGISTRY[name].family


def detect(path: str | Path, head: Head | None = None) -> Format | None:
    """The format of the file at ``path`` (module docstring: suffix, then signature, then text), or None."""
    path = Path(path)
    suffix = path.suffix.lower()
    for fmt in _REGISTRY.values():
        if suffix in fmt.suffixes:
            return fmt
    head = head or Head.read(path)
    for fmt in _REGISTRY.values():
        if fmt.sniff(head):
            return fmt
    return None


def parse_families(spec: str | Iterable[str] | None) -> frozenset[str] | None:
    """``"pdf,office"`` (or a list) → the families; None → all. An unknown name raises ``UnknownFormatError``."""
    if spec is None:
        return None
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise UnknownFormatError(f"unknown format {', '.join(unknown)}: choose from {', '.join(FAMILIES)}")
    if not names:
        raise UnknownFormatError(f"no format given: choose from {', '.join(FAMILIES)}")
    return frozenset(names)


# -- the built-in formats ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Builtin:
    name: str
    family: str
    suffixes: frozenset[str]
    signature: Callable[[Head], bool]
    opener: Callable[[Path, Limits, OpenContext, str], DocumentReader] = field(repr=False)

    def sniff(self, head: Head) -> bool:
        return self.signature(head)

    def open(self, path: Path, limits: Limits, context: OpenContext) -> DocumentReader:
        return self.opener(path, limits, context, self.name)


def _open_pdf(path: Path, limits: Limits, context: OpenContext, name: str) -> DocumentReader:
    from .pdf import PdfReader

    return PdfReader(path, limits)


def _open_image(path: Path, limits: Limits, context: OpenContext, name: str) -> DocumentReader:
    from .images import ImageReader

    return ImageReader(path, limits)


def _open_office(path: Path, limits: Limits, context: OpenContext, name: str) -> DocumentReader:
    from .office import OfficeReader

    return OfficeReader(path, limits, name, context)


def _open_text(path: Path, limits: Limits, context: OpenContext, name: str) -> DocumentReader:
    from .textdoc import TextDocumentReader

    return TextDocumentReader(path, limits, name, context)


def _ooxml(part: str) -> Callable[[Head], bool]:
    return lambda h: h.is_zip and any(m.startswith(part) for m in h.members())


def _odf(mime: str) -> Callable[[Head], bool]:
    # The first member of an OpenDocument file is "mimetype", stored: its content sits at byte 38.
    return lambda h: h.is_zip and h.data[30:38] == b"mimetype" and h.data[38 : 38 + len(mime)] == mime.encode()


def _ole2(stream: str) -> Callable[[Head], bool]:
    def sniff(h: Head) -> bool:
        if not h.is_ole2:
            return False
        try:
            with h.path.open("rb") as fh:
                body = fh.read(1 << 20)  # the directory of a small file; a larger one needs its suffix
        except OSError:
            return False
        return stream.encode("utf-16-le") in body

    return sniff


def _html(h: Head) -> bool:
    text = h.text()
    if text is None:
        return False
    start = text.lstrip()[:1024].lower()
    return start.startswith(("<!doctype html", "<html")) or ("<html" in start and "<head" in start)


def _text(h: Head) -> bool:
    return not h.path.suffix and h.text() is not None and bool(h.data.strip())


def _magic(*prefixes: bytes) -> Callable[[Head], bool]:
    return lambda h: h.data.startswith(prefixes)


_BUILTINS = [
    _Builtin("pdf", "pdf", frozenset({".pdf"}), lambda h: b"%PDF-" in h.data[:1024], _open_pdf),
    _Builtin(
        "image",
        "image",
        frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}),
        lambda h: h.is_image,
        _open_image,
    ),
    _Builtin("docx", "office", frozenset({".docx", ".docm", ".dotx"}), _ooxml("word/"), _open_office),
    _Builtin("pptx", "office", frozenset({".pptx", ".pptm", ".ppsx"}), _ooxml("ppt/"), _open_office),
    _Builtin("xlsx", "office", frozenset({".xlsx", ".xlsm"}), _ooxml("xl/"), _open_office),
    _Builtin("odt", "office", frozenset({".odt"}), _odf("application/vnd.oasis.opendocument.text"), _open_office),
    _Builtin(
        "odp", "office", frozenset({".odp"}), _odf("application/vnd.oasis.opendocument.presentation"), _open_office
    ),
    _Builtin(
        "ods", "office", frozenset({".ods"}), _odf("application/vnd.oasis.opendocument.spreadsheet"), _open_office
    ),
    _Builtin("doc", "office", frozenset({".doc"}), _ole2("WordDocument"), _open_office),
    _Builtin("ppt", "office", frozenset({".ppt", ".pps"}), _ole2("PowerPoint Document"), _open_office),
    _Builtin("xls", "office", frozenset({".xls"}), _ole2("Workbook"), _open_office),
    _Builtin("rtf", "office", frozenset({".rtf"}), _magic(b"{\\rtf"), _open_office),
    _Builtin("html", "html", frozenset({".html", ".htm", ".xhtml"}), _html, _open_text),
    _Builtin("markdown", "text", frozenset({".md", ".markdown"}), lambda h: False, _open_text),
    _Builtin("text", "text", frozenset({".txt", ".text"}), _text, _open_text),
]
for _fmt in _BUILTINS:
    register(_fmt)
