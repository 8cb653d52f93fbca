"""The visual leg's tables: ``visual`` (page multivectors), and the first stage of two-stage search derived from
it (``visual_pooled``, ``visual_codebook``; ``indexes/visual_index.py`` has the methods).

Search is MaxSim of the query's token vectors against each page's stored vectors: ``exact`` (every page scored;
packed in RAM once per version of the table up to ``EXACT_RAM_BYTES``, streamed from disk above it) or
``two-stage`` (the first stage proposes candidates, scored exactly from their stored vectors read by row
offset); ``auto`` is exact below ``TWO_STAGE_FROM_PAGES`` pages. Scores are exact MaxSim either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codecs import arrow_to_multivectors, decode, encode
from .database import Candidate, Database, ModelMismatchError
from .maxsim import DevicePacked, PackedDocs, maxsim_scores, resolve_backend
from .pages import maintain_table, page_where
from .schema import CODEBOOK, POOLED, VISUAL, Dims
from .sql import prefilter, sql_in
from .visual_codes import CodesError, CodesPack, forget_pack, open_current
from .visual_index import (
    PooledView,
    VisualIndexSpec,
    assign_codes,
    codebook_size,
    first_stage,
    hierarchical_pool,
    kmeans_pool,
    train_codebook,
)

__all__ = ["PageVectors", "VisualTables"]

log = logging.getLogger(__name__)

EXACT_RAM_BYTES = 2 << 30  # exact search packs the visual vectors in RAM up to this size; streams above it
TWO_STAGE_FROM_PAGES = 20_000  # visual_search = "auto": exact below this many visual pages, two-stage from it
SUBSET_SHARE = 0.25  # exact search over a subset of documents this small scores only their pages
CODEBOOK_MIN_VECTORS = 1024  # pooled vectors needed before ``maintain`` trains a codebook
CODEBOOK_SAMPLE = 262_144  # pooled vectors the codebook is trained on
RETRAIN_GROWTH = 4.0  # retrain the codebook when the pooled vectors grew this much since it was trained
LANCE_INDEX_MIN_ROWS = 4096  # the lancedb first stage builds its IVF_PQ index from this many pages


@dataclass(slots=True)
class PageVectors:
    """Embedded visual pages, before storage: each page's (n, dim) float vectors and patch layout (``PatchGrid``
    objects, or None)."""

    doc_id: list[str]
    page: list[int]
    vectors: list[np.ndarray]
    layouts: list[Any]

    def __len__(self) -> int:
        return len(self.doc_id)

    def only(self, keep: set[str]) -> PageVectors:
        idx = [i for i, d in enumerate(self.doc_id) if d in keep]
        return PageVectors(*([col[i] for i in idx] for col in (self.doc_id, self.page, self.vectors, self.layouts)))


class VisualTables:
    """The visual table and its first stage. ``dims()`` gives the database's sizes and storage; ``spec`` is
    the database's ``VisualIndexSpec`` (its ``first_stage`` the one searched)."""

    def __init__(self, db: Database, dims: Callable[[], Dims], spec: VisualIndexSpec, codebook_vectors: int) -> None:
        self.db, self._dims, self.spec = db, dims, spec
        self.codebook_vectors = codebook_vectors  # pooled vectors the codebook was trained on
        self._codes: dict[str, Any] = {}  # the opened codes pack (``indexes.visual_codes``)

    @property
    def dim(self) -> int:
        return self._dims().visual or 0

    def _checked_query(self, query: Any) -> np.ndarray:
        """A query's token vectors as float32 (n_tokens, dim), or a ValueError saying what is wrong with them (the
        same for every method)."""
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 2 or not len(q) or q.shape[1] != (self.dim or q.shape[1]):
            raise ValueError(f"query vectors of shape {q.shape}: expected (tokens ≥ 1, {self.dim})")
        if not np.isfinite(q).all():
            raise ValueError("the query vectors are not all finite numbers")
        return q

    def count(self) -> int:
        pack = None if self.db.connected else self.codes()
        return pack.n_pages if pack is not None else self.db.count(VISUAL)

    def codes(self) -> CodesPack | None:
        """The compact rerank codes when they match the tables' versions (None: missing or stale)."""
        return open_current(self.db, self._codes)

    def update_codes(self, force: bool = False) -> str:
        """Bring the codes in step with the tables (writers; ``codes_build.update_pack``)."""
        from .codes_build import update_pack

        return update_pack(self.db, self._dims().storage, force)

    # -- writing ------------------------------------------------------------------------------------------------
    def add(self, rows: PageVectors) -> None:
        """Store page multivectors (token-pooled and encoded as the spec says), each with its patch layout when
        the stored vectors are the embedder's own, and their first-stage rows."""
        if not len(rows):
            return
        dims = self._dims()
        for mv in rows.vectors:
            if mv.ndim != 2 or mv.shape[1] != dims.visual:
                raise ModelMismatchError(f"multivectors must be (n, {dims.visual}); got {mv.shape}")
        kept = [hierarchical_pool(np.asarray(m, np.float32), self.spec.pool_factor) for m in rows.vectors]
        layouts = [
            [g.to_list() if hasattr(g, "to_list") else list(g) for g in lay] if lay and len(k) == len(m) else None
            for m, k, lay in zip(rows.vectors, kept, rows.layouts, strict=True)
        ]
        data = {
            "doc_id": rows.doc_id,
            "page": rows.page,
            "n_vectors": [len(m) for m in kept],
            "multivector": [encode(m, dims.storage) for m in kept],
            "layout": layouts,
        }
        self.db.add(VISUAL, VISUAL.to_arrow(data, dims))
        self.db.add(POOLED, POOLED.to_arrow(self._pooled_rows(rows.doc_id, rows.page, kept), dims))

    def _pooled_rows(self, ids: list[str], pages: list[int], vectors: Sequence[np.ndarray]) -> dict[str, Any]:
        """First-stage rows: each page's k-means centroids, and their codes when a codebook exists."""
        pooled = [kmeans_pool(v, self.spec.first_stage_vectors) for v in vectors]
        book = self.codebook()
        codes = [assign_codes(p, book) for p in pooled] if book is not None else [None] * len(pooled)
        return {"doc_id": ids, "page": pages, "pooled": pooled, "codes": codes}

    # -- reading ------------------------------------------------------------------------------------------------
    def decode(self, column: Any) -> list[np.ndarray]:
        dims = self._dims()
        return [decode(a, dims.storage, self.dim) for a in arrow_to_multivectors(column)]

    def codebook(self) -> np.ndarray | None:
        """The first stage's centroids (read once per version of their table), or None before one is trained."""
        if not self.db.has(CODEBOOK):
            return None

        def read() -> np.ndarray | None:
            data = self.db.scan(CODEBOOK)
            if not data.num_rows:
                return None
            order = np.argsort(data.column("id").to_numpy())
            dim = data.schema.field("vector").type.list_size
            book = data.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)[order]
            return book.astype(np.float32)  # (centroids, dim)

        return self.db.memo(CODEBOOK, "book", read)

    def page(self, doc_id: str, page: int) -> tuple[np.ndarray, list[list[float]] | None] | None:
        """A page's stored multivector (decoded, float32) and its patch layout rows (None when not stored)."""
        if not self.db.has(VISUAL):
            return None
        data = self.db.scan(VISUAL, ["multivector", "layout"], page_where(doc_id, page))
        if not data.num_rows:
            return None
        vectors = self.decode(data.column("multivector"))[0].astype(np.float32)
        return vectors, VISUAL.decode([{"layout": data.column("layout")[0].as_py()}])[0]["layout"]

    def vector_bytes(self) -> int:
        """Bytes the visual vectors take in RAM as float16 (what exact search packs); read once per version."""
        pack = None if self.db.connected else self.codes()
        if pack is not None:
            return pack.n_vectors * pack.dim * 2
        if not self.count():
            return 0

        def read() -> int:
            col = self.db.scan(VISUAL, ["n_vectors"]).column(0)
            return int(np.sum(col.to_numpy(zero_copy_only=False))) * self.dim * 2

        return self.db.memo(VISUAL, "bytes", read)

    def method(self, method: str = "auto") -> str:
        """``exact`` or ``two-stage`` for ``method`` (``auto``: two-stage from ``TWO_STAGE_FROM_PAGES`` pages,
        or once the vectors exceed ``EXACT_RAM_BYTES``, where exact search would stream them from disk)."""
        if method not in ("auto", "exact", "two-stage"):
            raise ValueError(f"unknown visual search {method!r}: use auto, exact or two-stage")
        if method == "auto":  # exact while the vectors fit in RAM and the collection is small
            large = self.count() >= TWO_STAGE_FROM_PAGES or self.vector_bytes() > EXACT_RAM_BYTES
            method = "two-stage" if large else "exact"
        if method == "two-stage" and self.codes() is None and self.db.count(POOLED) != self.count():
            # A run stopped before its upkeep: the first stage does not cover every page yet (``maintain``
            # rebuilds it). Exact search covers them all.
            log.info("%s: the first stage of visual search is incomplete; searching exactly", self.db.uri)
            return "exact"
        return method

    # -- search -------------------------------------------------------------------------------------------------
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
    ) -> list[list[Candidate]]:
        """MaxSim of each query (n_tokens, dim) against the stored pages (of documents in ``allowed``; None: all),
        best ``k`` first. ``stage``: another first stage than the database's, for two-stage search. ``rerank``
        (two-stage): ``auto`` scores from the compact codes when they are current (``indexes.codes_search``),
        ``exact`` always from the stored vectors."""
        if rerank not in ("auto", "exact"):
            raise ValueError(f"unknown visual rerank {rerank!r}: use auto or exact")
        if k < 0:
            raise ValueError(f"k must be 0 or more, not {k}")
        queries = [query_vectors] if isinstance(query_vectors, np.ndarray) else list(query_vectors)
        if not self.count() or not queries:
            return [[] for _ in queries]
        queries = [self._checked_query(q) for q in queries]
        method = self.method(method)
        pack = self.codes() if method == "two-stage" and rerank == "auto" and stage in (None, "centroids") else None
        if pack is not None:
            from .codes_search import search_codes  # numba's import (0.3 s) only where the codes answer

            try:
                return [search_codes(pack, q, k, allowed, max(candidates, k)) for q in queries]
            except CodesError as exc:  # bytes damaged in place: not used again until rebuilt
                log.warning("%s; reranking from the stored vectors (`docrag check --repair` rebuilds them)", exc)
                forget_pack(self._codes, pack)
        if method == "two-stage":
            return [self._two_stage(q, k, allowed, max(candidates, k), backend, stage) for q in queries]
        if self.vector_bytes() > EXACT_RAM_BYTES:
            return self._exact_streamed(queries, k, allowed, backend)
        keys, packed = self._packed(backend)
        if not keys:
            return [[] for _ in queries]
        if allowed is not None and isinstance(packed, PackedDocs):
            chosen = [i for i, (d, _) in enumerate(keys) if d in allowed]
            if len(chosen) <= SUBSET_SHARE * len(keys):  # a few documents: score their pages only
                subset = PackedDocs([packed.matrix[packed.offsets[i] : packed.offsets[i + 1]] for i in chosen])
                scores = maxsim_scores(queries, subset, backend=backend) if chosen else np.zeros((len(queries), 0))
                return [_best(row, [keys[i] for i in chosen], k) for row in scores]
        scores = maxsim_scores(queries, packed, backend=backend)  # (n_queries, n_pages)
        if allowed is not None:
            scores[:, np.array([d not in allowed for d, _ in keys])] = -np.inf
        return [_best(row, keys, k) for row in scores]

    def _packed(self, backend: str = "auto") -> tuple[list[tuple[str, int]], PackedDocs | DevicePacked]:
        """Every visual page, decoded and packed once per version of the table: in RAM, or resident on the GPU
        when the backend is torch on CUDA (one matmul per chunk there)."""
        resolved = resolve_backend(backend)

        def build() -> tuple[list[tuple[str, int]], PackedDocs | DevicePacked]:
            data = self.db.scan(VISUAL, ["doc_id", "page", "multivector"])
            keys = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
            arrays = self.decode(data.column("multivector")) if keys else []
            packed: PackedDocs | DevicePacked = PackedDocs(arrays)
            if resolved == "torch" and arrays:
                import torch

                if torch.cuda.is_available():
                    packed = DevicePacked(arrays)
            return keys, packed

        return self.db.memo(VISUAL, f"packed:{resolved}", build)

    def _exact_streamed(
        self, queries: list[np.ndarray], k: int, allowed: set[str] | None, backend: str
    ) -> list[list[Candidate]]:
        """Exact MaxSim reading the visual table in batches (bounded memory, one pass for all queries)."""
        best: list[list[Candidate]] = [[] for _ in queries]
        for batch in self.db.batches(VISUAL, ["doc_id", "page", "multivector"], 2048):
            keys = list(zip(batch.column("doc_id").to_pylist(), batch.column("page").to_pylist(), strict=True))
            scores = maxsim_scores(queries, self.decode(batch.column("multivector")), backend=backend)
            if allowed is not None:
                scores[:, np.array([d not in allowed for d, _ in keys])] = -np.inf
            for i, row in enumerate(scores):
                best[i] = sorted(best[i] + _best(row, keys, k), key=lambda c: -c.score)[:k]
        return best

    def pooled_view(self) -> PooledView:
        """The first stage's view of the pooled table, rebuilt when it or the codebook changes."""
        book = self.codebook()
        self.db.version(CODEBOOK) if self.db.has(CODEBOOK) else -1
        tbl = self.db.table(POOLED)

        def build() -> PooledView:
            return PooledView(tbl, book, lambda allowed: prefilter(None, allowed), lambda: self.db.reading(POOLED.name))

        view = self.db.memo(POOLED, "view", build)
        if view.codebook is not book:  # the codebook changed, the pooled table did not
            view = build()
            self.db.memo_set(POOLED, "view", view)
        return view

    def _offsets(self, view: PooledView) -> dict[tuple[str, int], int] | None:
        """Each page's row offset in the visual table: None when its rows are in the pooled table's order
        (written together, as usual), so that a pooled position is the offset. Kept per pair of versions."""

        def build() -> dict[tuple[str, int], int] | None:
            data = self.db.scan(VISUAL, ["doc_id", "page"])
            docs, pages = data.column("doc_id").combine_chunks(), data.column("page").combine_chunks()
            if docs.equals(view.doc_column) and pages.equals(view.page_column):
                return None
            return {key: i for i, key in enumerate(zip(docs.to_pylist(), pages.to_pylist(), strict=True))}

        return view.memo(f"visual_offsets@{self.db.version(VISUAL)}", build)

    def _two_stage(
        self, query: np.ndarray, k: int, allowed: set[str] | None, n: int, backend: str, stage: str | None
    ) -> list[Candidate]:
        view = self.pooled_view()
        mask = view.mask(allowed)
        if mask is not None and int(mask.sum()) <= n:
            positions = np.flatnonzero(mask).tolist()  # a small subset: score all of it exactly
        else:
            positions = first_stage(stage or self.spec.first_stage).candidates(view, query, n, allowed)
        return self.rerank(query, view, positions, k, backend)

    def rerank(
        self, query: np.ndarray, view: PooledView, positions: Sequence[int], k: int, backend: str = "auto"
    ) -> list[Candidate]:
        """Exact MaxSim of one query against the pages at these pooled-table ``positions``, their stored vectors
        read by row offset from the visual table."""
        offsets = self._offsets(view)
        if offsets is None:
            found = sorted({int(p) for p in positions})
        else:
            found = sorted({offsets[key] for key in (view.key(p) for p in positions) if key in offsets})
        if not found:
            return []
        tbl = self.db.table(VISUAL)
        with self.db.reading(VISUAL.name):
            data = tbl.take_offsets(found).select(["doc_id", "page", "multivector"]).to_arrow()
        got = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
        scores = maxsim_scores([query], self.decode(data.column("multivector")), backend=backend)[0]
        return _best(scores, got, k)

    # -- upkeep -------------------------------------------------------------------------------------------------
    def maintain(self, force: bool = False) -> None:
        """Compact the tables past their thresholds and keep the first stage current."""
        for schema in (VISUAL, POOLED):
            maintain_table(self.db, schema, force)
        if self.db.has(POOLED):
            self.build_first_stage()
        self.update_codes()

    def build_first_stage(self, name: str | None = None) -> None:
        """Keep the first stage ``name`` (default: the database's) of two-stage visual search current: pooled
        rows for every visual row, a codebook trained once there are enough pooled vectors (retrained as the
        collection grows ``RETRAIN_GROWTH``-fold, every page re-coded), codes for pages added since, and
        LanceDB's index for the ``lancedb`` first stage."""
        stage = first_stage(name or self.spec.first_stage)
        if self.db.count(POOLED) != self.count():
            self._rebuild_pooled()
        if stage.needs_codebook:
            n_vectors = self._pooled_vector_count()
            trained = self.codebook_vectors if self.codebook() is not None else 0
            if n_vectors >= CODEBOOK_MIN_VECTORS and (not trained or n_vectors >= RETRAIN_GROWTH * trained):
                self._train_codebook(n_vectors)
            elif trained:
                self._code_missing()
        if stage.needs_lance_index and self.db.count(POOLED) >= LANCE_INDEX_MIN_ROWS:
            with self.db.changing(POOLED) as pooled:
                if not [i for i in pooled.list_indices() if list(i.columns) == ["pooled"]]:
                    from lancedb.index import IvfPq

                    pooled.create_index("pooled", config=IvfPq(distance_type="cosine"))
                else:
                    pooled.optimize()

    def _pooled_vector_count(self) -> int:
        """Pooled vectors in the table, from the visual pages' sizes (each page keeps at most
        ``first_stage_vectors``): no pooled vector is read."""
        sizes = self.db.scan(VISUAL, ["n_vectors"]).column(0).to_numpy(zero_copy_only=False)
        return int(np.minimum(sizes, self.spec.first_stage_vectors).sum())

    def _rebuild_pooled(self) -> None:
        """Pooled rows from the visual table (stored vectors decoded), replacing whatever was there."""
        log.info("%s: building the first stage of visual search from the stored vectors", self.db.uri)
        dims = self._dims()
        self.db.create(POOLED, dims, overwrite=True)  # a new version: readers pinned at the old one keep it
        for batch in self.db.batches(VISUAL, ["doc_id", "page", "multivector"], 256):
            vecs = [
                decode(v, dims.storage, self.dim, np.float32)
                for v in arrow_to_multivectors(batch.column("multivector"))
            ]
            rows = self._pooled_rows(batch.column("doc_id").to_pylist(), batch.column("page").to_pylist(), vecs)
            self.db.add(POOLED, POOLED.to_arrow(rows, dims))

    def _train_codebook(self, n_vectors: int) -> None:
        """Train the codebook on a sample of pooled vectors, then re-code every page (the table is rewritten)."""
        import pyarrow as pa

        dims = self._dims()
        rng = np.random.default_rng(0)
        data = self.db.scan(POOLED)
        vectors = data.column("pooled").combine_chunks().flatten().flatten().to_numpy().reshape(-1, self.dim)
        sample = vectors[np.sort(rng.choice(len(vectors), min(CODEBOOK_SAMPLE, len(vectors)), replace=False))]
        book = train_codebook(sample, codebook_size(n_vectors))  # (centroids, dim)
        log.info("%s: trained a %d-centroid codebook on %d pooled vectors", self.db.uri, len(book), len(sample))
        offsets = data.column("pooled").combine_chunks().offsets
        codes = pa.ListArray.from_arrays(offsets, pa.array(assign_codes(vectors, book), type=pa.uint16()))
        data = data.set_column(data.schema.get_field_index("codes"), "codes", codes)
        book_table = CODEBOOK.to_arrow({"id": np.arange(len(book), dtype=np.int32), "vector": book}, dims)
        self.db.create(CODEBOOK, dims, book_table, overwrite=True)
        self.db.create(POOLED, dims, data, overwrite=True)
        self.codebook_vectors = n_vectors
        self.db.set_meta({"codebook_vectors": n_vectors})

    def _code_missing(self) -> None:
        """Codes for pooled rows written before the codebook existed or while it was being trained."""
        book = self.codebook()
        if book is None:
            return
        rows = self.db.scan(POOLED, ["doc_id", "page", "pooled"], "codes IS NULL")
        if not rows.num_rows:
            return
        vecs = arrow_to_multivectors(rows.column("pooled"))
        docs = rows.column("doc_id").to_pylist()
        self.db.delete(POOLED, f"codes IS NULL AND {sql_in('doc_id', docs)}")
        data = {
            "doc_id": docs,
            "page": rows.column("page").to_pylist(),
            "pooled": vecs,
            "codes": [assign_codes(v, book) for v in vecs],
        }
        self.db.add(POOLED, POOLED.to_arrow(data, self._dims()))


def _best(scores: np.ndarray, keys: Sequence[tuple[str, int]], k: int) -> list[Candidate]:
    top = np.argsort(-scores, kind="stable")[:k]
    return [Candidate(keys[i][0], keys[i][1], float(scores[i])) for i in top if np.isfinite(scores[i])]
