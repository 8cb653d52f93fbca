"""int8 kernels of the search on the visual codes, for CPUs with AVX-512 VNNI (``codes_search`` uses them when
``available()``; ``codes_kernels`` holds the float32 kernels every CPU runs).

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds them, four by four, into 16 int32 lanes:
four times the multiply-adds of a float32 FMA an instruction. The query is quantised per token to int8
(``quantize``: a scale and 127 levels each side), the page side is what the files hold: 4-bit levels (0–15,
unsigned as they are) or the pooled vectors' int8 values (signed: their sign bit flipped makes them ``v + 128``,
unsigned, and ``128 · Σ Q`` a token comes off again). The products are exact in int32; the query's rounding
moves a score by well under the gaps between the pages these stages keep (``tests/test_codes_kernels.py`` checks
both against the definition).

numba has no vector types, so the inner block is written in LLVM IR (``numba.extending.intrinsic``): 16 page
vectors of dimension 128 against every token of the query (``_block``): each vector's two 64-byte halves are loaded
once, each (vector, token) pair takes two ``vpdpbusd``, and the 16 sums of a token are reduced together (a tree
of shuffles) into one vector of 16 lanes, then scaled, offset, multiplied by the 16 vectors' own scales and
(for the codes) added to their centroid's score, gathered. The stage's kernel keeps each token's running
maximum over the page in those lanes (MaxSim), or stores the scores (the token-level stage's lists).
"""

from __future__ import annotations

import logging
import os

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .codes_kernels import _FAST, _half, _jit, code_head

__all__ = ["DIM", "available", "codes_maxsim_i8", "cpu_has_vnni", "list_scores_i8", "pooled_maxsim_i8", "quantize"]

log = logging.getLogger(__name__)

DIM = 128  # the dimension these kernels are written for (ColPali's): two 64-byte halves a vector
_I1, _I8, _I32, _I64, _F32 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.FloatType()
_V16, _V64, _VF = ir.VectorType(_I32, 16), ir.VectorType(_I8, 64), ir.VectorType(_F32, 16)
_V16L, _VP, _MASK = ir.VectorType(_I64, 16), ir.VectorType(_F32.as_pointer(), 16), ir.VectorType(_I1, 16)
_V32B, _V16H, _V8 = ir.VectorType(_I8, 32), ir.VectorType(ir.IntType(16), 16), ir.VectorType(_I32, 8)
AHEAD = 64  # vectors the codes kernel asks the CPU to fetch ahead of the block it scores (4 KB: a memory page)
_available: dict[str, bool] = {}  # "all" / "codes": whether those kernels run here


def _target_features() -> set[str]:
    """The CPU features numba passes LLVM (``+avx2``, …), as numba decides them: ``NUMBA_CPU_FEATURES`` when set,
    else the host's (less the AVX ones with ``NUMBA_ENABLE_AVX=0``). LLVM aborts the process on an instruction its
    target lacks, so these, not the host's, decide."""
    from numba.core import codegen, config

    try:
        features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    except Exception:  # a platform where LLVM cannot tell
        return set()
    return set(str(features).split(","))


def cpu_has_vnni() -> bool:
    """Whether numba compiles for AVX-512 BW and VNNI here: every int8 kernel runs."""
    return {"+avx512f", "+avx512bw", "+avx512vnni"} <= _target_features()


def cpu_has_avx2() -> bool:
    """Whether numba compiles for AVX2 here: the codes' int8 kernel runs (``vpmaddubsw``), the others in float32."""
    return "+avx2" in _target_features()


# ``DOCRAG_KERNELS``, read once (numba's disk cache is keyed by the CPU, not by this, so it must not change between
# choosing the instructions and choosing to cache them): ``portable`` (the float32 kernels only), ``avx2`` (the codes'
# kernel without VNNI even where the CPU has it, uncached: to compare them), else the best this CPU runs
MODE = os.environ.get("DOCRAG_KERNELS", "").strip().lower()


def available() -> bool:
    """Whether every int8 kernel runs here: a CPU with AVX-512 VNNI, ``DOCRAG_KERNELS`` unset, and the kernels
    compiled and checked (a failure is logged once and the float32 kernels answer)."""
    return _checked("all")


def codes_available() -> bool:
    """Whether the codes' int8 kernel runs here: AVX-512 VNNI (``vpdpbusd``) or AVX2 (``vpmaddubsw``: two
    instructions for one, exact all the same for 4-bit levels), unless ``DOCRAG_KERNELS=portable``."""
    return _checked("codes")


def _checked(which: str) -> bool:
    if which not in _available:
        _available[which] = False
        try:
            mode = MODE
            runs = cpu_has_vnni() and not mode if which == "all" else mode != "portable" and cpu_has_avx2()
            if runs:
                _selftest(codes_only=which == "codes")
                _available[which] = True
        except Exception as exc:  # an LLVM without these intrinsics: the portable kernels answer
            log.info("docrag's int8 search kernels (%s) are not used here (%s)", which, exc)
    return _available[which]


def quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` as int8 levels (-127…127) and their scales (``x ≈ levels · scale``; a zero row: scale 0)."""
    x = np.asarray(x, np.float32)
    scale = np.abs(x).max(axis=1) / 127 if x.size else np.zeros(len(x), np.float32)
    levels = np.rint(x / np.where(scale > 0, scale, 1)[:, None])
    return np.ascontiguousarray(np.clip(levels, -127, 127), dtype=np.int8), scale.astype(np.float32)


def _pointer_suffix(pointee: str) -> str:
    """How an overloaded intrinsic's name spells a pointer argument: ``p0`` where LLVM's pointers are opaque
    (llvmlite ≥ 0.45, LLVM 20), ``p0`` + the pointee where they are typed (LLVM 14; llvmlite 0.44 says which)."""
    import llvmlite
    import llvmlite.binding as llvm

    opaque = getattr(llvmlite, "opaque_pointers_enabled", llvm.llvm_version_info[0] >= 16)
    return "p0" if opaque else f"p0{pointee}"


def _splat(builder, x, vt):
    v = builder.insert_element(ir.Constant(vt, None), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vt, None), ir.Constant(_V16, [0] * 16))


def _reduce16(builder, accs):
    """16 vectors of 16 int32 lanes → one vector whose lane ``i`` is the sum of ``accs[i]``'s lanes: pairs are
    folded, each into the halves of both (a tree of 15 folds, two shuffles and an add each)."""
    width = 16
    while len(accs) > 1:
        h = width // 2
        first = ir.Constant(_V16, [s + j for s in range(0, 32, width) for j in range(h)])
        second = ir.Constant(_V16, [s + h + j for s in range(0, 32, width) for j in range(h)])
        accs = [
            builder.add(builder.shuffle_vector(x, y, first), builder.shuffle_vector(x, y, second))
            for x, y in zip(accs[0::2], accs[1::2], strict=True)
        ]
        width = h
    return accs[0]


def _dot_vnni(builder, acc, u, s):
    """``acc`` + the products of 64 unsigned bytes ``u`` and signed bytes ``s``, four by four into 16 int32 lanes
    (``vpdpbusd``; all three as 16 × int32)."""
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V16, [_V16, _V16, _V16]), "llvm.x86.avx512.vpdpbusd.512"
    )
    return builder.call(fn, [acc, u, s])


def _dot_avx2(builder, acc, u, s):
    """``_dot_vnni`` in AVX2: ``vpmaddubsw`` (pairs into int16: exact while ``u`` ≤ 127, as 4-bit levels are;
    it saturates beyond) then ``vpmaddwd`` by ones (pairs of pairs into int32), on each 32-byte half."""
    madd_ub = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V16H, [_V32B, _V32B]), "llvm.x86.avx2.pmadd.ub.sw"
    )
    madd_wd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_V16H, _V16H]), "llvm.x86.avx2.pmadd.wd"
    )
    ub, sb = builder.bitcast(u, _V64), builder.bitcast(s, _V64)
    ones = ir.Constant(_V16H, [1] * 16)
    parts = []
    for h in (0, 1):
        take = ir.Constant(ir.VectorType(_I32, 32), list(range(32 * h, 32 * h + 32)))
        pairs = builder.call(madd_ub, [builder.shuffle_vector(ub, ub, take), builder.shuffle_vector(sb, sb, take)])
        parts.append(builder.call(madd_wd, [pairs, ones]))
    return builder.add(acc, builder.shuffle_vector(parts[0], parts[1], ir.Constant(_V16, list(range(16)))))


def _make_block(nibbles: bool, gather: bool, keep_max: bool):
    """The block intrinsic ``block(data, rows, q8, alpha, beta, book, cid, sc, out)``: for the 16 rows ``rows`` of
    ``data`` (nibble codes, 64 bytes a row: level ``j`` low, ``j + 64`` high; or int8 values, 128 a row) and every
    token ``t`` of ``q8`` (tokens, 128) int8, the 16 scores ``(Σ q8[t] · levels · alpha[t] + beta[t]) · sc``
    (``+ book[t, cid]`` when ``gather``) into ``out[t]`` (16 float32; their maximum with ``out[t]`` when
    ``keep_max``). int8 values count as ``v + 128``: ``beta`` takes ``128 · Σ q8[t] · alpha[t]`` off."""

    @intrinsic
    def block(typingctx, data, rows, q8, alpha, beta, book, cid, sc, out):
        sig = types.void(data, rows, q8, alpha, beta, book, cid, sc, out)

        def codegen(context, builder, signature, args):
            arrays = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args, args, strict=True)]
            da, ra, qa, aa, ba, bka, ca, sa, oa = arrays
            n_tokens = cgutils.unpack_tuple(builder, qa.shape)[0]
            stride = cgutils.unpack_tuple(builder, da.strides)[0]
            dot = _dot_vnni if not nibbles or (cpu_has_vnni() and MODE != "avx2") else _dot_avx2
            base = builder.bitcast(da.data, _I8.as_pointer())
            halves = []
            for k in range(16):
                row = builder.load(builder.gep(ra.data, [ir.Constant(_I64, k)]))
                at = builder.gep(base, [builder.mul(row, stride)])
                if nibbles:
                    x = builder.load(builder.bitcast(at, _V64.as_pointer()), align=1)
                    halves.append(builder.and_(x, ir.Constant(_V64, [15] * 64)))
                    halves.append(builder.lshr(x, ir.Constant(_V64, [4] * 64)))
                else:
                    for off in (0, 64):
                        p = builder.gep(at, [ir.Constant(_I64, off)])
                        x = builder.load(builder.bitcast(p, _V64.as_pointer()), align=1)
                        halves.append(builder.xor(x, ir.Constant(_V64, [128] * 64)))
            halves = [builder.bitcast(h, _V16) for h in halves]
            scales = builder.load(builder.bitcast(sa.data, _VF.as_pointer()), align=1)
            if gather:
                gty = ir.FunctionType(_VF, [_VP, _I32, _MASK, _VF])
                gather_fn = cgutils.get_or_insert_function(
                    builder.module, gty, f"llvm.masked.gather.v16f32.v16{_pointer_suffix('f32')}"
                )
                ids = builder.load(builder.bitcast(ca.data, _V16.as_pointer()), align=1)
                id_bytes = builder.mul(builder.sext(ids, _V16L), ir.Constant(_V16L, [4] * 16))
                book_row = cgutils.unpack_tuple(builder, bka.strides)[0]
                book_base = builder.ptrtoint(bka.data, _I64)
            qptr = builder.bitcast(qa.data, _V16.as_pointer())
            optr = builder.bitcast(oa.data, _VF.as_pointer())
            zero = ir.Constant(_V16, None)
            with cgutils.for_range(builder, n_tokens) as loop:
                t = loop.index
                t2 = builder.mul(t, ir.Constant(t.type, 2))
                lo = builder.load(builder.gep(qptr, [t2]), align=1)
                hi = builder.load(builder.gep(qptr, [builder.add(t2, ir.Constant(t.type, 1))]), align=1)
                sums = [dot(builder, dot(builder, zero, halves[2 * i], lo), halves[2 * i + 1], hi) for i in range(16)]
                s = builder.sitofp(_reduce16(builder, sums), _VF)
                a_t = _splat(builder, builder.load(builder.gep(aa.data, [t])), _VF)
                b_t = _splat(builder, builder.load(builder.gep(ba.data, [t])), _VF)
                x = builder.fmul(builder.fadd(builder.fmul(s, a_t), b_t), scales)
                if gather:
                    row_at = _splat(builder, builder.add(book_base, builder.mul(t, book_row)), _V16L)
                    ptrs = builder.inttoptr(builder.add(row_at, id_bytes), _VP)
                    every = ir.Constant(_MASK, [1] * 16)
                    found = builder.call(gather_fn, [ptrs, ir.Constant(_I32, 4), every, ir.Constant(_VF, None)])
                    x = builder.fadd(x, found)
                slot = builder.gep(optr, [t])
                if keep_max:
                    old = builder.load(slot, align=1)
                    x = builder.select(builder.fcmp_ordered(">", x, old), x, old)
                builder.store(x, slot, align=1)
            return context.get_dummy_value()

        return sig, codegen

    return block


@intrinsic
def _prefetch(typingctx, data, start, stop):
    """Ask the CPU to bring rows ``start:stop`` of ``data`` (2-D, rows contiguous) into the cache (a hint: the
    pooled stage's pages lie scattered, 8 KB each, too short for the hardware's prefetcher to run ahead)."""
    sig = types.void(data, start, stop)

    def codegen(context, builder, signature, args):
        da = context.make_array(signature.args[0])(context, builder, args[0])
        stride = cgutils.unpack_tuple(builder, da.strides)[0]
        base = builder.bitcast(da.data, _I8.as_pointer())
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [_I8.as_pointer(), _I32, _I32, _I32]),
            f"llvm.prefetch.{_pointer_suffix('i8')}",
        )
        first = builder.mul(args[1], stride)
        last = builder.mul(args[2], stride)
        flags = [ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)]  # read, keep, data
        with cgutils.for_range_slice(builder, first, last, ir.Constant(first.type, 64)) as (offset, _):
            builder.call(fn, [builder.gep(base, [offset]), *flags])
        return context.get_dummy_value()

    return sig, codegen


_codes_block = _make_block(nibbles=True, gather=True, keep_max=True)
_pooled_block = _make_block(nibbles=False, gather=False, keep_max=True)
_lists_block = _make_block(nibbles=False, gather=False, keep_max=False)


@_jit(inline="always")
def _sum_of_max(run):
    """The sum over tokens of each token's largest lane (MaxSim of a page from the blocks' running maxima)."""
    tot = np.float32(0.0)
    for t in range(run.shape[0]):
        m = run[t, 0]
        for k in range(1, 16):
            m = max(m, run[t, k])
        tot += m
    return tot


@_jit(inline="always")
def _query_ok(q8, alpha, beta):
    """The query's arrays as the block intrinsic reads them: rows of ``DIM`` int8 one after another, a scale and
    an offset a token."""
    n = q8.shape[0]
    return q8.shape[1] == DIM and (n < 2 or q8.strides[0] == DIM) and len(alpha) >= n and len(beta) >= n


def _uncached_if_forced(fn):
    """``_jit``, but without numba's disk cache under ``DOCRAG_KERNELS=avx2``: the cache is keyed by the CPU, not by
    that choice, so a forced AVX2 build must not stand in for this CPU's own (nor the other way round)."""
    if MODE != "avx2":
        return _jit(fn)
    return nb.njit(cache=False, nogil=True, fastmath=_FAST)(fn)


@_uncached_if_forced
def codes_maxsim_i8(q8, alpha, beta, book, records, starts, stops):
    """``codes_kernels.codes_maxsim`` at 4 bits, the query in int8 (``q8``, ``alpha``: ``quantize(a)``; ``beta``
    its ``b``; ``book`` (tokens, centroids) the query's centroid scores): MaxSim of each page
    ``records[starts[i]:stops[i]]`` of ``codes.bin`` records (-inf without vectors), or None when a page lies
    outside ``records``, an id is outside the codebook or a scale not finite (or the arrays are not the shapes
    the intrinsic reads)."""
    n_tokens = q8.shape[0]
    if not _query_ok(q8, alpha, beta) or records.shape[1] != 4 + DIM // 2 or book.shape[0] < n_tokens:
        return None
    if book.itemsize != 4 or (book.shape[1] > 1 and book.strides[1] != 4):  # the gather reads float32 rows
        return None
    codes = records[:, 4:]
    n_pages = len(starts)
    out = np.empty(n_pages, np.float32)
    run = np.empty((n_tokens, 16), np.float32)
    sc = np.empty(16, np.float32)
    cid = np.empty(16, np.int32)
    rows = np.empty(16, np.int64)
    for p in range(n_pages):
        run[:] = -np.inf
        v0, v1 = starts[p], stops[p]
        if not 0 <= v0 <= v1 <= len(records):
            return None
        for v in range(v0, v1, 16):
            m = min(16, v1 - v)
            if v + AHEAD < v1:  # a file's pages lie anywhere in memory: the hardware's prefetcher stops at each
                _prefetch(records, v + AHEAD, min(v + AHEAD + 16, v1))
            for k in range(16):  # a short block repeats its last vector: the maximum is unchanged
                w = v + min(k, m - 1)
                rows[k] = w
                cid[k], sc[k] = code_head(records, w, book.shape[1])
                if cid[k] < 0:
                    return None
            _codes_block(codes, rows, q8, alpha, beta, book, cid, sc, run)
        out[p] = _sum_of_max(run) if v1 > v0 else -np.inf
    return out


@_jit
def pooled_maxsim_i8(q8, alpha, beta, records, first, slots, out):
    """``codes_kernels.pooled_maxsim`` with the query in int8 (``quantize``; ``beta``: ``-128 · Σ q8 · alpha`` a
    token): MaxSim of pages of ``slots`` records (a multiple of 16) from ``first[i]`` into ``out[i]``. False when
    a page lies outside the file or a scale is not finite (or the arrays are not the shapes the intrinsic reads)."""
    n_tokens = q8.shape[0]
    if not _query_ok(q8, alpha, beta) or records.shape[1] != 2 + DIM or slots <= 0 or slots % 16:
        return False
    values = records[:, 2:]
    run = np.empty((n_tokens, 16), np.float32)
    sc = np.empty(16, np.float32)
    rows = np.empty(16, np.int64)
    unused = np.zeros((1, 1), np.float32)
    for p in range(len(first)):
        r0 = first[p]
        if r0 < 0 or r0 + slots > len(records):
            return False
        if p + 1 < len(first) and 0 <= first[p + 1] <= len(records) - slots:
            _prefetch(records, first[p + 1], first[p + 1] + slots)
        run[:] = -np.inf
        for v in range(r0, r0 + slots, 16):
            for k in range(16):
                rows[k] = v + k
                sc[k] = _half(records[v + k, 0], records[v + k, 1])
                if not np.isfinite(sc[k]):
                    return False
            _pooled_block(values, rows, q8, alpha, beta, unused, rows, sc, run)
        out[p] = _sum_of_max(run)
    return True


@_jit
def list_scores_i8(q8, alpha, beta, probe, starts, lscale, lvec, pos, scores):
    """Stage 1's scores with the query in int8 (``beta`` as for ``pooled_maxsim_i8``): each probed list is read
    once, for all the tokens that probe it; token ``t``'s score of the ``i``-th vector of its ``p``-th probed list
    goes to ``scores[pos[t, p] + i]``. False when a list holds a scale no float16 could be (a damaged file), or
    the arrays are not the shapes the intrinsic reads."""
    n_tokens, n_probe = probe.shape
    if not _query_ok(q8, alpha, beta) or n_tokens > q8.shape[0] or lvec.shape[1] != DIM:
        return False
    if lvec.shape[0] > 1 and lvec.strides[0] != DIM:
        return False
    flat = probe.ravel()
    order = np.argsort(flat, kind="mergesort")
    n_pairs = len(flat)  # a list's tokens: at most every (token, probe) pair, a centroid twice in a row too
    q_sub = np.empty((n_pairs, DIM), np.int8)
    a_sub = np.empty(n_pairs, np.float32)
    b_sub = np.empty(n_pairs, np.float32)
    at_sub = np.empty(n_pairs, np.int64)
    out = np.empty((n_pairs, 16), np.float32)
    rows = np.empty(16, np.int64)
    sc = np.empty(16, np.float32)
    unused = np.zeros((1, 1), np.float32)
    i = 0
    while i < len(order):
        c = flat[order[i]]
        j = i
        while j < len(order) and flat[order[j]] == c:
            u = j - i
            t, p = order[j] // n_probe, order[j] % n_probe
            q_sub[u] = q8[t]
            a_sub[u], b_sub[u], at_sub[u] = alpha[t], beta[t], pos[t, p]
            j += 1
        n_sub = j - i
        v0, v1 = starts[c], starts[c + 1]
        for v in range(v0, v1, 16):
            m = min(16, v1 - v)
            for k in range(16):
                w = v + min(k, m - 1)
                rows[k] = w
                sc[k] = lscale[w]
                if not 0.0 <= sc[k] <= 65504.0:  # a float16's copy (NaN fails too)
                    return False
            _lists_block(lvec, rows, q_sub[:n_sub], a_sub, b_sub, unused, rows, sc, out)
            for u in range(n_sub):
                at = at_sub[u] + v - v0
                for k in range(m):
                    scores[at + k] = out[u, k]
        i = j
    return True


def _frozen(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    x.flags.writeable = False
    return x


def half16(x: np.ndarray) -> np.ndarray:
    """float32s as the (n, 2) bytes of their float16 (little-endian), as the files hold scales."""
    return np.asarray(x).astype("<f2").view(np.uint8).reshape(-1, 2)


def _selftest(codes_only: bool = False) -> None:
    """Compile the kernels (the codes' only, or all three) and check each on a small random case against numpy
    (raises when one differs: an LLVM that lowers the intrinsics otherwise must not answer searches). The files'
    arrays are read-only, as a pack's maps are: the types a search compiles for."""
    rng = np.random.default_rng(0)
    q8, alpha = quantize(rng.standard_normal((3, DIM)).astype(np.float32))
    scale = rng.uniform(0.01, 0.02, 20).astype(np.float16).astype(np.float32)
    codes = rng.integers(0, 256, (20, DIM // 2)).astype(np.uint8)
    levels = np.concatenate([codes & 15, codes >> 4], axis=1).astype(np.float32)
    book = rng.standard_normal((3, 4)).astype(np.float32)
    ids = rng.integers(0, 4, 20).astype(np.uint16)
    sims = book[:, ids] + scale * ((q8 * alpha[:, None]) @ levels.T + 0.5)
    records = np.concatenate([ids.astype("<u2").view(np.uint8).reshape(-1, 2), half16(scale), codes], axis=1)
    got = codes_maxsim_i8(q8, alpha, np.full(3, 0.5, np.float32), book, _frozen(records), np.array([0]), np.array([20]))
    if got is None or abs(got[0] - sims.max(axis=1).sum()) > 1e-3:
        raise RuntimeError("the int8 codes kernel disagrees with numpy")
    if codes_only:
        return
    beta = (-128.0 * q8.sum(axis=1) * alpha).astype(np.float32)
    values = rng.integers(-127, 128, (20, DIM)).astype(np.int8)
    exact = (q8 * alpha[:, None]) @ (values * scale[:, None]).T  # (tokens, vectors)
    scores = np.empty(60, np.float32)
    pos = np.array([[0], [20], [40]], np.int64)
    probe, starts = np.zeros((3, 1), np.int64), np.array([0, 20], np.int64)
    ok = list_scores_i8(q8, alpha, beta, probe, starts, _frozen(scale), _frozen(values), pos, scores)
    if not ok or not np.allclose(scores.reshape(3, 20), exact, rtol=1e-4, atol=1e-4):
        raise RuntimeError("the int8 list kernel disagrees with numpy")
    records = np.zeros((32, 2 + DIM), np.uint8)
    records[:20, :2] = half16(scale)
    records[:20, 2:] = values.view(np.uint8)
    records[20:] = records[19]
    out = np.empty(1, np.float32)
    want = exact.max(axis=1).sum()
    if (
        not pooled_maxsim_i8(q8, alpha, beta, _frozen(records), np.zeros(1, np.int64), 32, out)
        or abs(out[0] - want) > 1e-3
    ):
        raise RuntimeError("the int8 pooled kernel disagrees with numpy")
