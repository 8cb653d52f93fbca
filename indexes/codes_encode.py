"""The bytes of a segment of the visual codes (``indexes.visual_codes`` describes the layout): a vector's residual
code and refinement, a page's pooled records, and the writer of a new segment's files. Used by ``codes_build``."""

from __future__ import annotations

import json
import uuid
import zlib
from pathlib import Path

import numpy as np

from .visual_codes import (
    BITS,
    FINE_BITS,
    LEVELS,
    LIST_FILES,
    POOL_SLOTS,
    SEG_FILES,
    CodesError,
    record_bytes,
)

__all__ = ["SegmentWriter", "encode_residuals", "pooled_records", "vector_records"]


def _nibbles(levels: np.ndarray) -> np.ndarray:
    """(n, dim) values < 16 as (n, dim / 2) bytes: byte j holds dimension j (low) and j + dim / 2 (high)."""
    half = levels.shape[1] // 2
    return (levels[:, :half] | (levels[:, half:] << np.uint8(4))).astype(np.uint8)


def encode_residuals(
    vectors: np.ndarray, ids: np.ndarray, book: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, dim) vectors as residuals to their centroids ``book[ids]``, normalised (``mean``, ``std`` a dimension),
    divided by their largest magnitude (the scale, float16) and quantised to ``LEVELS`` levels over [-1, 1]:
    the scales, the codes (the levels' high ``BITS`` as (n, dim / 2) nibble bytes, ``_nibbles``) and the
    refinement (their low 8 bits, (n, dim) bytes)."""
    u = (np.asarray(vectors, np.float32) - book[ids] - mean) / std
    scale = np.maximum(np.abs(u).max(axis=1), 1e-6).astype(np.float16)
    q = np.floor((u / scale.astype(np.float32)[:, None] + 1) * (LEVELS / 2))
    q = np.clip(q, 0, LEVELS - 1).astype(np.uint16)
    return scale, _nibbles((q >> (FINE_BITS - BITS)).astype(np.uint8)), (q & 255).astype(np.uint8)


def pooled_records(vectors: np.ndarray) -> np.ndarray:
    """A page's pooled vectors as ``POOL_SLOTS`` records of ``pooled.bin``: a float16 scale (the largest
    magnitude / 127) and the int8 values; fewer vectors are padded with the first (MaxSim unchanged), none with
    zeros."""
    v = np.asarray(vectors, np.float32)
    if len(v) > POOL_SLOTS:
        raise CodesError(f"a page has {len(v)} pooled vectors, the codes hold {POOL_SLOTS}")
    out = np.zeros((POOL_SLOTS, 2 + v.shape[1]), dtype=np.uint8)
    if len(v):
        v = np.concatenate([v, np.repeat(v[:1], POOL_SLOTS - len(v), axis=0)])
        scale = (np.maximum(np.abs(v).max(axis=1), 1e-9) / 127).astype(np.float16)
        out[:, :2] = scale.astype("<f2").view(np.uint8).reshape(-1, 2)
        out[:, 2:] = np.clip(np.rint(v / scale.astype(np.float32)[:, None]), -127, 127).astype(np.int8).view(np.uint8)
    return out


class SegmentWriter:
    """A new segment's files, appended page by page (``visual_codes``: ``seg-<id>/``); the inverted lists are
    written when it closes."""

    def __init__(self, root: Path, dim: int, n_centroids: int) -> None:
        self.name = f"seg-{uuid.uuid4().hex[:12]}"
        self.folder = root / self.name
        self.folder.mkdir(parents=True)
        self.files = {n: (self.folder / n).open("wb") for n in (*SEG_FILES, *LIST_FILES)}
        self.crc = dict.fromkeys((*SEG_FILES, *LIST_FILES), 0)
        self.sizes = record_bytes(dim)
        self.dim, self.n_centroids = dim, n_centroids
        self.vectors = self.pooled = 0
        self.list_codes: list[np.ndarray] = []  # the centroid of each real pooled vector, page after page

    def _write(self, name: str, data: bytes) -> None:
        self.files[name].write(data)
        self.crc[name] = zlib.crc32(data, self.crc[name])

    def page(
        self, codes: np.ndarray, refine: np.ndarray, pooled: np.ndarray, pooled_codes: np.ndarray
    ) -> tuple[int, ...]:
        """Append one page (records of ``codes.bin``, ``refine.bin`` and ``pooled.bin``, as many of the latter
        real as ``pooled_codes``, their centroids); its ``where`` row without the segment: first vector,
        vectors, first pooled record, pooled vectors."""
        n, n_pooled = len(codes), len(pooled_codes)
        if n_pooled > POOL_SLOTS:
            raise CodesError(f"a page has {n_pooled} pooled vectors, the codes hold {POOL_SLOTS}")
        assert codes.shape[1] == self.sizes["codes.bin"] and len(refine) == n
        assert pooled.shape == (POOL_SLOTS, self.sizes["pooled.bin"])
        if n_pooled and int(np.max(pooled_codes)) >= self.n_centroids:
            raise CodesError(f"a pooled vector's code is outside the codebook ({self.n_centroids} centroids)")
        self.list_codes.append(np.asarray(pooled_codes, np.uint16))
        self._write("codes.bin", np.ascontiguousarray(codes, np.uint8).tobytes())
        self._write("refine.bin", np.ascontiguousarray(refine, np.uint8).tobytes())
        self._write("pooled.bin", np.ascontiguousarray(pooled, np.uint8).tobytes())
        out = (self.vectors, n, self.pooled, n_pooled)
        self.vectors += n
        self.pooled += POOL_SLOTS
        return out

    def abort(self) -> None:
        """Close the files without writing the lists (the segment is being removed)."""
        for f in self.files.values():
            f.close()

    def close(self) -> None:
        for name in SEG_FILES:
            self.files[name].close()
        try:
            n_lists = self._lists()
        finally:
            for name in LIST_FILES:
                self.files[name].close()
        info = {"vectors": self.vectors, "pooled": self.pooled, "lists": n_lists, "crc32": self.crc}
        (self.folder / "seg.json").write_text(json.dumps(info))

    def _lists(self) -> int:
        """Write ``lists.bin`` and ``lists.idx`` from the pooled records written (read back a block at a time):
        the real pooled vectors sorted by centroid (stable: by page within a centroid)."""
        counts = np.array([len(c) for c in self.list_codes], dtype=np.int64)
        codes = np.concatenate(self.list_codes) if self.list_codes else np.zeros(0, np.uint16)
        local = np.repeat(np.arange(len(counts), dtype=np.uint32), counts)
        slot = np.arange(len(codes)) - np.repeat(np.cumsum(counts) - counts, counts)  # within its page
        position = local.astype(np.int64) * POOL_SLOTS + slot  # its record in pooled.bin
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=self.n_centroids))]).astype("<i8")
        self._write("lists.idx", starts.tobytes())
        self._write("lists.bin", local[order].astype("<u4").tobytes())
        if len(codes):
            rec = np.dtype([("scale", "<f2"), ("v", np.int8, (self.dim,))])
            pooled = np.memmap(self.folder / "pooled.bin", dtype=rec, mode="r")
            src = position[order]
            self._write("lists.bin", pooled["scale"][src].astype("<f4").tobytes())
            for a in range(0, len(src), 1 << 20):
                self._write("lists.bin", np.ascontiguousarray(pooled["v"][src[a : a + (1 << 20)]]).tobytes())
            del pooled
        return len(codes)


def vector_records(ids: np.ndarray, scale: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each vector's record in ``codes.bin``: its centroid id (uint16), its scale (float16; little-endian) and
    its code bytes."""
    out = np.empty((len(ids), 4 + codes.shape[1]), dtype=np.uint8)
    out[:, :2] = np.ascontiguousarray(ids, "<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = np.ascontiguousarray(scale, "<f2").view(np.uint8).reshape(-1, 2)
    out[:, 4:] = codes
    return out
