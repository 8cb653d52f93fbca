"""The compiled kernels of the codes' search (indexes/codes_kernels.py) against plain numpy on random data."""

from __future__ import annotations

import numpy as np
import pytest

from docrag.indexes.codes_kernels import codes_maxsim, pooled_maxsim, warp_lists

RNG = np.random.default_rng(5)
DIM, TOKENS = 16, 5


def _segment(n_pages: int, n_centroids: int):
    """Inverted lists of random pooled vectors: (starts, local page, scale, int8 values, centroid of each)."""
    counts = RNG.integers(0, 6, n_pages)
    local = np.repeat(np.arange(n_pages, dtype=np.uint32), counts)
    cent = RNG.integers(0, n_centroids, len(local))
    order = np.argsort(cent, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(cent, minlength=n_centroids))]).astype(np.int64)
    scale = RNG.uniform(0.001, 0.01, len(local)).astype(np.float32)
    values = RNG.integers(-127, 128, (len(local), DIM)).astype(np.int8)
    return starts, local[order], scale[order], values[order], cent[order]


def _reference(q, probe, missing, segments, rowmaps, n_rows):
    """The token-level estimate by the definition: per row, per token, its best probed pooled vector's score,
    or ``missing``; rows with no probed vector at all are not scored (None)."""
    total = np.zeros(n_rows)
    scored = np.zeros(n_rows, bool)
    for t in range(len(q)):
        best = np.full(n_rows, -np.inf)
        for (_, local, scale, values, cent), rowmap in zip(segments, rowmaps, strict=True):
            for v in range(len(local)):
                row = rowmap[local[v]]
                if row >= 0 and cent[v] in probe[t]:
                    best[row] = max(best[row], scale[v] * float(q[t] @ values[v].astype(np.float64)))
        hit = np.isfinite(best)
        scored |= hit
        total[hit] += best[hit] - missing[t]
    return total, scored


def test_token_level_lists_score_each_page_as_the_definition_across_segments_and_tombstones():
    n_centroids = 7
    segments = [_segment(12, n_centroids), _segment(9, n_centroids)]
    # segment 0's pages are rows 0..11 but for two deleted ones; segment 1's rows 12..20 in another order
    rowmaps = [np.arange(12, dtype=np.int64), RNG.permutation(9).astype(np.int64) + 12]
    rowmaps[0][[3, 7]] = -1
    n_rows = 21
    q = RNG.standard_normal((TOKENS, DIM)).astype(np.float32)
    probe = np.stack([RNG.choice(n_centroids, 3, replace=False) for _ in range(TOKENS)]).astype(np.int64)
    missing = RNG.uniform(-0.05, 0.05, TOKENS).astype(np.float32)
    best = np.full(n_rows, -np.inf, np.float32)
    total = np.zeros(n_rows, np.float32)
    seen = np.zeros(n_rows, np.bool_)
    for (starts, local, scale, values, _), rowmap in zip(segments, rowmaps, strict=True):
        assert warp_lists(q, probe, missing, starts, local, scale, values, rowmap, best, total, seen) == 0
    want, scored = _reference(q, probe, missing, segments, rowmaps, n_rows)
    assert seen.tolist() == scored.tolist() and scored.sum() > 10
    assert not seen[[3, 7]].any()  # tombstones are never scored
    np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-6)
    assert np.isneginf(best).all()  # left as it was given
    # a list naming a page outside its segment, or holding a scale that is no number, is refused, not read
    starts, local, scale, values, _ = segments[1]
    probe_all = np.tile(np.arange(n_centroids, dtype=np.int64), (TOKENS, 1))
    bad = local.copy()
    bad[0] = 10_000
    args = (best, total.copy(), seen.copy())
    assert warp_lists(q, probe_all, missing, starts, bad, scale, values, rowmaps[1], *args) == -1
    nan = scale.copy()
    nan[-1] = np.nan
    assert warp_lists(q, probe_all, missing, starts, local, nan, values, rowmaps[1], *args) == -1
    # a query that is no number (search refuses one) lists each page once: nothing written out of bounds
    nan_q = q.copy()
    nan_q[0, 0] = np.nan
    total, seen = np.zeros(n_rows, np.float32), np.zeros(n_rows, np.bool_)
    assert (
        warp_lists(nan_q[:1], probe_all[:1], missing[:1], starts, local, scale, values, rowmaps[1], best, total, seen)
        == 0
    )
    assert np.isneginf(best).all()


def test_pooled_maxsim_reads_the_records_in_place_and_is_maxsim_of_the_dequantised_vectors():
    q = RNG.standard_normal((TOKENS, DIM)).astype(np.float32)
    slots, n_pages = 4, 6
    scales = RNG.uniform(0.001, 0.01, n_pages * slots).astype(np.float16)
    scales[0] = np.float16(6e-8)  # subnormal float16
    values = RNG.integers(-127, 128, (n_pages * slots, DIM)).astype(np.int8)
    records = np.concatenate([scales.view(np.uint8).reshape(-1, 2), values.view(np.uint8)], axis=1)  # as pooled.bin
    vectors = (scales.astype(np.float32)[:, None] * values).reshape(n_pages, slots, DIM)
    first = np.array([5, 0, 2], np.int64) * slots  # pages 5, 0, 2 in that order
    out = np.empty(3, np.float32)
    assert pooled_maxsim(q, records, records.view(np.int8), first, slots, out)
    np.testing.assert_allclose(out, [(q @ vectors[i].T).max(axis=1).sum() for i in (5, 0, 2)], rtol=1e-5)
    # a page past the end, or a scale that is no number, is refused
    assert not pooled_maxsim(q, records, records.view(np.int8), np.array([n_pages * slots - 2]), slots, out)
    bad = records.copy()
    bad[9, :2] = np.array([np.inf], np.float16).view(np.uint8)
    assert not pooled_maxsim(q, bad, bad.view(np.int8), np.array([8]), slots, out)


@pytest.mark.parametrize("refine", [False, True])
def test_codes_maxsim_is_maxsim_of_the_decoded_vectors(refine):
    n_book, levels = 9, 4096 if refine else 16
    q = RNG.standard_normal((TOKENS, DIM)).astype(np.float32)
    book = RNG.standard_normal((n_book, DIM)).astype(np.float32)
    std = RNG.uniform(0.5, 2, DIM).astype(np.float32)
    offsets = np.array([0, 3, 3, 10], np.int64)  # the second page has no vectors
    ids = RNG.integers(0, n_book, 10).astype(np.uint16)
    scales = RNG.uniform(0.1, 1, 10).astype(np.float32)
    codes = RNG.integers(0, 256, (10, DIM // 2)).astype(np.uint8)
    fine = RNG.integers(0, 256, (10, DIM)).astype(np.uint8)  # the low 8 of 12 bits a dimension
    half = DIM // 2
    n = np.concatenate([codes & 15, codes >> 4], axis=1).astype(np.float32)  # dimension j, j + dim/2
    if refine:
        n = n * 256 + fine
    assert n.shape == (10, 2 * half)
    vectors = book[ids] + std * scales[:, None] * ((n + 0.5) * 2 / levels - 1)
    a = np.ascontiguousarray(q * std * (2 / levels))
    b = ((1 / levels - 1) * (q @ std)).astype(np.float32)
    got = codes_maxsim(a, b, np.ascontiguousarray((q @ book.T).T), ids, scales, codes, fine, offsets, refine)
    want = [(q @ vectors[s:e].T).max(axis=1).sum() for s, e in [(0, 3), (3, 10)]]
    np.testing.assert_allclose(got[[0, 2]], want, rtol=1e-4)
    assert np.isneginf(got[1])
    bad = ids.copy()
    bad[4] = n_book  # outside the codebook
    assert codes_maxsim(a, b, np.ascontiguousarray((q @ book.T).T), bad, scales, codes, fine, offsets, refine) is None
    nan = scales.copy()
    nan[0] = np.nan
    assert codes_maxsim(a, b, np.ascontiguousarray((q @ book.T).T), ids, nan, codes, fine, offsets, refine) is None
