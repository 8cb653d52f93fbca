"""Compiled kernels of the search on the visual codes (``indexes.codes_search``), one core each.

numba compiles them on first use (about 3 s; ``codes_build`` does it when it writes a pack) and caches the
machine code next to this file (or in ``$NUMBA_CACHE_DIR`` or numba's user cache when that is read-only; with no
writable place at all each process compiles them), so a new process loads them in a fraction of a second.
numpy's per-element cost (a temporary array an operation, ~1 ns an element) made the scoring stages
memory-bound; here a page's vectors are decoded and scored in registers, four vectors at a time (each element
of the query read once for four: 1.8× faster than one at a time here). numba does not check bounds: what comes
from the files is checked before it indexes anything — ``CodesPack`` checks the lists' starts and the
generation's offsets when it opens a pack, the kernels the page numbers, centroid ids and scales they read (a
bad one is reported instead of read).
"""

from __future__ import annotations

import logging
import math

import numba as nb
import numpy as np

__all__ = ["codes_maxsim", "list_scores", "pooled_maxsim", "token_totals"]

log = logging.getLogger(__name__)

# fast maths without "no infinities" or "no NaNs": -inf marks a page without a score, and NaN must compare false
_FAST = {"contract", "reassoc", "nsz", "arcp"}


def _jit(fn=None, **extra):
    """``numba.njit`` releasing the GIL, with fast maths, cached on disk where numba finds a writable place (the
    package's ``__pycache__``, ``$NUMBA_CACHE_DIR`` or the user's cache); compiled in each process otherwise."""
    if fn is None:
        return lambda f: _jit(f, **extra)
    try:
        return nb.njit(cache=True, nogil=True, fastmath=_FAST, **extra)(fn)
    except RuntimeError as exc:  # "cannot cache function …: no locator available" (a read-only installation)
        log.info("docrag's search kernels are compiled in each process (%s)", exc)
        return nb.njit(cache=False, nogil=True, fastmath=_FAST, **extra)(fn)


@_jit(inline="always")
def _dot4(x, v, dim):
    """The dot products of ``x`` with rows 0–3 of ``v``."""
    s0 = s1 = s2 = s3 = np.float32(0.0)
    for d in range(dim):
        e = x[d]
        s0 += e * v[0, d]
        s1 += e * v[1, d]
        s2 += e * v[2, d]
        s3 += e * v[3, d]
    return s0, s1, s2, s3


@_jit
def list_scores(q, probe, starts, lscale, lvec, pos, scores):
    """Stage 1's scores (token-level, WARP-style, over one segment's inverted lists of pooled vectors): token
    ``t``'s score of the ``i``-th vector of its ``p``-th probed list (centroid ``probe[t, p]``, the vectors
    ``starts[c]:starts[c + 1]``, ``lscale`` × int8 ``lvec``) goes to ``scores[pos[t, p] + i]``. False when a list
    holds a scale that no float16 scale could be (the file is damaged)."""
    n_tokens, dim = q.shape
    vec4 = np.empty((4, dim), np.float32)
    for t in range(n_tokens):
        qt = q[t]
        for p in range(probe.shape[1]):
            c = probe[t, p]
            v0, v1 = starts[c], starts[c + 1]
            at = pos[t, p] - v0
            for v in range(v0, v1, 4):
                m = min(4, v1 - v)
                for k in range(4):  # short blocks repeat their last vector
                    x = lvec[v + min(k, m - 1)]
                    for d in range(dim):
                        vec4[k, d] = np.float32(x[d])
                s0, s1, s2, s3 = _dot4(qt, vec4, dim)
                for k in range(m):
                    scale = lscale[v + k]
                    if not 0.0 <= scale <= 65504.0:  # a float16's copy (NaN fails too)
                        return False
                    scores[at + v + k] = (s0, s1, s2, s3)[k] * scale
    return True


@_jit
def token_totals(probe, missing, starts, lpage, rowmap, pos, scores, best, total, seen):
    """Each page's stage-1 estimate from the scores of ``list_scores`` (or ``codes_vnni.list_scores_i8``): for
    each token ``t`` and each of its probed lists, a page's best vector (``lpage``: the page local to the segment,
    ``rowmap`` to the pack's row or -1) adds ``best − missing[t]`` to its ``total`` (a page without a probed vector
    for the token keeps the imputed ``missing[t]``, the score of the first centroid not probed; the pages never
    scored keep it for every token, so they rank after those scored, as in WARP) and marks it ``seen``. ``best``
    (rows, all -inf on entry and exit), ``total`` and ``seen`` are the caller's. Returns 0, or -1 when a list
    names a page outside the segment (the file is damaged)."""
    n_tokens, n_probe = probe.shape
    n_local = len(rowmap)
    cur = np.empty(len(best) + 1, np.int64)  # the rows scored for this token (and a slot to write past the end)
    listed = np.zeros(len(best), np.bool_)  # … as flags (a NaN score never leaves best at -inf's mark)
    for t in range(n_tokens):
        nc = 0
        for p in range(n_probe):
            c = probe[t, p]
            v0, v1 = starts[c], starts[c + 1]
            at = pos[t, p] - v0
            for v in range(v0, v1):
                local = lpage[v]
                if local >= n_local:
                    return -1
                row = rowmap[local]
                if row < 0:
                    continue  # deleted, or filtered out
                cur[nc] = row  # without branches (which pages a token meets is not predictable): 1.5× faster
                nc += 1 - listed[row]
                listed[row] = True
                best[row] = max(best[row], scores[at + v])
        m = missing[t]
        for i in range(nc):
            row = cur[i]
            if best[row] > -np.inf:
                total[row] += best[row] - m
                seen[row] = True
            best[row] = -np.inf
            listed[row] = False
    return 0


@_jit(inline="always")
def _half(lo, hi):
    """The float16 of two little-endian bytes, as float32."""
    h = (np.int32(hi) << 8) | np.int32(lo)
    exp = (h >> 10) & 31
    frac = np.float32(h & 1023)
    if exp == 0:
        v = frac * np.float32(5.9604645e-08)  # subnormal: frac · 2^-24
    elif exp == 31:
        v = np.float32(np.inf) if frac == 0 else np.float32(np.nan)
    else:
        v = np.float32(math.ldexp(1024.0 + frac, int(exp) - 25))  # int(): without numba too
    return -v if h & 0x8000 else v


@_jit
def pooled_maxsim(q, records, values, first, slots, out):
    """MaxSim of the query (tokens, dim) against pages of ``slots`` pooled records each, read in place from a
    segment's ``pooled.bin`` (``records`` its bytes, ``values`` the same as int8; a record is a float16 scale and
    ``dim`` values), page ``i`` from record ``first[i]`` into ``out[i]`` (``slots`` a multiple of 4). False when a
    page lies outside the file or a scale is not finite."""
    n_tokens, dim = q.shape
    best = np.empty(n_tokens, np.float32)
    vec4 = np.empty((4, dim), np.float32)
    sc = np.empty(4, np.float32)
    for p in range(len(first)):
        r0 = first[p]
        if r0 < 0 or r0 + slots > len(records):
            return False
        best[:] = -np.inf
        for v in range(r0, r0 + slots, 4):
            for k in range(4):
                sc[k] = _half(records[v + k, 0], records[v + k, 1])
                if not np.isfinite(sc[k]):
                    return False
                x = values[v + k]
                for d in range(dim):
                    vec4[k, d] = np.float32(x[d + 2])
            for t in range(n_tokens):
                s0, s1, s2, s3 = _dot4(q[t], vec4, dim)
                x = max(s0 * sc[0], s1 * sc[1], s2 * sc[2], s3 * sc[3])
                if x > best[t]:
                    best[t] = x
        tot = np.float32(0.0)
        for t in range(n_tokens):
            tot += best[t]
        out[p] = tot
    return True


@_jit(inline="always")
def code_head(records, v, n_book):
    """Vector ``v``'s centroid id and scale from its ``codes.bin`` record (uint16, float16); id -1 when the id is
    outside the codebook or the scale not finite (a damaged file)."""
    cid = np.int64(records[v, 0]) | (np.int64(records[v, 1]) << 8)
    scale = _half(records[v, 2], records[v, 3])
    return (cid if cid < n_book and np.isfinite(scale) else -1), scale


@_jit
def codes_maxsim(a, b, book_t, records, fine, starts, stops, refine):
    """MaxSim of the query against pages of residual codes (``codes_search.codes_scores`` gives the algebra):
    ``a`` (tokens, dim) and ``b`` (tokens) the query's factors, ``book_t`` (centroids, tokens) its centroid
    scores, per vector its ``codes.bin`` record (centroid id, scale and code nibbles; with the refinement bytes
    ``fine`` when ``refine``: 12 bits a dimension), page ``i`` the vectors ``starts[i]:stops[i]``. A page without
    vectors scores -inf; a page outside ``records``, an id outside the codebook or a scale that is not finite
    makes the result None."""
    n_tokens, dim = a.shape
    half = dim // 2
    n_pages = len(starts)
    out = np.empty(n_pages, np.float32)
    best = np.empty(n_tokens, np.float32)
    lv = np.empty((4, dim), np.float32)
    cid = np.empty(4, np.int64)
    sc = np.empty(4, np.float32)
    for p in range(n_pages):
        best[:] = -np.inf
        v0, v1 = starts[p], stops[p]
        if not 0 <= v0 <= v1 <= min(len(records), len(fine)):
            return None
        for v in range(v0, v1, 4):
            m = min(4, v1 - v)
            for k in range(4):  # short blocks repeat their last vector: the max is unchanged
                w = v + min(k, m - 1)
                cid[k], sc[k] = code_head(records, w, book_t.shape[0])
                if cid[k] < 0:
                    return None
                row = records[w, 4:]
                if refine:  # 12 bits: the code's 4 above the refinement's 8
                    fr = fine[w]
                    for j in range(half):
                        lv[k, j] = np.float32((row[j] & 15) * 256 + fr[j])
                        lv[k, j + half] = np.float32((row[j] >> 4) * 256 + fr[j + half])
                else:
                    for j in range(half):
                        lv[k, j] = np.float32(row[j] & 15)
                        lv[k, j + half] = np.float32(row[j] >> 4)
            for t in range(n_tokens):
                s0, s1, s2, s3 = _dot4(a[t], lv, dim)
                bt = b[t]
                x = max(
                    book_t[cid[0], t] + sc[0] * (s0 + bt),
                    book_t[cid[1], t] + sc[1] * (s1 + bt),
                    book_t[cid[2], t] + sc[2] * (s2 + bt),
                    book_t[cid[3], t] + sc[3] * (s3 + bt),
                )
                if x > best[t]:
                    best[t] = x
        tot = np.float32(0.0)
        for t in range(n_tokens):
            tot += best[t]
        out[p] = tot if v1 > v0 else -np.inf
    return out
