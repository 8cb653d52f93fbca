"""What every document reader shares: file checks, page caps, the context manager and page streaming."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from .errors import DocumentError
from .limits import Limits
from .types import Page

__all__ = ["DocumentReader", "check_file"]

log = logging.getLogger(__name__)


def check_file(path: Path, limits: Limits) -> int:
    """Refuse unreadable, empty or oversized files before any parser sees them; returns the size."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read the file ({exc.strerror})") from None
    if size == 0:
        raise DocumentError(str(path), "the file is empty (0 bytes)")
    if size > limits.max_file_bytes:
        raise DocumentError(
            str(path), f"the file is {size:,} bytes, over the limit of {limits.max_file_bytes:,} (max_file_bytes)"
        )
    return size


class DocumentReader(ABC):
    """A document opened for reading, page by page. Use as a context manager; pages render only while open."""

    unit = "pages"

    def __init__(self, path: str | Path, limits: Limits | None = None) -> None:
        self.path = Path(path)
        self.file = str(path)
        self.limits = limits or Limits()
        self.warnings: list[str] = []
        self.n_pages = 0
        self.parse_path = self.path  # the file the page parsers read (a converted document: its PDF)
        check_file(self.path, self.limits)

    def _cap_pages(self, total: int) -> None:
        self.n_pages = min(total, self.limits.max_pages)
        if total > self.limits.max_pages:
            msg = f"has {total} {self.unit}; only the first {self.n_pages} are read (max_pages)"
            self.warnings.append(msg)
            log.warning("%s: %s", self.file, msg)

    def __enter__(self) -> DocumentReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def page(self, number: int) -> Page:
        """Parse page ``number`` (1-based); raises DocumentError when it cannot be read."""

    def pages(self) -> Iterator[Page]:
        for i in range(self.n_pages):
            yield self.page(i + 1)
