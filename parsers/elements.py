"""Element partitioning with unstructured (``fast`` strategy), guarded against its silent offline failures.

unstructured's ``fast`` strategy returns Title / NarrativeText / ListItem … elements with page numbers and
coordinates. Offline it fails silently in two ways (see the project's field notes):

1. It loads the spaCy model ``en_core_web_sm`` (only to decide Title vs NarrativeText) and, when the model
   is missing, tries to download it and then returns **zero elements**. We supply a blank English spaCy
   pipeline with a sentencizer in its place when the model is not installed: text extraction is unchanged,
   only a few single sentences become Title.
2. A PDF with one page over 10k graphics operations is judged "too complex" and yields zero elements for
   the whole file.

Whatever the cause, a page that has a text layer never comes back with zero elements: we fall back to the
text layer (one NarrativeText element per paragraph) and say so in the page's diagnostics.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .text import normalise
from .types import Page

__all__ = [
    "Element",
    "normalise_line",
    "page_elements",
    "partition_pages",
    "running_lines",
    "strip_lines",
    "text_layer_elements",
    "unstructured_elements",
]

log = logging.getLogger(__name__)

for _k, _v in (("UNSTRUCTURED_DISABLE_NOTICE", "1"), ("DO_NOT_TRACK", "true"), ("SCARF_NO_ANALYTICS", "true")):
    os.environ.setdefault(_k, _v)


@dataclass(slots=True)
class Element:
    """A typed block of text on a page (Title, NarrativeText, ListItem, …) with its source."""

    type: str
    text: str
    page: int
    source: str = "unstructured"  # "unstructured" | "text-layer" | "ocr"
    metadata: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _blank_nlp() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _guard_spacy() -> None:
    """Make unstructured use a local blank pipeline instead of downloading en_core_web_sm."""
    import spacy.util
    from unstructured.nlp import tokenize

    if spacy.util.is_package("en_core_web_sm") or getattr(tokenize, "_docrag_guarded", False):
        return
    tokenize._get_nlp = _blank_nlp  # read as a module global at call time by _run_pipeline
    tokenize._docrag_guarded = True
    log.info("spaCy model en_core_web_sm not installed: unstructured uses a blank English sentencizer")


_PARA = re.compile(r"\n\s*\n|(?<=[.!?:])\n(?=[A-Z])")


def text_layer_elements(page: Page) -> list[Element]:
    """Paragraph-ish elements from the page's own text layer (the fallback)."""
    parts = [p.strip() for p in _PARA.split(page.text) if p.strip()]
    return [Element("NarrativeText", " ".join(p.split()), page.number, "text-layer") for p in parts]


def unstructured_elements(path: str | Path) -> tuple[dict[int, list[Element]], str]:
    """All elements of a PDF by page number (unstructured ``fast``, run once per file), and the failure reason
    ("" when it ran). Never raises: unstructured fails in many ways offline, and the text layer remains."""
    found: dict[int, list[Element]] = {}
    try:
        from unstructured.partition.pdf import partition_pdf

        _guard_spacy()
        for el in partition_pdf(filename=str(path), strategy="fast", infer_table_structure=False, languages=["eng"]):
            md = el.metadata
            n = getattr(md, "page_number", None)
            text = normalise(el.text or "").strip()
            if n is not None and text:
                coords = getattr(md, "coordinates", None)
                extra = {"points": [list(p) for p in coords.points]} if coords is not None else {}
                found.setdefault(n, []).append(Element(el.category, text, n, "unstructured", extra))
    except Exception as exc:
        failure = f"{exc.__class__.__name__}: {exc}"[:200]
        log.info("%s: unstructured failed (%s); using the text layer", path, failure)
        return {}, failure
    return found, ""


def page_elements(page: Page, found: dict[int, list[Element]], failure: str = "") -> list[Element]:
    """The page's elements from ``found``; a page with a text layer but no elements falls back to its text
    layer, with a diagnostic on the page. Pages without a text layer get none here (OCR handles them)."""
    if page.signals.n_chars == 0:
        return []
    els = found.get(page.number, [])
    if els:
        return els
    why = f"unstructured failed ({failure})" if failure else "unstructured returned no elements"
    page.diagnostics.append(f"{why}: elements taken from the text layer")
    return text_layer_elements(page)


def partition_pages(path: str | Path, pages: list[Page]) -> dict[int, list[Element]]:
    """Elements per page number for ``pages`` of the PDF at ``path`` (unstructured ``fast``, guarded).

    Pages that have a text layer but get no elements fall back to the text layer, with a diagnostic added
    to ``page.diagnostics``. Pages without a text layer get no elements here (OCR handles them).
    """
    found, failure = unstructured_elements(path) if any(p.signals.n_chars for p in pages) else ({}, "")
    return {p.number: page_elements(p, found, failure) for p in pages}


_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]{2}")  # two letters: a word, not a page number


def normalise_line(line: str) -> str:
    """A line with its numbers masked, for spotting running headers and footers ("Smith et al. 12")."""
    return _DIGITS.sub("#", " ".join(line.split()).lower())


RUNNING_MAX_CHARS = 100  # a running header or footer is a short line


def running_lines(page_texts: list[str], edge: int = 2, min_share: float = 0.45, min_pages: int = 3) -> set[str]:
    """Lines in the top or bottom margin of pages that repeat across the document: running headers, footers,
    page numbers. Returned normalised (see ``normalise_line``); empty for documents shorter than min_pages.

    Only short lines (``RUNNING_MAX_CHARS``) on at least ``min_share`` of the pages count (two alternating
    headers, of even and odd pages, each cover half). The margins are the first and last ``edge`` lines of a
    page, and never meet: a page of three lines offers its first and last, so a template page ("<title> page
    N", a sentence, "<code>_page_N") keeps its middle."""
    if len(page_texts) < min_pages:
        return set()
    counts: dict[str, int] = {}
    for text in page_texts:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        k = min(edge, len(lines) // 2)
        margins = lines[:k] + lines[len(lines) - k :]
        for ln in {normalise_line(x) for x in margins}:
            counts[ln] = counts.get(ln, 0) + 1
    need = max(min_pages, math.ceil(min_share * len(page_texts)))
    return {ln for ln, n in counts.items() if n >= need and len(ln) <= RUNNING_MAX_CHARS}


def strip_lines(text: str, drop: set[str]) -> str:
    """``text`` without its running lines; a page whose every line is running keeps them all (a page's only
    content is never stripped)."""
    if not drop:
        return text
    kept = [ln for ln in text.splitlines() if normalise_line(ln) not in drop]
    if not any(_WORD.search(ln) for ln in kept):
        return text
    return "\n".join(kept)
