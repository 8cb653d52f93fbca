"""Query time: each leg embeds the query its own way and collects page candidates; fuse, explain.

Legs (``pipeline.legs``, a registry): ``visual`` (MaxSim over ColPali-family page vectors; text queries),
``text`` (cosine over chunk vectors, a page scores its best chunk; image queries only when named),
``image`` (cosine over figure/image vectors; text and image queries with an image–text model),
``bm25`` (full-text over page text; text queries). Each ranking carries its leg's score scale for fusion.
Only documents whose indexing finished (status ``ready``) are searched; ``where`` is SQL over the
``documents`` table (columns doc_id, path, size, mtime, n_pages, metadata, indexed_at), a key filter on the
metadata given to ``add`` (``{"project": "demo"}``: ``indexes.metadata``), or a list of both, applied first.

A hit carries its page's text, the document's metadata, the chunk that matched (loaded for all the hits of a
search at once, on first use) and a confidence in [0, 1] that can be thresholded (``min_score``;
``pipeline.confidence``).

A ``Searcher`` is built from explicit parts: the store, the search settings and the legs
(``build_legs(LegParts(...))``: the embedders stay zero-argument callables, so a model loads only when a
leg needs it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docrag.parsers.text import normalise

from .confidence import confidence, meaning, query_terms, term_coverage
from .fusion import Fused, Ranking, fuse
from .legs import QueryInput, as_leg_names, check_leg_names, leg_names

if TYPE_CHECKING:
    from PIL import Image

    from .legs import Leg
    from .options import SearchConfig
    from .regions import PageRegions
    from .stores import SearchStore

__all__ = ["Chunk", "Hit", "Searcher", "Where"]

log = logging.getLogger(__name__)

# A filter on documents: SQL over the documents table, a key filter on their metadata, or a list of both.
Where = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]] | None
Box = tuple[float, float, float, float]
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Chunk:
    """The passage of a hit's page that matched: ``leg`` "text" (the text leg's best chunk on the page) or
    "bm25" (of the page's chunks, the one holding most of the query's terms, when the text leg did not return
    the page). ``boxes``: where it is on the page, ``(x0, y0, x1, y1)`` in page fractions, top-left origin
    ([] when its words were not placed, or a database indexed before positions were stored)."""

    text: str
    boxes: list[Box]
    leg: str
    index: int | None = None  # its number among the page's chunks

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "boxes": [[round(v, 4) for v in b] for b in self.boxes],
            "leg": self.leg,
            "index": self.index,
        }


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
    text: str = field(default="", repr=False)  # the page's extracted text (text layer or OCR), as indexed
    metadata: dict[str, Any] = field(default_factory=dict)  # what was given to ``add(metadata=...)`` / --meta
    confidence: float | None = None  # in [0, 1], the same scale for every query (``pipeline.confidence``)
    # Set by the Searcher: loads the matching chunk of this hit (and of the other hits of its search).
    fetch_chunk: Callable[[], Chunk | None] | None = field(default=None, repr=False, compare=False)
    _chunk: Any = field(default=_UNSET, repr=False, compare=False)
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

    @property
    def chunk(self) -> Chunk | None:
        """The chunk of the page that matched the query (``Chunk``: its text and boxes), or None when neither
        the text leg nor BM25 matched the page. Read from the store on first use, for every hit of the search."""
        if self._chunk is _UNSET:
            self._chunk = self.fetch_chunk() if self.fetch_chunk is not None else None
        return self._chunk

    def __repr__(self) -> str:  # short: no doc_id, no chunk text (``to_dict()`` has everything)
        legs = ", ".join(f"{leg} #{v.get('rank')}" for leg, v in self.legs.items())
        name = self.file.replace("\\", "/").rsplit("/", 1)[-1]
        conf = "" if self.confidence is None else f", confidence={self.confidence:.2f}"
        return f"Hit({name!r}, page={self.page}, score={self.score:.4f}{conf}, {self.route}/{self.label}, [{legs}])"

    def to_dict(self, regions: bool = False) -> dict[str, Any]:
        chunk = self.chunk
        return {
            "file": self.file,
            "doc_id": self.doc_id,
            "page": self.page,
            "score": round(self.score, 6),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "route": self.route,
            "label": self.label,
            "legs": {k: {kk: vv for kk, vv in v.items() if kk != "detail"} for k, v in self.legs.items()},
            "snippet": self.snippet,
            "metadata": self.metadata,
            "chunk": None if chunk is None else chunk.to_dict(),
            "text": self.text,
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
        where: Where = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The fused top ``k`` pages for a text (or image) query; ``min_score``: only those of them whose
        confidence is at least this."""
        return self.search_many([query], k, where, legs, fusion, min_score)[0]

    def search_many(
        self,
        queries: Sequence[str | Image.Image],
        k: int = 10,
        where: Where = None,
        legs: Sequence[str] | None = None,
        fusion: str | None = None,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        cfg = self.settings
        method = fusion or cfg.fusion
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score is a confidence between 0 and 1 (got {min_score})")
        if min_score is not None and any(not isinstance(q, str) for q in queries):
            raise ValueError("min_score needs text queries: an image query's hits have no confidence")
        for q in queries:
            if isinstance(q, str) and not q.strip():
                raise ValueError("the query is empty: give the words to search for")
            if not isinstance(q, str):
                from PIL import Image as PILImage

                if not isinstance(q, PILImage.Image):
                    raise TypeError(f"a query is a str or a PIL image, not {type(q).__name__}")
        legs = self._check_legs(legs)
        sql, keys = split_where(where)
        self.store.refresh()  # one set of table versions for the whole call
        allowed = self.store.documents.ready(sql, keys or None)
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
            hits = self._hits(fused, allowed, query, plans[query.kind], rankings)
            if min_score is not None:
                hits = [h for h in hits if h.confidence is not None and h.confidence >= min_score]
            results.append(hits)
        return results

    def explain(
        self, query: str | Image.Image, doc_id: str, page: int, legs: Sequence[str] | None = None
    ) -> Hit | None:
        """The hit page ``page`` of document ``doc_id`` is for ``query``: every leg searched within that document
        only (ranks are within it), fused; None when no leg scored the page or the document is not ready."""
        legs = self._check_legs(legs)
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
        hits = self._hits(fused, ready, q, chosen, rankings)
        return hits[0] if hits else None

    def _check_legs(self, legs: Sequence[str] | str | None) -> list[str] | None:
        """The legs asked for, as names; a ValueError for an unknown one, or one this database has no model for."""
        legs = as_leg_names(legs)
        have = [leg.name for leg in self.legs]
        check_leg_names(legs, list(dict.fromkeys([*leg_names(), *have])))
        missing = [name for name in legs or () if name not in have]
        if missing:
            raise ValueError(
                f"this database has no {' or '.join(missing)} leg (no model for it in its profile): "
                f"search with {', '.join(have)}"
            )
        return legs

    def _hits(
        self,
        fused: list[Fused],
        paths: dict[str, str],
        query: QueryInput,
        legs: list[Leg],
        rankings: Mapping[str, Ranking],
    ) -> list[Hit]:
        hits = self._hydrate(fused, paths, query.text)
        if query.kind == "text" and hits:
            baseline = next((getattr(leg, "baseline", None) for leg in legs if leg.name == "text"), None)
            null = baseline(query) if baseline is not None and "text" in rankings else []
            terms = query_terms(query.text)
            for hit in hits:
                cosine = hit.legs.get("text", {}).get("score")
                hit.confidence = confidence(meaning(cosine, null), term_coverage(terms, hit.text))
        fetch = _chunk_loader(self.store, query.text, hits)
        for hit in hits:
            hit.explain = _explainer(legs, query, hit)
            hit.fetch_chunk = fetch(hit)
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
        ids = {f.doc_id for f in fused}
        rows = self.store.pages.rows(ids, columns=["doc_id", "page", "route", "label", "text"])
        pages = {(r["doc_id"], r["page"]): r for r in rows}
        metadata = self.store.documents.metadata(ids)
        hits = []
        for f in fused:
            row = pages.get((f.doc_id, f.page), {})
            chunk = f.legs.get("text", {}).get("detail") or ""
            text = row.get("text", "") or ""
            hits.append(
                Hit(
                    paths.get(f.doc_id, ""),
                    f.doc_id,
                    f.page,
                    f.score,
                    row.get("route", ""),
                    row.get("label", ""),
                    f.legs,
                    _snippet(chunk or text, query),
                    text=text,
                    metadata=dict(metadata.get(f.doc_id) or {}),
                )
            )
        return hits


def split_where(where: Where) -> tuple[str | None, dict[str, Any]]:
    """A ``where`` as (SQL over the documents table, key filter on their metadata): a string is SQL, a mapping a
    key filter, a list any of both (all must hold)."""
    parts = [where] if isinstance(where, (str, Mapping)) or where is None else list(where)
    sql: list[str] = []
    keys: dict[str, Any] = {}
    for part in parts:
        if part is None:
            continue
        if isinstance(part, str):
            if part.strip():
                sql.append(part)
        elif isinstance(part, Mapping):
            for key, value in part.items():
                if key in keys:
                    raise ValueError(f"metadata filter {key!r} given twice: give a list of values for any of them")
                keys[str(key)] = value
        else:
            raise ValueError(f"where: give SQL (a string), a metadata filter (a dict) or a list of them, not {part!r}")
    return (" AND ".join(f"({s})" for s in sql) if len(sql) > 1 else (sql[0] if sql else None)), keys


def _chunk_loader(store: SearchStore, query: str, hits: list[Hit]) -> Callable[[Hit], Callable[[], Chunk | None]]:
    """Per hit, a loader of its matching chunk; the first call reads the chunks of every hit's page at once."""
    found: dict[tuple[str, int], Chunk | None] = {}
    loaded = False

    def load() -> None:
        nonlocal loaded
        keys = [(h.doc_id, h.page) for h in hits if {"text", "bm25"} & set(h.legs)]
        by_page: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in store.chunks.page_chunks(keys) if keys else []:
            by_page.setdefault((r["doc_id"], r["page"]), []).append(r)
        terms = query_terms(query)
        for h in hits:
            found[(h.doc_id, h.page)] = _matching_chunk(h, by_page.get((h.doc_id, h.page), []), terms)
        loaded = True

    def fetch(hit: Hit) -> Callable[[], Chunk | None]:
        def get() -> Chunk | None:
            if not loaded:
                load()
            return found.get((hit.doc_id, hit.page))

        return get

    return fetch


def _matching_chunk(hit: Hit, rows: list[dict[str, Any]], terms: set[str]) -> Chunk | None:
    """The text leg's chunk (its ``detail``), else, for a BM25 match, the page's chunk with most query terms."""
    rows = sorted(rows, key=lambda r: r.get("chunk") or 0)
    detail = str(hit.legs.get("text", {}).get("detail") or "")
    if detail:
        row = next((r for r in rows if r.get("text") == detail), {})
        return Chunk(detail, _boxes(row.get("boxes")), "text", row.get("chunk"))
    if "bm25" not in hit.legs or not rows:
        return None
    best = max(rows, key=lambda r: term_coverage(terms, r.get("text") or "") or 0.0)  # the first of the best
    return Chunk(best.get("text") or "", _boxes(best.get("boxes")), "bm25", best.get("chunk"))


def _boxes(stored: Any) -> list[Box]:
    return [tuple(float(v) for v in b) for b in stored or [] if len(b) == 4]  # type: ignore[misc]


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
