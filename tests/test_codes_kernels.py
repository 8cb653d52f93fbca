"""The compiled kernels of the codes' search against plain numpy on random data: the float32 kernels every CPU runs
(indexes/codes_kernels.py, at dimension 16) and the int8 ones for AVX-512 VNNI (indexes/codes_vnni.py, at 128:
checked against the same definition with the query as they quantise it)."""

from __future__ import annotations

import numpy as np
import pytest

from docrag.indexes import codes_vnni
from docrag.indexes.codes_kernels import _half, codes_maxsim, list_scores, pooled_maxsim, token_totals

RNG = np.random.default_rng(5)
TOKENS = 5
VNNI = pytest.mark.skipif(not codes_vnni.cpu_has_vnni(), reason="this CPU has no AVX-512 VNNI")
KERNELS = ["float32", pytest.param("int8", marks=VNNI)]


def _dim(kernel: str) -> int:
    return codes_vnni.DIM if kernel == "int8" else 16


def _query(kernel: str, dim: int, rows: np.ndarray | None = None):
    """A random query (tokens, dim), as the kernel sees it: the int8 kernels' quantised query (its levels
    × scales) is what their results are the exact MaxSim of."""
    q = RNG.standard_normal((TOKENS, dim)).astype(np.float32) if rows is None else rows
    if kernel == "float32":
        return q, q
    q8, alpha = codes_vnni.quantize(q)
    return q8 * alpha[:, None], (q8, alpha, (-128.0 * q8.sum(axis=1) * alpha).astype(np.float32))


def _segment(n_pages: int, n_centroids: int, dim: int):
    """Inverted lists of random pooled vectors: (starts, local page, scale, int8 values, centroid of each)."""
    counts = RNG.integers(0, 6, n_pages)
    local = np.repeat(np.arange(n_pages, dtype=np.uint32), counts)
    cent = RNG.integers(0, n_centroids, len(local))
    order = np.argsort(cent, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(cent, minlength=n_centroids))]).astype(np.int64)
    scale = RNG.uniform(0.001, 0.01, len(local)).astype(np.float32)
    values = RNG.integers(-127, 128, (len(local), dim)).astype(np.int8)
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


def _scores(kernel, query, probe, starts, scale, values):
    """``list_scores`` (or the int8 one) into a fresh buffer: (ok, scores, positions)."""
    sizes = (starts[probe + 1] - starts[probe]).ravel()
    pos = (np.cumsum(sizes) - sizes).reshape(probe.shape)
    scores = np.full(int(sizes.sum()), np.nan, np.float32)
    if kernel == "float32":
        ok = list_scores(query, probe, starts, scale, values, pos, scores)
    else:
        ok = codes_vnni.list_scores_i8(*query, probe, starts, scale, values, pos, scores)
    return ok, scores, pos


@pytest.mark.parametrize("kernel", KERNELS)
def test_token_level_lists_score_each_page_as_the_definition_across_segments_and_tombstones(kernel):
    n_centroids, dim = 7, _dim(kernel)
    # the third segment's lists run past 16 vectors, with a remainder (the int8 kernel scores 16 at a time)
    segments = [_segment(12, n_centroids, dim), _segment(9, n_centroids, dim), _segment(60, n_centroids, dim)]
    assert any(n > 16 and n % 16 for n in np.diff(segments[2][0]))
    # segment 0's pages are rows 0..11 but for two deleted ones; segment 1's rows 12..20 in another order
    rowmaps = [
        np.arange(12, dtype=np.int64),
        RNG.permutation(9).astype(np.int64) + 12,
        RNG.permutation(60).astype(np.int64) + 21,
    ]
    rowmaps[0][[3, 7]] = -1
    n_rows = 81
    exact, query = _query(kernel, dim)
    # tokens probe 3 centroids each, some the same (the int8 kernel reads such a list once for all of them)
    probe = np.stack([RNG.choice(n_centroids, 3, replace=False) for _ in range(TOKENS)]).astype(np.int64)
    probe[1] = probe[0]
    probe[2, 1] = probe[2, 0]  # one token probes a centroid twice: its score is the same, counted once
    missing = RNG.uniform(-0.05, 0.05, TOKENS).astype(np.float32)
    best = np.full(n_rows, -np.inf, np.float32)
    total = np.zeros(n_rows, np.float32)
    seen = np.zeros(n_rows, np.bool_)
    for (starts, local, scale, values, _), rowmap in zip(segments, rowmaps, strict=True):
        ok, scores, pos = _scores(kernel, query, probe, starts, scale, values)
        assert ok and np.isfinite(scores).all()  # every slot written
        assert token_totals(probe, missing, starts, local, rowmap, pos, scores, best, total, seen) == 0
    want, scored = _reference(exact, probe, missing, segments, rowmaps, n_rows)
    assert seen.tolist() == scored.tolist() and scored.sum() > 40
    assert not seen[[3, 7]].any()  # tombstones are never scored
    np.testing.assert_allclose(total, want, rtol=1e-4, atol=1e-5)
    assert np.isneginf(best).all()  # left as it was given
    # a list naming a page outside its segment, or holding a scale that is no number, is refused, not read
    starts, local, scale, values, _ = segments[1]
    probe_all = np.tile(np.arange(n_centroids, dtype=np.int64), (TOKENS, 1))
    ok, scores, pos = _scores(kernel, query, probe_all, starts, scale, values)
    bad = local.copy()
    bad[0] = 10_000
    args = (best, total.copy(), seen.copy())
    assert token_totals(probe_all, missing, starts, bad, rowmaps[1], pos, scores, *args) == -1
    for wrong in (np.nan, 1e6, -0.5):
        damaged = scale.copy()
        damaged[-1] = wrong
        assert not _scores(kernel, query, probe_all, starts, damaged, values)[0]
    # a score that is no number (search refuses such a query) lists each page once: nothing written out of bounds
    scores[:] = np.nan
    total, seen = np.zeros(n_rows, np.float32), np.zeros(n_rows, np.bool_)
    assert token_totals(probe_all, missing, starts, local, rowmaps[1], pos, scores, best, total, seen) == 0
    assert np.isneginf(best).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_pooled_maxsim_reads_the_records_in_place_and_is_maxsim_of_the_dequantised_vectors(kernel):
    dim = _dim(kernel)
    exact, query = _query(kernel, dim)
    slots, n_pages = 16, 6
    scales = RNG.uniform(0.001, 0.01, n_pages * slots).astype(np.float16)
    scales[0] = np.float16(6e-8)  # subnormal float16
    values = RNG.integers(-127, 128, (n_pages * slots, dim)).astype(np.int8)
    values[1, :] = -128  # the int8 kernel counts values as v + 128: the extreme stays exact
    records = np.concatenate([scales.view(np.uint8).reshape(-1, 2), values.view(np.uint8)], axis=1)  # as pooled.bin
    vectors = (scales.astype(np.float32)[:, None] * values).reshape(n_pages, slots, dim)

    def run(recs, first):
        out = np.full(len(first), np.nan, np.float32)
        if kernel == "float32":
            return pooled_maxsim(query, recs, recs.view(np.int8), first, slots, out), out
        return codes_vnni.pooled_maxsim_i8(*query, recs, first, slots, out), out

    ok, out = run(records, np.array([5, 0, 2], np.int64) * slots)  # pages 5, 0, 2 in that order
    assert ok
    np.testing.assert_allclose(out, [(exact @ vectors[i].T).max(axis=1).sum() for i in (5, 0, 2)], rtol=1e-5)
    # the float16 decoding is the same without numba (NUMBA_DISABLE_JIT=1 runs it as Python)
    some = scales[:8]
    halves = [_half.py_func(lo, hi) for lo, hi in some.view(np.uint8).reshape(-1, 2)]
    assert np.array_equal(np.array(halves, np.float32), some.astype(np.float32))
    # a page past the end, or a scale that is no number, is refused
    assert not run(records, np.array([n_pages * slots - 2]))[0]
    bad = records.copy()
    bad[9, :2] = np.array([np.inf], np.float16).view(np.uint8)
    assert not run(bad, np.array([0]))[0]


def _codes_records(ids, scales, codes) -> np.ndarray:
    """``codes.bin`` records: id uint16, scale float16, the code nibbles."""
    return np.concatenate([ids.astype("<u2").view(np.uint8).reshape(-1, 2), codes_vnni.half16(scales), codes], 1)


@pytest.mark.parametrize(
    ("kernel", "refine"), [("float32", False), ("float32", True), pytest.param("int8", False, marks=VNNI)]
)
def test_codes_maxsim_is_maxsim_of_the_decoded_vectors(kernel, refine):
    dim = _dim(kernel)
    n_book, levels = 9, 4096 if refine else 16
    q = RNG.standard_normal((TOKENS, dim)).astype(np.float32)
    book = RNG.standard_normal((n_book, dim)).astype(np.float32)
    std = RNG.uniform(0.5, 2, dim).astype(np.float32)
    n_vec = 40
    starts, stops = np.array([0, 3, 3, 21], np.int64), np.array([3, 3, 21, 40], np.int64)  # one page has none
    ids = RNG.integers(0, n_book, n_vec).astype(np.uint16)
    scales = RNG.uniform(0.1, 1, n_vec).astype(np.float16).astype(np.float32)
    codes = RNG.integers(0, 256, (n_vec, dim // 2)).astype(np.uint8)
    fine = RNG.integers(0, 256, (n_vec, dim)).astype(np.uint8)  # the low 8 of 12 bits a dimension
    n = np.concatenate([codes & 15, codes >> 4], axis=1).astype(np.float32)  # dimension j, j + dim/2
    if refine:
        n = n * 256 + fine
    a = np.ascontiguousarray(q * std * (2 / levels))
    b = ((1 / levels - 1) * (q @ std)).astype(np.float32)
    sims = q @ book.T  # (tokens, centroids)
    a_seen, a_query = _query(kernel, dim, a)
    # a vector's score: its centroid's + scale · (a·n + b); MaxSim sums each token's best over the page
    vec_scores = sims[:, ids] + scales * (a_seen @ n.T + b[:, None])

    def run(records, fine_bytes, first=starts, last=stops):
        if kernel == "float32":
            return codes_maxsim(a, b, np.ascontiguousarray(sims.T), records, fine_bytes, first, last, refine)
        return codes_vnni.codes_maxsim_i8(*a_query[:2], b, np.ascontiguousarray(sims), records, first, last)

    records = _codes_records(ids, scales, codes)
    got = run(records, fine)
    want = [vec_scores[:, s:e].max(axis=1).sum() for s, e in zip(starts, stops, strict=True) if e > s]
    np.testing.assert_allclose(got[[0, 2, 3]], want, rtol=1e-4)
    assert np.isneginf(got[1])
    # an id outside the codebook, a scale that is no number, a page outside the records: refused
    bad = ids.copy()
    bad[4] = n_book
    assert run(_codes_records(bad, scales, codes), fine) is None
    nan = scales.copy()
    nan[30] = np.nan
    assert run(_codes_records(ids, nan, codes), fine) is None
    assert run(records, fine, np.array([30]), np.array([41])) is None
    assert run(records, fine, np.array([-1]), np.array([3])) is None


@VNNI
def test_the_int8_kernels_answer_where_the_cpu_has_vnni_unless_told_not_to(monkeypatch):
    monkeypatch.setattr(codes_vnni, "_available", {})
    assert codes_vnni.available() and codes_vnni.codes_available()  # compiled, and their self-test passed
    monkeypatch.setattr(codes_vnni, "_available", {})
    monkeypatch.setattr(codes_vnni, "MODE", "avx2")  # DOCRAG_KERNELS: the codes' kernel without VNNI, others float32
    assert not codes_vnni.available() and codes_vnni.codes_available()
    monkeypatch.setattr(codes_vnni, "_available", {})
    monkeypatch.setattr(codes_vnni, "MODE", "portable")
    assert not codes_vnni.available() and not codes_vnni.codes_available()


AVX2_RUN = """
import sys
import numpy as np
from docrag.indexes import codes_vnni
assert codes_vnni.codes_available() and not codes_vnni.available()
rng = np.random.default_rng(int(sys.argv[1]))
q8, alpha = codes_vnni.quantize(rng.standard_normal((7, 128)).astype(np.float32))
beta = rng.standard_normal(7).astype(np.float32)
codes = rng.integers(0, 256, (90, 64)).astype(np.uint8)
ids = rng.integers(0, 5, 90).astype(np.uint16)
scale = rng.uniform(0.1, 1, 90).astype(np.float16).astype(np.float32)
book = rng.standard_normal((7, 5)).astype(np.float32)
records = np.concatenate([ids.view(np.uint8).reshape(-1, 2), codes_vnni.half16(scale), codes], axis=1)
levels = np.concatenate([codes & 15, codes >> 4], axis=1).astype(np.float64)
vec = book[:, ids] + scale * ((q8 * alpha[:, None]).astype(np.float64) @ levels.T + beta[:, None])
starts, stops = np.array([0, 17, 40]), np.array([17, 40, 90])
got = codes_vnni.codes_maxsim_i8(q8, alpha, beta, book, records, starts, stops)
want = [vec[:, a:b].max(axis=1).sum() for a, b in zip(starts, stops)]
assert np.allclose(got, want, rtol=1e-5, atol=1e-4), (got, want)
asm = "".join(codes_vnni.codes_maxsim_i8.inspect_asm().values())
assert "vpmaddubsw" in asm and "vpdpbusd" not in asm
assert sys.argv[2] != "haswell" or "zmm" not in asm  # an AVX2 CPU's build: 256-bit registers only
print("ok")
"""


HASWELL = ",".join(
    "+" + f
    for f in "64bit avx avx2 bmi bmi2 cmov cx16 f16c fma fxsr lzcnt mmx movbe popcnt sse sse2 sse3 sse4.1 sse4.2 ssse3 "
    "xsave".split()
)


@pytest.mark.skipif(not codes_vnni.cpu_has_avx2(), reason="this CPU has no AVX2")
@pytest.mark.parametrize("target", ["host", "haswell"])
def test_the_codes_kernel_without_vnni_uses_avx2_and_scores_as_the_definition(tmp_path, target):
    """The codes' kernel as a CPU without VNNI builds it (in a new process: the instruction set is chosen when numba
    compiles it): forced with ``DOCRAG_KERNELS=avx2`` on this CPU, and for an AVX2 CPU (numba told to compile
    for Haswell); it scores the definition."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOCRAG_KERNELS": "avx2", "NUMBA_CACHE_DIR": str(tmp_path)}
    if target == "haswell":
        env |= {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": HASWELL, "DOCRAG_KERNELS": ""}
    ran = subprocess.run(
        [sys.executable, "-c", AVX2_RUN, "3", target], env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr[-2000:]


@VNNI
def test_the_int8_kernels_refuse_arrays_of_other_shapes_than_they_read():
    """The block intrinsic reads 128 int8 a token and a vector, float32 centroid scores and 16 records at a time:
    anything else is refused before a byte is read."""
    q8, alpha = codes_vnni.quantize(RNG.standard_normal((3, codes_vnni.DIM)).astype(np.float32))
    beta = np.zeros(3, np.float32)
    half_q8 = np.ascontiguousarray(q8[:, :64])
    # the token-level lists: another dimension, a query of another width
    starts, _, scale, values, _ = _segment(20, 2, 64)
    probe = np.zeros((3, 1), np.int64)
    pos = np.zeros((3, 1), np.int64)
    scores = np.zeros(100, np.float32)
    assert not codes_vnni.list_scores_i8(q8, alpha, beta, probe, starts, scale, values, pos, scores)
    assert not codes_vnni.list_scores_i8(half_q8, alpha, beta, probe, starts, scale, values, pos, scores)
    assert not codes_vnni.list_scores_i8(q8, alpha[:2], beta, probe, starts, scale, values, pos, scores)
    # pooled records of another width, or pages not made of whole blocks of 16
    records = np.zeros((64, 2 + codes_vnni.DIM), np.uint8)
    out = np.zeros(1, np.float32)
    first = np.zeros(1, np.int64)
    assert codes_vnni.pooled_maxsim_i8(q8, alpha, beta, records, first, 16, out)
    assert not codes_vnni.pooled_maxsim_i8(q8, alpha, beta, records, first, 8, out)
    assert not codes_vnni.pooled_maxsim_i8(q8, alpha, beta, records[:, :66], first, 16, out)
    # codes records of another width; centroid scores that are not float32 or not one row a token
    codes = np.zeros((16, 4 + codes_vnni.DIM // 2), np.uint8)
    book = np.zeros((3, 4), np.float32)
    one = (np.array([0]), np.array([16]))
    assert codes_vnni.codes_maxsim_i8(q8, alpha, beta, book, codes, *one) is not None
    assert codes_vnni.codes_maxsim_i8(q8, alpha, beta, book, codes[:, :36], *one) is None
    assert codes_vnni.codes_maxsim_i8(q8, alpha, beta, book.astype(np.float64), codes, *one) is None
    assert codes_vnni.codes_maxsim_i8(q8, alpha, beta, book[:2], codes, *one) is None
