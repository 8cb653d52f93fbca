"""Building and updating the visual codes (``indexes.visual_codes`` describes them). Writers only, under the
writer lock: a new generation is written next to the current one and ``CURRENT`` is switched to it last."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .codecs import arrow_to_multivectors, decode
from .codes_encode import SegmentWriter, encode_residuals, pooled_records, vector_records
from .database import Database, is_uri
from .schema import CODEBOOK, META, POOLED, VISUAL
from .sql import sql_in
from .visual_codes import (
    BATCH,
    BITS,
    COMPACT_LIVE,
    FORMAT,
    MAX_SEGMENTS,
    POOL_SLOTS,
    SOURCES,
    WHERE,
    CodesError,
    CodesPack,
    _current_folder,
    codes_root,
    crc_of,
    pack_state,
)
from .visual_index import assign_codes

__all__ = [
    "check_with_codes",
    "drop_pack",
    "repair_with_codes",
    "update_pack",
]

log = logging.getLogger(__name__)


def _nearest_ids(vectors: np.ndarray, pooled: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each vector's centroid id: the code of the page's pooled vector nearest to it (a 64-way search per page
    instead of one over the whole codebook)."""
    return codes[np.argmax(vectors @ pooled.T, axis=1)]


def _codebook(db: Database) -> np.ndarray | None:
    if not db.has(CODEBOOK):
        return None
    data = db.scan(CODEBOOK)
    if not data.num_rows:
        return None
    order = np.argsort(data.column("id").to_numpy())
    dim = data.schema.field("vector").type.list_size
    return data.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)[order].astype(np.float32)


def _pooled(
    db: Database, book: np.ndarray, docs: set[str] | None
) -> dict[tuple[str, int], tuple[np.ndarray | None, np.ndarray]]:
    """Each page's pooled vectors (float16) and their codes (coded now where the table has none). The vectors
    only of the documents ``docs`` (None: all) and of pages without codes: an update reads no more."""
    if docs is not None:
        data = db.scan(POOLED, ["doc_id", "page", "codes"])
        where = f"codes IS NULL OR {sql_in('doc_id', docs)}"
        with_vectors = db.scan(POOLED, ["doc_id", "page", "pooled"], where)
    else:
        data = with_vectors = db.scan(POOLED, ["doc_id", "page", "pooled", "codes"])
    wanted = zip(with_vectors.column("doc_id").to_pylist(), with_vectors.column("page").to_pylist(), strict=True)
    vectors = dict(zip(wanted, arrow_to_multivectors(with_vectors.column("pooled")), strict=True))
    col = data.column("codes").combine_chunks()
    offs, values = col.offsets.to_numpy(), col.values.to_numpy(zero_copy_only=False).astype(np.uint16)
    missing = col.is_null().to_numpy(zero_copy_only=False)
    keys = zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True)
    out: dict[tuple[str, int], tuple[np.ndarray | None, np.ndarray]] = {}
    for i, key in enumerate(keys):
        v = vectors.get(key)
        if missing[i]:
            out[key] = (v, assign_codes(v, book))
        else:
            out[key] = (v, values[offs[i] - offs[0] : offs[i + 1] - offs[0]])
    return out


def update_pack(db: Database, storage: str, force: bool = False) -> str:
    """Bring the codes in step with the tables: ``current`` (nothing to do), ``updated`` (pages kept by row id
    stay in their segments, new ones are encoded into a new segment, deleted ones are left out), ``built``
    (everything encoded: the first build, a new codebook, ``force``) or ``none`` (no first stage, or one not
    covering every visual page: the codes wait for it). The residual quantiser is kept as long as the codebook
    is, so an update and a rebuild write the same codes."""
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
    quant = (old.mean, old.std) if same_book and old is not None else None
    source = old if same_book and not force else None
    keys = db.scan(VISUAL, ["doc_id", "page", "n_vectors"], row_ids=True)
    doc_col, pages = keys.column("doc_id").to_pylist(), keys.column("page").to_pylist()
    page_keys = list(zip(doc_col, pages, strict=True))
    kept = _kept(source, keys, page_keys)
    fresh_docs = {page_keys[i][0] for i in np.flatnonzero(kept < 0).tolist()} if source is not None else None
    pooled = _pooled(db, book, fresh_docs)
    if any(k not in pooled for k in page_keys):
        return "none"  # the first stage is being rebuilt: codes follow it
    gen = root / f"gen-{versions[VISUAL.name]}-{uuid.uuid4().hex[:12]}"
    gen.mkdir(parents=True)
    written: list[Path] = [gen]
    try:
        src = _Sources(keys, page_keys, pooled, book, kept)
        n_kept, segments = _write(db, gen, src, source, quant, storage, written)
        _finish(db, gen, src, versions, segments)
    except BaseException:
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        if old is not None:
            old.close()
    how = "updated" if n_kept else "built"
    log.info("%s: visual codes %s (%d pages, %d kept)", db.uri, how, len(page_keys), n_kept)
    _warm(gen)
    return how


def _warm(gen: Path) -> None:
    """One search on the new pack, so that numba has compiled and cached the search kernels (about 3 s, once
    an installation) before a reader's first query needs them."""
    from .codes_search import search_rows

    try:
        pack = CodesPack(gen)
        try:
            search_rows(pack, pack.codebook[:4], 1, None, 1)
        finally:
            pack.close()
    except Exception as exc:  # the pack is written and current: a reader compiles the kernels itself
        log.warning("%s: the search kernels did not warm up (%s)", gen, exc)


@dataclass
class _Sources:
    """What a generation is written from: the visual table's keys (Arrow: doc_id, page, n_vectors, _rowid) in
    table order, each page's pooled vectors (those to encode) and codes, the codebook, and the old pack's row
    of each page (``_kept``)."""

    keys: Any
    page_keys: list[tuple[str, int]]
    pooled: dict[tuple[str, int], tuple[np.ndarray | None, np.ndarray]]
    book: np.ndarray
    kept: np.ndarray


def _kept(old: CodesPack | None, keys: Any, page_keys: list[tuple[str, int]]) -> np.ndarray:
    """The old pack's row of each page (same row id, key and size), or -1: encode it."""
    rowids = keys.column("_rowid").to_numpy()
    n_vectors = keys.column("n_vectors").to_numpy(zero_copy_only=False).astype(np.int64)
    source = np.full(len(page_keys), -1, dtype=np.int64)
    if old is not None:
        where = {int(r): i for i, r in enumerate(old.rowid.tolist())}
        for i, (r, key, n) in enumerate(zip(rowids.tolist(), page_keys, n_vectors.tolist(), strict=True)):
            j = where.get(int(r), -1)
            if j >= 0 and old.key(j) == key and int(old.count[j]) == n:
                source[i] = j
    return source


def _write(
    db: Database,
    gen: Path,
    src: _Sources,
    old: CodesPack | None,
    quant: tuple[np.ndarray, np.ndarray] | None,
    storage: str,
    written: list[Path],
) -> tuple[int, list[str]]:
    """Encode the new pages into a new segment (and copy the kept ones there too when the old segments are
    mostly tombstones, or too many); write ``where.npy`` and ``quant.npy``. The pages kept, and the segments
    the generation reads."""
    page_keys, pooled, book = src.page_keys, src.pooled, src.book
    dim = book.shape[1]
    source = src.kept
    kept_rows = source[source >= 0]
    segments: list[str] = []
    where = np.zeros((len(page_keys), len(WHERE)), dtype=np.int64)
    compact = old is None or not len(kept_rows)
    if old is not None and len(kept_rows):
        total = int(old.seg_vectors.sum())
        compact = int(old.count[kept_rows].sum()) < COMPACT_LIVE * total or len(old.segments) >= MAX_SEGMENTS
    if old is not None and not compact:  # kept pages stay where they are
        used = np.unique(old.seg[kept_rows])
        segments = [old.segments[int(i)] for i in used]
        remap = np.full(len(old.segments), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        parts = (old.start, old.count, old.pool_start, old.pool_count)
        where[source >= 0] = np.stack([remap[old.seg[kept_rows]], *(p[kept_rows] for p in parts)], axis=1)
    mean, std = quant if quant is not None else (None, None)
    seg: SegmentWriter | None = None
    try:
        for a in range(0, len(page_keys), BATCH):
            b = min(a + BATCH, len(page_keys))
            chunk = source[a:b]
            fresh = np.flatnonzero(chunk < 0)
            copy = np.flatnonzero(chunk >= 0) if compact else np.zeros(0, np.int64)
            if not len(fresh) and not len(copy):
                continue
            if seg is None:
                seg = SegmentWriter(gen.parent, dim, len(book))
                written.append(seg.folder)
                segments.append(seg.name)
            vectors = _fresh_vectors(db, a, fresh, page_keys, storage, dim)
            if mean is None and vectors:
                mean, std = _quantiser(vectors, page_keys[a:b], pooled, book)
            copied = _copied(old, chunk[copy]) if len(copy) else {}
            for i in sorted([*fresh.tolist(), *copy.tolist()]):
                pv32, pc = pooled[page_keys[a + i]]
                if chunk[i] >= 0:
                    rec, ref, pv = copied[int(chunk[i])]
                else:
                    assert pv32 is not None  # read for every page encoded (``_pooled``)
                    v = vectors[i]
                    ids = _nearest_ids(v, pv32.astype(np.float32), pc)
                    scale, codes, ref = encode_residuals(v, ids, book, mean, std)
                    rec, pv = vector_records(ids, scale, codes), pooled_records(pv32)
                where[a + i] = (len(segments) - 1, *seg.page(rec, ref, pv, pc))
    except BaseException:
        if seg is not None:
            seg.abort()
        raise
    if seg is not None:
        seg.close()
    np.save(gen / "where.npy", where)
    quant_arr = np.stack([mean, std]).astype(np.float32) if mean is not None else np.zeros((2, dim), np.float32)
    np.save(gen / "quant.npy", quant_arr)
    return len(kept_rows), segments


def _fresh_vectors(
    db: Database, a: int, fresh: np.ndarray, page_keys: list[tuple[str, int]], storage: str, dim: int
) -> dict[int, np.ndarray]:
    """The stored vectors (float32) of table rows ``a + fresh``, by position in the batch."""
    if not len(fresh):
        return {}
    data = db.take(VISUAL, (a + fresh).tolist(), ["doc_id", "page", "multivector"])
    got = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
    if got != [page_keys[a + i] for i in fresh.tolist()]:
        raise CodesError(f"{db.uri}: the visual table changed while its codes were written")
    arrays = arrow_to_multivectors(data.column("multivector"))
    return {i: decode(arr, storage, dim, np.float32) for i, arr in zip(fresh.tolist(), arrays, strict=True)}


def _copied(old: CodesPack | None, rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The old pack's records of pages ``rows``: codes, refinement and pooled vectors, by row."""
    assert old is not None
    codes, offs = old.read("codes.bin", rows)
    refine = old.refine(rows)
    pooled, _ = old.read("pooled.bin", rows, pooled=True)
    return {
        int(r): (
            codes[offs[i] : offs[i + 1]],
            refine[offs[i] : offs[i + 1]],
            pooled[i * POOL_SLOTS : (i + 1) * POOL_SLOTS],
        )
        for i, r in enumerate(rows.tolist())
    }


def _quantiser(
    vectors: dict[int, np.ndarray],
    keys: list[tuple[str, int]],
    pooled: dict[tuple[str, int], tuple[np.ndarray | None, np.ndarray]],
    book: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the residuals of the first pages encoded."""
    res = []
    for i, v in list(vectors.items())[:64]:
        pv, pc = pooled[keys[i]]
        assert pv is not None
        res.append(v - book[_nearest_ids(v, pv.astype(np.float32), pc)])
    r = np.concatenate(res)
    return r.mean(axis=0).astype(np.float32), np.maximum(r.std(axis=0), 1e-6).astype(np.float32)


def _finish(db: Database, gen: Path, src: _Sources, versions: dict[str, int], segments: list[str]) -> None:
    """The small files, the checksums and ``pack.json``; then ``CURRENT`` names this generation, and older
    generations and the segments it does not read go."""
    keys, page_keys, book = src.keys, src.page_keys, src.book
    docs = keys.column("doc_id").combine_chunks().dictionary_encode()
    arrays = {
        "doc_index": docs.indices.to_numpy().astype(np.int32),
        "page": keys.column("page").to_numpy().astype(np.int32),
        "rowid": keys.column("_rowid").to_numpy().astype(np.uint64),
        "codebook": book.astype(np.float32),
    }
    for name, arr in arrays.items():
        np.save(gen / f"{name}.npy", arr)
    (gen / "doc_ids.json").write_text(json.dumps(docs.dictionary.to_pylist()))
    info = {
        "format": FORMAT,
        "bits": BITS,
        "dim": int(book.shape[1]),
        "pages": len(page_keys),
        "vectors": int(np.sum(keys.column("n_vectors").to_numpy(zero_copy_only=False))),
        "versions": versions,
        "segments": segments,
        "meta_version": db.version(META) if db.has(META) else None,
        "record": db.meta(),
        "crc32": {path.name: crc_of(path) for path in sorted(gen.iterdir())},
    }
    (gen / "pack.json").write_text(json.dumps(info))
    tmp = gen.parent / f"CURRENT.{uuid.uuid4().hex[:8]}"
    tmp.write_text(gen.name)
    os.replace(tmp, gen.parent / "CURRENT")
    keep = {gen.name, *segments}
    for other in gen.parent.iterdir():
        if other.is_dir() and other.name not in keep:
            shutil.rmtree(other, ignore_errors=True)


def drop_pack(uri: str) -> None:
    """Delete the codes of the database at ``uri`` (search reranks from the stored vectors until rebuilt)."""
    shutil.rmtree(codes_root(uri), ignore_errors=True)


def _storage(db: Database) -> str:
    return str((db.meta().get("visual_index") or {}).get("storage") or "float16")


def check_with_codes(db: Database) -> dict[str, Any]:
    """``Database.check`` and the state of the visual codes (``visual_codes``: current, stale, missing, corrupt
    or none; every file read against its checksum). On a local database, corrupt codes make the check fail;
    stale or missing ones (a run stopped, or still running, before its upkeep) are reported: search reranks from
    the stored vectors meanwhile, and the next index run or ``repair`` brings them in step. An object store's
    codes are a local cache, reported only."""
    out = db.check()
    if all(t["ok"] for t in out["tables"].values()):
        state = pack_state(db, verify=True)
        out["visual_codes"] = state
        if state == "corrupt" and not is_uri(db.uri):
            out["ok"] = False
    return out


def repair_with_codes(db: Database) -> dict[str, Any]:
    """``Database.repair``, then the visual codes rebuilt where they are not current (``visual_codes``: what
    ``update_pack`` did)."""
    out = db.repair()
    state = pack_state(db, verify=True)
    if state == "corrupt":
        drop_pack(db.uri)  # nothing of it is reused
    if state != "current":
        out["visual_codes"] = update_pack(db, _storage(db))
    return out
