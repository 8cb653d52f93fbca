"""HTML, Markdown and plain-text files as documents of text pages.

* **Pages.** The text is cut into pages of at most ``Limits.max_text_page_chars`` characters, at paragraph
  breaks where it can (a longer paragraph at a space, else anywhere), packed from the start: the same file
  always gets the same page numbers, and an edit changes only the pages from the edit on. Pages are text pages
  (chunks, BM25, the text leg); the router sends them nowhere else (a text file has no layout to look at).
* **Bounded.** At most ``max_pages`` pages are read: reading stops there (a 100 MB Markdown file costs the
  first ``max_pages × max_text_page_chars`` characters, not 100 MB), and the document keeps a warning. HTML is
  parsed by the standard library's event parser (no tree, no recursion: 100k nested elements are 100k events)
  from at most 16 markup characters per character of the text cap.
* **No network.** Nothing is fetched: scripts, styles and remote references (``http:``, ``//host``, ``data:``)
  are ignored. Local images that a page shows (``<img src>``, ``![alt](path)``) go to the image leg when they
  lie inside a folder being indexed (``OpenContext.roots``; without one, the document's own folder), after
  symbolic links are resolved: no reference reaches outside it. At most ``MAX_LINKED_IMAGES`` per document.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .errors import DocumentError
from .limits import Limits
from .reader import DocumentReader
from .sniff import Head
from .types import OpenContext, Page, PageSignals

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MAX_LINKED_IMAGES", "TextDocumentReader", "extract_html", "extract_markdown", "split_pages"]

MAX_LINKED_IMAGES = 64
PAGE_W, PAGE_H = 595.0, 842.0  # an A4 page in points: the size a text page is drawn at
MARKUP_PER_CHAR = 16
_MARK = "\x00"  # "\x00<n>\x00" marks where image n is referenced (removed from the page text)
_MARKER = re.compile(r"\x00(\d+)\x00")
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


class _HtmlText(HTMLParser):
    """Text of an HTML page with paragraph breaks, image references marked; scripts and styles dropped."""

    SKIP = frozenset({"script", "style", "template", "noscript", "svg", "math", "iframe", "object"})
    PARA = frozenset(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "blockquote", "pre", "table", "section", "article"}
    )
    LINE = frozenset({"br", "div", "dt", "dd", "hr", "header", "footer", "nav", "ul", "ol", "figure", "figcaption"})
    CELL = frozenset({"td", "th"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.chars = 0
        self.images: list[str] = []
        self._skip = 0
        self._in_head = False
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "head":
            self._in_head = True
        elif tag == "title":
            self._title = True
        elif tag == "img":
            a = dict(attrs)
            if a.get("alt"):
                self._add(f" {a['alt']} ")
            if a.get("src"):
                self.images.append(a["src"] or "")
                self._add(f"{_MARK}{len(self.images) - 1}{_MARK}")
        elif tag in self.PARA:
            self._add("\n\n")
        elif tag in self.LINE:
            self._add("\n")
        elif tag in self.CELL:
            self._add(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.SKIP:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "head":
            self._in_head = False
        elif tag == "title":
            self._title = False
            self._add("\n\n")
        elif tag in self.PARA:
            self._add("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip or (self._in_head and not self._title):
            return
        self._add(data)

    def _add(self, text: str) -> None:
        self.parts.append(text)
        self.chars += len(text)


def _tidy(text: str) -> str:
    """Runs of spaces to one, three or more line breaks to a paragraph break."""
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_html(fh, max_chars: int) -> tuple[str, list[str], bool]:
    """(text, image references, cut short) of an open HTML file, reading at most ``MARKUP_PER_CHAR`` markup
    characters per text character of ``max_chars``, and stopping once ``max_chars`` of text are in."""
    parser = _HtmlText()
    budget = max_chars * MARKUP_PER_CHAR
    cut = False
    while True:
        block = fh.read(min(1 << 16, budget)).replace(_MARK, " ")
        if not block:
            break
        budget -= len(block)
        parser.feed(block)
        if parser.chars > max_chars or budget <= 0:
            cut = bool(fh.read(1))
            break
    parser.close()
    return _tidy("".join(parser.parts)), parser.images, cut


_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*[^)\s]+(?:\s+\"[^\"\n]*\")?\s*\)")
_HTML_IMG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']?([^\"'\s>]+)[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][^>\n]{0,500}>")


def extract_markdown(text: str) -> tuple[str, list[str]]:
    """(text, image references) of Markdown: images become their alt text, links their text, inline tags go."""
    images: list[str] = []

    def md_image(m: re.Match[str]) -> str:  # ![alt](src "title")
        images.append(m.group(2))
        return f" {m.group(1)} {_MARK}{len(images) - 1}{_MARK} "

    def tag_image(m: re.Match[str]) -> str:  # <img src="…">
        images.append(m.group(1))
        return f" {_MARK}{len(images) - 1}{_MARK} "

    text = _MD_IMAGE.sub(md_image, text)
    text = _HTML_IMG.sub(tag_image, text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _TAG.sub(" ", text)
    return _tidy(html.unescape(text)), images


def split_pages(text: str, size: int) -> list[str]:
    """``text`` in pages of at most ``size`` characters: paragraphs packed from the start, a paragraph longer
    than a page cut at its last space before the limit (or at the limit)."""
    pages: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        while len(para) > size:
            cut = para.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            head, para = para[:cut].rstrip(), para[cut:].lstrip()
            if current:
                pages.append(current)
                current = ""
            pages.append(head)
        if not para:
            continue
        if current and len(current) + 2 + len(para) > size:
            pages.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        pages.append(current)
    return pages


def _is_image(path: Path) -> bool:
    return Head.read(path).is_image


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


class TextDocumentReader(DocumentReader):
    """An HTML, Markdown or plain-text file as text pages (module docstring)."""

    def __init__(self, path: str | Path, limits: Limits | None, fmt: str, context: OpenContext | None = None) -> None:
        super().__init__(path, limits)
        self.format = fmt
        context = context or OpenContext()
        size = self.limits.max_text_page_chars
        cap = self.limits.max_pages * size
        with self.path.open("rb") as fh:
            if b"\x00" in fh.read(8192):
                raise DocumentError(self.file, f"not a {fmt} file: it holds binary data (NUL bytes)")
        with self.path.open(encoding="utf-8", errors="replace", newline="") as fh:
            if fmt == "html":
                text, refs, cut = extract_html(fh, cap)
            else:
                raw = fh.read(cap + size).replace(_MARK, " ")
                cut = bool(fh.read(1)) or len(raw) > cap
                text, refs = extract_markdown(raw) if fmt == "markdown" else (_tidy(raw.replace(_MARK, " ")), [])
        pages = split_pages(text, size)
        if len(pages) > self.limits.max_pages or cut:
            pages = pages[: self.limits.max_pages]
            msg = f"longer than max_pages ({self.limits.max_pages}) pages of {size} characters: the rest is not read"
            self.warnings.append(msg)
        self._images = self._local_images(refs, context)
        self._pages = pages
        self.n_pages = len(pages)
        if not any(p.strip() for p in pages):
            raise DocumentError(self.file, f"the {fmt} file has no text")

    def _local_images(self, refs: list[str], context: OpenContext) -> dict[int, Path]:
        """Image references that are local files inside a root (by index into ``refs``), at most
        ``MAX_LINKED_IMAGES``; the others are dropped with a warning saying how many and why."""
        roots = [Path(r).resolve() for r in context.roots] or [self.path.parent.resolve()]
        roots = [r for r in roots if _inside(self.path.resolve(), [r])] or [self.path.parent.resolve()]
        out: dict[int, Path] = {}
        remote = outside = other = 0
        for i, ref in enumerate(refs):
            ref = html.unescape(ref.strip())
            if _REMOTE.match(ref):
                remote += 1
                continue
            target = (self.path.parent / unquote(urlsplit(ref).path)).resolve()
            if not _inside(target, roots):
                outside += 1
            elif len(out) >= MAX_LINKED_IMAGES or not target.is_file() or not _is_image(target):
                other += 1
            else:
                out[i] = target
        for n, why in (
            (remote, "remote (never fetched)"),
            (outside, "outside the folder being indexed"),
            (other, f"missing, not images, or past the first {MAX_LINKED_IMAGES}"),
        ):
            if n:
                self.warnings.append(f"{n} image reference(s) left out: {why}")
        return out

    def close(self) -> None:
        self._pages = []

    def page(self, number: int) -> Page:
        if not 1 <= number <= self.n_pages:
            raise DocumentError(self.file, f"no page {number} (the document has {self.n_pages})")
        raw = self._pages[number - 1]
        images = [str(self._images[int(i)]) for i in _MARKER.findall(raw) if int(i) in self._images]
        text = _tidy(_MARKER.sub(" ", raw))
        signals = PageSignals(
            width_pt=PAGE_W,
            height_pt=PAGE_H,
            n_chars=sum(1 for c in text if not c.isspace()),
            n_words=len(text.split()),
            has_text_layer=True,
            source="text",
            content_coverage=1.0 if text else 0.0,
        )
        limits = self.limits

        def renderer(dpi: float, _text: str = text) -> Image.Image:
            return _draw(_text, dpi, limits)

        return Page(
            file=self.file,
            number=number,
            width_pt=PAGE_W,
            height_pt=PAGE_H,
            text=text,
            spans=[],
            signals=signals,
            linked_images=list(dict.fromkeys(images)),
            _renderer=renderer,
        )


def _draw(text: str, dpi: float, limits: Limits) -> Image.Image:
    """The page's text drawn on white (thumbnails, ``docrag show``): lines wrapped at 90 characters."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    scale = dpi / 72.0
    w, h = round(PAGE_W * scale), round(PAGE_H * scale)
    if w * h > limits.max_render_pixels:
        f = (limits.max_render_pixels / (w * h)) ** 0.5
        w, h, scale = max(1, int(w * f)), max(1, int(h * f)), scale * f
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    size = max(6, round(10 * scale))
    font = ImageFont.load_default(size=size)
    y = 40 * scale
    for para in text.split("\n"):
        for line in textwrap.wrap(para, 90) or [""]:
            if y > h - 40 * scale:
                return img
            draw.text((40 * scale, y), line, fill="black", font=font)
            y += size * 1.3
    return img
