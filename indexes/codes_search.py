"""Two-stage visual search on the codes (``indexes.visual_codes``), reading no LanceDB table:

1. the centroid estimate (``visual_index.centroid_estimate``) over every page: the best ``ESTIMATE_DEPTH`` ×
   ``candidates`` pages;
2. exact MaxSim over their pooled vectors (read by offset from the pack): the best ``CODES_DEPTH`` × ``candidates``;
3. MaxSim from their codes (centroid score + residual matmul, all vectors of a page): the best ``k``;
4. the best ``EXACT_FINAL`` of those rescored exactly from their stored vectors (``VisualTables``: it reads the
   visual table, so LanceDB is loaded; 0 answers from the codes alone, without LanceDB).

The depths were chosen by measurement (RESULTS.md, "Visual rerank from compact codes"). Scores are MaxSim of the
decoded vectors (within the 4-bit quantisation of exact) where ``EXACT_FINAL`` is 0, else exact MaxSim. At 20k pages
of ``benchmarks/visual_corpus.py`` the codes alone reach recall@10 0.92 of exact, 0.97 with 16 pages rescored:
4-bit residuals cannot order its near-duplicate pages (int8 storage: 0.993).
"""

from __future__ import annotations

import numpy as np

from .database import Candidate
from .visual_codes import CodesPack
from .visual_index import centroid_estimate

__all__ = ["CODES_DEPTH", "ESTIMATE_DEPTH", "EXACT_FINAL", "codes_scores", "search_codes", "search_rows"]

ESTIMATE_DEPTH = 32  # pages shortlisted by the estimate, per candidate asked for
CODES_DEPTH = 4  # pages scored from their codes, per candidate asked for
EXACT_FINAL = 16  # the best pages from the codes rescored exactly from the stored vectors (0: none; reads LanceDB)
NPROBE = 16
CHUNK = 32768  # vectors decoded at a time (few BLAS calls: small ones wait on thread wake-ups on a busy machine)


def _segment_sum_max(sims: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per page (columns ``offsets[i]:offsets[i + 1]`` of ``sims``, tokens × vectors): the sum over tokens of the
    best vector's similarity. A page without vectors scores -inf."""
    if not sims.shape[1]:
        return np.full(len(offsets) - 1, -np.inf, dtype=np.float32)
    starts = np.minimum(offsets[:-1], sims.shape[1] - 1)
    out = np.maximum.reduceat(sims, starts, axis=1).sum(axis=0)
    out[offsets[1:] == offsets[:-1]] = -np.inf
    return out


def pooled_scores(pack: CodesPack, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact MaxSim of the query against the pooled vectors of pages ``rows``."""
    vectors, offsets = pack.pooled(rows)
    sims = np.empty((len(q), len(vectors)), dtype=np.float32)
    buf = np.empty((CHUNK, pack.dim), dtype=np.float32)
    for a in range(0, len(vectors), CHUNK):  # upcast a block at a time (it stays in the CPU's cache)
        b = min(a + CHUNK, len(vectors))
        np.copyto(buf[: b - a], vectors[a:b])
        np.matmul(q, buf[: b - a].T, out=sims[:, a:b])
    return _segment_sum_max(sims, offsets)


def codes_scores(pack: CodesPack, q: np.ndarray, book_sims: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """MaxSim of the query (tokens, dim) against the decoded vectors of pages ``rows``. ``book_sims``: the query's
    similarities to the codebook (tokens, centroids). A vector is ``book[id] + lo + step · (n + 1/2)``, so its
    score is ``book_sims[:, id] + q·(lo + step/2) + (q ∘ step)·n``: one matmul with the residual levels ``n``."""
    ids, residuals, offsets = pack.codes(rows)
    bits, width, dim = pack.bits, pack.width, pack.dim
    per, mask = 8 // bits, (1 << bits) - 1
    scaled = np.ascontiguousarray(q * pack.step)  # (tokens, dim)
    const = float((q @ (pack.lo + pack.step / 2)).sum())  # the same for every page's best vectors: added once
    sims = np.empty((len(q), len(ids)), dtype=np.float32)
    levels = np.empty((CHUNK, dim), dtype=np.float32)
    for a in range(0, len(ids), CHUNK):
        b = min(a + CHUNK, len(ids))
        block, out = residuals[a:b], levels[: b - a]
        for s in range(per):
            np.bitwise_and(block >> np.uint8(s * bits), mask, out=out[:, s * width : (s + 1) * width], casting="unsafe")
        np.matmul(scaled, out.T, out=sims[:, a:b])
        sims[:, a:b] += book_sims[:, ids[a:b]]
    return _segment_sum_max(sims, offsets) + const


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > n:
        finite = finite[np.argpartition(-scores[finite], n - 1)[:n]]
    return finite[np.argsort(-scores[finite], kind="stable")]


def search_codes(
    pack: CodesPack, query: np.ndarray, k: int, allowed: set[str] | None, candidates: int
) -> list[Candidate]:
    """The best ``k`` pages for one query from the codes alone (stages 1–3 of the module docstring);
    ``allowed``: only these documents' pages."""
    rows, scores = search_rows(pack, query, k, allowed, candidates)
    return [Candidate(*pack.key(int(r)), float(s)) for r, s in zip(rows, scores, strict=True)]


def search_rows(
    pack: CodesPack,
    query: np.ndarray,
    k: int,
    allowed: set[str] | None,
    candidates: int,
    estimate_depth: int | None = None,
    codes_depth: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``search_codes`` as the pack's rows (= the visual table's row offsets at the pack's version) and scores."""
    estimate_depth = ESTIMATE_DEPTH if estimate_depth is None else estimate_depth
    codes_depth = CODES_DEPTH if codes_depth is None else codes_depth
    q = np.asarray(query, dtype=np.float32)
    book_sims = q @ pack.codebook.T  # (tokens, centroids)
    n_codes = max(k, candidates * codes_depth)
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
        shortlist = np.sort(_top(estimate, max(n_codes, candidates * estimate_depth)))
        rows = np.sort(shortlist[_top(pooled_scores(pack, q, shortlist), n_codes)])
    if not len(rows):
        return rows, np.zeros(0, dtype=np.float32)
    scores = codes_scores(pack, q, book_sims, rows)
    best = _top(scores, k)
    return rows[best], scores[best]
