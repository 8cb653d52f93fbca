"""How visual (late-interaction) page vectors are stored and searched at scale.

Stored with the database (``VisualIndexSpec``, recorded in its ``meta`` table):

- ``storage``: the page vectors as ``float16`` (default), ``int8`` or ``binary`` (``indexes.codecs``);
- ``pool_factor``: hierarchical token pooling at ingest (Ward clustering of a page's vectors into
  n / factor groups, each replaced by its mean; factor 1 keeps every vector);
- ``first_stage``: which ``FirstStage`` proposes candidates for the exact MaxSim rerank (registry below),
  and ``first_stage_vectors``: the k-means centroids kept per page for it (unit vectors, float16; 64 a page
  is 16 KiB).

Two-stage search: a first stage that never holds the full vectors proposes ``candidates`` pages; their
stored vectors are read by row offset and scored exactly (MaxSim). First stages:

- ``centroids`` (default): PLAID/WARP-style centroid interaction. A global k-means codebook is trained on
  the pooled page vectors; a page is its pooled vectors' centroid ids (128 bytes at 64 vectors). A query
  token probes its ``nprobe`` nearest centroids; a page's estimate is, per query token, the best probed
  centroid it contains, or the score of the token's last probed centroid when it contains none (an upper
  bound, as XTR/WARP impute missing similarities); summed over tokens. The best pages by that estimate are
  scored against their pooled vectors, and the best of those go to the exact rerank.
- ``lancedb``: LanceDB's own multivector index (IVF_PQ over the pooled vectors, cosine MaxSim).
- ``pooled``: exact MaxSim over the pooled vectors (held in RAM as float16; no training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FIRST_STAGES",
    "FirstStage",
    "PooledView",
    "VisualIndexSpec",
    "assign_codes",
    "centroid_estimate",
    "hierarchical_pool",
    "kmeans_pool",
    "register_first_stage",
    "top_finite",
    "train_codebook",
]


class VisualIndexSpec(BaseModel):
    """How the visual leg's vectors are stored and searched (fixed when the database is created)."""

    model_config = ConfigDict(extra="forbid")

    storage: Literal["float16", "int8", "binary"] = Field(
        "float16", description="Page vectors as float16, int8 (fixed scale) or binary (sign bits)."
    )
    pool_factor: int = Field(
        1, ge=1, le=32, description="Hierarchical token pooling at ingest: keep about n / factor vectors a page."
    )
    first_stage: str = Field(
        "centroids",
        description="Candidate generator for two-stage search: centroids, pooled or lancedb. A search-time choice "
        "(a database reopened without one uses the one it was made with).",
    )
    first_stage_vectors: int = Field(64, ge=4, le=256, description="k-means centroids kept per page for it.")

    @field_validator("first_stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        first_stage(value)  # a registered first stage, or a ValueError naming the choices
        return value

    def record(self) -> dict[str, Any]:
        return self.model_dump()


# -- pooling ----------------------------------------------------------------------------------------------------
def hierarchical_pool(vectors: np.ndarray, factor: int) -> np.ndarray:
    """Ward clustering of a page's vectors into ``len // factor`` groups, each replaced by its mean (the
    token pooling of Clavié et al., 2024). Factor 1 returns the vectors unchanged."""
    if factor <= 1 or len(vectors) <= factor:
        return np.asarray(vectors)
    from scipy.cluster.hierarchy import fcluster, linkage

    v = np.asarray(vectors, dtype=np.float32)
    labels = fcluster(linkage(v, method="ward"), t=max(1, len(v) // factor), criterion="maxclust")
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    sums = np.add.reduceat(v[order], starts, axis=0)
    counts = np.diff(np.r_[starts, len(v)])[:, None]
    return (sums / counts).astype(np.asarray(vectors).dtype)


def _spherical_kmeans(
    x: np.ndarray, centres: np.ndarray, iters: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations on the unit sphere (assign by inner product, centre = normalised sum). Empty centres
    are re-seeded from random rows when ``rng`` is given, else kept (the caller may drop them)."""
    c = centres.copy()
    counts = np.zeros(len(c), dtype=np.int64)
    for _ in range(iters):
        assign = assign_codes(x, c).astype(np.int64)
        sums = np.zeros_like(c)
        np.add.at(sums, assign, x)
        counts = np.bincount(assign, minlength=len(c))
        empty = counts == 0
        c[~empty] = sums[~empty]
        if rng is not None and empty.any():
            c[empty] = x[rng.choice(len(x), int(empty.sum()), replace=False)]
        c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)
    return c, counts


def kmeans_pool(vectors: np.ndarray, m: int, iters: int = 4) -> np.ndarray:
    """A page's vectors as at most ``m`` unit centroids (spherical k-means from evenly spaced rows; empty
    clusters dropped). Pages with at most ``m`` vectors are returned normalised."""
    v = np.asarray(vectors, dtype=np.float32)
    if len(v) <= m:
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)).astype(np.float16)
    c, counts = _spherical_kmeans(v, v[np.linspace(0, len(v) - 1, m).astype(np.int64)], iters)
    return c[counts > 0].astype(np.float16)


def train_codebook(sample: np.ndarray, size: int, iters: int = 8, seed: int = 0) -> np.ndarray:
    """Spherical k-means codebook (size, dim) float32 over a sample of pooled vectors."""
    x = np.asarray(sample, dtype=np.float32)
    rng = np.random.default_rng(seed)
    size = min(size, len(x))
    return _spherical_kmeans(x, x[rng.choice(len(x), size, replace=False)], iters, rng)[0]


def assign_codes(vectors: np.ndarray, codebook: np.ndarray, block: int = 65536) -> np.ndarray:
    """Nearest centroid (max inner product) of each vector, uint16."""
    out = np.empty(len(vectors), dtype=np.uint16)
    for a in range(0, len(vectors), block):  # upcast one block at a time (the pooled table can be GBs)
        out[a : a + block] = np.argmax(np.asarray(vectors[a : a + block], dtype=np.float32) @ codebook.T, axis=1)
    return out


def codebook_size(n_vectors: int) -> int:
    """Centroids for ``n_vectors`` pooled vectors: a power of two near 4·√n, between 256 and 16384."""
    return int(min(16384, max(256, 2 ** round(np.log2(4 * np.sqrt(max(n_vectors, 1)))))))


# -- first stages -----------------------------------------------------------------------------------------------
class PooledView:
    """What first stages read, for one version of the pooled table (``tbl``, a LanceDB table pinned at that
    version): page keys in table order and each page's document (for filters), and on demand the codes, the
    pooled vectors of some pages, all of them, or LanceDB's own search. ``reading`` turns a read failure into
    the store's error; ``prefilter`` is the store's SQL for a set of allowed documents."""

    def __init__(
        self,
        tbl: Any,
        codebook: np.ndarray | None,
        prefilter: Callable[[set[str] | None], str | None],
        reading: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.tbl, self.codebook, self._prefilter, self._reading = tbl, codebook, prefilter, reading
        with reading():
            data = tbl.search().select(["doc_id", "page"]).limit(None).to_arrow()
        self.doc_column = data.column("doc_id").combine_chunks()  # Arrow, for comparing row orders
        self.page_column = data.column("page").combine_chunks()
        docs = self.doc_column.dictionary_encode()
        self.doc_index = docs.indices.to_numpy()  # (n_pages,) into doc_ids
        self.doc_ids: list[str] = docs.dictionary.to_pylist()
        self.pages = self.page_column.to_numpy()
        self.cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.pages)

    def key(self, position: int) -> tuple[str, int]:
        """(doc_id, page) of the page at ``position``."""
        return self.doc_ids[self.doc_index[position]], int(self.pages[position])

    def _column(self, name: str) -> Any:
        with self._reading():
            return self.tbl.search().select([name]).limit(None).to_arrow().column(0).combine_chunks()

    def load_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every page's codes, flat (uint16), with offsets (a page without codes has none)."""
        col = self._column("codes")
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.to_numpy(zero_copy_only=False)
        return values[offsets[0] : offsets[-1]], offsets - offsets[0]

    def load_pooled(self, positions: Sequence[int]) -> list[np.ndarray]:
        """The pooled vectors of the pages at ``positions``, in that order (read by row offset)."""
        from .codecs import arrow_to_multivectors

        order = np.argsort(positions, kind="stable")
        with self._reading():
            got = self.tbl.take_offsets([int(positions[i]) for i in order]).select(["pooled"]).to_arrow()
        arrays = arrow_to_multivectors(got.column("pooled"))
        out: list[np.ndarray] = [np.empty(0)] * len(positions)
        for j, i in enumerate(order):
            out[i] = arrays[j]
        return out

    def load_all_pooled(self) -> list[np.ndarray]:
        from .codecs import arrow_to_multivectors

        return arrow_to_multivectors(self._column("pooled"))

    def lance_search(self, query: np.ndarray, n: int, allowed: set[str] | None) -> list[int]:
        """LanceDB's multivector search over the pooled column (its index when built): page positions."""
        q = self.tbl.search(query, vector_column_name="pooled").limit(n).select(["doc_id", "page"])
        sql = self._prefilter(allowed)
        if sql:
            q = q.where(sql, prefilter=True)
        with self._reading():
            rows = q.to_arrow()
        where = self.memo("positions", lambda: {self.key(i): i for i in range(len(self))})
        found = zip(rows.column("doc_id").to_pylist(), rows.column("page").to_pylist(), strict=True)
        return [where[key] for key in found if key in where and (allowed is None or key[0] in allowed)]

    def mask(self, allowed: set[str] | None) -> np.ndarray | None:
        if allowed is None:
            return None
        ok = np.array([d in allowed for d in self.doc_ids], dtype=bool)
        return ok[self.doc_index] if len(self.doc_index) else np.zeros(0, dtype=bool)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]


class FirstStage(Protocol):
    """Proposes candidate pages (positions into the view's table) for the exact rerank."""

    name: str
    needs_codebook: bool
    needs_lance_index: bool

    def candidates(self, view: PooledView, query: np.ndarray, n: int, allowed: set[str] | None) -> list[int]: ...


FIRST_STAGES: dict[str, FirstStage] = {}


def register_first_stage(stage: FirstStage) -> FirstStage:
    FIRST_STAGES[stage.name] = stage
    return stage


def first_stage(name: str) -> FirstStage:
    try:
        return FIRST_STAGES[name]
    except KeyError:
        raise ValueError(f"unknown first stage {name!r}: choose from {', '.join(FIRST_STAGES)}") from None


def top_finite(scores: np.ndarray, n: int) -> np.ndarray:
    """The positions of the best ``n`` finite scores, best first (ties in position order)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > n:
        finite = finite[np.argpartition(-scores[finite], n - 1)[:n]]
    return finite[np.argsort(-scores[finite], kind="stable")]


def _pooled_rescore(view: PooledView, query: np.ndarray, positions: list[int], n: int) -> list[int]:
    """Exact MaxSim of the query against the pooled vectors of ``positions``; the best ``n``."""
    from .maxsim import maxsim_numpy

    if len(positions) <= n:
        return positions
    scores = maxsim_numpy([query], view.load_pooled(positions))[0]
    order = np.argsort(-scores, kind="stable")[:n]
    return [positions[i] for i in order]


def centroid_estimate(sims: np.ndarray, pages: np.ndarray, starts: np.ndarray, n_pages: int, nprobe: int) -> np.ndarray:
    """Each page's centroid-interaction estimate (see the module docstring) from the query tokens' similarities
    to the centroids ``sims`` (tokens, centroids) and the inverted lists (``pages`` sorted by centroid, ``starts``
    of each centroid's run)."""
    total = np.zeros(n_pages, dtype=np.float32)
    probe = min(nprobe, sims.shape[1])
    top = np.argpartition(-sims, probe - 1, axis=1)[:, :probe]
    best = np.empty(n_pages, dtype=np.float32)
    for i in range(len(sims)):
        cs = top[i][np.argsort(sims[i, top[i]])]  # ascending: the best centroid is written last
        best.fill(sims[i, cs[0]])  # a page without any probed centroid: the last probed score
        for c in cs:
            best[pages[starts[c] : starts[c + 1]]] = sims[i, c]
        total += best
    return total


class CentroidStage:
    """Centroid interaction over inverted lists (see the module docstring)."""

    name = "centroids"
    needs_codebook = True
    needs_lance_index = False
    nprobe = 16
    widen = 8  # pages scored on their pooled vectors per candidate wanted

    def _lists(self, view: PooledView) -> dict[str, np.ndarray]:
        def build() -> dict[str, np.ndarray]:
            codes, offsets = view.load_codes()
            n_pages = len(offsets) - 1
            lengths = np.diff(offsets)
            page_of = np.repeat(np.arange(n_pages, dtype=np.int32), lengths)
            order = np.argsort(codes, kind="stable")  # uint16: a radix sort (7x faster than on int64)
            size = len(view.codebook) if view.codebook is not None else 0
            starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=size))]).astype(np.int64)
            uncoded = np.flatnonzero(np.bincount(page_of, minlength=n_pages) == 0).astype(np.int64)
            return {"pages": page_of[order], "starts": starts, "uncoded": uncoded}

        return view.memo("centroid_lists", build)

    def candidates(self, view: PooledView, query: np.ndarray, n: int, allowed: set[str] | None) -> list[int]:
        if view.codebook is None:  # not trained yet (a small collection, or built for another first stage)
            return FIRST_STAGES["pooled"].candidates(view, query, n, allowed)
        n_pages = len(view)
        lists = self._lists(view)
        q = np.asarray(query, dtype=np.float32)
        total = np.zeros(n_pages, dtype=np.float32)
        if view.codebook is not None and len(lists["pages"]):
            total = centroid_estimate(q @ view.codebook.T, lists["pages"], lists["starts"], n_pages, self.nprobe)
        mask = view.mask(allowed)
        if mask is not None:
            total[~mask] = -np.inf
        shortlist = top_finite(total, max(n * self.widen, n)).tolist()
        extra = lists["uncoded"]  # pages added since the codebook was last applied: always candidates
        if len(extra):
            if mask is not None:
                extra = extra[mask[extra]]
            shortlist = list(dict.fromkeys([*shortlist, *extra.tolist()]))
        return _pooled_rescore(view, q, shortlist, min(n + len(extra), 2 * n))


class PooledStage:
    """Exact MaxSim over every page's pooled vectors (in RAM, float16)."""

    name = "pooled"
    needs_codebook = False
    needs_lance_index = False

    def candidates(self, view: PooledView, query: np.ndarray, n: int, allowed: set[str] | None) -> list[int]:
        from .maxsim import PackedDocs, maxsim_packed

        packed = view.memo("pooled_packed", lambda: PackedDocs(view.load_all_pooled(), max_float32_bytes=0))
        if not len(packed):
            return []
        scores = maxsim_packed([np.asarray(query, np.float32)], packed)[0]
        mask = view.mask(allowed)
        if mask is not None:
            scores[~mask] = -np.inf
        return top_finite(scores, n).tolist()


class LanceStage:
    """LanceDB's multivector index over the pooled vectors (IVF_PQ, cosine)."""

    name = "lancedb"
    needs_codebook = False
    needs_lance_index = True

    def candidates(self, view: PooledView, query: np.ndarray, n: int, allowed: set[str] | None) -> list[int]:
        return view.lance_search(np.asarray(query, np.float32), n, allowed)


for _stage in (CentroidStage(), PooledStage(), LanceStage()):
    register_first_stage(_stage)
