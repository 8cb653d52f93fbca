"""What third-party parsers say while a document is planned: caught, counted, and put on the page it is about.

pdfminer (behind unstructured), pypdf, PIL … log warnings and call ``warnings.warn`` on damaged content, e.g.
"Cannot set non-stroke color: /'R7' is an invalid float value". Printed as they come, they name no file and
no page, and a manual can print dozens. While a ``Chatter`` is ``catching``, the parsers' loggers
(``PARSER_LOGGERS``: their WARNING records and above, whatever level they were set to) and Python warnings
come here instead of stderr, each distinct message counted once per page. ``lines(page)`` are the page's
diagnostics ("pdfminer: Cannot set … (14 times)"); ``report()`` is what the run's report says of the file.

Element extraction (unstructured) reads the whole document at once: a pdfminer message then goes to the page
pdfminer was interpreting (its page object, numbered through the document's page tree), and any other
message of that step to the document as a whole (page 0).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .logs import PARSER_LOGGERS

__all__ = ["Chatter"]

PREFIX = "parser warning: "  # how a page's diagnostics and the report name what a parser said


class _Catcher(logging.Handler):
    """Takes the parsers' WARNING records and above; lower ones go on to the root logger's handlers."""

    def __init__(self, chatter: Chatter) -> None:
        super().__init__(logging.NOTSET)
        self.chatter = chatter

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            logging.getLogger().handle(record)  # as propagation would have (``--verbose`` shows these)
            return
        try:
            message = record.getMessage()
        except Exception:  # a parser's bad format string: its template still says what it was
            message = str(record.msg)
        pageid = _pdfminer_pageid() if record.name.startswith("pdfminer") else None
        self.chatter.add(f"{record.name.split('.')[0]}: {message}", pageid)


def _pdfminer_pageid() -> int | None:
    """The object id of the page pdfminer is interpreting, from its ``process_page`` frame (None: not in one)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "process_page":
            pageid = getattr(frame.f_locals.get("page"), "pageid", None)
            if isinstance(pageid, int):
                return pageid
        frame = frame.f_back
    return None


def _pdfminer_numbers(path: Path) -> dict[int, int]:
    """pdfminer's page object ids → page numbers (1-based), from the document's page tree; {} when unreadable."""
    try:
        from pdfminer.pdfdocument import PDFDocument
        from pdfminer.pdfpage import PDFPage
        from pdfminer.pdfparser import PDFParser

        with path.open("rb") as fh:
            doc = PDFDocument(PDFParser(fh))
            return {p.pageid: n for n, p in enumerate(PDFPage.create_pages(doc), start=1)}
    except Exception:  # pdfminer absent, or the tree it cannot read: the messages stay with the document
        return {}


class Chatter:
    """The parsers' messages about one document, by page number (0: the document as a whole)."""

    def __init__(self) -> None:
        self.page = 0  # the page being planned: where a message goes
        self.pages: dict[int, dict[str, int]] = {}  # page -> message -> times
        self._pdfminer: dict[int, dict[str, int]] = {}  # pdfminer page object id -> message -> times (unplaced)

    def add(self, message: str, pdfminer_page: int | None = None) -> None:
        where = self._pdfminer.setdefault(pdfminer_page, {}) if pdfminer_page is not None else None
        if where is None:
            where = self.pages.setdefault(self.page, {})
        where[message] = where.get(message, 0) + 1

    @contextmanager
    def catching(self, page: int) -> Iterator[None]:
        """Messages from here on are the parsers' about ``page`` (0: the document). Not nested."""
        self.page = page
        handler = _Catcher(self)
        saved = []
        for name in PARSER_LOGGERS:
            logger = logging.getLogger(name)
            saved.append((logger, logger.level, logger.propagate))
            if logger.level == logging.NOTSET or logger.level > logging.WARNING:  # quieted to ERROR: heard here
                logger.setLevel(logging.WARNING)
            logger.propagate = False
            logger.addHandler(handler)
        try:
            with self._warnings():
                yield
        finally:
            for logger, level, propagate in saved:
                logger.removeHandler(handler)
                logger.setLevel(level)
                logger.propagate = propagate

    @contextmanager
    def _warnings(self) -> Iterator[None]:
        """Python warnings raised inside go to the current page, each counted."""
        recording = warnings.catch_warnings(record=True)
        caught = recording.__enter__()
        try:
            yield
        finally:
            recording.__exit__(None, None, None)
            for w in caught or []:
                self.add(f"{w.category.__name__}: {w.message}")

    @contextmanager
    def whole_document(self) -> Iterator[None]:
        """Inside ``catching``: a step that reads the whole document (element extraction) is not one page's."""
        page, self.page = self.page, 0
        try:
            with self._warnings():
                yield
        finally:
            self.page = page

    def place(self, path: str | Path) -> None:
        """Put pdfminer's messages on their pages (numbered through ``path``'s page tree); unknown ones on the
        document."""
        if not self._pdfminer:
            return
        with self.catching(0):  # reading the page tree may be worth a message too
            numbers = _pdfminer_numbers(Path(path))
        pending, self._pdfminer = self._pdfminer, {}
        for pageid, messages in pending.items():
            where = self.pages.setdefault(numbers.get(pageid, 0), {})
            for message, n in messages.items():
                where[message] = where.get(message, 0) + n

    def lines(self, page: int) -> list[str]:
        """What the parsers said about ``page``, one line a message: ``parser warning: pdfminer: … (14 times)``."""
        return [PREFIX + m + (f" ({n} times)" if n > 1 else "") for m, n in self.pages.get(page, {}).items()]

    def report(self) -> list[dict[str, Any]]:
        """Every page's lines, for the run's report (``page`` 0: the document as a whole), pages in order."""
        return [{"page": p, "error": line, "source": "parser"} for p in sorted(self.pages) for line in self.lines(p)]
