"""Text clean-up shared by every text source (PDF text layer, unstructured elements, OCR).

Two defects of extracted text cost retrieval quality on typeset documents:

* **Ligatures and compatibility characters.** pdfminer (behind unstructured) returns "ﬁ", "ﬂ", "ﬀ", "ﬃ" as
  single code points. The WordPiece tokenizers of BERT-family embedders have no such pieces, so a word like
  "identiﬁed" becomes one ``[UNK]``; BM25 sees a token no query contains. NFKC folds them (and full-width
  forms, superscript digits, …) into plain letters.
* **Hyphenation at line ends.** pdfium replaces a hyphen that ends a line with U+FFFE and joins the lines
  ("theoret\\ufffeical"), which a tokenizer splits into two non-words; pdfminer and tesseract keep
  "smok-\\ning" (unstructured then joins the lines into "smok- ing"). ``dehyphenate`` rejoins such words,
  using the document's own vocabulary to keep real compounds ("alcohol-dependent") hyphenated and
  suspended hyphens ("pre- and post-") as written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable

# pdfium replaces any hyphen that ends a line with U+FFFE and joins the lines ("alcohol\ufffedependent"): it
# cannot tell hyphenation from a compound, so the line-end hyphen is restored for ``dehyphenate`` to judge. A
# soft hyphen (U+00AD) marks a hyphenation point by definition: it goes, with any line break after it.
_PDFIUM_HYPHEN = re.compile(r"\ufffe[ \t]*(?:\r\n|\r|\n)?[ \t]*")
_SOFT_HYPHEN = re.compile(r"\u00ad[ \t]*(?:\r\n|\r|\n)?[ \t]*")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)  # words and hyphenated compounds
# A letter run, a hyphen, then a line break (text layer, OCR) or a single space (lines already joined), then
# a lower-case letter run: the shape of a word broken across lines.
_BROKEN = re.compile(r"([^\W\d_]+)-(?:[ \t]*\n[ \t]*| )([^\W\d_A-Z]+)", re.UNICODE)
_SUSPENDED = frozenset({"and", "or", "nor", "to", "vs", "und", "oder", "et", "ou"})


def normalise(text: str) -> str:
    """NFKC; pdfium's line-end hyphen marker back to a hyphen and a line break; soft hyphens and zero-width
    characters dropped."""
    if not text:
        return text
    text = _PDFIUM_HYPHEN.sub("-\n", text)
    text = _SOFT_HYPHEN.sub("", text)
    text = _INVISIBLE.sub("", text)
    return unicodedata.normalize("NFKC", text)


def vocabulary(texts: Iterable[str]) -> set[str]:
    """Lower-cased words of ``texts`` (a hyphenated compound both whole and by its parts), leaving out the
    fragments of words broken at a line-end hyphen."""
    words: set[str] = set()
    for text in texts:
        for w in _WORD.findall(_BROKEN.sub(" ", text)):
            w = w.lower()
            words.add(w)
            if "-" in w:
                words.update(w.split("-"))
    return words


def dehyphenate(text: str, vocab: Container[str] | None = None) -> str:
    """Rejoin words broken across lines ("smok-\\ning", "smok- ing" → "smoking").

    Evidence comes from the text itself and from ``vocab``, the document's words (``vocabulary``): the joined
    word wins when it is used elsewhere; then a compound used elsewhere, or two words both used on their own,
    stay hyphenated ("alcohol-dependent"); a hyphen followed by a conjunction is a suspended hyphen
    ("pre- and post-") and stays. Without evidence the word is joined, the common case in hyphenated text.
    """
    if "-" not in text:
        return text
    own = vocabulary([text])

    def known(word: str) -> bool:
        return word in own or (vocab is not None and word in vocab)

    def fix(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        if known((left + right).lower()):
            return left + right
        if right.lower() in _SUSPENDED:
            return m.group(0)
        if known(f"{left}-{right}".lower()) or (known(left.lower()) and known(right.lower())):
            return f"{left}-{right}"
        return left + right

    return _BROKEN.sub(fix, text)


# "Figure 2:", "Fig. 3.", "Table IV –", "Chart 1", "Exhibit 4" at the start of a line; the label's number and a
# separator (or the end of the line) tell a caption from prose that merely starts with the word "Table".
_CAPTION = re.compile(
    r"^\s*(?:Figure|Fig\.|Table|Tab\.|Chart|Exhibit|Plate|Scheme|Diagram|Graph|Map|Abbildung|Tabelle)"
    r"\s*(?:[0-9]+(?:\.[0-9]+)*[a-z]?|[IVXL]+|[A-Z]\.?[0-9]*)\s*(?:[.:|–—-]|$)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?]\s*$")


def captions(texts: Iterable[str], max_chars: int = 400) -> list[str]:
    """Figure and table captions found at the start of a line in ``texts`` (elements or OCR text).

    A caption runs from its label to the end of its first sentence-ending line, or to a blank line, or to
    ``max_chars``. Captions say in words what a figure or table shows, which page text around a chart rarely
    does, so they get vectors of their own (see ``pipeline.ingest``).
    """
    found: list[str] = []
    for text in texts:
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            if not _CAPTION.match(lines[i]):
                i += 1
                continue
            parts = [lines[i].strip()]
            while not _SENTENCE_END.search(parts[-1]) and i + 1 < len(lines) and lines[i + 1].strip():
                if sum(map(len, parts)) >= max_chars:
                    break
                i += 1
                parts.append(lines[i].strip())
            caption = " ".join(" ".join(parts).split())[:max_chars]
            if len(caption.split()) >= 3 and caption not in found:
                found.append(caption)
            i += 1
    return found


def is_noise(text: str) -> bool:
    """Text that carries no words: chart tick labels ("0 . 2"), rotated axis titles that extraction spells out
    letter by letter and backwards ("r e m e h z A"), lone numbers and symbols. Kept out of the embedded
    chunks (BM25 still sees the page's whole text)."""
    tokens = text.split()
    if not tokens:
        return True
    if not any(c.isalpha() for c in text):
        return True  # numbers, ticks, symbols
    singles = sum(1 for t in tokens if len(t) == 1)
    return len(tokens) >= 3 and singles / len(tokens) >= 0.6
