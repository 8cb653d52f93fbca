"""Query time: each leg embeds the query its own way and collects page candidates; fuse, explain.

Legs (``pipeline.legs``, a registry): ``visual`` (MaxSim over ColPali-family page vectors; text queries),
``text`` (cosine over chunk vectors, a page scores its best chunk; image queries only when named),
``image`` (cosine over figure/image vectors; text and image queries with an image–text model),
``bm25`` (full-text over page text; text queries). Each ranking carries its leg's score scale for fusion.
Only documents whose indexing finished (status ``ready``) are searched; ``where`` is SQL over the
``documents`` table (columns doc_id, path, size, mtime, n_pages, metadata, indexed_at), applied first.

A ``Searcher`` is built from explicit parts: the store, the search settings and the legs
(``build_legs(LegParts(...))``: the embedders stay zero-argument callables, so a model loads only when a
leg needs it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docrag.parsers.text import normalise

from .fusion import Fused, fuse
from .legs import QueryInput, check_leg_names, leg_names

if TYPE_CHECKING:
    from PIL import Image

    from .legs import Leg
    from .options import SearchConfig
    from .regions import PageRegions
    from .stores import SearchStore

__all__ = ["Hit", "Searcher"]

log = logging.getLogger(__name__)


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
    # Set by the Searcher: computes this hit's answer regions (see ``regions``).
    explain: Callable[[], PageRegions] | None = field(default=None, repr=False, compare=False)
    _regions: PageRegions | None = field(default=None, repr=False, compare=False)
    # Set by ``docrag.api``: renders the page at a dpi (from its file, else the stored thumbnail).
    render: Callable[[float], Image.Image] | None = field(default=None, repr=False, compare=False)

    def image(self, dpi: float = 100, regions: bool = False, legs: Sequence[str] | None = None) -> Image.Image:
        """The page as an image; ``regions=True`` draws every leg's regions on it (``legs``: only those)."""
        if self.render is None:
            raise RuntimeError("this hit cannot render its page: use Index.page_image(hit)")
        page = self.render(dpi)
        if not regions:
            return page
        from .regions import draw_regions

        return draw_regions(page, self.regions(), legs)

    def regions(self) -> PageRegions:
        """Where on the page each leg that scored it found its match (``pipeline.regions``): boxes in page
        fractions with weights, the visual leg's patch heat, and per leg why nothing is shown where nothing
        is. Computed on first call (the visual leg reads the page's vectors)."""
        from .regions import PageRegions

        if self._regions is None:
            self._regions = self.explain() if self.explain is not None else PageRegions()
        return self._regions

    def __repr__(self) -> str:  # short: no doc_id, no chunk text (``to_dict()`` has everything)
        legs = ", ".join(f"{leg} #{v.get('rank')}" for leg, v in self.legs.items())
        name = self.file.replace("\\", "/").rsplit("/", 1)[-1]
        return f"Hit({name!r}, page={self.page}, score={self.score:.4f}, {self.route}/{self.label}, [{legs}])"

    def to_dict(self, regions: bool = False) -> dict[str, Any]:
        return {
            "file": self.file,
            "doc_id": self.doc_id,
            "page": self.page,
            "score": round(self.score, 6),
            "route": self.route,
            "label": self.label,
            "legs": {k: {kk: vv for kk, vv in v.items() if kk != "detail"} for k, v in self.legs.items()},
            "snippet": self.snippet,
        } | ({"regions": self.regions().to_dict()} if regions else {})


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
    """Fused page search over ``store`` with ``legs`` (searched in their order)."""

    def __init__(self, store: SearchStore, settings: SearchConfig, legs: Sequence[Leg]) -> None:
        self.store, self.settings, self.legs = store, settings, list(legs)

    def present(self) -> dict[str, bool]:
        """Which legs have something stored to search (every registered leg; False for one not built)."""
        built = {leg.name: leg.available() for leg in self.legs}
        return {name: built.get(name, False) for name in leg_names()} | built

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
        cfg = self.settings
        method = fusion or cfg.fusion
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        check_leg_names(legs, list(dict.fromkeys([*leg_names(), *(leg.name for leg in self.legs)])))
        self.store.refresh()  # one set of table versions for the whole call
        allowed = self.store.documents.ready(where)
        if not allowed:
            return [[] for _ in queries]
        # Restrict the legs only when some documents are excluded (a where filter, or unfinished documents).
        subset = set(allowed) if len(allowed) < self.store.documents.count() else None
        n = max(cfg.candidates, k)
        plans: dict[str, list[Leg]] = {}
        results = []
        for raw in queries:
            query = _query(raw)
            if query.kind not in plans:
                plans[query.kind] = self._legs_for(query.kind, legs)
            rankings = {leg.name: leg.search(query, n, subset) for leg in plans[query.kind]}
            fused = fuse(rankings, method, cfg.weights, cfg.rrf_k)[:k]
            results.append(self._hits(fused, allowed, query, plans[query.kind]))
        return results

    def explain(
        self, query: str | Image.Image, doc_id: str, page: int, legs: Sequence[str] | None = None
    ) -> Hit | None:
        """The hit page ``page`` of document ``doc_id`` is for ``query``: every leg searched within that document
        only (ranks are within it), fused; None when no leg scored the page or the document is not ready."""
        check_leg_names(legs, list(dict.fromkeys([*leg_names(), *(leg.name for leg in self.legs)])))
        self.store.refresh()
        ready = self.store.documents.ready()
        if doc_id not in ready:
            return None
        q = _query(query)
        chosen = self._legs_for(q.kind, legs)
        n = max(self.settings.candidates, int(self.store.documents.get(doc_id, ["n_pages"])["n_pages"] or 1))
        rankings = {leg.name: leg.search(q, n, {doc_id}) for leg in chosen}
        fused = [
            f
            for f in fuse(rankings, self.settings.fusion, self.settings.weights, self.settings.rrf_k)
            if f.page == page
        ]
        hits = self._hits(fused, ready, q, chosen)
        return hits[0] if hits else None

    def _hits(self, fused: list[Fused], paths: dict[str, str], query: QueryInput, legs: list[Leg]) -> list[Hit]:
        hits = self._hydrate(fused, paths, query.text)
        for hit in hits:
            hit.explain = _explainer(legs, query, hit)
        return hits

    def _legs_for(self, kind: str, names: Sequence[str] | None) -> list[Leg]:
        """The legs to search for a ``kind`` query: chosen (``names``; None: all), with something stored, and
        taking ``kind`` (by default, or because they are named). No leg at all that takes it is an error."""
        named = set(names or ())
        if not any(kind in leg.accepts or kind in leg.accepts_when_named for leg in self.legs):
            reasons = [r for leg in self.legs if (r := _refusal(leg, kind))]
            raise ValueError(reasons[0] if reasons else f"no leg takes {kind} queries")
        out = []
        for leg in self.legs:
            if (named and leg.name not in named) or not leg.available():
                continue
            if kind in leg.accepts or (leg.name in named and kind in leg.accepts_when_named):
                out.append(leg)
            elif named:
                why = _refusal(leg, kind) or f"it takes {' and '.join(sorted(leg.accepts)) or 'no'} queries"
                log.info("the %s leg does not take %s queries: %s", leg.name, kind, why)
        return out

    def _hydrate(self, fused: list[Fused], paths: dict[str, str], query: str) -> list[Hit]:
        if not fused:
            return []
        rows = self.store.pages.rows({f.doc_id for f in fused}, columns=["doc_id", "page", "route", "label", "text"])
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


def _query(raw: str | Image.Image) -> QueryInput:
    """Text gets the same folding as the indexed text (ligatures, full-width forms)."""
    return QueryInput(normalise(raw) if isinstance(raw, str) else raw)


def _explainer(legs: Sequence[Leg], query: QueryInput, hit: Hit) -> Callable[[], PageRegions]:
    """The regions of ``hit``: each leg that scored it, asked where (legs without ``regions`` are noted)."""

    def explain() -> PageRegions:
        from .regions import PageRegions

        out = PageRegions()
        for leg in legs:
            if leg.name not in hit.legs:
                continue
            find = getattr(leg, "regions", None)  # optional in the protocol
            if find is None:
                out.notes[leg.name] = "this leg does not say where it matched"
                continue
            found = find(query, hit.doc_id, hit.page, str(hit.legs[leg.name].get("detail") or ""))
            out.regions.extend(found.regions)
            out.heat.extend(found.heat)
            out.notes.update(found.notes)
        return out

    return explain


def _refusal(leg: Leg, kind: str) -> str | None:
    refuses = getattr(leg, "refuses", None)  # optional in the protocol
    return refuses(kind) if refuses is not None else None
