"""Visual search on the codes (``indexes.visual_codes``), reading no LanceDB table:

1. token-level candidate generation (WARP-style, ``codes_kernels.list_scores`` and ``token_totals``): each
   query token probes its ``NPROBE`` nearest centroids and scores the pooled vectors in their inverted lists; a
   page's estimate is the sum over tokens of its best probed pooled vector (the first unprobed centroid's score
   where it has none): the best ``ESTIMATE_DEPTH`` × ``candidates`` pages;
2. MaxSim over their pooled vectors (all ``POOL_SLOTS`` of a page, int8 and a scale each, read by offset): the
   best ``CODES_DEPTH`` × ``candidates``;
3. MaxSim from their 4-bit codes (centroid score + residual, all vectors of a page, read in place from the
   mapped ``codes.bin``): the best ``REFINE_FINAL`` (at least ``k``);
4. MaxSim of those at 12 bits a dimension (the codes and their refinement bytes): the best ``k``.

The scoring runs in compiled kernels: stages 1–3 in int8 (``codes_vnni``: the query quantised per token) on CPUs
with AVX-512 VNNI, stage 3 in int8 on those with AVX2, the rest in float32 (``codes_kernels``; all of it with
``DOCRAG_KERNELS=portable``); stage 4 in float32. The depths were chosen by measurement (RESULTS.md, "Visual
search from compact codes, third pass" and "fourth pass"). Scores are MaxSim of the 12-bit decoded vectors, within
0.0002 of exact MaxSim here.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import codes_vnni
from .codes_kernels import codes_maxsim, list_scores, pooled_maxsim, token_totals
from .database import Candidate
from .visual_codes import LEVELS, POOL_SLOTS, CodesError, CodesPack
from .visual_index import top_finite

__all__ = ["CODES_DEPTH", "ESTIMATE_DEPTH", "NPROBE", "REFINE_FINAL", "codes_scores", "search_codes", "search_rows"]

NPROBE = 40  # centroids a query token probes in the token-level stage
ESTIMATE_DEPTH = 20  # pages kept by the token-level stage, per candidate asked for
CODES_DEPTH = 4  # pages scored from their codes, per candidate asked for
REFINE_FINAL = 32  # the best pages from the codes scored again at 12 bits a dimension
THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (the process that made it, the pool): THREADS threads
_POOL_LOCK = threading.Lock()


def _parallel(fn, parts: list) -> list:
    """``fn`` over ``parts`` on ``THREADS`` threads (the kernels release the GIL); in this thread when one."""
    global _POOL
    if THREADS < 2 or len(parts) < 2:
        return [fn(x) for x in parts]
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():  # a forked child has the object but not its threads
            _POOL = (os.getpid(), ThreadPoolExecutor(THREADS, thread_name_prefix="docrag-codes"))
        pool = _POOL[1]
    return list(pool.map(fn, parts))


def _per_segment(pack: CodesPack, maps: list, rows: np.ndarray, score) -> np.ndarray:
    """``score(map, rows)`` for each segment that pages ``rows`` lie in (``maps``: one of the pack's lists of
    mapped segment files), as one array in the order of ``rows``."""
    if len(maps) != len(pack.segments):
        raise CodesError(f"{pack.folder}: the pack was closed")
    out = np.empty(len(rows), dtype=np.float32)
    segs = pack.seg[rows]
    for s in np.unique(segs).tolist():
        at = np.flatnonzero(segs == s)
        out[at] = score(maps[s], rows[at])
    return out


def _int8(pack: CodesPack, codes: bool = False) -> bool:
    """Whether the int8 kernels (``codes_vnni``) score this pack's vectors here: all of them (AVX-512 VNNI), or
    (``codes``) the codes' one (AVX2 too)."""
    return pack.dim == codes_vnni.DIM and (codes_vnni.codes_available() if codes else codes_vnni.available())


def _query8(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The query (tokens, dim) for the int8 kernels' int8 vectors: its levels, scales, and the ``beta`` that
    takes off what the vectors' flipped sign bit adds (``codes_vnni``)."""
    q8, alpha = codes_vnni.quantize(q)
    return q8, alpha, (-128.0 * q8.sum(axis=1, dtype=np.int64) * alpha).astype(np.float32)


def _token_part(pack: CodesPack, q, probe, missing, rowmaps, q8) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 for some of the query's tokens (``q8``: the same as ``_query8``'s, or None: the float32 kernels):
    each page's summed ``best − missing`` and the pages scored."""
    best = np.full(pack.n_pages, -np.inf, dtype=np.float32)
    total = np.zeros(pack.n_pages, dtype=np.float32)
    seen = np.zeros(pack.n_pages, dtype=np.bool_)
    for (starts, pages, scales, values), rowmap in zip(pack.lists, rowmaps, strict=True):
        sizes = (starts[probe + 1] - starts[probe]).ravel()
        pos = (np.cumsum(sizes) - sizes).reshape(probe.shape)
        scores = np.empty(int(sizes.sum()), dtype=np.float32)
        if q8 is None:
            ok = list_scores(q, probe, starts, scales, values, pos, scores)
        else:
            ok = codes_vnni.list_scores_i8(*q8, probe, starts, scales, values, pos, scores)
        if not ok or token_totals(probe, missing, starts, pages, rowmap, pos, scores, best, total, seen) < 0:
            raise CodesError(f"{pack.folder}: the inverted lists of a segment are damaged")
    return total, seen


def token_estimate(
    pack: CodesPack, q: np.ndarray, q8: tuple | None, book_sims: np.ndarray, n: int, mask: np.ndarray | None
) -> np.ndarray:
    """The best ``n`` rows by the token-level estimate (stage 1; ``q8``: ``_query8(q)`` for the int8 kernels, or
    None; ``mask``: the rows allowed), in no order."""
    n_book = book_sims.shape[1]
    if n_book > NPROBE:
        part = np.argpartition(-book_sims, NPROBE, axis=1)
        probe = np.ascontiguousarray(part[:, :NPROBE], dtype=np.int64)
        missing = np.take_along_axis(book_sims, part[:, NPROBE : NPROBE + 1], axis=1)[:, 0]
    else:  # every centroid probed: a page misses a token only when it has no pooled vector
        probe = np.tile(np.arange(n_book, dtype=np.int64), (len(q), 1))
        missing = book_sims.min(axis=1) - 1
    missing = np.ascontiguousarray(missing, dtype=np.float32)
    rowmaps = pack.rowmaps
    if mask is not None:  # filtered out: as if deleted
        rowmaps = [np.where((r >= 0) & mask[np.maximum(r, 0)], r, -1) for r in rowmaps]
    splits = np.array_split(np.arange(len(q)), min(THREADS, len(q)))
    parts = _parallel(
        lambda t: _token_part(pack, q[t], probe[t], missing[t], rowmaps, q8 and tuple(x[t] for x in q8)), splits
    )
    total, seen = parts[0]
    for more_total, more_seen in parts[1:]:
        total += more_total
        seen |= more_seen
    rows = np.flatnonzero(seen)
    if len(rows) > n:
        return rows[top_finite(total[rows], n)]
    if len(rows) < n:  # too few pages share a probed centroid with the query: the others tie, any will do
        rest = np.flatnonzero(~seen if mask is None else ~seen & mask)
        rows = np.concatenate([rows, rest[: n - len(rows)]])
    return rows


def pooled_scores(pack: CodesPack, q: np.ndarray, q8: tuple | None, rows: np.ndarray) -> np.ndarray:
    """MaxSim of the query (``q8``: quantised to int8 for the int8 kernels, as ``_query8``; or None) against the
    pooled vectors (int8 × scale, ``POOL_SLOTS`` a page) of pages ``rows``, read in place from the mapped
    segments; a page without pooled vectors scores -inf."""

    def score(records: np.ndarray, some: np.ndarray) -> np.ndarray:
        out = np.empty(len(some), dtype=np.float32)
        first = pack.pool_start[some]
        if q8 is None:
            ok = pooled_maxsim(q, records, records.view(np.int8), first, POOL_SLOTS, out)
        else:
            ok = codes_vnni.pooled_maxsim_i8(*q8, records, first, POOL_SLOTS, out)
        if not ok:
            raise CodesError(f"{pack.folder}: the pooled vectors of some pages are damaged")
        return out

    parts = _parallel(lambda some: _per_segment(pack, pack.pooled_maps, some, score), np.array_split(rows, THREADS))
    out = np.concatenate(parts or [np.zeros(0, np.float32)])
    out[pack.pool_count[rows] == 0] = -np.inf
    return out


def codes_scores(pack: CodesPack, q: np.ndarray, book_sims: np.ndarray, rows: np.ndarray, refine: bool = False):
    """MaxSim of the query (tokens, dim) against the decoded vectors of pages ``rows``: from the 4-bit codes, or
    (``refine``) at 12 bits with the refinement bytes. ``book_sims``: the query's similarities to the codebook
    (tokens, centroids). With ``L`` levels a vector is ``book[id] + mean + std ∘ s · ((n + 1/2) · 2/L − 1)`` (``n``
    its levels, ``s`` its scale), so its score is ``book_sims[:, id] + q·mean + s · (a·n + b)`` with
    ``a = q ∘ std · 2/L`` and ``b = (1/L − 1) · q·std``."""
    levels_n = LEVELS if refine else 1 << pack.bits
    a = np.ascontiguousarray(q * pack.std * (2 / levels_n), dtype=np.float32)
    b = np.ascontiguousarray((1 / levels_n - 1) * (q @ pack.std), dtype=np.float32)
    const = float((q @ pack.mean).sum())  # the same for every page's best vectors: added once
    book_sims = np.ascontiguousarray(book_sims, dtype=np.float32)
    a8 = codes_vnni.quantize(a) if not refine and _int8(pack, codes=True) else None
    book_t = np.ascontiguousarray(book_sims.T) if a8 is None else None  # (centroids, tokens): a vector's row

    def score(records, fine, starts, stops) -> np.ndarray:
        if a8 is None:
            out = codes_maxsim(a, b, book_t, records, fine, starts, stops, refine)
        else:  # 4 bits, in int8 (the query's centroid scores as they are: (tokens, centroids))
            out = codes_vnni.codes_maxsim_i8(*a8, b, book_sims, records, starts, stops)
        if out is None:
            raise CodesError(f"{pack.folder}: the codes of some pages are damaged")
        return out

    def part(some: np.ndarray) -> np.ndarray:
        if refine:  # a few pages: their codes and refinements read (the refinements are not mapped: 11 GB at 100k)
            records, offsets = pack.read("codes.bin", some, reuse=True)
            return score(records, pack.refine(some, reuse=True), offsets[:-1], offsets[1:])
        return _per_segment(  # in place in the mapped segments: no copy
            pack, pack.codes_maps, some, lambda m, r: score(m, m, pack.start[r], pack.start[r] + pack.count[r])
        )

    try:
        parts = _parallel(part, np.array_split(rows, THREADS if len(rows) >= 2 * THREADS else 1))
    finally:
        if not refine:
            pack.release_codes(int(pack.count[rows].sum()) * pack.sizes["codes.bin"])
    return np.concatenate(parts or [np.zeros(0, np.float32)]) + const


def search_codes(
    pack: CodesPack, query: np.ndarray, k: int, allowed: set[str] | None, candidates: int
) -> list[Candidate]:
    """The best ``k`` pages for one query from the codes (stages 1–4 of the module docstring); ``allowed``:
    only these documents' pages."""
    rows, scores = search_rows(pack, query, k, allowed, candidates)
    return [Candidate(*pack.key(int(r)), float(s)) for r, s in zip(rows, scores, strict=True)]


def search_rows(
    pack: CodesPack,
    query: np.ndarray,
    k: int,
    allowed: set[str] | None,
    candidates: int,
    depths: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``search_codes`` as the pack's rows and scores. ``depths``: (estimate, codes, refine) instead of the
    module's ``ESTIMATE_DEPTH``, ``CODES_DEPTH``, ``REFINE_FINAL``."""
    estimate_depth, codes_depth, refine_final = depths or (ESTIMATE_DEPTH, CODES_DEPTH, REFINE_FINAL)
    if not pack.intact():
        raise CodesError(f"{pack.folder}: a file of the visual codes was cut short")
    q = np.ascontiguousarray(query, dtype=np.float32)  # (tokens ≥ 1, dim), finite: VisualTables.search checks
    # MaxSim is linear in the query: scaled by a power of two (exactly) to magnitudes around 1, so that no stage
    # overflows or loses digits to subnormals (a query of 1e36s ranks as one of 1s), and the scores scaled back
    peak = float(np.abs(q).max()) if q.size else 0.0
    unit = 2.0 ** round(math.log2(peak)) if peak > 0 else 1.0
    q = q / np.float32(unit) if unit != 1.0 else q
    book_sims = q @ pack.codebook.T  # (tokens, centroids)
    n_codes = max(k, refine_final, candidates * codes_depth)
    mask = None
    if allowed is not None:
        ok = np.fromiter((d in allowed for d in pack.doc_ids), dtype=bool, count=len(pack.doc_ids))
        mask = ok[pack.doc_index] if pack.n_pages else np.zeros(0, dtype=bool)
    if mask is not None and int(mask.sum()) <= n_codes:
        rows = np.flatnonzero(mask)  # a few documents: every page of theirs from its codes
    else:
        q8 = _query8(q) if _int8(pack) else None
        shortlist = np.sort(token_estimate(pack, q, q8, book_sims, max(n_codes, candidates * estimate_depth), mask))
        rows = np.sort(shortlist[top_finite(pooled_scores(pack, q, q8, shortlist), n_codes)])
    if not len(rows):
        return rows, np.zeros(0, dtype=np.float32)
    scores = codes_scores(pack, q, book_sims, rows)
    if refine_final:
        rows = np.sort(rows[top_finite(scores, max(k, refine_final))])
        scores = codes_scores(pack, q, book_sims, rows, refine=True)
    best = top_finite(scores, k)
    scores = scores[best] * np.float32(unit) if unit != 1.0 else scores[best]
    return rows[best], scores
