"""LanceDB storage: explicit Arrow schemas, one database directory (embedded), per-leg page search.

Tables
- ``documents``: doc_id (sha256 of the bytes), path (the first), paths (JSON: every path with these bytes), size,
  mtime, n_pages, status, metadata (JSON), indexed_at, counts (JSON: rows per table, checked by ``check``)
- ``pages``: doc_id, page, route, label, confidence, reasons (JSON), signals (JSON), text (FTS), thumbnail (WEBP),
  words (JSON: the text's words with their boxes, ``parsers.words``; for answer regions)
- ``chunks``: doc_id, page, chunk, text, vector (unified), boxes (JSON: where the chunk is on the page)
- ``images``: doc_id, page, image, bbox, vector (unified)
- ``visual``: doc_id, page, n_vectors, multivector (list<fixed_size_list<float16, 128>>; int8, or uint8 sign
  bits, as the database's ``VisualIndexSpec.storage`` says), layout (JSON: which vectors are which patches of
  the page, ``PatchGrid.to_list`` rows; null after token pooling)

Columns added since a table was made are added empty to older databases: their old rows have no regions.
- ``visual_pooled``: doc_id, page, pooled (a page's k-means centroids, float16), codes (their codebook ids;
  null until a codebook exists): the first stage of two-stage visual search, one row per ``visual`` row
- ``visual_codebook``: id, vector: the centroids the codes refer to (trained by ``maintain``)
- ``meta``: key, value (JSON): the model specs the vectors came from

The model specs are also written into each vector table's schema metadata. A reopened database re-creates
its embedders from them and refuses vectors from a different model (``ModelMismatchError``).

Opening a database reads it and nothing more: a read-only copy can be searched. ``writable=True`` (index,
remove) creates what is missing; writers hold ``writer_lock`` so that one writes at a time. A table that
cannot be read raises ``StoreError`` naming it; ``check``/``repair`` verify every table and restore the last
readable version (LanceDB keeps versions), deleting the documents whose rows that version lacks so that the
next indexing run redoes them.

Search per leg returns page candidates ``(doc_id, page, raw score)``, best first:
visual = MaxSim over the stored multivectors, exact or two-stage (``indexes/visual_index.py``);
text = cosine over chunks (a page scores its best chunk);
image = cosine over images; bm25 = LanceDB's native full-text search over page text.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .maxsim import DevicePacked, PackedDocs, maxsim_scores, resolve_backend
from .models import ModelSpec
from .visual_index import (
    PooledView,
    VisualIndexSpec,
    assign_codes,
    codebook_size,
    decode,
    encode,
    first_stage,
    hierarchical_pool,
    kmeans_pool,
    stored_width,
    train_codebook,
)

__all__ = ["Candidate", "LockTimeout", "ModelMismatchError", "Store", "StoreError", "sql_in", "sql_str"]

log = logging.getLogger(__name__)

MULTIVECTOR_DIM = 128
PREFILTER_MAX_IDS = 5000  # documents named in a doc_id IN (...) prefilter; beyond this, filter after search


class ModelMismatchError(ValueError):
    """Vectors from a different model than the one the database was built with."""


class StoreError(RuntimeError):
    """A table of the database cannot be read or written. The message names the table and what to do."""


class LockTimeout(StoreError):
    """Another process holds the database's writer lock."""


def sql_str(value: str) -> str:
    """A SQL string literal (the one quoting helper)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN (...)`` over string values; a condition that matches nothing for no values."""
    vals = sorted(set(values))
    return f"{column} IN ({', '.join(sql_str(v) for v in vals)})" if vals else "FALSE"


TABLES = ("documents", "pages", "chunks", "images", "visual")  # the tables that hold a document's rows
DERIVED = {"visual_pooled": "visual"}  # tables with one row per row of another, kept with it
POOLED, CODEBOOK = "visual_pooled", "visual_codebook"
EXACT_RAM_BYTES = 2 << 30  # exact search packs the visual vectors in RAM up to this size; streams above it
TWO_STAGE_FROM_PAGES = 20_000  # visual_search = "auto": exact below this many visual pages, two-stage from it
CODEBOOK_MIN_VECTORS = 1024  # pooled vectors needed before ``maintain`` trains a codebook
CODEBOOK_SAMPLE = 262_144  # pooled vectors the codebook is trained on
RETRAIN_GROWTH = 4.0  # retrain the codebook when the pooled vectors grew this much since it was trained
LANCE_INDEX_MIN_ROWS = 4096  # the lancedb first stage builds its IVF_PQ index from this many pages


@dataclass(frozen=True, slots=True)
class Candidate:
    doc_id: str
    page: int
    score: float
    detail: str = ""  # e.g. the chunk text or image id behind the score


def _schemas(
    unified_dim: int | None,
    meta: dict[str, str],
    visual_dim: int | None = MULTIVECTOR_DIM,
    visual_storage: str = "float16",
) -> dict[str, Any]:
    import pyarrow as pa

    base = [pa.field("doc_id", pa.string(), nullable=False), pa.field("page", pa.int32(), nullable=False)]
    out = {
        "documents": pa.schema(
            [
                pa.field("doc_id", pa.string(), nullable=False),
                pa.field("path", pa.string()),
                pa.field("paths", pa.string()),
                pa.field("size", pa.int64()),
                pa.field("mtime", pa.float64()),
                pa.field("n_pages", pa.int32()),
                pa.field("status", pa.string()),
                pa.field("metadata", pa.string()),
                pa.field("indexed_at", pa.string()),
                pa.field("counts", pa.string()),
            ]
        ),
        "pages": pa.schema(
            [
                *base,
                pa.field("route", pa.string()),
                pa.field("label", pa.string()),
                pa.field("confidence", pa.float32()),
                pa.field("reasons", pa.string()),
                pa.field("signals", pa.string()),
                pa.field("text", pa.string()),
                pa.field("thumbnail", pa.binary()),
                pa.field("words", pa.string()),
            ]
        ),
        "meta": pa.schema([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string())]),
    }
    if visual_dim:
        value = {"float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}[visual_storage]
        width = stored_width(visual_storage, visual_dim)
        out["visual"] = pa.schema(
            [
                *base,
                pa.field("n_vectors", pa.int32()),
                pa.field("multivector", pa.list_(pa.list_(value, width))),
                pa.field("layout", pa.string()),
            ],
            metadata=meta,
        )
        out[POOLED] = pa.schema(
            [
                *base,
                pa.field("pooled", pa.list_(pa.list_(pa.float16(), visual_dim))),
                pa.field("codes", pa.list_(pa.uint16())),
            ],
            metadata=meta,
        )
        out[CODEBOOK] = pa.schema(
            [pa.field("id", pa.int32(), nullable=False), pa.field("vector", pa.list_(pa.float32(), visual_dim))]
        )
    if unified_dim:
        vec = pa.field("vector", pa.list_(pa.float32(), unified_dim))
        out["chunks"] = pa.schema(
            [*base, pa.field("chunk", pa.int32()), pa.field("text", pa.string()), vec, pa.field("boxes", pa.string())],
            metadata=meta,
        )
        out["images"] = pa.schema(
            [*base, pa.field("image", pa.int32()), pa.field("bbox", pa.list_(pa.float32(), 4)), vec], metadata=meta
        )
    return out


def multivectors_to_arrow(arrays: Sequence[np.ndarray], dim: int = MULTIVECTOR_DIM, dtype: Any = np.float16) -> Any:
    """list<fixed_size_list<dtype, dim>> from (n_i, dim) arrays, without Python lists."""
    import pyarrow as pa

    flat = np.concatenate([np.asarray(a, dtype=dtype).reshape(-1, dim) for a in arrays])
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim)
    offsets = np.cumsum([0, *(len(a) for a in arrays)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def arrow_to_multivectors(column: Any) -> list[np.ndarray]:
    """The inverse: a list of (n_i, dim) arrays of the stored type (views into one buffer)."""
    col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets = col.offsets.to_numpy()
    dim = col.type.value_type.list_size
    values = col.values.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    base = offsets[0]
    return [values[offsets[i] - base : offsets[i + 1] - base] for i in range(len(col))]


def _short(exc: BaseException, width: int = 240) -> str:
    """One line of an error for a user: no Rust source locations, at most ``width`` characters."""
    import re

    text = re.sub(r",?\s*/\S+\.rs:\d+:\d+\)?", "", " ".join(str(exc).split())) or exc.__class__.__name__
    return text if len(text) <= width else text[: width - 1] + "…"


_S3_CODES = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied: check the credentials and the bucket's policy",
    "InvalidAccessKeyId": "the access key is not known to the store: check the credentials",
    "SignatureDoesNotMatch": "the secret key is wrong: check the credentials",
    "ExpiredToken": "the session token has expired",
}


def _storage_reason(exc: BaseException) -> str:
    """Object storage's error in a few words (the object store's own messages run to a screenful)."""
    import re

    text = str(exc)
    code = re.search(r"<Code>(\w+)</Code>", text)
    if code:
        return _S3_CODES.get(code.group(1), code.group(1))
    if re.search(r"Failed to get AWS credentials|FailedToLoadToken|NoCredentials", text):
        return "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or storage_options)"
    if re.search(r"did not match any known pattern", text):
        return "not a storage URI docrag can open: write s3://bucket/prefix"
    if "http://" in text and re.search(r"allow_http|AllowHttp|HTTP scheme is not allowed", text, re.I):
        return "the endpoint is http://: set AWS_ALLOW_HTTP=true (or allow_http in storage_options)"
    if re.search(r"ConnectionRefused|tcp connect error|dns error|Connect, ConnectError|timed out", text):
        host = re.search(r"uri: Some\((\w+://[^/)]+)", text)
        return f"cannot reach the storage endpoint{' ' + host.group(1) if host else ''}"
    return _short(exc)


def _connect(uri: str, storage_options: dict[str, str] | None = None) -> Any:
    """LanceDB's connection to ``uri`` (a folder, or any URI LanceDB accepts: s3://bucket/prefix …). Object
    storage takes its endpoint and credentials from ``storage_options`` or the environment (AWS_*)."""
    import lancedb

    try:
        return lancedb.connect(uri, storage_options=storage_options or None)
    except Exception as exc:
        raise StoreError(f"{uri}: cannot open the database ({_storage_reason(exc)})") from None


def _ids(doc_id: str | Sequence[str], n: int) -> list[str]:
    return [doc_id] * n if isinstance(doc_id, str) else list(doc_id)


def _columns(tbl: Any, columns: list[str]) -> Any:
    """These columns of every row, as one Arrow table (only they are read)."""
    return tbl.search().select(columns).limit(None).to_arrow()


def _batches(tbl: Any, columns: list[str], size: int) -> Iterator[Any]:
    """These columns of every row, ``size`` rows at a time."""
    yield from tbl.search().select(columns).limit(None).to_batches(size)


def _vectors_to_arrow(vectors: np.ndarray, dim: int) -> Any:
    import pyarrow as pa

    v = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), dim)


# When ``Store.maintain`` runs LanceDB's optimize on a table (see there).
OPTIMIZE_UNINDEXED_SHARE = 0.1
OPTIMIZE_SMALL_FRAGMENTS = 256


class Store:
    """One LanceDB database (a local directory, or any URI LanceDB accepts, e.g. s3://)."""

    def __init__(
        self,
        uri: str | Path,
        visual_spec: ModelSpec | None = None,
        unified_spec: ModelSpec | None = None,
        unified_dim: int | None = None,
        profile: str | None = None,
        writable: bool = True,
        visual_index: VisualIndexSpec | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.uri = str(uri)
        self.storage_options = dict(storage_options or {})
        self._lock: Any = None
        self.db = _connect(self.uri, self.storage_options)
        stored = self._read_meta()
        self._stored_meta = stored
        self.visual_spec = self._check("visual", visual_spec, stored.get("visual_spec"))
        self.unified_spec = self._check("unified", unified_spec, stored.get("unified_spec"))
        dim = stored.get("unified_dim")
        if unified_dim and dim and int(dim) != unified_dim:
            raise ModelMismatchError(f"{self.uri}: unified vectors are {dim}-d here, not {unified_dim}-d")
        self.unified_dim = int(dim or unified_dim or 0) or None
        # Multivector size: recorded since 128 stopped being the only one (older databases hold 128).
        vdim = stored.get("visual_dim", MULTIVECTOR_DIM if stored else None)
        self.visual_dim: int | None = int(vdim) if vdim else None
        self.profile = stored.get("profile") or profile
        self.visual_index = self._check_index(visual_index, stored.get("visual_index"))
        self.writable = False
        self._visual_cache: tuple[Any, list[tuple[str, int]], Any] | None = None
        self._pooled_cache: tuple[tuple[int, int], PooledView] | None = None
        self._book_cache: tuple[int, np.ndarray | None] | None = None
        self._bytes_cache: tuple[int, int] | None = None
        self.codebook_vectors = int(stored.get("codebook_vectors") or 0)  # pooled vectors it was trained on
        self._names: set[str] | None = None
        if writable:
            self.make_writable()

    @classmethod
    def unchecked(cls, uri: str | Path, storage_options: dict[str, str] | None = None) -> Store:
        """The database opened without reading its model record, for ``check`` and ``repair`` (that record may
        be what is unreadable). Searching needs the ordinary constructor."""
        self = cls.__new__(cls)
        self.storage_options, self._lock = dict(storage_options or {}), None
        self.uri, self.db = str(uri), _connect(str(uri), self.storage_options)
        self._stored_meta, self.visual_spec, self.unified_spec = {}, None, None
        self.unified_dim, self.visual_dim, self.profile = None, None, None
        self.writable, self._visual_cache, self._names = False, None, None
        self.visual_index, self._pooled_cache = VisualIndexSpec(), None
        self.first_stage = "centroids"
        self._book_cache, self._bytes_cache, self.codebook_vectors = None, None, 0
        return self

    def make_writable(self, unified_dim: int | None = None, visual_dim: int | None = None) -> None:
        """Create the missing tables and columns and record the models, where anything is missing or changed
        (a database opened this way and left unchanged is not written). A vector size not known yet (a new
        database whose models have not loaded) leaves its tables to a later call."""
        if unified_dim and not self.unified_dim:
            self.unified_dim = unified_dim
        if visual_dim and visual_dim != self.visual_dim:
            if self.count("visual"):
                raise ModelMismatchError(
                    f"{self.uri}: visual vectors are {self.visual_dim}-d here, not {visual_dim}-d"
                )
            if "visual" in self._tables():  # created empty at the old default size
                with self._writing("visual"):
                    self.db.drop_table("visual")
                self._names = None
            self.visual_dim = visual_dim
        self.writable = True
        self._write_meta()

    # -- metadata and schema -----------------------------------------------------------------------------------
    def _tables(self) -> set[str]:
        # A reader lists the tables once (a database that is still being created is listed again).
        if self._names is None or self.writable or "documents" not in self._names:
            try:
                names = self.db.list_tables()
            except Exception as exc:  # object storage: unreachable endpoint, bad credentials, no bucket
                raise StoreError(f"{self.uri}: cannot list the database's tables ({_storage_reason(exc)})") from None
            self._names = set(getattr(names, "tables", names))
        return self._names

    def list_tables(self) -> set[str]:
        """The tables there now (a StoreError when the storage cannot be listed: bad endpoint, credentials…)."""
        self._names = None
        return set(self._tables())

    def _read_meta(self) -> dict[str, Any]:
        self._names = None
        if "meta" not in self._tables():
            return {}
        with self._reading("meta"):
            rows = self.db.open_table("meta").to_arrow().to_pylist()
        return {r["key"]: json.loads(r["value"]) for r in rows}

    @staticmethod
    def stored_meta(uri: str | Path, storage_options: dict[str, str] | None = None) -> dict[str, Any]:
        """What a database says about itself (model specs, vector size, profile); {} when there is none."""
        if "://" not in str(uri) and not Path(uri).exists():
            return {}
        db = _connect(str(uri), storage_options)
        try:
            names = db.list_tables()
        except Exception as exc:
            raise StoreError(f"{uri}: cannot list the database's tables ({_storage_reason(exc)})") from None
        if "meta" not in set(getattr(names, "tables", names)):
            return {}
        return {r["key"]: json.loads(r["value"]) for r in db.open_table("meta").to_arrow().to_pylist()}

    def _meta_dict(self) -> dict[str, str]:
        out = {
            "unified_dim": json.dumps(self.unified_dim),
            "visual_dim": json.dumps(self.visual_dim),
            "profile": json.dumps(self.profile),
            "visual_index": json.dumps(self.visual_index.record()),
            "codebook_vectors": json.dumps(self.codebook_vectors),
        }
        if self.visual_spec:
            out["visual_spec"] = self.visual_spec.model_dump_json()
        if self.unified_spec:
            out["unified_spec"] = self.unified_spec.model_dump_json()
        return out

    def _write_meta(self) -> None:
        import pyarrow as pa

        meta = self._meta_dict()
        schemas = _schemas(
            self.unified_dim, {f"docrag.{k}": v for k, v in meta.items()}, self.visual_dim, self.visual_index.storage
        )
        self._names = None
        existing = self._tables()
        with self._writing("meta"):
            for name, schema in schemas.items():
                if name not in existing:
                    self.db.create_table(name, schema=schema)
                    continue
                # Columns added since the table was made (older databases): added empty.
                have = set(self.db.open_table(name).schema.names)
                missing = {f.name: f"CAST(NULL AS {'STRING' if f.type == pa.string() else 'BIGINT'})"
                           for f in schema if f.name not in have}
                if missing:
                    self.db.open_table(name).add_columns(missing)
            self._names = None
            if {k: json.loads(v) for k, v in meta.items()} == self._stored_meta:
                return  # nothing changed: no write
            table = pa.table({"key": list(meta), "value": list(meta.values())}, schema=schemas["meta"])
            self.db.open_table("meta").merge_insert("key").when_matched_update_all().when_not_matched_insert_all(
            ).execute(table)
            self._stored_meta = {k: json.loads(v) for k, v in meta.items()}

    # -- errors, locking -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self, name: str) -> Iterator[None]:
        """Any failure reading table ``name`` becomes one StoreError naming it."""
        try:
            yield
        except (StoreError, ModelMismatchError, ValueError):
            raise
        except Exception as exc:
            raise StoreError(
                f"{self.uri}: table {name!r} cannot be read ({_short(exc)}); "
                f"run `docrag check --db {self.uri} --repair`"
            ) from None

    @contextlib.contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """Any failure writing table ``name`` (full disk, read-only mount, I/O error) becomes a StoreError."""
        if not self.writable:
            raise StoreError(f"{self.uri}: opened read-only; cannot write table {name!r}")
        if getattr(self._lock, "lost", False):
            raise StoreError(
                f"{self.uri}: this writer's lock expired (it stalled longer than the lease) and another writer "
                "may have taken it; stopped writing — run the command again"
            )
        try:
            yield
        except (StoreError, ModelMismatchError):
            raise
        except Exception as exc:
            raise StoreError(f"{self.uri}: cannot write table {name!r} ({_short(exc)})") from None

    @contextlib.contextmanager
    def writer_lock(
        self, wait_s: float | None = None, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the database's writer lock (one writer at a time; ``indexes/locks.py``). A lock held by
        another process is waited for (``wait_s`` seconds, None: as long as it takes; ``on_wait`` hears who
        holds it once), then ``LockTimeout``. A local folder's lock is an ``flock`` (a killed writer never
        leaves it behind); an ``s3://`` database's is a lease object renewed while it is held (a killed
        writer's lease expires). Other object stores have no lock: writing there is refused."""
        from .locks import LockError, hold_writer_lock
        from .locks import LockTimeout as _Timeout

        try:
            with hold_writer_lock(self.uri, self.storage_options, wait_s, on_wait) as lock:
                self._lock = lock
                self._names = None
                try:
                    yield
                finally:
                    self._lock = None
        except _Timeout as exc:
            raise LockTimeout(str(exc)) from None
        except LockError as exc:
            raise StoreError(str(exc)) from None

    def _check(self, leg: str, given: ModelSpec | None, stored: Any) -> ModelSpec | None:
        if stored is None:
            return given
        stored_spec = ModelSpec.model_validate(stored if isinstance(stored, dict) else json.loads(stored))
        if given is not None and given.fingerprint() != stored_spec.fingerprint():
            raise ModelMismatchError(
                f"{self.uri} holds {leg} vectors from {stored_spec.type}:{stored_spec.model}@{stored_spec.revision}; "
                f"refusing to mix in vectors from {given.type}:{given.model}@{given.revision}. Use another --db, or "
                "re-index this one from scratch with the new model."
            )
        # Keep the run-time settings (device, batch size) the caller asked for; the vectors' identity is stored.
        return given or stored_spec

    def _check_index(self, given: VisualIndexSpec | None, stored: Any) -> VisualIndexSpec:
        """The stored visual index spec wins (it is fixed at creation; a database written before specs were
        recorded holds float16 vectors, unpooled); asking for a different storage or pooling than the stored
        one, other than the defaults, is refused. The first stage is a search-time choice: ``first_stage``
        is the given one, else the stored one."""
        default = VisualIndexSpec()
        if stored is None and self._stored_meta:
            stored = default.record()  # an existing database from before the spec was recorded
        if stored is None:
            spec = given or default
        else:
            spec = VisualIndexSpec.model_validate(stored)
            fixed = {"first_stage"}
            if given is not None and given.model_dump(exclude=fixed) not in (
                spec.model_dump(exclude=fixed), default.model_dump(exclude=fixed)
            ):
                raise ModelMismatchError(
                    f"{self.uri} stores visual vectors as {spec.record()}; it cannot be searched or extended as "
                    f"{given.record()}. Use another --db, or re-index this one from scratch."
                )
        if spec.first_stage is None:
            spec = spec.model_copy(update={"first_stage": (given and given.first_stage) or "centroids"})
        self.first_stage = (given and given.first_stage) or spec.first_stage
        return spec

    def table(self, name: str) -> Any:
        with self._reading(name):
            return self.db.open_table(name)

    # -- writing ---------------------------------------------------------------------------------------------
    def add_rows(self, name: str, rows: dict[str, Any]) -> None:
        """Append columns (a dict of equal-length arrays/lists) to table ``name`` with its schema."""
        import pyarrow as pa

        with self._writing(name):
            tbl = self.db.open_table(name)
            schema = tbl.schema
            cols = {}
            for f in schema:
                value = rows.get(f.name)
                if value is None:
                    value = [None] * len(next(iter(rows.values())))
                if f.name in ("multivector", "pooled"):
                    inner = f.type.value_type
                    cols[f.name] = multivectors_to_arrow(value, inner.list_size, inner.value_type.to_pandas_dtype())
                elif f.name == "vector":
                    cols[f.name] = _vectors_to_arrow(value, f.type.list_size)
                else:
                    cols[f.name] = pa.array(value, type=f.type)
            tbl.add(pa.table(cols, schema=schema))

    # -- documents: typed operations -------------------------------------------------------------------------
    def add_document(
        self, doc_id: str, path: str, size: int, mtime: float, n_pages: int, metadata: dict[str, Any]
    ) -> None:
        """A document's row, status ``indexing``: invisible to search until ``mark_ready``."""
        import datetime as dt

        self.add_rows(
            "documents",
            {
                "doc_id": [doc_id],
                "path": [path],
                "paths": [json.dumps([path], ensure_ascii=False)],
                "size": [size],
                "mtime": [mtime],
                "n_pages": [n_pages],
                "status": ["indexing"],
                "metadata": [json.dumps(metadata, ensure_ascii=False)],
                "indexed_at": [dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
                "counts": [None],
            },
        )

    def mark_ready(self, doc_id: str, counts: dict[str, int], paths: Sequence[str] | None = None) -> None:
        """All of a document's rows are in: it becomes visible. ``counts`` (rows per table) lets ``check``
        verify it later."""
        values: dict[str, Any] = {"status": "ready", "counts": json.dumps(counts)}
        if paths:
            values |= {"path": paths[0], "paths": json.dumps(list(paths), ensure_ascii=False)}
        with self._writing("documents"):
            self.db.open_table("documents").update(where=f"doc_id = {sql_str(doc_id)}", values=values)

    def set_paths(self, doc_id: str, paths: Sequence[str]) -> None:
        """Every path at which a document's bytes were found (the first is the one shown)."""
        with self._writing("documents"):
            self.db.open_table("documents").update(
                where=f"doc_id = {sql_str(doc_id)}",
                values={"path": paths[0], "paths": json.dumps(list(paths), ensure_ascii=False)},
            )

    def documents(self, where: str | None = None, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Document rows (``paths`` decoded to a list; old rows without it get ``[path]``)."""
        cols = list(columns) if columns else None
        if cols and "paths" in cols and "path" not in cols:
            cols.append("path")
        rows = self.rows("documents", where=where, columns=cols)
        if cols is None or "paths" in cols:
            for r in rows:  # rows written before ``paths`` existed have only ``path``
                r["paths"] = json.loads(r["paths"]) if r.get("paths") else ([r["path"]] if r.get("path") else [])
        return rows

    def page_rows(
        self, doc_ids: Iterable[str] | None = None, columns: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Page rows of these documents (None: of every document)."""
        return self.rows("pages", where=None if doc_ids is None else sql_in("doc_id", doc_ids), columns=columns)

    def thumbnail(self, doc_id: str, page: int) -> bytes | None:
        """The stored page thumbnail (WEBP bytes), or None."""
        rows = self.rows(
            "pages", where=f"doc_id = {sql_str(doc_id)} AND page = {int(page)}", columns=["thumbnail"]
        )
        return rows[0]["thumbnail"] if rows and rows[0]["thumbnail"] else None

    def row_counts(self) -> dict[str, int]:
        """Rows per table: documents, pages, chunks (text leg), images (image leg), visual (visual leg)."""
        return {name: self.count(name) for name in TABLES}

    def add_pages(self, rows: dict[str, Any]) -> None:
        self.add_rows("pages", rows)

    def add_visual(
        self,
        doc_id: str | Sequence[str],
        pages: Sequence[int],
        multivectors: Sequence[np.ndarray],
        layouts: Sequence[Sequence[Any] | None] | None = None,
    ) -> None:
        """Page multivectors, with each page's patch layout (``PatchGrid`` objects, or None) when known: it is
        kept only where the stored vectors are the embedder's own (no token pooling here)."""
        if not pages:
            return
        if self.visual_dim is None and multivectors and np.ndim(multivectors[0]) == 2:
            self.make_writable(visual_dim=int(multivectors[0].shape[1]))  # a new database learns its size
        for mv in multivectors:
            if mv.ndim != 2 or mv.shape[1] != (self.visual_dim or MULTIVECTOR_DIM):
                raise ValueError(f"multivectors must be (n, {self.visual_dim or MULTIVECTOR_DIM}); got {mv.shape}")
        spec = self.visual_index
        kept = [hierarchical_pool(np.asarray(m, np.float32), spec.pool_factor) for m in multivectors]
        ids = _ids(doc_id, len(pages))
        layout_json: list[str | None] = [None] * len(kept)
        for i, (m, k, lay) in enumerate(zip(multivectors, kept, layouts or [None] * len(kept), strict=True)):
            if lay and len(k) == len(m):
                layout_json[i] = json.dumps([g.to_list() if hasattr(g, "to_list") else list(g) for g in lay])
        self.add_rows(
            "visual",
            {
                "doc_id": ids,
                "page": list(pages),
                "n_vectors": [len(m) for m in kept],
                "multivector": [encode(m, spec.storage) for m in kept],
                "layout": layout_json,
            },
        )
        self.add_rows(POOLED, self._pooled_rows(ids, list(pages), kept))

    def _pooled_rows(self, ids: list[str], pages: list[int], vectors: Sequence[np.ndarray]) -> dict[str, Any]:
        """First-stage rows: each page's k-means centroids, and their codes when a codebook exists."""
        pooled = [kmeans_pool(v, self.visual_index.first_stage_vectors) for v in vectors]
        book = self._codebook()
        codes = [assign_codes(p, book) for p in pooled] if book is not None else [None] * len(pooled)
        return {"doc_id": ids, "page": pages, "pooled": pooled, "codes": codes}

    def _codebook(self) -> np.ndarray | None:
        """The first stage's centroids (read once per table version), or None before one is trained."""
        if CODEBOOK not in self._tables():
            return None
        tbl = self.table(CODEBOOK)
        if self._book_cache is None or self._book_cache[0] != tbl.version:
            with self._reading(CODEBOOK):
                data = tbl.to_arrow()
            book = None
            if data.num_rows:
                order = np.argsort(data.column("id").to_numpy())
                dim = data.schema.field("vector").type.list_size
                book = data.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)[order]
                book = book.astype(np.float32)
            self._book_cache = (tbl.version, book)
        return self._book_cache[1]

    def add_chunks(
        self,
        doc_id: str | Sequence[str],
        pages: Sequence[int],
        chunk_ids: Sequence[int],
        texts: Sequence[str],
        vectors: np.ndarray,
        boxes: Sequence[str | None] | None = None,
    ) -> None:
        """Chunks with their vectors, and where each is on its page (``boxes``: JSON lists, or None)."""
        if not len(pages):
            return
        self._require_dim(vectors)
        self.add_rows(
            "chunks",
            {
                "doc_id": _ids(doc_id, len(pages)),
                "page": list(pages),
                "chunk": list(chunk_ids),
                "text": list(texts),
                "vector": vectors,
                "boxes": list(boxes) if boxes is not None else [None] * len(pages),
            },
        )

    def add_images(
        self,
        doc_id: str | Sequence[str],
        pages: Sequence[int],
        bboxes: Sequence[Sequence[float]],
        vectors: np.ndarray,
        image_ids: Sequence[int] | None = None,
    ) -> None:
        if not len(pages):
            return
        self._require_dim(vectors)
        self.add_rows(
            "images",
            {
                "doc_id": _ids(doc_id, len(pages)),
                "page": list(pages),
                "image": list(image_ids) if image_ids is not None else list(range(len(pages))),
                "bbox": [list(map(float, b)) for b in bboxes],
                "vector": vectors,
            },
        )

    def _require_dim(self, vectors: np.ndarray) -> None:
        if self.unified_dim is None:
            raise ValueError("this database has no unified leg (created without unified_dim)")
        if vectors.ndim != 2 or vectors.shape[1] != self.unified_dim:
            raise ModelMismatchError(f"vectors of shape {vectors.shape} do not fit this {self.unified_dim}-d index")

    def maintain(self, force: bool = False) -> None:
        """After a run that wrote or deleted rows: keep the BM25 index current and compact fragmented tables,
        in proportion to the change.

        Ingestion writes each table a page batch at a time, and every write is a LanceDB fragment; scans slow
        down as they pile up (``benchmarks/fts.py``: 20k chunks in 834 fragments, a text-leg search took 80 ms;
        33 ms compacted).
        ``optimize`` compacts them and folds new rows into the indexes, but it rewrites every fragment below
        LanceDB's target size, i.e. most of the table, so it runs only past a threshold: a table with
        ``OPTIMIZE_SMALL_FRAGMENTS`` small fragments, or a ``pages`` table with more than
        ``OPTIMIZE_UNINDEXED_SHARE`` of its rows outside the full-text index, or ``force``. Until then
        LanceDB's flat scan covers the rows the index has not seen. (Same benchmark: 20k pages in 40 runs,
        upkeep 15 s in all against 25 s for a rebuild per run, and BM25 queries 2.4× faster at the end.)
        """
        from lancedb.index import FTS

        tables = self._tables()
        for name in ("pages", "chunks", "images", "visual", POOLED):
            if name not in tables:
                continue
            with self._writing(name):
                self._maintain_table(name, self.db.open_table(name), FTS, force)
        if POOLED in tables:
            self.build_first_stage()

    def build_first_stage(self, name: str | None = None) -> None:
        """Keep the first stage ``name`` (default: the database's) of two-stage visual search current: pooled
        rows for every visual row (older databases get them here), a codebook trained once there are enough
        pooled vectors (retrained as the collection grows ``RETRAIN_GROWTH``-fold, every page re-coded), codes
        for pages added since, and LanceDB's index for the ``lancedb`` first stage."""
        stage = first_stage(name or self.first_stage)
        n_visual, n_pooled = self.count("visual"), self.count(POOLED)
        if n_pooled != n_visual:
            self._rebuild_pooled()
        pooled = self.table(POOLED)
        if stage.needs_codebook:
            n_vectors = self._pooled_vector_count()
            trained = self.codebook_vectors if self._codebook() is not None else 0
            if n_vectors >= CODEBOOK_MIN_VECTORS and (not trained or n_vectors >= RETRAIN_GROWTH * trained):
                self._train_codebook(n_vectors)
            elif trained:
                self._code_missing(pooled)
        if stage.needs_lance_index and pooled.count_rows() >= LANCE_INDEX_MIN_ROWS:
            with self._writing(POOLED):
                if not [i for i in pooled.list_indices() if list(i.columns) == ["pooled"]]:
                    from lancedb.index import IvfPq

                    pooled.create_index("pooled", config=IvfPq(distance_type="cosine"))
                else:
                    pooled.optimize()
        self._pooled_cache = None

    def _pooled_vector_count(self) -> int:
        """Pooled vectors in the table, from the visual pages' sizes (each page keeps at most
        ``first_stage_vectors``): no pooled vector is read."""
        with self._reading("visual"):
            sizes = _columns(self.table("visual"), ["n_vectors"]).column(0).to_numpy(zero_copy_only=False)
        return int(np.minimum(sizes, self.visual_index.first_stage_vectors).sum())

    def _rebuild_pooled(self) -> None:
        """Pooled rows from the visual table (stored vectors decoded), replacing whatever was there."""
        log.info("%s: building the first stage of visual search from the stored vectors", self.uri)
        spec, dim = self.visual_index, self.visual_dim or MULTIVECTOR_DIM
        schema = _schemas(None, {}, dim, spec.storage)[POOLED]
        with self._writing(POOLED):  # a new version, not a new table: readers pinned at the old one keep it
            self.db.create_table(POOLED, schema=schema, mode="overwrite")
        self._names = None
        batches = _batches(self.table("visual"), ["doc_id", "page", "multivector"], 256)
        for batch in batches:
            mvs = arrow_to_multivectors(batch.column("multivector"))
            vecs = [decode(v, spec.storage, dim, np.float32) for v in mvs]
            self.add_rows(
                POOLED, self._pooled_rows(batch.column("doc_id").to_pylist(), batch.column("page").to_pylist(), vecs)
            )

    def _train_codebook(self, n_vectors: int) -> None:
        """Train the codebook on a sample of pooled vectors, then re-code every page (the table is rewritten)."""
        import pyarrow as pa

        rng = np.random.default_rng(0)
        data = self.table(POOLED).to_arrow()
        flat = data.column("pooled").combine_chunks().flatten()
        dim = flat.type.list_size
        vectors = flat.flatten().to_numpy().reshape(-1, dim)
        sample = vectors[np.sort(rng.choice(len(vectors), min(CODEBOOK_SAMPLE, len(vectors)), replace=False))]
        book = train_codebook(sample, codebook_size(n_vectors))
        log.info("%s: trained a %d-centroid codebook on %d pooled vectors", self.uri, len(book), len(sample))
        schemas = _schemas(None, {}, dim, self.visual_index.storage)
        codes = assign_codes(vectors, book)
        offsets = data.column("pooled").combine_chunks().offsets
        code_col = pa.ListArray.from_arrays(offsets, pa.array(codes, type=pa.uint16()))
        data = data.set_column(data.schema.get_field_index("codes"), "codes", code_col)
        with self._writing(CODEBOOK):
            ids = np.arange(len(book), dtype=np.int32)
            table = pa.table({"id": ids, "vector": _vectors_to_arrow(book, dim)}, schema=schemas[CODEBOOK])
            self.db.create_table(CODEBOOK, table, schema=schemas[CODEBOOK], mode="overwrite")
            self.db.create_table(POOLED, data.cast(schemas[POOLED]), schema=schemas[POOLED], mode="overwrite")
        self._names = None
        self._book_cache = None
        self.codebook_vectors = n_vectors
        self._write_meta()

    def _code_missing(self, pooled: Any) -> None:
        """Codes for pooled rows written before the codebook existed or while it was being trained."""
        book = self._codebook()
        if book is None:
            return
        with self._reading(POOLED):
            rows = pooled.search().where("codes IS NULL").select(["doc_id", "page", "pooled"]).limit(None).to_arrow()
        if not rows.num_rows:
            return
        vecs = arrow_to_multivectors(rows.column("pooled"))
        docs = rows.column("doc_id").to_pylist()
        with self._writing(POOLED):
            pooled.delete(f"codes IS NULL AND {sql_in('doc_id', docs)}")
        self.add_rows(
            POOLED,
            {"doc_id": docs, "page": rows.column("page").to_pylist(), "pooled": vecs,
             "codes": [assign_codes(v, book) for v in vecs]},
        )

    def _maintain_table(self, name: str, tbl: Any, fts_config: Any, force: bool) -> None:
        run = force or self._small_fragments(tbl) >= OPTIMIZE_SMALL_FRAGMENTS
        if name == "pages":
            fts = [i for i in tbl.list_indices() if i.index_type == "FTS" and list(i.columns) == ["text"]]
            if not fts:
                if tbl.count_rows():
                    tbl.create_index("text", config=fts_config(), replace=True)
                return
            stats = tbl.index_stats(fts[0].name)
            indexed, unindexed = (stats.num_indexed_rows, stats.num_unindexed_rows) if stats else (0, 1)
            run = run or unindexed > OPTIMIZE_UNINDEXED_SHARE * max(indexed, 1)
        if run:
            tbl.optimize()

    @staticmethod
    def _small_fragments(tbl: Any) -> int:
        try:
            return int(tbl.stats()["fragment_stats"]["num_small_fragments"])
        except (KeyError, TypeError, AttributeError):
            return 0

    def delete_document(self, doc_id: str) -> None:
        self.delete_documents([doc_id])

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        """Every row of these documents, the ``documents`` row last (so a failure midway leaves the document
        there, not ready or re-done, rather than rows without a document)."""
        cond = sql_in("doc_id", doc_ids)
        if cond == "FALSE":
            return
        for name in (*TABLES[1:], *DERIVED, "documents"):
            if name in self._tables():
                with self._writing(name):
                    self.db.open_table(name).delete(cond)
        self._visual_cache = self._pooled_cache = None

    # -- verification and repair -----------------------------------------------------------------------------
    def _read_all(self, tbl: Any) -> int:
        """Read every column of every row (in batches); returns the row count. Raises on unreadable data."""
        n = 0
        for batch in tbl.search().limit(None).to_batches(4096):
            n += batch.num_rows
        return n

    def check(self) -> dict[str, Any]:
        """Verify every table (every row read) and every ready document's row counts; changes nothing."""
        tables: dict[str, Any] = {}
        for name in sorted(self._tables()):
            try:
                tbl = self.db.open_table(name)
                tables[name] = {"ok": True, "rows": self._read_all(tbl), "version": tbl.version}
            except Exception as exc:
                tables[name] = {"ok": False, "error": _short(exc)}
        out: dict[str, Any] = {"db": self.uri, "tables": tables, "inconsistent_documents": []}
        if all(t["ok"] for t in tables.values()):
            out["inconsistent_documents"] = self._inconsistent()
        out["ok"] = all(t["ok"] for t in tables.values()) and not out["inconsistent_documents"]
        pooled, visual = tables.get(POOLED, {}).get("rows"), tables.get("visual", {}).get("rows")
        if visual:  # derived: an incomplete first stage is searched exactly and rebuilt by the next index run
            out["first_stage_complete"] = pooled == visual
        return out

    def _inconsistent(self) -> list[str]:
        """Ready documents whose rows in some table differ from the counts recorded when they became ready,
        and doc_ids with rows but no document row (orphans)."""
        docs = self.rows("documents", columns=["doc_id", "status", "counts"])
        known = {d["doc_id"] for d in docs}
        have: dict[str, dict[str, int]] = {}
        for name in TABLES[1:]:
            if name not in self._tables():
                continue
            for r in self.db.open_table(name).search().select(["doc_id"]).limit(None).to_arrow().to_pylist():
                have.setdefault(r["doc_id"], {}).setdefault(name, 0)
                have[r["doc_id"]][name] += 1
        bad = sorted(d for d in have if d not in known)
        for d in docs:
            if d["status"] != "ready" or not d.get("counts"):
                continue
            want = json.loads(d["counts"])
            got = have.get(d["doc_id"], {})
            if any(got.get(t, 0) != n for t, n in want.items()):
                bad.append(d["doc_id"])
        return bad

    def repair(self) -> dict[str, Any]:
        """Restore every unreadable table to its newest readable version, then delete the documents whose
        rows do not match (and orphan rows): they are indexed again by the next run. Needs ``writable``."""
        restored: dict[str, Any] = {}
        for name, info in self.check()["tables"].items():
            if info["ok"]:
                continue
            with self._writing(name):
                tbl = self.db.open_table(name)
                versions = sorted((v["version"] for v in tbl.list_versions()), reverse=True)
                for v in versions[1:]:
                    try:
                        tbl.checkout(v)
                        self._read_all(tbl)
                    except Exception:
                        continue
                    tbl.restore(v)
                    restored[name] = v
                    break
                else:
                    raise StoreError(f"{self.uri}: no readable version of table {name!r} is left")
        self._visual_cache = self._pooled_cache = None
        bad = self._inconsistent()
        self.delete_documents(bad)
        # The first stage is derived from the visual rows: when a restore put it out of step, drop it (search
        # is exact meanwhile; the next indexing run's upkeep rebuilds it and trains a codebook again).
        if POOLED in self._tables() and (
            {POOLED, CODEBOOK, "visual"} & set(restored) or self.count(POOLED) != self.count("visual")
        ):
            with self._writing(POOLED):
                for name in (POOLED, CODEBOOK):
                    if name in self._tables():
                        self.db.drop_table(name)
            self._names = None
            return {"restored": restored, "deleted_documents": bad, "first_stage_dropped": True}
        return {"restored": restored, "deleted_documents": bad}

    # -- search ------------------------------------------------------------------------------------------------
    def _visual_arrays(self, backend: str = "auto") -> tuple[list[tuple[str, int]], PackedDocs | DevicePacked]:
        """All visual pages, decoded and packed once per table version (reads only after writes): in RAM, or
        resident on the GPU when the backend is torch on CUDA (one matmul per chunk there)."""
        tbl = self.table("visual")
        version = (tbl.version, resolve_backend(backend))
        if self._visual_cache is None or self._visual_cache[0] != version:
            with self._reading("visual"):
                data = tbl.to_arrow().select(["doc_id", "page", "multivector"])
            keys = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
            arrays = self._decode(data.column("multivector")) if len(keys) else []
            packed: PackedDocs | DevicePacked = PackedDocs(arrays)
            if version[1] == "torch" and arrays:
                import torch

                if torch.cuda.is_available():
                    packed = DevicePacked(arrays)
            self._visual_cache = (version, keys, packed)
        return self._visual_cache[1], self._visual_cache[2]

    def _decode(self, column: Any) -> list[np.ndarray]:
        spec, dim = self.visual_index, self.visual_dim or MULTIVECTOR_DIM
        return [decode(a, spec.storage, dim) for a in arrow_to_multivectors(column)]

    def visual_vector_bytes(self) -> int:
        """Bytes the visual vectors take in RAM as float16 (what exact search packs); read once per version
        of the visual table (every visual search asks)."""
        if not self.count("visual"):
            return 0
        tbl = self.table("visual")
        if self._bytes_cache is None or self._bytes_cache[0] != tbl.version:
            with self._reading("visual"):
                col = _columns(tbl, ["n_vectors"]).column(0)
            n = int(np.sum(col.to_numpy(zero_copy_only=False))) * (self.visual_dim or MULTIVECTOR_DIM) * 2
            self._bytes_cache = (tbl.version, n)
        return self._bytes_cache[1]

    def visual_method(self, method: str = "auto") -> str:
        """``exact`` or ``two-stage`` for ``method`` (``auto``: two-stage from ``TWO_STAGE_FROM_PAGES`` pages,
        or once the vectors exceed ``EXACT_RAM_BYTES``, where exact search would stream them from disk)."""
        if method not in ("auto", "exact", "two-stage"):
            raise ValueError(f"unknown visual search {method!r}: use auto, exact or two-stage")
        if method == "auto":  # exact while the vectors fit in RAM and the collection is small
            large = self.count("visual") >= TWO_STAGE_FROM_PAGES or self.visual_vector_bytes() > EXACT_RAM_BYTES
            method = "two-stage" if large else "exact"
        if method == "two-stage" and self.count(POOLED) != self.count("visual"):
            # An older database, or a run stopped before its upkeep: the first stage does not cover every page
            # yet (``maintain`` rebuilds it). Exact search covers them all.
            log.info("%s: the first stage of visual search is incomplete; searching exactly", self.uri)
            return "exact"
        return method

    def search_visual(
        self,
        query_vectors: np.ndarray | Sequence[np.ndarray],
        k: int = 10,
        allowed: set[str] | None = None,
        backend: str = "auto",
        method: str = "exact",
        candidates: int = 96,
        stage: str | None = None,
    ) -> list[list[Candidate]]:
        """MaxSim of each query (n_tokens, dim) against the stored visual pages, best ``k`` first.

        ``exact``: every page is scored (packed in RAM up to ``EXACT_RAM_BYTES``, streamed from disk above).
        ``two-stage``: the database's first stage proposes ``candidates`` pages, scored exactly from their
        stored vectors (``stage``: another first stage than the database's). ``auto``: exact below
        ``TWO_STAGE_FROM_PAGES`` pages. Scores are exact MaxSim either way.
        """
        queries = [query_vectors] if isinstance(query_vectors, np.ndarray) else list(query_vectors)
        if not self.count("visual"):
            return [[] for _ in queries]
        method = self.visual_method(method)
        if method == "two-stage":
            return [self._two_stage(q, k, allowed, max(candidates, k), backend, stage) for q in queries]
        if self.visual_vector_bytes() > EXACT_RAM_BYTES:
            return self._exact_streamed(queries, k, allowed, backend)
        keys, packed = self._visual_arrays(backend)
        if not keys:
            return [[] for _ in queries]
        scores = maxsim_scores(queries, packed, backend=backend)  # (n_queries, n_pages)
        if allowed is not None:
            hidden = np.array([d not in allowed for d, _ in keys])
            scores[:, hidden] = -np.inf
        return [self._best(row, keys, k) for row in scores]

    @staticmethod
    def _best(scores: np.ndarray, keys: Sequence[tuple[str, int]], k: int) -> list[Candidate]:
        top = np.argsort(-scores, kind="stable")[:k]
        return [Candidate(keys[i][0], keys[i][1], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _exact_streamed(
        self, queries: list[np.ndarray], k: int, allowed: set[str] | None, backend: str
    ) -> list[list[Candidate]]:
        """Exact MaxSim reading the visual table in batches (bounded memory, one pass for all queries)."""
        best: list[list[Candidate]] = [[] for _ in queries]
        with self._reading("visual"):
            batches = _batches(self.table("visual"), ["doc_id", "page", "multivector"], 2048)
            for batch in batches:
                keys = list(zip(batch.column("doc_id").to_pylist(), batch.column("page").to_pylist(), strict=True))
                scores = maxsim_scores(queries, self._decode(batch.column("multivector")), backend=backend)
                if allowed is not None:
                    scores[:, np.array([d not in allowed for d, _ in keys])] = -np.inf
                for i, row in enumerate(scores):
                    merged = best[i] + self._best(row, keys, k)
                    best[i] = sorted(merged, key=lambda c: -c.score)[:k]
        return best

    def _visual_offsets(self, view: PooledView) -> tuple[Any, dict[tuple[str, int], int] | None]:
        """The visual table (pinned at one version) and each page's row offset in it: None when its rows are
        in the pooled table's order (written together, as usual), so that a pooled position is the offset.
        Kept with the view (one pooled version) per visual version."""
        tbl = self.table("visual")

        def build() -> tuple[Any, dict[tuple[str, int], int] | None]:
            with self._reading("visual"):
                data = _columns(tbl, ["doc_id", "page"])
            docs, pages = data.column("doc_id").combine_chunks(), data.column("page").combine_chunks()
            if docs.equals(view.doc_column) and pages.equals(view.page_column):
                return tbl, None
            return tbl, {key: i for i, key in enumerate(zip(docs.to_pylist(), pages.to_pylist(), strict=True))}

        return view.memo(f"visual_offsets@{tbl.version}", build)

    def _pooled_view(self) -> PooledView:
        """The first stage's view of the pooled table, rebuilt when it or the codebook changes."""
        tbl = self.table(POOLED)
        book = self._codebook()
        version = (tbl.version, self._book_cache[0] if self._book_cache else -1)
        if self._pooled_cache is not None and self._pooled_cache[0] == version:
            return self._pooled_cache[1]
        view = PooledView(tbl, book, lambda allowed: self._prefilter(None, allowed), lambda: self._reading(POOLED))
        self._pooled_cache = (version, view)
        return view

    def _two_stage(
        self, query: np.ndarray, k: int, allowed: set[str] | None, n: int, backend: str, stage: str | None
    ) -> list[Candidate]:
        view = self._pooled_view()
        mask = view.mask(allowed)
        if mask is not None and int(mask.sum()) <= n:
            positions = np.flatnonzero(mask).tolist()  # a small subset: score all of it exactly
        else:
            positions = first_stage(stage or self.first_stage).candidates(view, query, n, allowed)
        return self.rerank_visual(query, view, positions, k, backend)

    def rerank_visual(
        self, query: np.ndarray, view: PooledView, positions: Sequence[int], k: int, backend: str = "auto"
    ) -> list[Candidate]:
        """Exact MaxSim of one query against the pages at these pooled-table ``positions``, their stored
        vectors read by row offset from the visual table."""
        tbl, offsets = self._visual_offsets(view)
        if offsets is None:
            found = sorted({int(p) for p in positions})
        else:
            keys = (view.key(p) for p in positions)
            found = sorted({offsets[key] for key in keys if key in offsets})
        if not found:
            return []
        with self._reading("visual"):
            data = tbl.take_offsets(found).select(["doc_id", "page", "multivector"]).to_arrow()
        got = list(zip(data.column("doc_id").to_pylist(), data.column("page").to_pylist(), strict=True))
        scores = maxsim_scores([query], self._decode(data.column("multivector")), backend=backend)[0]
        return self._best(scores, got, k)

    @staticmethod
    def _prefilter(where: str | None, allowed: set[str] | None) -> str | None:
        """SQL for LanceDB's prefilter: ``where`` and, for a subset of documents, ``doc_id IN (...)``.

        Filtering before the search (not after) keeps k results when most rows are excluded. Very large
        subsets are filtered after the search instead (the IN list would dwarf the query).
        """
        parts = [f"({where})"] if where else []
        if allowed is not None and len(allowed) <= PREFILTER_MAX_IDS:
            ids = ", ".join("'" + d.replace("'", "''") + "'" for d in sorted(allowed)) or "''"
            parts.append(f"doc_id IN ({ids})")
        return " AND ".join(parts) or None

    def _vector_leg(
        self, name: str, vector: np.ndarray, k: int, where: str | None, detail_col: str, allowed: set[str] | None
    ) -> list[Candidate]:
        if self.unified_dim is None or not self.count(name):
            return []
        q = self.table(name).search(np.asarray(vector, np.float32), vector_column_name="vector").metric("cosine")
        sql = self._prefilter(where, allowed)
        if sql:
            q = q.where(sql, prefilter=True)
        with self._reading(name):
            rows = q.limit(max(k * 4, 20)).to_arrow().to_pylist()
        best: dict[tuple[str, int], Candidate] = {}
        for r in rows:
            if allowed is not None and r["doc_id"] not in allowed:
                continue
            key = (r["doc_id"], r["page"])
            score = 1.0 - float(r["_distance"])  # cosine similarity
            if key not in best or score > best[key].score:
                best[key] = Candidate(key[0], key[1], score, str(r.get(detail_col, "")))
        return sorted(best.values(), key=lambda c: -c.score)[:k]

    def search_text(
        self, vector: np.ndarray, k: int = 10, where: str | None = None, allowed: set[str] | None = None
    ) -> list[Candidate]:
        """Cosine over chunk vectors; a page's score is its best chunk (the chunk text is the detail)."""
        return self._vector_leg("chunks", vector, k, where, "text", allowed)

    def search_images(
        self, vector: np.ndarray, k: int = 10, where: str | None = None, allowed: set[str] | None = None
    ) -> list[Candidate]:
        return self._vector_leg("images", vector, k, where, "image", allowed)

    def search_bm25(
        self, query: str, k: int = 10, where: str | None = None, allowed: set[str] | None = None
    ) -> list[Candidate]:
        """BM25 over page text (text layer or OCR) with LanceDB's native full-text index."""
        if not self.count("pages") or not query.strip():
            return []
        tbl = self.table("pages")
        q = tbl.search(query, query_type="fts")
        sql = self._prefilter(where, allowed)
        if sql:
            q = q.where(sql, prefilter=True)
        try:
            rows = q.limit(max(k * 2, 20)).select(["doc_id", "page", "_score"]).to_arrow().to_pylist()
        except Exception as exc:  # no FTS index yet, or a query the parser rejects
            log.info("bm25 leg unavailable: %s", exc)
            return []
        out = [
            Candidate(r["doc_id"], r["page"], float(r["_score"]))
            for r in rows
            if allowed is None or r["doc_id"] in allowed
        ]
        return out[:k]

    # -- answer regions: what each leg's rows say about where on the page ----------------------------------------
    def _page_where(self, doc_id: str, page: int) -> str:
        return f"doc_id = {sql_str(doc_id)} AND page = {int(page)}"

    def page_words(self, doc_id: str, page: int) -> list[list[Any]] | None:
        """A page's stored words (``parsers.words.encode_words`` rows; None when not stored)."""
        rows = self.rows("pages", self._page_where(doc_id, page), ["words"])
        return json.loads(rows[0]["words"]) if rows and rows[0].get("words") else None

    def page_size(self, doc_id: str, page: int) -> tuple[float, float]:
        """A page's size in points (0, 0 when unknown)."""
        rows = self.rows("pages", self._page_where(doc_id, page), ["signals"])
        sig = json.loads(rows[0].get("signals") or "{}") if rows else {}
        return float(sig.get("width_pt", 0)), float(sig.get("height_pt", 0))

    def chunk_boxes(self, doc_id: str, page: int, text: str) -> list[list[float]] | None:
        """The page boxes stored with the chunk of this text on this page ([] when it could not be placed,
        None when none are stored: a database indexed before chunk boxes)."""
        for r in self.rows("chunks", self._page_where(doc_id, page), ["text", "boxes"]):
            if r["text"] == text:
                return json.loads(r["boxes"]) if r.get("boxes") is not None else None
        return None

    def image_box(self, doc_id: str, page: int, image: int) -> list[float] | None:
        """The box (points, top-left origin) of figure ``image`` of a page."""
        rows = self.rows("images", f"{self._page_where(doc_id, page)} AND image = {int(image)}", ["bbox"])
        return list(rows[0]["bbox"]) if rows else None

    def visual_page(self, doc_id: str, page: int) -> tuple[np.ndarray, list[list[float]] | None] | None:
        """A page's stored multivector (decoded) and its patch layout rows (None when not stored)."""
        if "visual" not in self._tables():
            return None
        with self._reading("visual"):
            tbl = self.db.open_table("visual")
            cols = [c for c in ("multivector", "layout") if c in tbl.schema.names]
            data = tbl.search().where(self._page_where(doc_id, page)).select(cols).limit(1).to_arrow()
        if not data.num_rows:
            return None
        vectors = self._decode(data.column("multivector"))[0].astype(np.float32)
        layout = data.column("layout")[0].as_py() if "layout" in cols else None
        return vectors, (json.loads(layout) if layout else None)

    # -- reading -----------------------------------------------------------------------------------------------
    def count(self, name: str) -> int:
        if name not in self._tables():
            return 0
        with self._reading(name):
            return self.db.open_table(name).count_rows()

    def rows(self, name: str, where: str | None = None, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if name not in self._tables():
            return []
        with self._reading(name):
            tbl = self.db.open_table(name)
            if columns:
                have = set(tbl.schema.names)
                columns = [c for c in columns if c in have]
            if where:
                q = tbl.search().where(where)
                if columns:
                    q = q.select(list(columns))
                return q.limit(None).to_arrow().to_pylist()
            data = tbl.to_arrow()
            if columns:
                data = data.select(list(columns))
            return data.to_pylist()
