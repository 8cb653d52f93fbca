"""The embed step of indexing: page plans → embedded rows, ready for the store.

Both engines use it: the local engine embeds in the indexing process, the Ray engine in an actor pool (where the
GPUs are). The rows are Arrow tables of the store's row classes (``indexes.schema``: pages, chunks, images) and
the visual pages' vectors (``PageVectors``, pooled and encoded by the store); ``Store.write`` takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docrag.indexes.schema import CHUNKS, COUNTED, IMAGES, PAGES, VISUAL, Dims, RowSchema, empty_counts
from docrag.indexes.visual import PageVectors

if TYPE_CHECKING:
    from docrag.indexes.embedders import Embedder
    from docrag.indexes.multivector import MultiVectorEmbedder

    from .options import IngestConfig
    from .plan import PagePlan

__all__ = ["UNSEARCHABLE", "EmbeddedRows", "embed_plans"]

UNSEARCHABLE = "not searchable with this profile: no text, and no image or visual model for the page"


@dataclass(slots=True)
class EmbeddedRows:
    """The rows of a batch of pages (of one or more documents), embedded, ready to write."""

    tables: dict[RowSchema, Any] = field(default_factory=dict)  # PAGES, CHUNKS, IMAGES -> Arrow table
    visual: PageVectors = field(default_factory=lambda: PageVectors([], [], [], []))
    dims: Dims = field(default_factory=Dims)  # the vector sizes the rows were made with
    unsearchable: dict[str, list[int]] = field(default_factory=dict)  # doc_id -> pages no leg can find

    def doc_ids(self, schema: RowSchema) -> list[str]:
        if schema is VISUAL:
            return list(self.visual.doc_id)
        data = self.tables.get(schema)
        return [] if data is None else data.column("doc_id").to_pylist()

    @property
    def n_pages(self) -> int:
        data = self.tables.get(PAGES)
        return 0 if data is None else data.num_rows

    def only(self, keep: set[str]) -> EmbeddedRows:
        """The rows of the documents in ``keep`` (the others failed meanwhile)."""
        if all(d in keep for d in self.doc_ids(PAGES)):
            return self
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = pa.array(sorted(keep), type=pa.string())
        tables = {s: t.filter(pc.is_in(t.column("doc_id"), value_set=ids)) for s, t in self.tables.items()}
        lost = {d: p for d, p in self.unsearchable.items() if d in keep}
        return EmbeddedRows(tables, self.visual.only(keep), self.dims, lost)

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per document and counted table (``documents.counts``, checked by ``check``)."""
        out: dict[str, dict[str, int]] = {}
        for schema in COUNTED:
            for d in self.doc_ids(schema):
                out.setdefault(d, empty_counts())[schema.name] += 1
        return out

    def routes(self) -> dict[str, dict[str, int]]:
        """Pages per document and route."""
        data = self.tables.get(PAGES)
        out: dict[str, dict[str, int]] = {}
        if data is None:
            return out
        for d, r in zip(data.column("doc_id").to_pylist(), data.column("route").to_pylist(), strict=True):
            out.setdefault(d, {})
            out[d][r] = out[d].get(r, 0) + 1
        return out

    def legs(self) -> dict[str, int]:
        """Rows per leg (for progress)."""
        return {"visual": len(self.visual), "text": len(self.doc_ids(CHUNKS)), "image": len(self.doc_ids(IMAGES))}


def embed_plans(
    batch: Sequence[tuple[str, PagePlan]],
    text: Embedder | None,
    image: Embedder | None,
    visual: MultiVectorEmbedder | None,
    cfg: IngestConfig,
) -> EmbeddedRows:
    """Embed the plans of ``batch`` ((doc_id, plan) pairs, several documents together: the GPU-friendly
    shape) with the models: text chunks with ``text``, figures and image files with ``image``, visual pages
    with ``visual`` (None: that leg is off). No store is touched."""
    import numpy as np

    from docrag.indexes.chunking import chunk_page_texts
    from docrag.parsers.words import encode_words

    from .regions import chunk_boxes, page_keys

    dims = Dims(*(m.dim if m is not None else None for m in (text, image, visual)))
    out = EmbeddedRows(dims=dims)
    pages_visual = [(d, p) for d, p in batch if p.visual_image is not None and visual is not None]
    if pages_visual:
        embedded = visual.embed_pages([p.visual_image for _, p in pages_visual])
        out.visual = PageVectors(
            [d for d, _ in pages_visual],
            [p.number for _, p in pages_visual],
            [v for v, _ in embedded],
            [layout for _, layout in embedded],
        )
    by_doc: dict[str, list[PagePlan]] = {}  # the pages to chunk, by document (none without a text model)
    if text is not None:
        for d, p in batch:
            by_doc.setdefault(d, []).append(p)
    chunks: dict[str, list[Any]] = {"doc_id": [], "page": [], "chunk": [], "text": [], "boxes": []}
    embed_texts: list[str] = []
    for d, plans in by_doc.items():
        inputs = [(p.number, p.texts) for p in plans if p.texts]
        contexts = {p.number: p.captions for p in plans} if cfg.caption_context else None
        words = {p.number: p.words for p in plans}
        keys: dict[int, list[str]] = {}  # each page's words folded once, for all its chunks
        for c in chunk_page_texts(inputs, text, cfg.chunk_max_tokens, cfg.chunk_overlap, contexts):
            chunks["doc_id"].append(d)
            chunks["page"].append(c.page)
            chunks["chunk"].append(c.index)
            chunks["text"].append(c.text)
            page_words = words.get(c.page, [])
            if c.page not in keys:
                keys[c.page] = page_keys(page_words)
            boxes = chunk_boxes(c.text, page_words, keys=keys[c.page])
            chunks["boxes"].append([[round(v, 4) for v in b] for b in boxes])
            embed_texts.append(c.embed_text)
    if embed_texts and text is not None:
        chunks["vector"] = np.asarray(text.embed_documents(embed_texts))
        out.tables[CHUNKS] = CHUNKS.to_arrow(chunks, dims)
    figures = [(d, p, i, f) for d, p in batch for i, f in enumerate(p.figures)] if image is not None else []
    if figures and image is not None:
        images = {
            "doc_id": [d for d, *_ in figures],
            "page": [p.number for _, p, _, _ in figures],
            "image": [i for _, _, i, _ in figures],
            "bbox": [list(map(float, f.bbox)) for *_, f in figures],
            "vector": np.asarray(image.embed_images([f.image for *_, f in figures])),
        }
        out.tables[IMAGES] = IMAGES.to_arrow(images, dims)
    found = {(d, p) for d, p in zip(chunks["doc_id"], chunks["page"], strict=True)}
    found |= {(d, p.number) for d, p, _, _ in figures} | {(d, p.number) for d, p in pages_visual}
    for d, p in batch:
        if (d, p.number) not in found and not any(ch.isalnum() for ch in p.text):
            p.route.reasons = [*p.route.reasons, UNSEARCHABLE]
            out.unsearchable.setdefault(d, []).append(p.number)
    pages = {
        "doc_id": [d for d, _ in batch],
        "page": [p.number for _, p in batch],
        "route": [p.route.route for _, p in batch],
        "label": [p.route.label for _, p in batch],
        "confidence": [p.route.confidence for _, p in batch],
        "reasons": [p.route.reasons for _, p in batch],
        "signals": [p.route.signals for _, p in batch],
        "text": [p.text for _, p in batch],
        "thumbnail": [p.thumbnail for _, p in batch],
        "words": [encode_words(p.words) for _, p in batch],
    }
    out.tables[PAGES] = PAGES.to_arrow(pages, dims)
    return out
