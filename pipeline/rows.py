"""The embed step and the store step of indexing, apart: page plans → embedded rows → the store.

Both engines use these. The local engine embeds and writes in the indexing process; the Ray engine embeds
in an actor pool (where the GPUs are) and writes in the driver, which holds the writer lock and flips each
document to ``ready`` once all its rows are in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docrag.indexes.multivector import MultiVectorEmbedder
    from docrag.indexes.store import Store
    from docrag.indexes.unified import UnifiedEmbedder

    from .options import IngestConfig
    from .plan import PagePlan

__all__ = ["EmbeddedRows", "embed_plans", "write_rows"]

COUNTED = ("pages", "chunks", "images", "visual")


@dataclass(slots=True)
class EmbeddedRows:
    """The rows of a batch of pages (of one or more documents), embedded, ready to write."""

    visual: dict[str, list[Any]] = field(
        default_factory=lambda: {"doc_id": [], "page": [], "vectors": [], "layouts": []}
    )
    chunks: dict[str, list[Any]] = field(
        default_factory=lambda: {"doc_id": [], "page": [], "chunk": [], "text": [], "vectors": [], "boxes": []}
    )
    images: dict[str, list[Any]] = field(
        default_factory=lambda: {"doc_id": [], "page": [], "bbox": [], "image": [], "vectors": []}
    )
    pages: dict[str, list[Any]] = field(default_factory=dict)
    unified_dim: int | None = None
    visual_dim: int | None = None

    def only(self, keep: set[str]) -> EmbeddedRows:
        """The rows of the documents in ``keep`` (the others failed meanwhile)."""
        ids = self.pages.get("doc_id", [])
        if all(d in keep for d in ids):
            return self

        def pick(table: dict[str, Any]) -> dict[str, Any]:
            mask = [d in keep for d in table.get("doc_id", [])]
            return {k: [v for v, m in zip(col, mask, strict=True) if m] for k, col in table.items()}

        out = EmbeddedRows(
            pick(self.visual), pick(self.chunks), pick(self.images), pick(self.pages), self.unified_dim, self.visual_dim
        )
        for table in (out.chunks, out.images):
            if table["vectors"]:
                import numpy as np

                table["vectors"] = np.asarray(table["vectors"])
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per document and table: {doc_id: {"pages": n, "chunks": n, "images": n, "visual": n}}."""
        out: dict[str, dict[str, int]] = {}
        for name, ids in (
            ("pages", self.pages.get("doc_id", [])),
            ("chunks", self.chunks["doc_id"]),
            ("images", self.images["doc_id"]),
            ("visual", self.visual["doc_id"]),
        ):
            for d in ids:
                out.setdefault(d, dict.fromkeys(COUNTED, 0))[name] += 1
        return out

    def routes(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for d, r in zip(self.pages.get("doc_id", []), self.pages.get("route", []), strict=True):
            out.setdefault(d, {})
            out[d][r] = out[d].get(r, 0) + 1
        return out

    def legs(self) -> dict[str, int]:
        return {"visual": len(self.visual["doc_id"]), "text": len(self.chunks["doc_id"]),
                "image": len(self.images["doc_id"])}


def embed_plans(
    batch: Sequence[tuple[str, PagePlan]],
    unified: UnifiedEmbedder,
    visual: MultiVectorEmbedder | None,
    cfg: IngestConfig,
) -> EmbeddedRows:
    """Embed the plans of ``batch`` ((doc_id, plan) pairs, several documents together: the GPU-friendly
    shape) with the models; no store is touched."""
    import numpy as np

    from docrag.indexes.unified import chunk_page_texts
    from docrag.parsers.words import encode_words

    from .regions import chunk_boxes

    out = EmbeddedRows(unified_dim=unified.dim, visual_dim=visual.dim if visual is not None else None)
    pages_visual = [(d, p) for d, p in batch if p.visual_image is not None and visual is not None]
    if pages_visual:
        embedded = visual.embed_pages([p.visual_image for _, p in pages_visual])
        out.visual = {"doc_id": [d for d, _ in pages_visual], "page": [p.number for _, p in pages_visual],
                      "vectors": [v for v, _ in embedded], "layouts": [layout for _, layout in embedded]}
    by_doc: dict[str, list[PagePlan]] = {}
    for d, p in batch:
        by_doc.setdefault(d, []).append(p)
    chunks = out.chunks
    embed_texts: list[str] = []
    for d, plans in by_doc.items():
        inputs = [(p.number, p.texts) for p in plans if p.texts]
        contexts = {p.number: p.captions for p in plans} if cfg.caption_context else None
        words = {p.number: p.words for p in plans}
        for c in chunk_page_texts(inputs, unified, cfg.chunk_max_tokens, cfg.chunk_overlap, contexts):
            chunks["doc_id"].append(d)
            chunks["page"].append(c.page)
            chunks["chunk"].append(c.index)
            chunks["text"].append(c.text)
            boxes = chunk_boxes(c.text, words.get(c.page, []))
            chunks["boxes"].append(json.dumps([[round(v, 4) for v in b] for b in boxes]))
            embed_texts.append(c.embed_text)
    if embed_texts:
        chunks["vectors"] = np.asarray(unified.embed_documents(embed_texts))
    figures = [(d, p, i, f) for d, p in batch for i, f in enumerate(p.figures)]
    if figures:
        out.images = {
            "doc_id": [d for d, *_ in figures],
            "page": [p.number for _, p, _, _ in figures],
            "bbox": [f.bbox for *_, f in figures],
            "image": [i for _, _, i, _ in figures],
            "vectors": np.asarray(unified.embed_images([f.image for *_, f in figures])),
        }
    out.pages = {
        "doc_id": [d for d, _ in batch],
        "page": [p.number for _, p in batch],
        "route": [p.route.route for _, p in batch],
        "label": [p.route.label for _, p in batch],
        "confidence": [p.route.confidence for _, p in batch],
        "reasons": [json.dumps(p.route.reasons, ensure_ascii=False) for _, p in batch],
        "signals": [json.dumps(p.route.signals) for _, p in batch],
        "text": [p.text for _, p in batch],
        "thumbnail": [p.thumbnail for _, p in batch],
        "words": [json.dumps(encode_words(p.words), ensure_ascii=False) for _, p in batch],
    }
    return out


def write_rows(store: Store, rows: EmbeddedRows) -> None:
    """Write ``rows`` (the pages last: a page row means its vectors are in)."""
    v, c, i = rows.visual, rows.chunks, rows.images
    if v["doc_id"]:
        store.add_visual(v["doc_id"], v["page"], v["vectors"], layouts=v.get("layouts"))
    if c["doc_id"]:
        store.add_chunks(c["doc_id"], c["page"], c["chunk"], c["text"], c["vectors"], boxes=c.get("boxes"))
    if i["doc_id"]:
        store.add_images(i["doc_id"], i["page"], i["bbox"], i["vectors"], image_ids=i["image"])
    if rows.pages.get("doc_id"):
        store.add_pages(rows.pages)
