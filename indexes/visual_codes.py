"""Compact rerank codes of the visual pages: a flat, versioned file set derived from the LanceDB tables.

Two-stage visual search reranks hundreds of candidate pages. Reading their float16 vectors by row offset through
LanceDB costs tens of milliseconds and the vectors of 100k pages (20 GiB) do not fit the page cache, so the
rerank reads *codes* instead (PLAID-style): each stored page vector is a centroid id of the first stage's codebook
(the code of the page's pooled vector nearest to it; uint16) plus its residual to that centroid in ``BITS`` bits a
dimension (uniform per dimension; the range from the 0.2–99.8 % quantiles of the first batch's residuals). At 128
dimensions and 4 bits a vector is 66 bytes, about 56 KB a page of 850 vectors (float16: 218 KB). MaxSim from the
codes is ``q·centroid`` (a column of the query × codebook product the first stage computes anyway) plus a matmul
of the query, scaled per dimension, with the residual nibbles.

The same folder holds what the first stage reads, flat: the page keys, each page's pooled vectors (float16) and
the centroid inverted lists over their codes. So a query on a current pack reads no LanceDB table and a new
process answers without importing lancedb (1.6 s here). Layout of one generation ``<root>/<name>/``:

- ``pack.json``: format, bits, dim, the source tables' versions, sizes, each file's CRC32, the database's record;
- ``doc_ids.json``; ``doc_index.npy``, ``page.npy`` (int32), ``rowid.npy`` (uint64, LanceDB row ids);
- ``offsets.npy`` (int64, n + 1) into ``ids.bin`` (uint16) and ``residuals.bin`` (uint8, dim · bits / 8 a row);
- ``pooled_offsets.npy`` into ``pooled.bin`` (float16, dim a row); ``codebook.npy``, ``quant.npy`` (lo, step);
- ``lists_pages.npy`` / ``lists_starts.npy``: the pages of each centroid (the first stage's inverted lists).

``<root>/CURRENT`` names the current generation (replaced atomically; older ones are deleted). The root is
``<db>/visual_codes`` for a local database and ``<cache>/visual_codes/<sha256 of the URI>`` for object storage
(``cache`` as in ``indexes.accel.cache_dir``: ``$DOCRAG_CACHE_DIR``, else ``~/.cache/docrag``).

The pack is derived state: built from the tables at their versions (recorded), rebuilt by ``docrag check
--repair``, brought up to date by ``maintain`` after adds and deletes (kept pages are copied, added ones encoded,
by LanceDB row id; a new codebook re-encodes everything). A pack whose versions differ from the tables' is not
used: search reranks from the stored vectors instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .database import Database, is_uri, table_versions_on_disk
from .schema import CODEBOOK, META, POOLED, VISUAL

__all__ = ["BITS", "CodesError", "CodesPack", "codes_root", "open_current", "pack_state", "record_from_pack"]

log = logging.getLogger(__name__)

FORMAT = 1
BITS = 4  # residual bits a dimension (RESULTS.md, "Visual rerank from compact codes": 2 bits lose recall)
SOURCES = (VISUAL, POOLED, CODEBOOK)
FOLDER = "visual_codes"
BATCH = 1024  # pages encoded at a time
QUANTILE = 0.002


def codes_root(uri: str) -> Path:
    """Where the codes of the database at ``uri`` live (see the module docstring)."""
    if not is_uri(uri):
        return Path(uri) / FOLDER
    from .accel import cache_dir

    return cache_dir() / FOLDER / hashlib.sha256(uri.encode()).hexdigest()[:32]


class CodesError(RuntimeError):
    """A pack that cannot be read (a missing, truncated or altered file)."""


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


class CodesPack:
    """One generation of the codes, opened for reading: the small arrays in RAM, the large ones read by offset
    (``os.pread``: no table scan, and no file pages held in this process's resident memory)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            info = json.loads((folder / "pack.json").read_text())
            if info.get("format") != FORMAT:
                raise CodesError(f"{folder}: codes format {info.get('format')}, this docrag reads {FORMAT}")
            self.info = info
            self.bits, self.dim, self.n_pages = int(info["bits"]), int(info["dim"]), int(info["pages"])
            self.versions: dict[str, int] = {k: int(v) for k, v in info["versions"].items()}
            self.doc_ids: list[str] = json.loads((folder / "doc_ids.json").read_text())
            load = {name: self._npy(name) for name in _ARRAYS}
        except CodesError:
            raise
        except Exception as exc:  # missing file, bad JSON, wrong shape
            raise CodesError(f"{folder}: the visual codes cannot be read ({exc})") from None
        self.doc_index, self.pages, self.rowid = load["doc_index"], load["page"], load["rowid"]
        self.offsets, self.pooled_offsets = load["offsets"], load["pooled_offsets"]
        self.codebook, self.lo, self.step = load["codebook"], load["quant"][0], load["quant"][1]
        self.list_pages, self.list_starts = load["lists_pages"], load["lists_starts"]
        self.width = self.dim * self.bits // 8
        n_vec, n_pooled = int(self.offsets[-1]), int(self.pooled_offsets[-1])
        sizes = {"ids.bin": n_vec * 2, "residuals.bin": n_vec * self.width, "pooled.bin": n_pooled * self.dim * 2}
        ok = (
            len(self.doc_index) == len(self.pages) == len(self.rowid) == self.n_pages
            and len(self.offsets) == len(self.pooled_offsets) == self.n_pages + 1
            and self.codebook.shape[1:] == (self.dim,)
            and len(self.list_starts) == len(self.codebook) + 1
            and (not self.n_pages or int(self.doc_index.max()) < len(self.doc_ids))
        )
        self._fds: dict[str, int] = {}
        for name, size in sizes.items():
            path = folder / name
            if not ok or not path.is_file() or path.stat().st_size != size:
                self.close()
                raise CodesError(f"{folder}: the visual codes are inconsistent ({name})")
            self._fds[name] = os.open(path, os.O_RDONLY)

    def _npy(self, name: str) -> np.ndarray:
        path = self.folder / f"{name}.npy"
        return np.load(path, allow_pickle=False) if path.stat().st_size else np.zeros(0)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}

    def __del__(self) -> None:
        self.close()

    @property
    def n_vectors(self) -> int:
        return int(self.offsets[-1])

    def key(self, i: int) -> tuple[str, int]:
        return self.doc_ids[self.doc_index[i]], int(self.pages[i])

    def _gather(self, name: str, offsets: np.ndarray, rows: np.ndarray, row_bytes: int) -> tuple[bytearray, np.ndarray]:
        """The byte ranges of pages ``rows`` (by their ``offsets`` into file ``name``), concatenated in that
        order, and the offsets of each page in the result."""
        starts, ends = offsets[rows], offsets[rows + 1]
        lengths = ends - starts
        out_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        buf = bytearray(int(out_offsets[-1]) * row_bytes)
        view, fd = memoryview(buf), self._fds[name]
        for s, a, b in zip(starts.tolist(), out_offsets[:-1].tolist(), out_offsets[1:].tolist(), strict=True):
            want = (b - a) * row_bytes
            if want and os.preadv(fd, [view[a * row_bytes : b * row_bytes]], s * row_bytes) != want:
                raise CodesError(f"{self.folder}: {name} is shorter than its record")
        return buf, out_offsets

    def pooled(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pooled vectors of pages ``rows`` (float16, concatenated) and their offsets."""
        buf, offs = self._gather("pooled.bin", self.pooled_offsets, rows, self.dim * 2)
        return np.frombuffer(buf, np.float16).reshape(-1, self.dim), offs

    def codes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centroid ids, residual bytes and offsets of pages ``rows``."""
        ids, offs = self._gather("ids.bin", self.offsets, rows, 2)
        res, _ = self._gather("residuals.bin", self.offsets, rows, self.width)
        return np.frombuffer(ids, np.uint16), np.frombuffer(res, np.uint8).reshape(-1, self.width), offs

    def verify(self) -> None:
        """Every file against its recorded CRC32 (a CodesError naming the first that differs)."""
        for name, crc in self.info["crc32"].items():
            path = self.folder / name
            if not path.is_file() or _crc(path) != crc:
                raise CodesError(f"{self.folder}: {name} does not match its checksum")


_ARRAYS = (
    "doc_index",
    "page",
    "rowid",
    "offsets",
    "pooled_offsets",
    "codebook",
    "quant",
    "lists_pages",
    "lists_starts",
)


def _current_folder(root: Path) -> Path | None:
    try:
        name = (root / "CURRENT").read_text().strip()
    except OSError:
        return None
    return root / name if name and "/" not in name and name not in (".", "..") else None


def source_versions(db: Database) -> dict[str, int] | None:
    """The versions of the tables the codes derive from, as the database sees them now: from the open handles
    when LanceDB is loaded, else (a local database) from the tables' folders without importing it. None when a
    table is missing."""
    if not db.connected and not is_uri(db.uri):
        return table_versions_on_disk(db.uri, [s.name for s in SOURCES])
    if not all(db.has(s) for s in SOURCES):
        return None
    return {s.name: db.version(s) for s in SOURCES}


def open_current(db: Database, cache: dict[str, Any]) -> CodesPack | None:
    """The current pack when it matches the tables' versions now, else None. ``cache`` keeps the opened pack
    between calls (one per database object)."""
    versions = source_versions(db)
    if versions is None:
        return None
    pack = cache.get("pack")
    if pack is not None and pack.versions == versions:
        return pack
    folder = _current_folder(codes_root(db.uri))
    if folder is None:
        return None
    if pack is not None and pack.folder == folder:
        return None  # the same generation, for other versions: stale
    try:
        pack = CodesPack(folder)
    except CodesError as exc:
        log.warning("%s; reranking from the stored vectors (`docrag check --repair` rebuilds them)", exc)
        return None
    except OSError:  # replaced while being opened
        return None
    cache["pack"] = pack
    return pack if pack.versions == versions else None


def record_from_pack(uri: str) -> dict[str, Any] | None:
    """The database's record as the current pack copied it, when the ``meta`` table has not changed since (a
    local database, read without LanceDB); else None."""
    if is_uri(uri):
        return None
    folder = _current_folder(codes_root(uri))
    if folder is None:
        return None
    try:
        info = json.loads((folder / "pack.json").read_text())
        stored, version = info["record"], info["meta_version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = table_versions_on_disk(uri, [META.name])
    return stored if now is not None and now[META.name] == version and isinstance(stored, dict) else None


def pack_state(db: Database, verify: bool = False) -> str:
    """``current``, ``stale`` (built from other versions), ``missing`` or ``corrupt`` (``verify``: checksums
    read too); ``none`` when the database has no first stage to derive codes from."""
    versions = source_versions(db)
    if versions is None:
        return "none"
    folder = _current_folder(codes_root(db.uri))
    if folder is None:
        return "missing"
    try:
        pack = CodesPack(folder)
        if verify:
            pack.verify()
    except (CodesError, OSError):
        return "corrupt"
    finally:
        with contextlib.suppress(UnboundLocalError):
            pack.close()
    return "current" if pack.versions == versions else "stale"
