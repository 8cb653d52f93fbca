"""Parsers: PDFs and image files in, pages with text, signals, figures and a renderer out.

Heavy dependencies (pypdfium2, PIL, unstructured) are imported when a document is opened, not here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DocumentError
from .limits import Limits
from .reader import DocumentReader
from .types import BBox, Figure, LayoutRegion, Page, PageSignals, TextSpan

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "BBox",
    "DocumentError",
    "DocumentReader",
    "Figure",
    "Found",
    "LayoutRegion",
    "Listing",
    "Page",
    "PageSignals",
    "TextSpan",
    "discover",
    "list_documents",
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


@dataclass(frozen=True, slots=True)
class Found:
    """A file met while walking: its path, whether its suffix is one docrag reads, and what is wrong with it
    as a file ("" when it is a regular, readable file)."""

    path: Path
    supported: bool
    problem: str = ""
    excluded: bool = False  # a file or folder the caller asked to leave out (not walked, not a document)


def _problem(path: Path) -> tuple[str, bool]:
    """(what is wrong with ``path`` as a file to read, whether it is a folder)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ("a broken symbolic link" if os.path.islink(path) else "no such file"), False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop", False
        return f"cannot read the file ({exc.strerror})", False
    if stat.S_ISDIR(st.st_mode):
        return "", True
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, device or socket: reading it would block or never end)", False
    return "", False


def _identities(paths: Iterable[str | Path]) -> set[tuple[int, int]]:
    """(device, inode) of each path that exists: the same file or folder however it is spelt."""
    out = set()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out


def _is(path: str | Path, identities: set[tuple[int, int]]) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in identities


def discover(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> Iterator[Found]:
    """Walk files and folders (recursively, sorted, symbolic links to folders not followed, hidden names
    skipped): yields a ``Found`` for every file, including those that cannot be read (broken links, pipes,
    devices; a folder that cannot be listed is reported as a problem of its own path). Never raises for
    what it finds; a path that does not exist comes back with the problem "no such file". A file or folder
    in ``exclude`` (the same one, however it is spelt) is not walked: it comes back once, ``excluded``."""
    left_out = _identities(exclude)
    for given in paths:
        given = Path(given)
        if left_out and _is(given, left_out):
            yield Found(given, False, excluded=True)
            continue
        problem, is_dir = _problem(given)
        if not is_dir:
            yield Found(given, given.suffix.lower() in SUPPORTED_SUFFIXES, problem)
            continue
        errors: list[OSError] = []
        for top, dirs, files in os.walk(given, onerror=errors.append, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if left_out:
                for d in [d for d in dirs if _is(Path(top) / d, left_out)]:
                    dirs.remove(d)
                    yield Found(Path(top) / d, False, excluded=True)
            for name in sorted(files):
                if name.startswith("."):
                    continue
                p = Path(top) / name
                if left_out and _is(p, left_out):
                    yield Found(p, False, excluded=True)
                    continue
                problem, is_dir = _problem(p)
                if not is_dir:
                    yield Found(p, p.suffix.lower() in SUPPORTED_SUFFIXES, problem)
            while errors:
                exc = errors.pop()
                yield Found(Path(exc.filename or top), True, f"cannot list the folder ({exc.strerror})")


@dataclass(slots=True)
class Listing:
    """What a walk of files and folders found, classified once for every command: the documents to read, the
    files that cannot be read (with why), and the other files met in folders (not documents, not errors)."""

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    not_documents: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # what the caller asked to leave out, where it was met


def list_documents(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> Listing:
    """Walk ``paths`` (``discover``) and classify what it finds. A file that cannot be read is a problem when
    it is of a type docrag reads or was named explicitly; a file of another type is a problem when named
    explicitly, and otherwise just not a document. ``exclude``: files and folders not to walk (a database's
    own, when it lies in a folder being indexed)."""
    paths = list(paths)
    explicit = {Path(p) for p in paths}
    out = Listing()
    for found in discover(paths, exclude):
        path = found.path
        if found.excluded:
            out.excluded.append(str(path))
        elif found.problem:
            if found.supported or path in explicit:
                out.problems.append((str(path), found.problem))
        elif not found.supported:
            if path in explicit:
                out.problems.append((str(path), f"unsupported file type {path.suffix or '(none)'}"))
            else:
                out.not_documents.append(str(path))
        else:
            out.files.append(path)
    return out
