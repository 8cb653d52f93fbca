"""Text chunks for the text leg: each page's element texts packed into the embedder's window.

Page-aware (a chunk never spans two pages), whole elements where they fit, long elements cut into overlapping
token windows, and a contextual header (the page's figure and table captions) embedded in front of each chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .embedders import Embedder

__all__ = ["CHUNK_TOKENS", "Chunk", "chunk_page_texts"]

CHUNK_TOKENS = 512  # the default chunk: the model's window, up to this (a long-context model gets passages)


@dataclass(frozen=True, slots=True)
class Chunk:
    page: int
    index: int  # position on its page
    text: str  # the chunk's own text (stored, shown as the snippet)
    n_tokens: int  # tokens embedded: context and text
    context: str = ""  # page context embedded in front of the text (its figure/table captions), not stored

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the context header, then the chunk."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def _cut(text: str, embedder: Embedder, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` tokens, and its token count."""
    offsets = embedder.tokenize_offsets(text)
    if len(offsets) <= limit:
        return text, len(offsets)
    return text[: offsets[limit - 1][1]], limit


def chunk_page_texts(
    pages: Sequence[tuple[int, Sequence[str]]],
    embedder: Embedder,
    max_tokens: int | None = None,
    overlap: int = 32,
    contexts: Mapping[int, Sequence[str]] | None = None,
) -> list[Chunk]:
    """Pack each page's element texts into chunks of at most ``max_tokens`` tokens (prefix included; default:
    the embedder's window, at most ``CHUNK_TOKENS``).

    Page-aware: a chunk never spans two pages. Elements are kept whole where they fit; an element longer
    than the limit is cut into token windows that overlap by ``overlap`` tokens.

    ``contexts`` maps a page to short texts that situate every chunk of that page (its figure and table
    captions): each chunk of the page is embedded with them in front, a contextual chunk header. The header
    takes at most half of the token budget; the chunks are sized for what remains.
    """
    window = max_tokens or min(embedder.max_tokens, CHUNK_TOKENS)
    limit = window - embedder.count_tokens(embedder.document_prefix) - 2  # CLS/SEP
    if limit < 8:
        raise ValueError(f"max_tokens leaves only {limit} tokens per chunk")
    out: list[Chunk] = []
    for page, texts in pages:
        header = " ".join(" ".join(c.split()) for c in (contexts or {}).get(page, ()) if c.strip())
        header, n_header = _cut(header, embedder, limit // 2) if header else ("", 0)
        room = limit - (n_header + 1 if header else 0)
        step_overlap = min(overlap, room // 2)
        parts: list[tuple[str, int]] = []
        for text in texts:
            text = " ".join(text.split())
            if not text:
                continue
            offsets = embedder.tokenize_offsets(text)
            if len(offsets) <= room:
                parts.append((text, len(offsets)))
                continue
            step = room - step_overlap
            for start in range(0, len(offsets), step):
                window = offsets[start : start + room]
                parts.append((text[window[0][0] : window[-1][1]], len(window)))
                if start + room >= len(offsets):
                    break
        bodies: list[tuple[str, int]] = []
        buf: list[str] = []
        n_buf = 0
        for text, n in parts:
            if buf and n_buf + n + 1 > room:
                bodies.append(("\n".join(buf), n_buf))
                buf, n_buf = [], 0
            buf.append(text)
            n_buf += n + (1 if n_buf else 0)
        if buf:
            bodies.append(("\n".join(buf), n_buf))
        # Every chunk gets the header, the one holding a caption too: where chunk boundaries fall must not
        # decide whether a page's chunks know what its figures show.
        out.extend(
            Chunk(page, index, body, n + (n_header + 1 if header else 0), header)
            for index, (body, n) in enumerate(bodies)
        )
    return out
