"""Two-stage visual search on the codes (``indexes.visual_codes``), reading no LanceDB table:

1. the centroid estimate (``visual_index.centroid_estimate``) over every page: the best ``ESTIMATE_DEPTH`` ×
   ``candidates`` pages;
2. MaxSim over their pooled vectors (int8 and a scale each, read by offset from the pack): the best ``CODES_DEPTH`` ×
   ``candidates``;
3. MaxSim from their 4-bit codes (centroid score + residual matmul, all vectors of a page): the best
   ``REFINE_FINAL`` (at least ``k``);
4. MaxSim of those at 8 bits a dimension (the codes and their refinement nibbles): the best ``k``.

The depths were chosen by measurement (RESULTS.md, "Visual rerank from compact codes"). Scores are MaxSim of the
8-bit decoded vectors, within their quantisation of exact MaxSim (int8 storage: recall@10 0.993 of exact).
"""

from __future__ import annotations

import numpy as np

from .database import Candidate
from .visual_codes import LEVELS, POOL_SLOTS, CodesError, CodesPack
from .visual_index import centroid_estimate, top_finite

__all__ = ["CODES_DEPTH", "ESTIMATE_DEPTH", "REFINE_FINAL", "codes_scores", "search_codes", "search_rows"]

ESTIMATE_DEPTH = 32  # pages shortlisted by the estimate, per candidate asked for
CODES_DEPTH = 2  # pages scored from their codes, per candidate asked for
REFINE_FINAL = 16  # the best pages from the codes scored again at 8 bits a dimension
NPROBE = 16
CHUNK = 256 * POOL_SLOTS  # vectors decoded at a time (few BLAS calls: small ones wait on thread wake-ups)


def _segment_sum_max(sims: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per page (rows ``offsets[i]:offsets[i + 1]`` of ``sims``, vectors × tokens): the sum over tokens of the
    best vector's similarity. A page without vectors scores -inf."""
    if not len(sims):
        return np.full(len(offsets) - 1, -np.inf, dtype=np.float32)
    starts = np.minimum(offsets[:-1], len(sims) - 1)
    out = np.maximum.reduceat(sims, starts, axis=0).sum(axis=1)
    out[offsets[1:] == offsets[:-1]] = -np.inf
    return out


def pooled_scores(pack: CodesPack, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact MaxSim of the query against the pooled vectors (int8 × scale, ``POOL_SLOTS`` a page) of pages
    ``rows``; a page without pooled vectors scores -inf."""
    qt = np.ascontiguousarray(q.T)
    scales, values = pack.pooled(rows)
    if not np.isfinite(scales).all():
        raise CodesError(f"{pack.folder}: the pooled vectors of some pages are damaged")
    sims = np.empty((len(values), len(q)), dtype=np.float32)
    buf = np.empty((min(CHUNK, len(values)), pack.dim), dtype=np.float32)
    for a in range(0, len(values), CHUNK):  # widen a block at a time (it stays in the CPU's cache)
        b = min(a + CHUNK, len(values))
        np.copyto(buf[: b - a], values[a:b], casting="unsafe")
        np.matmul(buf[: b - a], qt, out=sims[a:b])
        sims[a:b] *= scales[a:b, None]
    out = sims.reshape(len(rows), POOL_SLOTS, len(q)).max(axis=1).sum(axis=1)
    out[pack.pool_count[rows] == 0] = -np.inf
    return out


def _levels(block: np.ndarray, out: np.ndarray) -> None:
    """Nibble bytes (n, dim / 2) as float levels (n, dim): dimension j from the low nibble of byte j, j + dim / 2
    from the high one."""
    half = block.shape[1]
    np.bitwise_and(block, 15, out=out[:, :half], casting="unsafe")
    np.right_shift(block, 4, out=out[:, half : 2 * half], casting="unsafe")


def codes_scores(pack: CodesPack, q: np.ndarray, book_sims: np.ndarray, rows: np.ndarray, refine: bool = False):
    """MaxSim of the query (tokens, dim) against the decoded vectors of pages ``rows``: from the 4-bit codes, or
    (``refine``) at 8 bits with the refinement nibbles. ``book_sims``: the query's similarities to the codebook
    (tokens, centroids). With ``L`` levels a vector is ``book[id] + mean + std ∘ s · ((n + 1/2) · 2/L − 1)`` (``n``
    its levels, ``s`` its scale), so its score is ``book_sims[:, id] + q·mean + s · (a·n + b)`` with
    ``a = q ∘ std · 2/L`` and ``b = (1/L − 1) · q·std``: one matmul with the levels and a column of ones."""
    levels_n = LEVELS if refine else 1 << pack.bits
    ab = np.empty((pack.dim + 1, len(q)), dtype=np.float32)  # (a | b)ᵀ
    ab[:-1] = (q * pack.std * (2 / levels_n)).T
    ab[-1] = (1 / levels_n - 1) * (q @ pack.std)
    book_t = np.ascontiguousarray(book_sims.T)  # (centroids, tokens): a vector's row is one gather
    const = float((q @ pack.mean).sum())  # the same for every page's best vectors: added once

    ids, scales, codes, offsets = pack.codes(rows)
    if len(ids) and (int(ids.max()) >= len(book_sims[0]) or not np.isfinite(scales).all()):
        raise CodesError(f"{pack.folder}: the codes of some pages are damaged")
    fine = pack.refine(rows) if refine else None
    sims = np.empty((len(ids), len(q)), dtype=np.float32)
    levels = np.ones((min(CHUNK, len(ids)), pack.dim + 1), dtype=np.float32)
    low = np.empty((len(levels), pack.dim), dtype=np.float32) if refine else levels
    for a in range(0, len(ids), CHUNK):
        b = min(a + CHUNK, len(ids))
        out, part = levels[: b - a], sims[a:b]
        _levels(codes[a:b], out)
        if fine is not None:  # level = 16 · code + refinement
            out[:, :-1] *= LEVELS >> pack.bits
            _levels(fine[a:b], low[: b - a])
            out[:, :-1] += low[: b - a]
        np.matmul(out, ab, out=part)
        part *= scales[a:b, None]
        part += book_t[ids[a:b]]
    return _segment_sum_max(sims, offsets) + const


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
    q = np.asarray(query, dtype=np.float32)
    book_sims = q @ pack.codebook.T  # (tokens, centroids)
    n_codes = max(k, refine_final, candidates * codes_depth)
    mask = None
    if allowed is not None:
        ok = np.fromiter((d in allowed for d in pack.doc_ids), dtype=bool, count=len(pack.doc_ids))
        mask = ok[pack.doc_index] if pack.n_pages else np.zeros(0, dtype=bool)
    if mask is not None and int(mask.sum()) <= n_codes:
        rows = np.flatnonzero(mask)  # a few documents: every page of theirs from its codes
    else:
        estimate = centroid_estimate(book_sims, pack.list_pages, pack.list_starts, pack.n_pages, NPROBE)
        if mask is not None:
            estimate[~mask] = -np.inf
        shortlist = np.sort(top_finite(estimate, max(n_codes, candidates * estimate_depth)))
        rows = np.sort(shortlist[top_finite(pooled_scores(pack, q, shortlist), n_codes)])
    if not len(rows):
        return rows, np.zeros(0, dtype=np.float32)
    scores = codes_scores(pack, q, book_sims, rows)
    if refine_final:
        rows = np.sort(rows[top_finite(scores, max(k, refine_final))])
        scores = codes_scores(pack, q, book_sims, rows, refine=True)
    best = top_finite(scores, k)
    return rows[best], scores[best]
