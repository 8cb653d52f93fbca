"""What query time needs of a store, as protocols: ``indexes.store.Store`` is one, and a test's fake must be
one too (``tests/test_legs.py`` checks both against these, method by method).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from docrag.indexes.database import Candidate
    from docrag.indexes.models import ModelSpec
    from docrag.indexes.visual_index import VisualIndexSpec

__all__ = ["ChunksView", "DocumentsView", "ImagesView", "PagesView", "SearchStore", "VectorsView", "VisualView"]


class DocumentsView(Protocol):
    def count(self) -> int: ...

    def ready(self, where: str | None = None, metadata: Mapping[str, Any] | None = None) -> dict[str, str]: ...

    def get(self, doc_id: str, columns: list[str] | None = None) -> dict[str, Any] | None: ...

    def metadata(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...


class PagesView(Protocol):
    def count(self) -> int: ...

    def rows(self, doc_ids: Iterable[str] | None = None, columns: list[str] | None = None) -> list[dict[str, Any]]: ...

    def search_bm25(self, query: str, k: int = 10, allowed: set[str] | None = None) -> list[Candidate]: ...

    def words(self, doc_id: str, page: int) -> list[list[Any]] | None: ...

    def size(self, doc_id: str, page: int) -> tuple[float, float]: ...


class VectorsView(Protocol):
    def count(self) -> int: ...

    def search(self, vector: np.ndarray, k: int = 10, allowed: set[str] | None = None) -> list[Candidate]: ...


class ChunksView(VectorsView, Protocol):
    def boxes(self, doc_id: str, page: int, text: str) -> list[list[float]] | None: ...

    def page_chunks(self, pages: Iterable[tuple[str, int]]) -> list[dict[str, Any]]: ...


class ImagesView(VectorsView, Protocol):
    def box(self, doc_id: str, page: int, image: int) -> list[float] | None: ...


class VisualView(Protocol):
    def count(self) -> int: ...

    def search(
        self,
        query_vectors: np.ndarray | Sequence[np.ndarray],
        k: int = 10,
        allowed: set[str] | None = None,
        backend: str = "auto",
        method: str = "exact",
        candidates: int = 96,
        stage: str | None = None,
        rerank: str = "auto",
    ) -> list[list[Candidate]]: ...

    def page(self, doc_id: str, page: int) -> tuple[np.ndarray, list[list[float]] | None] | None: ...


class SearchStore(Protocol):
    """A store as the searcher and the legs read it."""

    text_spec: ModelSpec | None
    image_spec: ModelSpec | None
    visual_index: VisualIndexSpec
    documents: DocumentsView
    pages: PagesView
    chunks: ChunksView
    images: ImagesView
    visual: VisualView

    def refresh(self) -> None: ...
