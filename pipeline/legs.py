"""Search legs as parts: each leg embeds a query its own way, searches one kind of stored rows, and says
which scale its scores are on. A leg is registered by name (``register_leg``); ``build_legs`` makes the
registered legs for a store, and the ``Searcher`` loops over them.

Built in, in this order: ``visual`` (MaxSim over ColPali-family page vectors), ``text`` (cosine over chunk
vectors from the text model; a page scores its best chunk), ``image`` (cosine over figure/image vectors from the
image–text model), ``bm25`` (full-text over page text).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .fusion import Ranking, Scale

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from docrag.indexes.embedders import Embedder
    from docrag.indexes.multivector import MultiVectorEmbedder

    from .options import SearchConfig
    from .regions import PageRegions
    from .stores import SearchStore

__all__ = [
    "LEG_TYPES",
    "BM25Leg",
    "ImageLeg",
    "Leg",
    "LegParts",
    "QueryInput",
    "Scale",
    "TextLeg",
    "VisualLeg",
    "build_legs",
    "check_leg_names",
    "leg_names",
    "register_leg",
]


@dataclass(slots=True)
class QueryInput:
    """One query: text (already ``normalise``d) or an image. ``embedding`` memoises vectors by key, so legs
    that share an embedder embed the query once."""

    value: str | Image.Image
    kind: str = field(init=False)  # "text" | "image"
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.kind = "text" if isinstance(self.value, str) else "image"

    @property
    def text(self) -> str:
        """The query text ("" for an image)."""
        return self.value if isinstance(self.value, str) else ""

    def embedding(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


class Leg(Protocol):
    """One way of finding pages. ``accepts``: the query kinds it takes; ``accepts_when_named``: kinds it takes
    only when the user names it. Optionally ``refuses(kind) -> str | None``: why it cannot take ``kind`` here,
    ``regions(query, doc_id, page, detail) -> PageRegions``: where on a page it found what it scored
    (``pipeline.regions``; ``detail`` is its candidate's), and ``baseline(query) -> array``: its scores for
    unrelated text, the yardstick of a hit's confidence (``pipeline.confidence``; the text leg has one)."""

    name: str
    scale: Scale
    accepts: frozenset[str]
    accepts_when_named: frozenset[str]

    def available(self) -> bool:
        """Whether something is stored to search."""
        ...

    def search(self, query: QueryInput, k: int, allowed: set[str] | None) -> Ranking:
        """The ``k`` best pages (of documents in ``allowed``; None: all), on the leg's scale."""
        ...


@dataclass
class LegParts:
    """What legs are built from. The embedders are zero-argument callables: a model loads only when a leg
    needs it (None: that leg is off). ``text`` embeds text chunks; ``image`` figures and image files, and the
    query for the image leg; ``visual`` page images. One model may serve text and image."""

    store: SearchStore
    settings: SearchConfig
    text: Callable[[], Embedder] | None
    image: Callable[[], Embedder] | None = None
    visual: Callable[[], MultiVectorEmbedder] | None = None
    _kinds: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict, repr=False)

    def kind(self, leg: str) -> tuple[str, frozenset[str]]:
        """The ``text`` or ``image`` leg's embedder type and modalities: from the store's spec when it has one
        (no model loads)."""
        if leg not in self._kinds:
            spec = getattr(self.store, f"{leg}_spec")
            if spec is None:
                embedder = getattr(self, leg)()
                self._kinds[leg] = (embedder.type, embedder.modalities)
            else:
                from docrag.indexes.embedders import embedder_class

                self._kinds[leg] = (spec.type, embedder_class(spec).modalities_for(spec))
        return self._kinds[leg]

    def vector(self, leg: str, query: QueryInput) -> np.ndarray:
        """The ``text`` or ``image`` leg's vector of the query (text or image), computed once per query and
        model: legs that share a model share the vector."""
        spec = getattr(self.store, f"{leg}_spec")
        key = ("single", repr(spec.fingerprint())) if spec is not None else leg

        def compute() -> np.ndarray:
            embedder = getattr(self, leg)()
            embed = embedder.embed_queries if query.kind == "text" else embedder.embed_images
            return embed([query.value])[0]

        return query.embedding(key, compute)


LegFactory = Callable[[LegParts], Leg | None]  # None: this leg cannot be built from these parts
LEG_TYPES: dict[str, LegFactory] = {}


def register_leg(name: str) -> Callable[[LegFactory], LegFactory]:
    """Register a leg factory (a leg class, or a function of ``LegParts``) under ``name``."""

    def deco(factory: LegFactory) -> LegFactory:
        LEG_TYPES[name] = factory
        return factory

    return deco


def leg_names() -> tuple[str, ...]:
    """The registered legs, in registry order."""
    return tuple(LEG_TYPES)


def as_leg_names(names: str | Sequence[str] | None) -> list[str] | None:
    """``legs=`` as given by a user: one name (``"text"``) or several; None for every leg."""
    return [names] if isinstance(names, str) else None if names is None else list(names)


def check_leg_names(names: Sequence[str] | None, known: Sequence[str] | None = None) -> None:
    """A ValueError for the first of ``names`` not ``known`` (default: the registered legs), naming those."""
    known = known or leg_names()
    for name in names or ():
        if name not in known:
            raise ValueError(f"unknown leg {name!r}: choose from {', '.join(known)}")


def build_legs(parts: LegParts, names: Sequence[str] | None = None) -> list[Leg]:
    """The registered legs (or those ``names``), in registry order; legs the parts cannot make are left out."""
    check_leg_names(names)
    built = (factory(parts) for name, factory in LEG_TYPES.items() if names is None or name in names)
    return [leg for leg in built if leg is not None]


NO_POSITIONS = "no positions are stored for this page's text"
NO_LAYOUT = "the patch layout of this page's vectors is not known (the processor's tokens could not be read)"


class _StoreLeg:
    """A leg over one table group of the store (``table``)."""

    name: ClassVar[str]
    scale: ClassVar[Scale]
    accepts: frozenset[str] = frozenset({"text"})
    accepts_when_named: frozenset[str] = frozenset()
    table: Any

    def __init__(self, parts: LegParts) -> None:
        self.parts, self.store = parts, parts.store

    def available(self) -> bool:
        return self.table.count() > 0

    def refuses(self, kind: str) -> str | None:
        return None


class VisualLeg(_StoreLeg):
    """MaxSim of the text query's token vectors (the visual embedder) over the stored page multivectors."""

    name, scale = "visual", Scale.maxsim

    def __init__(self, parts: LegParts) -> None:
        super().__init__(parts)
        assert parts.visual is not None
        self.embedder = parts.visual
        self.table = parts.store.visual

    def search(self, query: QueryInput, k: int, allowed: set[str] | None) -> Ranking:
        qv = query.embedding("visual", lambda: self.embedder().embed_queries([query.text])[0])
        cfg = self.parts.settings
        found = self.table.search(
            qv, k, allowed, method=cfg.visual_search, candidates=cfg.visual_candidates, rerank=cfg.visual_rerank
        )[0]
        return Ranking(found, self.scale, len(qv))

    def regions(self, query: QueryInput, doc_id: str, page: int, detail: str = "") -> PageRegions:
        from docrag.indexes.multivector import PatchGrid

        from .regions import PageRegions, visual_regions

        stored = self.table.page(doc_id, page)
        if stored is None:
            return PageRegions(notes={self.name: "no visual vectors for this page"})
        vectors, layout = stored
        if not layout:
            why = NO_LAYOUT if self.store.visual_index.pool_factor <= 1 else "token-pooled vectors have no patch layout"
            return PageRegions(notes={self.name: why})
        qv = query.embedding("visual", lambda: self.embedder().embed_queries([query.text])[0])
        return visual_regions(qv, vectors, [PatchGrid.from_list(g) for g in layout])


@register_leg("visual")
def _visual_leg(parts: LegParts) -> VisualLeg | None:
    return VisualLeg(parts) if parts.visual is not None else None


class _SingleVectorLeg(_StoreLeg):
    """A cosine leg over one vector per chunk or figure: image queries only with an image-capable model."""

    scale = Scale.cosine
    role: ClassVar[str]  # the settings' model that serves it: "text" | "image"

    @property
    def _images(self) -> bool:
        return "image" in self.parts.kind(self.role)[1]

    def refuses(self, kind: str) -> str | None:
        if kind != "image" or self._images:
            return None
        name = self.parts.kind(self.role)[0]
        return f"image queries need an image-capable {self.role} model; {name!r} embeds text only"

    def search(self, query: QueryInput, k: int, allowed: set[str] | None) -> Ranking:
        return Ranking(self.table.search(self.parts.vector(self.role, query), k, allowed), self.scale)


class TextLeg(_SingleVectorLeg):
    """Cosine over chunk vectors (a page scores its best chunk); image queries (cross-modal) only when named
    and when the text model embeds images too."""

    name = role = "text"

    def __init__(self, parts: LegParts) -> None:
        super().__init__(parts)
        self.table = parts.store.chunks

    @property
    def accepts_when_named(self) -> frozenset[str]:
        return frozenset({"image"}) if self._images else frozenset()

    def baseline(self, query: QueryInput) -> np.ndarray:
        """The query's cosines with unrelated text (``indexes.baseline``): what this leg's score for an unrelated
        page looks like, for this query and model (``pipeline.confidence``). Empty for an image query."""
        import numpy as np

        from docrag.indexes.baseline import null_vectors

        if query.kind != "text" or self.parts.text is None:
            return np.zeros(0, np.float32)
        q = np.asarray(self.parts.vector(self.role, query), np.float32)  # (dim,)
        return null_vectors(self.parts.text()) @ (q / max(float(np.linalg.norm(q)), 1e-12))  # (n_null,)

    def regions(self, query: QueryInput, doc_id: str, page: int, detail: str = "") -> PageRegions:
        from .regions import AnswerRegion, PageRegions

        boxes = self.table.boxes(doc_id, page, detail) if detail else None
        if boxes is None:
            return PageRegions(notes={self.name: NO_POSITIONS})
        if not boxes:
            return PageRegions(notes={self.name: "the best chunk's words were not found among the page's words"})
        label = " ".join(detail.split()[:8])
        return PageRegions([AnswerRegion(self.name, tuple(b), 1.0, label) for b in boxes])  # type: ignore[arg-type]


@register_leg("text")
def _text_leg(parts: LegParts) -> TextLeg | None:
    return TextLeg(parts) if parts.text is not None else None


class ImageLeg(_SingleVectorLeg):
    """Cosine over figure/image vectors, for text queries (the image model's text tower) and image queries."""

    name = role = "image"

    def __init__(self, parts: LegParts) -> None:
        super().__init__(parts)
        self.table = parts.store.images

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"text", "image"}) if self._images else frozenset()

    def regions(self, query: QueryInput, doc_id: str, page: int, detail: str = "") -> PageRegions:
        from .regions import AnswerRegion, PageRegions

        box = self.table.box(doc_id, page, int(detail)) if detail.isdigit() else None
        width, height = self.store.pages.size(doc_id, page)
        if box is None or width <= 0 or height <= 0:
            return PageRegions(notes={self.name: "the matched figure's box is not known"})
        x0, y0, x1, y1 = box
        frac = (max(0.0, x0 / width), max(0.0, y0 / height), min(1.0, x1 / width), min(1.0, y1 / height))
        return PageRegions([AnswerRegion(self.name, frac, 1.0, f"figure {detail}")])


@register_leg("image")
def _image_leg(parts: LegParts) -> ImageLeg | None:
    return ImageLeg(parts) if parts.image is not None else None


@register_leg("bm25")
class BM25Leg(_StoreLeg):
    """BM25 over page text (text layer or OCR); text queries only."""

    name, scale = "bm25", Scale.bm25

    def __init__(self, parts: LegParts) -> None:
        super().__init__(parts)
        self.table = parts.store.pages

    def search(self, query: QueryInput, k: int, allowed: set[str] | None) -> Ranking:
        return Ranking(self.table.search_bm25(query.text, k, allowed), self.scale)

    def regions(self, query: QueryInput, doc_id: str, page: int, detail: str = "") -> PageRegions:
        from docrag.parsers.words import decode_words

        from .regions import PageRegions, bm25_regions

        words = self.table.words(doc_id, page)
        if words is None:
            return PageRegions(notes={self.name: NO_POSITIONS})
        found = bm25_regions(query.text, decode_words(words))
        return PageRegions(found, notes={} if found else {self.name: "no query term found among the page's words"})
