"""Building and updating the visual codes (``indexes.visual_codes`` describes them). Writers only, under the
writer lock: a new generation is written next to the current one and ``CURRENT`` is switched to it last."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .codecs import arrow_to_multivectors, decode
from .database import Database, is_uri
from .schema import CODEBOOK, META, POOLED, VISUAL
from .visual_codes import (
    BATCH,
    BITS,
    FORMAT,
    QUANTILE,
    SOURCES,
    CodesError,
    CodesPack,
    _current_folder,
    codes_root,
)
from .visual_index import assign_codes

__all__ = ["check_with_codes", "drop_pack", "encode_residuals", "inverted_lists", "repair_with_codes", "update_pack"]

log = logging.getLogger(__name__)


def encode_residuals(
    vectors: np.ndarray, ids: np.ndarray, book: np.ndarray, lo: np.ndarray, step: np.ndarray, bits: int = BITS
) -> np.ndarray:
    """(n, dim) vectors as ``bits``-bit residuals to their centroids ``book[ids]``: (n, dim · bits / 8) uint8,
    byte j holding dimensions j, j + w, j + 2w, … (w = dim · bits / 8), lowest bits first."""
    levels = 1 << bits
    q = np.floor((np.asarray(vectors, np.float32) - book[ids] - lo) / step)
    q = np.clip(q, 0, levels - 1).astype(np.uint8)
    per = 8 // bits
    width = q.shape[1] // per
    out = np.zeros((len(q), width), dtype=np.uint8)
    for s in range(per):
        out |= q[:, s * width : (s + 1) * width] << np.uint8(s * bits)
    return out


def inverted_lists(page_codes: list[np.ndarray], n_centroids: int) -> tuple[np.ndarray, np.ndarray]:
    """The pages of each centroid: (pages sorted by centroid, int32; starts, int64, n_centroids + 1)."""
    lengths = np.array([len(c) for c in page_codes], dtype=np.int64)
    codes = np.concatenate(page_codes) if page_codes else np.zeros(0, np.uint16)
    page_of = np.repeat(np.arange(len(page_codes), dtype=np.int32), lengths)
    order = np.argsort(codes, kind="stable")  # uint16: a radix sort
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_centroids))]).astype(np.int64)
    return page_of[order], starts


def _nearest_ids(vectors: np.ndarray, pooled: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each vector's centroid id: the code of the page's pooled vector nearest to it (a 64-way search per page
    instead of one over the whole codebook)."""
    return codes[np.argmax(vectors @ pooled.T, axis=1)]


class _Writer:
    """A new generation's large files, appended page by page."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = {n: (folder / n).open("wb") for n in ("ids.bin", "residuals.bin", "pooled.bin")}

    def page(self, ids: np.ndarray, residuals: np.ndarray, pooled: np.ndarray) -> None:
        self.files["ids.bin"].write(np.ascontiguousarray(ids, np.uint16).tobytes())
        self.files["residuals.bin"].write(np.ascontiguousarray(residuals, np.uint8).tobytes())
        self.files["pooled.bin"].write(np.ascontiguousarray(pooled, np.float16).tobytes())

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _codebook(db: Database) -> np.ndarray | None:
    if not db.has(CODEBOOK):
        return None
    data = db.scan(CODEBOOK)
    if not data.num_rows:
        return None
    order = np.argsort(data.column("id").to_numpy())
    dim = data.schema.field("vector").type.list_size
    return data.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)[order].astype(np.float32)


def _pooled(db: Database, book: np.ndarray) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """Each page's pooled vectors (float16) and their codes (coded now where the table has none)."""
    data = db.scan(POOLED, ["doc_id", "page", "pooled", "codes"])
    vectors = arrow_to_multivectors(data.column("pooled"))
    col = data.column("codes").combine_chunks()
    offs, values = col.offsets.to_numpy(), col.values.to_numpy(zero_copy_only=False).astype(np.uint16)
    missing = col.is_null().to_numpy(zero_copy_only=False)
    keys = zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True)
    out = {}
    for i, (key, v) in enumerate(zip(keys, vectors, strict=True)):
        out[key] = (v, assign_codes(v, book) if missing[i] else values[offs[i] - offs[0] : offs[i + 1] - offs[0]])
    return out


def update_pack(db: Database, storage: str, force: bool = False) -> str:
    """Bring the codes in step with the tables: ``current`` (nothing to do), ``updated`` (pages kept by row id
    copied, new ones encoded), ``built`` (everything encoded: the first build, a new codebook, ``force``) or
    ``none`` (no first stage, or one not covering every visual page: the codes wait for it). The residual
    quantiser is kept as long as the codebook is, so an update and a rebuild write the same codes."""
    if not all(db.has(s) for s in SOURCES):
        drop_pack(db.uri)
        return "none"
    versions = {s.name: db.version(s) for s in SOURCES}
    root = codes_root(db.uri)
    old = None
    folder = _current_folder(root)
    if folder is not None:
        with contextlib.suppress(CodesError, OSError):
            old = CodesPack(folder)
    if old is not None and old.versions == versions and not force:
        return "current"
    book = _codebook(db)
    if book is None or not db.count(VISUAL):
        drop_pack(db.uri)
        return "none"
    same_book = old is not None and old.versions.get(CODEBOOK.name) == versions[CODEBOOK.name]
    same_book = same_book and old is not None and old.codebook.shape == book.shape
    # The quantiser belongs with the codebook: kept while it is (a rebuild then encodes as an update would).
    quant = (old.lo, old.step) if same_book and old is not None else None
    source = old if same_book and not force else None
    keys = db.scan(VISUAL, ["doc_id", "page", "n_vectors"], row_ids=True)
    pooled = _pooled(db, book)
    doc_col, pages = keys.column("doc_id").to_pylist(), keys.column("page").to_pylist()
    page_keys = list(zip(doc_col, pages, strict=True))
    if any(k not in pooled for k in page_keys):
        return "none"  # the first stage is being rebuilt: codes follow it
    gen = root / f"g{versions[VISUAL.name]}-{uuid.uuid4().hex[:12]}"
    gen.mkdir(parents=True)
    try:
        src = _Sources(keys, page_keys, pooled, book)
        kept = _write(db, gen, src, source, quant, storage)
        _finish(db, gen, src, versions)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    finally:
        if old is not None:
            old.close()
    how = "updated" if kept else "built"
    log.info("%s: visual codes %s (%d pages, %d kept)", db.uri, how, len(page_keys), kept)
    return how


@dataclass
class _Sources:
    """What a generation is written from: the visual table's keys (Arrow: doc_id, page, n_vectors, _rowid) in
    table order, each page's pooled vectors and codes, and the codebook."""

    keys: Any
    page_keys: list[tuple[str, int]]
    pooled: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]
    book: np.ndarray


def _write(
    db: Database,
    gen: Path,
    src: _Sources,
    old: CodesPack | None,
    quant: tuple[np.ndarray, np.ndarray] | None,
    storage: str,
) -> int:
    """Write ``ids.bin``/``residuals.bin``/``pooled.bin`` and ``offsets.npy``/``quant.npy``; the pages kept."""
    keys, page_keys, pooled, book = src.keys, src.page_keys, src.pooled, src.book
    dim = book.shape[1]
    rowids = keys.column("_rowid").to_numpy()
    n_vectors = keys.column("n_vectors").to_numpy(zero_copy_only=False).astype(np.int64)
    source = np.full(len(page_keys), -1, dtype=np.int64)  # the old pack's row of each page, or -1: encode it
    if old is not None:
        where = {int(r): i for i, r in enumerate(old.rowid.tolist())}
        for i, (r, key, n) in enumerate(zip(rowids.tolist(), page_keys, n_vectors.tolist(), strict=True)):
            j = where.get(int(r), -1)
            if j >= 0 and old.key(j) == key and int(old.offsets[j + 1] - old.offsets[j]) == n:
                source[i] = j
    lo, step = quant if quant is not None else (None, None)
    writer = _Writer(gen)
    try:
        for a in range(0, len(page_keys), BATCH):
            b = min(a + BATCH, len(page_keys))
            chunk = source[a:b]
            fresh = np.flatnonzero(chunk < 0)
            vectors: dict[int, np.ndarray] = {}
            if len(fresh):
                data = db.take(VISUAL, (a + fresh).tolist(), ["doc_id", "page", "multivector"])
                got = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
                if got != [page_keys[a + i] for i in fresh.tolist()]:
                    raise CodesError(f"{db.uri}: the visual table changed while its codes were written")
                arrays = arrow_to_multivectors(data.column("multivector"))
                for i, arr in zip(fresh.tolist(), arrays, strict=True):
                    vectors[i] = decode(arr, storage, dim, np.float32)
                if lo is None:
                    lo, step = _quantiser(vectors, page_keys[a:b], pooled, book)
            kept_rows = chunk[chunk >= 0]
            copied = iter(_copied(old, kept_rows)) if len(kept_rows) else iter(())
            for i in range(b - a):
                pv, pc = pooled[page_keys[a + i]]
                if chunk[i] >= 0:
                    ids, res = next(copied)
                else:
                    v = vectors[i]
                    ids = _nearest_ids(v, pv.astype(np.float32), pc)
                    res = encode_residuals(v, ids, book, lo, step)
                writer.page(ids, res, pv)
    finally:
        writer.close()
    np.save(gen / "offsets.npy", np.concatenate([[0], np.cumsum(n_vectors)]).astype(np.int64))
    np.save(gen / "quant.npy", np.stack([lo, step]).astype(np.float32) if lo is not None else np.zeros((2, dim)))
    return int((source >= 0).sum())


def _copied(old: CodesPack | None, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    assert old is not None
    ids, res, offs = old.codes(rows)
    return [(ids[offs[i] : offs[i + 1]], res[offs[i] : offs[i + 1]]) for i in range(len(rows))]


def _quantiser(
    vectors: dict[int, np.ndarray],
    keys: list[tuple[str, int]],
    pooled: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]],
    book: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension range of the residuals of the first pages encoded (quantiles ``QUANTILE``, 1 − it)."""
    res = []
    for i, v in list(vectors.items())[:64]:
        pv, pc = pooled[keys[i]]
        res.append(v - book[_nearest_ids(v, pv.astype(np.float32), pc)])
    r = np.concatenate(res)
    r = np.ascontiguousarray(r[:: max(1, len(r) // 50_000)].T)  # a sample is enough for two quantiles
    lo, hi = np.quantile(r, [QUANTILE, 1 - QUANTILE], axis=1)
    step = np.maximum((hi - lo) / (1 << BITS), 1e-6)
    return lo.astype(np.float32), step.astype(np.float32)


def _finish(db: Database, gen: Path, src: _Sources, versions: dict[str, int]) -> None:
    """The small files, the checksums and ``pack.json``; then ``CURRENT`` names this generation and older ones go."""
    keys, page_keys, pooled, book = src.keys, src.page_keys, src.pooled, src.book
    docs = keys.column("doc_id").combine_chunks().dictionary_encode()
    codes = [pooled[k][1] for k in page_keys]
    lists_pages, lists_starts = inverted_lists(codes, len(book))
    arrays = {
        "doc_index": docs.indices.to_numpy().astype(np.int32),
        "page": keys.column("page").to_numpy().astype(np.int32),
        "rowid": keys.column("_rowid").to_numpy().astype(np.uint64),
        "pooled_offsets": np.concatenate([[0], np.cumsum([len(pooled[k][0]) for k in page_keys])]).astype(np.int64),
        "codebook": book.astype(np.float32),
        "lists_pages": lists_pages,
        "lists_starts": lists_starts,
    }
    for name, arr in arrays.items():
        np.save(gen / f"{name}.npy", arr)
    (gen / "doc_ids.json").write_text(json.dumps(docs.dictionary.to_pylist()))
    crc = {}
    for path in sorted(gen.iterdir()):
        c = 0
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                c = zlib.crc32(chunk, c)
        crc[path.name] = c
    info = {
        "format": FORMAT,
        "bits": BITS,
        "dim": int(book.shape[1]),
        "pages": len(page_keys),
        "vectors": int(np.load(gen / "offsets.npy")[-1]),
        "versions": versions,
        "meta_version": db.version(META) if db.has(META) else None,
        "record": db.meta(),
        "crc32": crc,
    }
    (gen / "pack.json").write_text(json.dumps(info))
    tmp = gen.parent / f"CURRENT.{uuid.uuid4().hex[:8]}"
    tmp.write_text(gen.name)
    os.replace(tmp, gen.parent / "CURRENT")
    for other in gen.parent.iterdir():
        if other.is_dir() and other.name != gen.name:
            shutil.rmtree(other, ignore_errors=True)


def drop_pack(uri: str) -> None:
    """Delete the codes of the database at ``uri`` (search reranks from the stored vectors until rebuilt)."""
    shutil.rmtree(codes_root(uri), ignore_errors=True)


def _storage(db: Database) -> str:
    return str((db.meta().get("visual_index") or {}).get("storage") or "float16")


def check_with_codes(db: Database) -> dict[str, Any]:
    """``Database.check`` and the state of the visual codes (``visual_codes``: current, stale, missing, corrupt
    or none; every file read against its checksum). On a local database, codes that are not current make the
    check fail (``repair`` rebuilds them); an object store's codes are a local cache, reported only."""
    from .visual_codes import pack_state

    out = db.check()
    if all(t["ok"] for t in out["tables"].values()):
        state = pack_state(db, verify=True)
        out["visual_codes"] = state
        if state in ("stale", "missing", "corrupt") and not is_uri(db.uri):
            out["ok"] = False
    return out


def repair_with_codes(db: Database) -> dict[str, Any]:
    """``Database.repair``, then the visual codes rebuilt where they are not current (``visual_codes``: what
    ``update_pack`` did)."""
    from .visual_codes import pack_state

    out = db.repair()
    state = pack_state(db, verify=True)
    if state == "corrupt":
        drop_pack(db.uri)  # nothing of it is reused
    if state != "current":
        out["visual_codes"] = update_pack(db, _storage(db))
    return out
