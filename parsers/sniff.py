"""A file's first bytes, and what they say about its format (``parsers.formats`` decides with them)."""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD_BYTES", "MAX_ZIP_ENTRIES", "Head"]

HEAD_BYTES = 8192
MAX_ZIP_ENTRIES = 20_000  # a ZIP's member list is read only when its directory says no more than this


@dataclass(frozen=True, slots=True)
class Head:
    """The first bytes of a file, and (lazily) the member names of a ZIP: what ``sniff`` looks at."""

    path: Path
    data: bytes

    @classmethod
    def read(cls, path: Path) -> Head:
        try:
            with path.open("rb") as fh:
                return cls(path, fh.read(HEAD_BYTES))
        except OSError:
            return cls(path, b"")

    @property
    def is_zip(self) -> bool:
        return self.data.startswith(b"PK\x03\x04")

    @property
    def is_image(self) -> bool:
        """PNG, JPEG, TIFF or WebP magic (the image formats docrag reads)."""
        d = self.data
        return d.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")) or (
            d[:4] == b"RIFF" and d[8:12] == b"WEBP"
        )

    @property
    def is_ole2(self) -> bool:
        return self.data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")

    def members(self) -> frozenset[str]:
        """A ZIP's member names (empty when not a ZIP, unreadable, or its directory lists too many)."""
        return _zip_members(self.path) if self.is_zip else frozenset()

    def text(self) -> str | None:
        """The head as UTF-8 text, or None when it is binary (a NUL or other control bytes, or not UTF-8)."""
        data = self.data
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 4:  # not a character cut in two at the end of the head
                return None
            text = data[: exc.start].decode("utf-8")
        if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
            return None
        return text


def _zip_members(path: Path) -> frozenset[str]:
    """The names in a ZIP's central directory, read only after its end record says how many there are."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 65_557))
            tail = fh.read()
    except OSError:
        return frozenset()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return frozenset()
    (entries,) = struct.unpack("<H", tail[at + 10 : at + 12])
    if entries == 0xFFFF or entries > MAX_ZIP_ENTRIES:
        return frozenset()
    try:
        with zipfile.ZipFile(path) as zf:
            return frozenset(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return frozenset()
