"""Query time: embed the query for each leg, collect page candidates, fuse, explain.

Legs: ``visual`` (MaxSim over ColPali-family page vectors), ``text`` (cosine over chunk vectors; a page
scores its best chunk), ``image`` (cosine over figure/image vectors), ``bm25`` (full-text over page text).
Only documents whose indexing finished (status ``ready``) are searched; ``where`` is SQL over the
``documents`` table (columns doc_id, path, size, mtime, n_pages, metadata, indexed_at), applied first.

A ``Searcher`` is built from explicit parts: the store, the search settings and the embedders (as
zero-argument callables, so a model loads only when a leg needs it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docrag.indexes.store import StoreError
from docrag.parsers.text import normalise

from .fusion import fuse

if TYPE_CHECKING:
    from PIL import Image

    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store
    from docrag.indexes.unified import UnifiedEmbedder

    from .options import SearchConfig

__all__ = ["LEGS", "Hit", "Searcher"]

log = logging.getLogger(__name__)

LEGS = ("visual", "text", "image", "bm25")


@dataclass(slots=True)
class Hit:
    """One page in a fused ranking, with every leg's raw score and rank behind it (a plain record: the
    page image comes from ``Index.page_image(hit)``)."""

    file: str
    doc_id: str
    page: int  # 1-based
    score: float  # fused
    route: str
    label: str
    legs: dict[str, dict[str, Any]] = field(default_factory=dict)  # leg -> {"score": raw, "rank": r, ...}
    snippet: str = ""

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


def _snippet(text: str, query: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    words = [w.lower() for w in query.split() if len(w) > 3]
    low = flat.lower()
    pos = min((low.find(w) for w in words if low.find(w) >= 0), default=0)
    start = max(0, pos - width // 3)
    return ("…" if start else "") + flat[start : start + width] + "…"


class Searcher:
    """Fused page search over ``store``. ``unified`` and ``visual`` return the embedders when called (None
    for ``visual``: no visual leg)."""

    def __init__(
        self,
        store: Store,
        settings: SearchConfig,
        unified: Callable[[], UnifiedEmbedder],
        visual: Callable[[], MultiVectorEmbedder] | None = None,
    ) -> None:
        self.store, self.settings = store, settings
        self._unified, self._visual = unified, visual

    def present(self) -> dict[str, bool]:
        """Which legs have something stored to search."""
        n = self.store.row_counts()
        return {
            "visual": self._visual is not None and n["visual"] > 0,
            "text": n["chunks"] > 0,
            "image": n["images"] > 0,
            "bm25": n["pages"] > 0,
        }

    def allowed_documents(self, where: str | None) -> dict[str, str]:
        """doc_id -> path of searchable documents (status ready, and matching ``where``)."""
        cond = "status = 'ready'" + (f" AND ({where})" if where else "")
        try:
            rows = self.store.documents(where=cond, columns=["doc_id", "path"])
        except StoreError:
            raise
        except Exception as exc:
            raise ValueError(f"bad where filter {where!r}: {exc}") from None
        return {r["doc_id"]: r["path"] for r in rows}

    def search(
        self,
        query: str | Image.Image,
        k: int = 10,
        where: str | None = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """The fused top ``k`` pages for a text (or image) query."""
        return self.search_many([query], k, where, legs, fusion)[0]

    def search_many(
        self,
        queries: Sequence[str | Image.Image],
        k: int = 10,
        where: str | None = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
    ) -> list[list[Hit]]:
        cfg, store = self.settings, self.store
        method = fusion or cfg.fusion
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        wanted = list(legs or LEGS)
        for leg in wanted:
            if leg not in LEGS:
                raise ValueError(f"unknown leg {leg!r}: choose from {', '.join(LEGS)}")
        allowed = self.allowed_documents(where)
        if not allowed:
            return [[] for _ in queries]
        # Restrict the legs only when some documents are excluded (a where filter, or unfinished documents).
        subset = set(allowed) if len(allowed) < store.row_counts()["documents"] else None
        n = max(cfg.candidates, k)
        present = self.present()
        has_visual = "visual" in wanted and present["visual"]
        has_text = "text" in wanted and present["text"]
        has_image = "image" in wanted and present["image"] and "image" in self._unified().modalities
        results = []
        for query in queries:
            rankings: dict[str, list[Any]] = {}
            n_tokens = 1
            is_text = isinstance(query, str)
            if is_text:
                query = normalise(query)  # the same folding as the indexed text (ligatures, full-width forms)
                if has_visual:
                    qv = self._visual().embed_queries([query])[0]
                    n_tokens = len(qv)
                    rankings["visual"] = store.search_visual(qv, n, subset)[0]
                if has_text or has_image:
                    uq = self._unified().embed_queries([query])[0]
                    if has_text:
                        rankings["text"] = store.search_text(uq, n, allowed=subset)
                    if has_image:
                        rankings["image"] = store.search_images(uq, n, allowed=subset)
                if "bm25" in wanted:
                    rankings["bm25"] = store.search_bm25(query, n, allowed=subset)
            else:
                unified = self._unified()
                if "image" not in unified.modalities:
                    raise ValueError(
                        f"image queries need an image-capable unified embedder; {unified.type!r} embeds text only"
                    )
                if "visual" in wanted and legs:
                    log.info("the visual leg takes text queries only (ColPali-family models embed text queries)")
                iq = unified.embed_images([query])[0]
                if has_image:
                    rankings["image"] = store.search_images(iq, n, allowed=subset)
                if has_text and legs is not None:  # cross-modal image → text chunks only when asked for
                    rankings["text"] = store.search_text(iq, n, allowed=subset)
            fused = fuse(rankings, method, cfg.weights, cfg.rrf_k, n_tokens)[:k]
            results.append(self._hydrate(fused, allowed, query if is_text else ""))
        return results

    def _hydrate(self, fused: list[Any], paths: dict[str, str], query: str) -> list[Hit]:
        if not fused:
            return []
        rows = self.store.page_rows(
            {f.doc_id for f in fused}, columns=["doc_id", "page", "route", "label", "text"]
        )
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
                )
            )
        return hits
