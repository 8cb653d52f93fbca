"""Retrievers for RAG frameworks, over ``docrag.open(db)``: ``docrag.integrations.langchain.DocragRetriever``
(a langchain-core ``BaseRetriever``; ``pip install 'docrag[langchain]'``) and
``docrag.integrations.llamaindex.DocragRetriever`` (on llama-index-core's; ``pip install 'docrag[llamaindex]'``).

Both turn a ``Hit`` into the same thing: a text (the page's, or the matching chunk's) and flat metadata
(``hit_metadata``), plus the page as a base64 PNG on request. This module imports neither framework.
"""

from __future__ import annotations

import base64
import importlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from types import ModuleType

    from docrag.api import Index
    from docrag.pipeline.search import Hit

__all__ = ["CONTENTS", "Content", "hit_content", "hit_metadata", "open_target", "page_png_base64", "require"]

Content = Literal["page", "chunk"]
CONTENTS = ("page", "chunk")
# docrag's own keys, set after the document's metadata (``add(metadata=...)``): on a clash, these win.
OWN_KEYS = ("source", "file", "page", "doc_id", "score", "confidence", "route", "label", "snippet", "legs")


def require(module: str, extra: str, package: str) -> ModuleType:
    """Import ``module``, or an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this retriever needs {package} ({module} could not be imported: {exc}); "
            f"install it with: pip install 'docrag[{extra}]'"
        ) from exc


def open_target(index: Index | None, db: str | Path | None, profile: str | None) -> Index:
    """The ``Index`` to search: ``index`` as given, or ``docrag.open(db, profile)``. A missing database raises
    ``docrag.NoDatabaseError`` here, when the retriever is made, not at its first query."""
    if (index is None) == (db is None):
        raise ValueError("give the retriever either index=docrag.open(DB) or db=DB (one of them)")
    if index is None:
        from docrag.api import open_index

        index = open_index(db, profile)
    index.store  # noqa: B018 (opening for reading: NoDatabaseError when nothing is there)
    return index


def check_content(content: str) -> str:
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {content!r}")
    return content


def hit_content(hit: Hit, content: Content = "page") -> str:
    """The text a framework gets for a hit: the page's extracted text (``"page"``), or the chunk that matched
    (``"chunk"``; the page's text when no chunk matched, as for a page only the visual leg found)."""
    if content == "chunk" and hit.chunk is not None:
        return hit.chunk.text
    return hit.text


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """Flat metadata: the document's own (``add(metadata=...)``), then ``source`` and ``file`` (the file's path),
    ``page`` (1-based), ``doc_id``, ``score`` (fused), ``confidence`` (0 to 1), ``route``, ``label``,
    ``snippet`` and ``legs`` ({leg: {"score": raw, "rank": r}}, as in ``hit.to_dict()``)."""
    return dict(hit.metadata) | {
        "source": hit.file,
        "file": hit.file,
        "page": hit.page,
        "doc_id": hit.doc_id,
        "score": hit.score,
        "confidence": hit.confidence,
        "route": hit.route,
        "label": hit.label,
        "snippet": hit.snippet,
        "legs": {leg: {"score": v.get("score"), "rank": v.get("rank")} for leg, v in hit.legs.items()},
    }


def page_png_base64(hit: Hit, dpi: float = 100, regions: bool = False) -> str:
    """The hit's page as a base64-encoded PNG (``regions``: with its answer regions drawn)."""
    buf = io.BytesIO()
    hit.image(dpi, regions=regions).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
