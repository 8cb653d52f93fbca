"""Write rows into a store through its row classes (``docrag.indexes.schema``): tests of the search side build
small databases without a parser or an embedder, and every row they write is spelled by the schema."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docrag.indexes.models import ModelSpec
from docrag.indexes.schema import CHUNKS, IMAGES, PAGES, Dims
from docrag.indexes.store import PageVectors, Store

__all__ = ["new_store", "write_chunks", "write_images", "write_pages", "write_visual"]


def new_store(
    path: str | Path,
    *,
    text_dim: int | None = None,
    image_dim: int | None = None,
    visual_dim: int | None = None,
    text_spec: ModelSpec | None = None,
    image_spec: ModelSpec | None = None,
    visual_spec: ModelSpec | None = None,
    **kwargs: Any,
) -> Store:
    """A store opened for writing, its vector sizes known (``kwargs``: ``visual_index``, ``storage_options``).
    ``image_dim`` defaults to ``text_dim``: one test model serving both legs (an image-capable one)."""
    image_dim = image_dim or text_dim
    if text_dim and text_spec is None:
        text_spec = ModelSpec(type="siglip", model="test/single")
    if image_dim and image_spec is None:
        image_spec = text_spec if image_dim == text_dim else ModelSpec(type="siglip", model="test/image")
    store = Store(path, visual_spec, text_spec, image_spec, writable=True, **kwargs)
    store.make_writable(text_dim=text_dim, image_dim=image_dim, visual_dim=visual_dim)
    return store


def _ids(doc_id: str | Sequence[str], n: int) -> list[str]:
    return [doc_id] * n if isinstance(doc_id, str) else list(doc_id)


def write_pages(store: Store, doc_id: str | Sequence[str], texts: Sequence[str], **columns: Any) -> None:
    """Text pages 1..n of ``doc_id`` (or one document per text); other ``PAGES`` columns as lists."""
    n = len(texts)
    data = {
        "doc_id": _ids(doc_id, n),
        "page": columns.pop("page", list(range(1, n + 1))),
        "route": ["text"] * n,
        "label": ["text"] * n,
        "confidence": [1.0] * n,
        "reasons": [[]] * n,
        "signals": [{}] * n,
        "text": list(texts),
        "thumbnail": [b""] * n,
    } | columns
    store.write({PAGES: PAGES.to_arrow(data, store.dims)})


def write_chunks(
    store: Store,
    doc_id: str | Sequence[str],
    pages: Sequence[int],
    chunk_ids: Sequence[int],
    texts: Sequence[str],
    vectors: np.ndarray,
    boxes: Sequence[Any] | None = None,
) -> None:
    data = {
        "doc_id": _ids(doc_id, len(pages)),
        "page": list(pages),
        "chunk": list(chunk_ids),
        "text": list(texts),
        "vector": np.asarray(vectors, np.float32),
        "boxes": list(boxes) if boxes is not None else None,
    }
    rows = CHUNKS.to_arrow({k: v for k, v in data.items() if v is not None}, Dims(text=vectors.shape[1]))
    store.write({CHUNKS: rows})


def write_images(
    store: Store,
    doc_id: str | Sequence[str],
    pages: Sequence[int],
    bboxes: Sequence[Sequence[float]],
    vectors: np.ndarray,
    image_ids: Sequence[int] | None = None,
) -> None:
    data = {
        "doc_id": _ids(doc_id, len(pages)),
        "page": list(pages),
        "image": list(image_ids) if image_ids is not None else list(range(len(pages))),
        "bbox": [list(map(float, b)) for b in bboxes],
        "vector": np.asarray(vectors, np.float32),
    }
    store.write({IMAGES: IMAGES.to_arrow(data, Dims(image=vectors.shape[1]))})


def write_visual(
    store: Store,
    doc_id: str | Sequence[str],
    pages: Sequence[int],
    vectors: Sequence[np.ndarray],
    layouts: Sequence[Any] | None = None,
) -> None:
    """Page multivectors (float, (n, dim) each), pooled and encoded as the store's visual index says."""
    ids = _ids(doc_id, len(pages))
    store.write({}, PageVectors(ids, list(pages), list(vectors), list(layouts or [None] * len(pages))))
