"""Query time: embed the query for each leg, collect page candidates, fuse, explain.

Legs: ``visual`` (MaxSim over ColPali-family page vectors), ``text`` (cosine over chunk vectors; a page
scores its best chunk), ``image`` (cosine over figure/image vectors), ``bm25`` (full-text over page text).
Only documents whose indexing finished (status ``ready``) are searched; ``where`` is SQL over the
``documents`` table (columns doc_id, path, size, mtime, n_pages, metadata, indexed_at), applied first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docrag.parsers.text import normalise

from .fusion import fuse

if TYPE_CHECKING:
    from PIL import Image

    from docrag.api import Index

__all__ = ["LEGS", "Hit", "search"]

log = logging.getLogger(__name__)

LEGS = ("visual", "text", "image", "bm25")


@dataclass(slots=True)
class Hit:
    """One page in a fused ranking, with every leg's raw score and rank behind it."""

    file: str
    doc_id: str
    page: int  # 1-based
    score: float  # fused
    route: str
    label: str
    legs: dict[str, dict[str, Any]] = field(default_factory=dict)  # leg -> {"score": raw, "rank": r, ...}
    snippet: str = ""
    _index: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "doc_id": self.doc_id,
            "page": self.page,
            "score": round(self.score, 6),
            "route": self.route,
            "label": self.label,
            "legs": {k: {kk: vv for kk, vv in v.items() if kk != "detail"} for k, v in self.legs.items()},
            "snippet": self.snippet,
        }

    def image(self, dpi: float = 100) -> Image.Image:
        """Render the hit's page from its file (or, when the file is gone, the stored thumbnail)."""
        from docrag.parsers import DocumentError, open_document

        try:
            with open_document(self.file) as doc:
                return doc.page(self.page).render(dpi)
        except DocumentError:
            if self._index is None:
                raise
            return self._index.thumbnail(self.doc_id, self.page)


def _snippet(text: str, query: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    words = [w.lower() for w in query.split() if len(w) > 3]
    low = flat.lower()
    pos = min((low.find(w) for w in words if low.find(w) >= 0), default=0)
    start = max(0, pos - width // 3)
    return ("…" if start else "") + flat[start : start + width] + "…"


def allowed_documents(index: Index, where: str | None) -> dict[str, str]:
    """doc_id -> path of searchable documents (status ready, and matching ``where``)."""
    cond = "status = 'ready'" + (f" AND ({where})" if where else "")
    try:
        rows = index.store.rows("documents", where=cond, columns=["doc_id", "path"])
    except Exception as exc:
        raise ValueError(f"bad where filter {where!r}: {exc}") from None
    return {r["doc_id"]: r["path"] for r in rows}


def search(
    index: Index,
    query: str | Image.Image,
    k: int = 10,
    where: str | None = None,
    legs: Sequence[str] | None = None,
    fusion: str | None = None,
) -> list[Hit]:
    """The fused top ``k`` pages for a text (or image) query."""
    return search_many(index, [query], k, where, legs, fusion)[0]


def search_many(
    index: Index,
    queries: Sequence[str | Image.Image],
    k: int = 10,
    where: str | None = None,
    legs: Sequence[str] | None = None,
    fusion: str | None = None,
) -> list[list[Hit]]:
    cfg = index.settings.search
    method = fusion or cfg.fusion
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    wanted = list(legs or LEGS)
    for leg in wanted:
        if leg not in LEGS:
            raise ValueError(f"unknown leg {leg!r}: choose from {', '.join(LEGS)}")
    store = index.store
    allowed = allowed_documents(index, where)
    if not allowed:
        return [[] for _ in queries]
    # Restrict the legs only when some documents are excluded (a where filter, or unfinished documents).
    subset = set(allowed) if len(allowed) < store.count("documents") else None
    n = max(cfg.candidates, k)
    has_visual = "visual" in wanted and index.settings.visual is not None and store.count("visual") > 0
    has_text = "text" in wanted and store.count("chunks") > 0
    has_image = "image" in wanted and store.count("images") > 0 and "image" in index.unified_embedder.modalities
    results = []
    for query in queries:
        rankings: dict[str, list[Any]] = {}
        n_tokens = 1
        is_text = isinstance(query, str)
        if is_text:
            query = normalise(query)  # the same folding as the indexed text (ligatures, full-width forms)
            if has_visual:
                qv = index.visual_embedder.embed_queries([query])[0]
                n_tokens = len(qv)
                rankings["visual"] = store.search_visual(qv, n, subset)[0]
            if has_text or has_image:
                uq = index.unified_embedder.embed_queries([query])[0]
                if has_text:
                    rankings["text"] = store.search_text(uq, n, allowed=subset)
                if has_image:
                    rankings["image"] = store.search_images(uq, n, allowed=subset)
            if "bm25" in wanted:
                rankings["bm25"] = store.search_bm25(query, n, allowed=subset)
        else:
            if "image" not in index.unified_embedder.modalities:
                raise ValueError(
                    f"image queries need an image-capable unified embedder; {index.unified_embedder.type!r} "
                    "embeds text only"
                )
            if "visual" in wanted and legs:
                log.info("the visual leg takes text queries only (ColPali-family models embed text queries)")
            iq = index.unified_embedder.embed_images([query])[0]
            if has_image:
                rankings["image"] = store.search_images(iq, n, allowed=subset)
            if has_text and legs is not None:  # cross-modal image → text chunks only when asked for
                rankings["text"] = store.search_text(iq, n, allowed=subset)
        fused = fuse(rankings, method, cfg.weights, cfg.rrf_k, n_tokens)[:k]
        results.append(_hydrate(index, fused, allowed, query if is_text else ""))
    return results


def _hydrate(index: Index, fused: list[Any], paths: dict[str, str], query: str) -> list[Hit]:
    if not fused:
        return []
    store = index.store
    docs = sorted({f.doc_id for f in fused})
    in_docs = ", ".join("'" + d.replace("'", "''") + "'" for d in docs)
    rows = store.rows("pages", where=f"doc_id IN ({in_docs})", columns=["doc_id", "page", "route", "label", "text"])
    pages = {(r["doc_id"], r["page"]): r for r in rows}
    hits = []
    for f in fused:
        row = pages.get((f.doc_id, f.page), {})
        chunk = f.legs.get("text", {}).get("detail") or ""
        snippet = _snippet(chunk or row.get("text", "") or "", query)
        hits.append(
            Hit(
                paths.get(f.doc_id, ""),
                f.doc_id,
                f.page,
                f.score,
                row.get("route", ""),
                row.get("label", ""),
                f.legs,
                snippet,
                index,
            )
        )
    return hits
