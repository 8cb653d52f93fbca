"""What an Office or OpenDocument file is checked for before LibreOffice sees it.

Each check reads a bounded part of the file (a ZIP's directory, the first 64 KiB of each XML member, the first
64 MiB of an OLE2 file) and raises ``DocumentError`` with the reason:

* **ZIP bombs**: members that unpack to more than ``Limits.max_unpacked_bytes`` in all (as the ZIP's directory
  declares them; a ZIP that lies about its sizes is stopped by the worker's memory and time budgets), or more
  than ``MAX_MEMBERS`` members.
* **XML entity declarations** (``<!DOCTYPE`` / ``<!ENTITY``): OOXML and ODF parts never need a DTD; an
  entity-expansion ("billion laughs") bomb does.
* **Macros** are refused, not run or stripped: ``vbaProject.bin`` (OOXML), ``Basic/`` or ``Scripts/``
  libraries (ODF), a ``_VBA_PROJECT`` stream (.doc/.ppt/.xls). A file with macros may be built to attack the
  program that opens it; the user can save a copy without them.
* **Passwords**: an encrypted OOXML file is an OLE2 container holding ``EncryptedPackage``; an encrypted ODF
  file's manifest has ``encryption-data``. (A password-protected .doc/.ppt/.xls is found by LibreOffice,
  which then cannot open it: ``parsers.office`` says so.)
* **Too many slides**: a presentation with more slides than ``Limits.max_pages`` is refused before it is
  converted (LibreOffice would load every slide to export the first few).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .errors import DocumentError
from .limits import Limits

__all__ = ["MAX_MEMBERS", "check_office_file"]

MAX_MEMBERS = 20_000
XML_PEEK = 65_536
OLE2_SCAN = 64 << 20
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_FORMATS = frozenset({"docx", "pptx", "xlsx", "odt", "odp", "ods"})
_SLIDE = re.compile(r"^ppt/slides/slide\d+\.xml$")
_UTF16 = {name: name.encode("utf-16-le") for name in ("EncryptedPackage", "_VBA_PROJECT")}

_SAVE_WITHOUT_MACROS = "docrag does not open files with macros; save a copy without them (e.g. as .docx/.pptx/.xlsx)"


def check_office_file(path: Path, fmt: str, limits: Limits) -> None:
    """Refuse ``path`` (of format ``fmt``) when it is a bomb, has macros, is encrypted or has too many slides."""
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic == OLE2_MAGIC:
        _check_ole2(path, fmt)
    elif fmt in _ZIP_FORMATS:
        _check_zip(path, fmt, limits)


def _check_ole2(path: Path, fmt: str) -> None:
    with path.open("rb") as fh:
        body = fh.read(OLE2_SCAN)
    if _UTF16["EncryptedPackage"] in body:
        raise DocumentError(str(path), "password-protected (an encrypted Office file): docrag cannot open it")
    if _UTF16["_VBA_PROJECT"] in body:
        raise DocumentError(str(path), f"the file has macros (a VBA project); {_SAVE_WITHOUT_MACROS}")
    if fmt in _ZIP_FORMATS:
        raise DocumentError(str(path), f"not a .{fmt} file: it is an older binary Office file (OLE2); rename it")


def _check_zip(path: Path, fmt: str, limits: Limits) -> None:
    file = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DocumentError(file, f"not a valid .{fmt} file: not a ZIP archive (damaged or mislabelled)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise DocumentError(file, f"the archive has {len(infos):,} members, over {MAX_MEMBERS:,} (a ZIP bomb?)")
        unpacked = sum(i.file_size for i in infos)
        if unpacked > limits.max_unpacked_bytes:
            raise DocumentError(
                file,
                f"its parts unpack to {unpacked:,} bytes, over max_unpacked_bytes ({limits.max_unpacked_bytes:,}): "
                "a ZIP bomb?",
            )
        names = [i.filename for i in infos]
        lower = [n.lower() for n in names]
        if any(n.endswith("vbaproject.bin") for n in lower):
            raise DocumentError(file, f"the file has macros (vbaProject.bin); {_SAVE_WITHOUT_MACROS}")
        if fmt.startswith("od") and any(n.startswith(("basic/", "scripts/")) and not n.endswith("/") for n in lower):
            raise DocumentError(file, f"the file has macros (Basic or script libraries); {_SAVE_WITHOUT_MACROS}")
        slides = sum(1 for n in names if _SLIDE.match(n))
        if slides > limits.max_pages:
            raise DocumentError(
                file, f"has {slides:,} slides, over max_pages ({limits.max_pages:,}): split it, or raise max_pages"
            )
        if "META-INF/manifest.xml" in names:
            with zf.open("META-INF/manifest.xml") as member:
                if b"encryption-data" in member.read(XML_PEEK * 16):
                    raise DocumentError(file, "password-protected (an encrypted OpenDocument file): cannot open it")
        for info in infos:
            if not info.filename.lower().endswith((".xml", ".rels")):
                continue
            try:
                with zf.open(info) as member:
                    head = member.read(XML_PEEK)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                raise DocumentError(file, f"a damaged part {info.filename} ({exc.__class__.__name__})") from None
            if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
                raise DocumentError(
                    file,
                    f"its part {info.filename} declares XML entities (<!DOCTYPE/<!ENTITY>), the shape of an "
                    "entity-expansion bomb; Office files never need them",
                )
