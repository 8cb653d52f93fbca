"""Errors the parsers raise: each names the file and the reason in words a user can act on."""

from __future__ import annotations

__all__ = ["DocumentError"]


class DocumentError(Exception):
    """A document (or one of its pages) cannot be read. ``str()`` reads "<file>: <reason>"."""

    def __init__(self, file: str, reason: str, page: int | None = None) -> None:
        self.file = str(file)
        self.reason = reason
        self.page = page
        where = f"{self.file} page {page}" if page is not None else self.file
        super().__init__(f"{where}: {reason}")
