"""Parsers: documents in (PDFs, images, Office and OpenDocument files, HTML, Markdown, plain text), pages with
text, signals, figures and a renderer out. Which formats, and how a file's format is told: ``parsers.formats``.

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
from .formats import FAMILIES, Format, OpenContext, UnknownFormatError, detect, family_of, formats, parse_families
from .limits import Limits
from .reader import DocumentReader
from .types import BBox, Figure, LayoutRegion, Page, PageSignals, TextSpan

__all__ = [
    "FAMILIES",
    "IMAGE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "BBox",
    "DocumentError",
    "DocumentReader",
    "Figure",
    "Format",
    "Found",
    "LayoutRegion",
    "Listing",
    "OpenContext",
    "Page",
    "PageSignals",
    "TextSpan",
    "UnknownFormatError",
    "detect",
    "discover",
    "list_documents",
    "open_document",
    "parse_families",
    "skipped_line",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
SUPPORTED_SUFFIXES = frozenset().union(*(f.suffixes for f in formats()))  # the built-in formats


def open_document(
    path: str | Path,
    limits: Limits | None = None,
    *,
    context: OpenContext | None = None,
):
    """Open a document of any registered format (``parsers.formats``) as a reader of pages; raises DocumentError
    naming the file and the reason. ``context``: conversion settings, the folders being indexed."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(str(path), "no such file" if not path.exists() else "not a regular file")
    fmt = detect(path)
    if fmt is None:
        raise DocumentError(
            str(path), f"unsupported file type {path.suffix or '(none)'}; docrag reads {', '.join(FAMILIES)} files"
        )
    return fmt.open(path, limits or Limits(), context or OpenContext())


@dataclass(frozen=True, slots=True)
class Found:
    """A file met while walking: its path, whether it is of a format docrag reads (by suffix or content), and
    what is wrong with it as a file ("" when it is a regular, readable file)."""

    path: Path
    supported: bool
    problem: str = ""
    excluded: bool = False  # a file or folder the caller asked to leave out (not walked, not a document)
    format: str = ""  # the format's name (``parsers.formats``), "" when not supported


def _found(path: Path, problem: str) -> Found:
    """A file met while walking, its format detected (by suffix; for an unknown suffix by its first bytes)."""
    if problem:
        known = any(path.suffix.lower() in f.suffixes for f in formats())
        return Found(path, known, problem)
    fmt = detect(path)
    return Found(path, fmt is not None, problem, format=fmt.name if fmt else "")


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
            yield _found(given, problem)
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
                    yield _found(p, problem)
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
    families: tuple[str, ...] = FAMILIES  # the formats read (``--formats``): not_documents are of none of them

    def skipped_line(self, show: int = 5) -> str:
        """ "skipped N file(s) that are not …: a, b and 3 more" for the files that are not documents."""
        return skipped_line(self.not_documents, self.families, show)


def skipped_line(files: list[str], families: Iterable[str] = FAMILIES, show: int = 5) -> str:
    """The one line naming the files met that are not documents of the formats read (the first ``show``)."""
    names = ", ".join(Path(f).name for f in files[:show])
    more = f" and {len(files) - show} more (--json lists them)" if len(files) > show else ""
    families = tuple(families)
    kinds = "a format docrag reads" if set(families) == set(FAMILIES) else "of the formats asked for"
    return f"skipped {len(files)} file(s) that are not {kinds} ({', '.join(families)}): {names}{more}"


def list_documents(
    paths: Iterable[str | Path], exclude: Iterable[str | Path] = (), families: Iterable[str] | None = None
) -> Listing:
    """Walk ``paths`` (``discover``) and classify what it finds. A file that cannot be read is a problem when
    it is of a type docrag reads or was named explicitly; a file of another type is a problem when named
    explicitly, and otherwise just not a document. ``exclude``: files and folders not to walk (a database's
    own, when it lies in a folder being indexed). ``families``: read only files of these format families
    (``parsers.formats.FAMILIES``; None: all); the others are not documents of this walk."""
    paths = list(paths)
    explicit = {Path(p) for p in paths}
    wanted = frozenset(FAMILIES if families is None else families)
    out = Listing(families=tuple(f for f in FAMILIES if f in wanted))
    for found in discover(paths, exclude):
        if found.format and family_of(found.format) not in wanted and not found.problem:
            found = Found(found.path, False, format=found.format)
        path = found.path
        if found.excluded:
            out.excluded.append(str(path))
        elif found.problem:
            if found.supported or path in explicit:
                out.problems.append((str(path), found.problem))
        elif not found.supported:
            if path in explicit and found.format:
                out.problems.append((str(path), f"a {family_of(found.format)} file, left out by the formats asked for"))
            elif path in explicit:
                out.problems.append((str(path), f"unsupported file type {path.suffix or '(none)'}"))
            else:
                out.not_documents.append(str(path))
        else:
            out.files.append(path)
    return out
