"""Compact rerank codes of the visual pages: flat, versioned files derived from the LanceDB tables.

Two-stage visual search reranks hundreds of candidate pages. Reading their float16 vectors by row offset through
LanceDB costs tens of milliseconds and the vectors of 100k pages (20 GiB) do not fit the page cache, so the
rerank reads *codes* instead (PLAID-style): each stored page vector is a centroid id of the first stage's codebook
(the code of the page's pooled vector nearest to it; uint16) plus its residual to that centroid, normalised per
dimension (mean and standard deviation of the first pages' residuals), scaled per vector by its largest
magnitude (float16; so nothing is clipped) and quantised uniformly to 12 bits a dimension, split in two:

- the **code** (the high 4 bits a dimension): with the id and the scale, 68 bytes a vector, about 58 KB a
  page of 850 vectors (float16: 218 KB). The rerank of hundreds of pages reads these;
- the **refinement** (the low 8 bits, a byte a dimension): read only for the best few pages, which are then
  scored at 12 bits a dimension (MaxSim within 0.0002 of exact on scores around 20: the near-ties among the best
  pages of related documents, 0.0003–0.02 apart, are told apart; at 8 bits a tenth of the queries swapped one;
  RESULTS.md, "Visual search from compact codes, third pass").

MaxSim from them is ``q·centroid`` (a column of the query × codebook product the first stage computes anyway)
plus the vector's scale times a matmul of the query, scaled per dimension, with the residual levels.

The same files hold what the first stage reads: the page keys, each page's pooled vectors (int8 with a float16
scale a vector, ``POOL_SLOTS`` a page: short pages repeat their first one, which leaves MaxSim as it is) and,
per segment, the same pooled vectors again in inverted lists by centroid (the token-level first stage scans the
lists its query tokens probe). So a query on a current pack reads no LanceDB table and a new process answers
without importing lancedb (1.6 s here).

Layout under ``<root>``:

- ``seg-<id>/``: an immutable **segment**: ``codes.bin`` (per vector: id uint16, scale float16, ``dim · 4 / 8``
  code bytes), ``refine.bin`` (``dim`` bytes a vector), ``pooled.bin`` (scale float16 + int8, ``dim`` a row),
  ``lists.bin`` (the pages' real pooled vectors sorted by centroid, in three runs: the page's index in the
  segment uint32, the scale float32, the int8 values), ``lists.idx`` (int64: where each centroid's run starts;
  one more for the end) and ``seg.json`` (sizes, CRC32s). Adding documents writes one new segment with their
  pages; kept pages stay where they are.
- ``gen-<id>/``: a **generation**, what one version of the tables holds: ``pack.json`` (format, bits, dim, the
  source tables' versions, the segments it reads, sizes, CRC32s, the database's record); ``doc_ids.json``;
  per page ``doc_index.npy``, ``page.npy`` (int32), ``rowid.npy`` (uint64, LanceDB row ids), ``where.npy``
  (int64, n × 5: segment, first vector, vectors, first pooled vector, pooled vectors); ``codebook.npy``,
  ``quant.npy`` (the residuals' mean and deviation a dimension).
  Deleting documents writes a generation without their pages: their bytes stay in the segments (tombstoned)
  until the live share of the segments falls under ``COMPACT_LIVE`` and a generation is written into one new
  segment.
- ``CURRENT`` names the current generation (replaced atomically; older generations and segments no generation
  reads are deleted then — open readers keep their file descriptors).

The root is ``<db>/visual_codes`` for a local database and ``<cache>/visual_codes/<sha256 of the URI>`` for
object storage (``cache`` as in ``indexes.accel.cache_dir``: ``$DOCRAG_CACHE_DIR``, else ``~/.cache/docrag``).

The pack is derived state: built from the tables at their versions (recorded), rebuilt by ``docrag check
--repair``, brought up to date by ``maintain`` after adds and deletes (by LanceDB row id; a new codebook
re-encodes everything). A pack whose versions differ from the tables' is not used: search reranks from the
stored vectors instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import mmap
import os
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .database import Database, is_uri, table_versions_on_disk
from .schema import CODEBOOK, META, POOLED, VISUAL

__all__ = [
    "BITS",
    "CodesError",
    "CodesFormatError",
    "CodesPack",
    "codes_root",
    "crc_of",
    "forget_pack",
    "open_current",
    "pack_state",
    "record_bytes",
    "record_from_pack",
]

log = logging.getLogger(__name__)

FORMAT = 4
BITS = 4  # code bits a dimension (RESULTS.md, "Visual rerank from compact codes": 2 bits lose recall)
FINE_BITS = 12  # residual bits a dimension: the code has the high BITS, the refinement the low 8
LEVELS = 1 << FINE_BITS
SOURCES = (VISUAL, POOLED, CODEBOOK)
FOLDER = "visual_codes"
BATCH = 1024  # pages encoded at a time
COMPACT_LIVE = 0.5  # a generation is written into one new segment when fewer of its segments' vectors are live
MAX_SEGMENTS = 32  # … or when it would read more segments than this
SEG_FILES = ("codes.bin", "refine.bin", "pooled.bin")  # records by page
LIST_FILES = ("lists.bin", "lists.idx")  # inverted lists by centroid
WHERE = ("segment", "start", "count", "pool_start", "pool_count")  # the columns of ``where.npy``
RELEASE_BYTES = 128 << 20  # mapped codes read before a pack gives their pages back (``CodesPack.release_codes``;
# the kernel maps up to 64 KB around each page read: about twice this stays resident)
REUSE_MAX = 32 << 20  # the largest buffer a thread keeps for ``CodesPack.read(reuse=True)``
POOL_SLOTS = 64  # pooled records a page (the centroid first stage keeps at most 64 pooled vectors a page)


def codes_root(uri: str) -> Path:
    """Where the codes of the database at ``uri`` live (see the module docstring)."""
    if not is_uri(uri):
        return Path(uri) / FOLDER
    from .accel import cache_dir

    return cache_dir() / FOLDER / hashlib.sha256(uri.encode()).hexdigest()[:32]


class CodesError(RuntimeError):
    """A pack that cannot be read (a missing, truncated or altered file)."""


class CodesFormatError(CodesError):
    """A pack written in another format (by another version of docrag): stale, rebuilt by the next index run."""


def crc_of(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def record_bytes(dim: int) -> dict[str, int]:
    """Bytes a vector (codes, refine) or a pooled vector (pooled) takes in each segment file."""
    return {"codes.bin": 4 + dim * BITS // 8, "refine.bin": dim * (FINE_BITS - BITS) // 8, "pooled.bin": 2 + dim}


class CodesPack:
    """One generation of the codes, opened for reading: the small arrays in RAM; the segments' inverted lists,
    pooled records and codes mapped (``np.memmap``: what a query reads counts in its resident memory, as page
    cache; the codes' pages are given back every ``RELEASE_BYTES`` read, ``release_codes``) and their refinements
    read by offset (``os.preadv``, a few pages a query: no table scan, and no file pages held)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fds: list[dict[str, int]] = []
        self._lengths: dict[tuple[int, str], int] = {}  # (segment, file): its size when the pack opened
        self._scratch = threading.local()  # per thread, the buffers of ``read(reuse=True)``
        try:
            info = json.loads((folder / "pack.json").read_text())
            if info.get("format") != FORMAT or info.get("bits") != BITS:
                raise CodesFormatError(f"{folder}: codes format {info.get('format')}, this docrag reads {FORMAT}")
            self.info = info
            self.bits, self.dim, self.n_pages = int(info["bits"]), int(info["dim"]), int(info["pages"])
            self.versions: dict[str, int] = {k: int(v) for k, v in info["versions"].items()}
            self.segments: list[str] = [str(x) for x in info["segments"]]
            self.doc_ids: list[str] = json.loads(self._checked("doc_ids.json"))
            load = {name: self._npy(name) for name in _ARRAYS}
            self.seg_info = [json.loads((folder.parent / s / "seg.json").read_text()) for s in self.segments]
            seg_sizes = {k: [_count(x[k]) for x in self.seg_info] or [0] for k in ("vectors", "pooled", "lists")}
        except CodesError:
            raise
        except Exception as exc:  # missing file, bad JSON, wrong shape or type
            raise CodesError(f"{folder}: the visual codes cannot be read ({exc})") from None
        self.doc_index, self.pages, self.rowid = load["doc_index"], load["page"], load["rowid"]
        where = load["where"].reshape(-1, len(WHERE)) if self.n_pages else np.zeros((0, len(WHERE)), np.int64)
        self.seg, self.start, self.count, self.pool_start, self.pool_count = (where[:, i] for i in range(len(WHERE)))
        self.codebook, self.mean, self.std = load["codebook"], load["quant"][0], load["quant"][1]
        self.width = self.dim * self.bits // 8
        self.sizes = record_bytes(self.dim)
        self.seg_vectors = np.array(seg_sizes["vectors"], dtype=np.int64)
        seg_pooled = np.array(seg_sizes["pooled"], dtype=np.int64)
        ok = (
            len(self.doc_index) == len(self.pages) == len(self.rowid) == len(where) == self.n_pages
            and self.codebook.shape[1:] == (self.dim,)
            and (not self.n_pages or int(self.doc_index.max()) < len(self.doc_ids))
            and (not self.n_pages or (int(self.seg.min()) >= 0 and int(self.seg.max()) < len(self.segments)))
            and bool(np.all((self.start >= 0) & (self.count >= 0) & (self.pool_start >= 0)))
            and bool(np.all(self.start + self.count <= self.seg_vectors[self.seg]))
            and bool(np.all(self.pool_start + POOL_SLOTS <= seg_pooled[self.seg]))
            and bool(np.all(self.pool_start % POOL_SLOTS == 0))
            and bool(np.all((self.pool_count >= 0) & (self.pool_count <= POOL_SLOTS)))
            and min(seg_sizes["vectors"] + seg_sizes["pooled"] + seg_sizes["lists"]) >= 0
        )
        if not ok:
            raise CodesError(f"{folder}: the visual codes are inconsistent")
        for name, x in zip(self.segments, self.seg_info, strict=True):
            fds: dict[str, int] = {}
            self._fds.append(fds)
            for fname, size in self.sizes.items():
                path = folder.parent / name / fname
                n = int(x["pooled"] if fname == "pooled.bin" else x["vectors"])
                if not path.is_file() or path.stat().st_size != n * size:
                    self.close()
                    raise CodesError(f"{folder}: the visual codes are inconsistent ({name}/{fname})")
                fds[fname] = os.open(path, os.O_RDONLY)
                self._lengths[(len(self._fds) - 1, fname)] = n * size
        self.lists = [self._lists(name, x) for name, x in zip(self.segments, self.seg_info, strict=True)]
        # each segment's pooled records mapped (the first stages read them in place: no copy, no system call)
        self.pooled_maps = [self._mapped(name, "pooled.bin") for name in self.segments]
        self.codes_maps = [self._mapped(name, "codes.bin") for name in self.segments]
        self._mapped_bytes = 0  # of the codes' maps read since they were last released
        # each segment's page index -> the pack's row (-1: deleted)
        self.rowmaps = [np.full(int(x["pooled"]) // POOL_SLOTS, -1, dtype=np.int64) for x in self.seg_info]
        for s in range(len(self.segments)):
            here = np.flatnonzero(self.seg == s)
            self.rowmaps[s][self.pool_start[here] // POOL_SLOTS] = here

    def _mapped(self, name: str, fname: str) -> np.ndarray:
        """A segment file's records, mapped read-only ((n, record bytes) uint8; its size was checked)."""
        size = self.sizes[fname]
        path = self.folder.parent / name / fname
        n = path.stat().st_size // size
        return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size)) if n else np.zeros((0, size), np.uint8)

    def _lists(self, name: str, info: dict[str, Any]) -> tuple[np.ndarray, ...]:
        """A segment's inverted lists (``lists.idx`` checked; ``lists.bin`` mapped): starts, pages, scales,
        values."""
        folder = self.folder.parent / name
        n = _count(info["lists"])
        try:
            starts = np.fromfile(folder / "lists.idx", dtype="<i8")
            ok = n >= 0 and len(starts) == len(self.codebook) + 1 and starts[0] == 0 and starts[-1] == n
            ok = ok and bool(np.all(np.diff(starts) >= 0))
            ok = ok and (folder / "lists.bin").stat().st_size == n * (8 + self.dim)
        except (OSError, ValueError):
            ok = False
        if not ok:
            self.close()
            raise CodesError(f"{self.folder}: the visual codes are inconsistent ({name}/lists)")
        if not n:
            return starts, np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros((0, self.dim), np.int8)
        path = folder / "lists.bin"
        segment = self.segments.index(name)
        self._fds[segment]["lists.bin"] = os.open(path, os.O_RDONLY)
        self._lengths[(segment, "lists.bin")] = n * (8 + self.dim)
        pages = np.memmap(path, dtype="<u4", mode="r", shape=(n,))
        scales = np.memmap(path, dtype="<f4", mode="r", offset=4 * n, shape=(n,))
        values = np.memmap(path, dtype=np.int8, mode="r", offset=8 * n, shape=(n, self.dim))
        return starts, pages, scales, values

    def _checked(self, name: str) -> bytes:
        """A generation file's bytes, read once and checked against its recorded CRC32 (the segments, GBs, are
        checked by ``verify``)."""
        data = (self.folder / name).read_bytes()
        if zlib.crc32(data) != self.info["crc32"].get(name):
            raise CodesError(f"{self.folder}: {name} does not match its checksum")
        return data

    def _npy(self, name: str) -> np.ndarray:
        data = self._checked(f"{name}.npy")
        return np.load(io.BytesIO(data), allow_pickle=False) if data else np.zeros(0)

    def close(self) -> None:
        for fds in self._fds:
            for fd in fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = []
        self.lists, self.pooled_maps, self.codes_maps = [], [], []  # the maps go with the last array that holds them

    def __del__(self) -> None:
        try:  # noqa: SIM105 (contextlib itself may be gone)
            self.close()
        except Exception:  # at interpreter exit the modules close() uses may be gone already: nothing to report
            pass

    def intact(self) -> bool:
        """Whether the segments' files are as long as when the pack opened: a file cut short under a map (by
        hand: a pack's files are never rewritten) would end the process (SIGBUS) at its first read past the end,
        so searches ask first (a system call a file: microseconds)."""
        if len(self._fds) != len(self.segments):
            return False  # closed
        try:
            sizes = {(i, name): os.fstat(fd).st_size for i, fds in enumerate(self._fds) for name, fd in fds.items()}
        except OSError:
            return False
        return all(sizes.get(key, -1) >= length for key, length in self._lengths.items())

    def release_codes(self, n_bytes: int) -> None:
        """Count ``n_bytes`` of the mapped ``codes.bin`` files as read; past ``RELEASE_BYTES`` since the last
        time, unmap what was read (``MADV_DONTNEED``: the page cache keeps the pages, a new read maps them again),
        so that this process's resident memory does not grow with every page it scores (5.8 GB at 100k pages)."""
        self._mapped_bytes += n_bytes
        if self._mapped_bytes < RELEASE_BYTES:
            return
        self._mapped_bytes = 0
        for codes in self.codes_maps:
            held = getattr(codes, "_mmap", None)
            if held is not None:
                with contextlib.suppress(OSError, ValueError):  # closed meanwhile
                    held.madvise(mmap.MADV_DONTNEED)

    @property
    def n_vectors(self) -> int:
        return int(self.count.sum())

    def key(self, i: int) -> tuple[str, int]:
        return self.doc_ids[self.doc_index[i]], int(self.pages[i])

    def read(
        self, name: str, rows: np.ndarray, pooled: bool = False, reuse: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The records of pages ``rows`` in segment file ``name``, concatenated in that order ((n, record bytes)
        uint8), and the offsets of each page in the result. ``reuse``: into this thread's buffer for ``name``,
        valid until its next ``reuse`` read of that file (a fresh buffer faults in its pages: twice the time)."""
        size = self.sizes[name]
        starts = self.pool_start if pooled else self.start
        lengths = np.full(len(rows), POOL_SLOTS, dtype=np.int64) if pooled else self.count[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        n_bytes = int(offsets[-1]) * size
        if reuse and n_bytes <= REUSE_MAX:
            held = getattr(self._scratch, name, None)
            if held is None or len(held) < n_bytes:
                held = np.empty(min(n_bytes * 5 // 4, REUSE_MAX), dtype=np.uint8)
                setattr(self._scratch, name, held)
            buf = held[:n_bytes].reshape(-1, size)
        else:
            buf = np.empty((int(offsets[-1]), size), dtype=np.uint8)
        view = memoryview(buf.reshape(-1))
        fds = [f[name] for f in self._fds]
        for seg, s, a, b in zip(
            self.seg[rows].tolist(), starts[rows].tolist(), offsets[:-1].tolist(), offsets[1:].tolist(), strict=True
        ):
            want = (b - a) * size
            if want and os.preadv(fds[seg], [view[a * size : b * size]], s * size) != want:
                raise CodesError(f"{self.folder}: {self.segments[seg]}/{name} is shorter than its record")
        return buf, offsets

    def refine(self, rows: np.ndarray, reuse: bool = False) -> np.ndarray:
        """The refinement bytes of pages ``rows`` (n, dim), in the order of ``read("codes.bin", rows)``."""
        return self.read("refine.bin", rows, reuse=reuse)[0]

    def verify(self) -> None:
        """Every file against its recorded CRC32 (a CodesError naming the first that differs)."""
        for name, crc in self.info["crc32"].items():
            path = self.folder / name
            if not path.is_file() or crc_of(path) != crc:
                raise CodesError(f"{self.folder}: {name} does not match its checksum")
        for seg, info in zip(self.segments, self.seg_info, strict=True):
            for name, crc in info["crc32"].items():
                path = self.folder.parent / seg / name
                if not path.is_file() or crc_of(path) != crc:
                    raise CodesError(f"{self.folder.parent / seg}: {name} does not match its checksum")


_ARRAYS = ("doc_index", "page", "rowid", "where", "codebook", "quant")


def _count(value: Any) -> int:
    """A count from ``seg.json``: a whole number, nothing else."""
    if type(value) is not int:
        raise TypeError(f"{value!r} is not a count")
    return value


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
    if folder is None or folder == cache.get("bad"):
        return None
    if pack is not None and pack.folder == folder:
        return None  # the same generation, for other versions: stale
    try:
        pack = CodesPack(folder)
    except CodesError as exc:
        log.warning("%s; reranking from the stored vectors (`docrag check --repair` rebuilds them)", exc)
        cache["bad"] = folder  # not opened again (nor warned about) until another generation is current
        return None
    except OSError:  # replaced while being opened
        return None
    cache["pack"] = pack
    return pack if pack.versions == versions else None


def forget_pack(cache: dict[str, Any], pack: CodesPack) -> None:
    """Stop using ``pack`` (found damaged while searching) until another generation is current."""
    cache.pop("pack", None)
    cache["bad"] = pack.folder
    pack.close()


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
    """``current``, ``stale`` (built from other versions), ``missing`` or ``corrupt`` (``verify``: the segments'
    checksums read too); ``none`` when the database has no first stage (or codebook, or visual page) to derive
    codes from."""
    versions = source_versions(db)
    if versions is None:
        return "none"
    root = codes_root(db.uri)
    folder = _current_folder(root)
    if folder is None and (root / "CURRENT").exists():
        return "corrupt"  # a name that is no generation of this folder
    if folder is None:  # none yet: expected once there is a codebook and a visual page
        return "missing" if db.count(CODEBOOK) and db.count(VISUAL) else "none"
    try:
        pack = CodesPack(folder)
        if verify:
            pack.verify()
    except CodesFormatError:
        return "stale"  # another docrag's format: rebuilt like codes out of step
    except (CodesError, OSError):
        return "corrupt"
    finally:
        with contextlib.suppress(UnboundLocalError):
            pack.close()
    return "current" if pack.versions == versions else "stale"
