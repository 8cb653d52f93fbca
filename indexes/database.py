"""One LanceDB database: connecting, errors, the ``meta`` record, the writer lock, check and repair.

A ``Database`` opens each table once and keeps the handle. ``refresh()`` (at the start of a query, and when a
writer takes the lock) moves every open handle to its table's latest version, so one query reads one
consistent set of versions and sees what other processes wrote before it. Whatever is derived from a table
(row counts, the ready documents, packed vectors) is kept with the table's version (``memo``) and rebuilt only
after that table changed.

Opening a database reads it and nothing more: a read-only copy can be searched. Writers call ``make_writable``
first (``indexes.store``) and hold ``writer_lock`` so that one writes at a time. A table that cannot be read
raises ``StoreError`` naming it; ``check`` reads every row of every table and compares each ready document's
rows with the counts it recorded, and ``repair`` restores unreadable tables to their newest readable version
(LanceDB keeps versions) and deletes the documents whose rows that version lacks, for the next run to redo.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .record import SCHEMA_VERSION, migrate
from .schema import CODEBOOK, COUNTED, DOCUMENTS, META, PAGES, POOLED, VISUAL, Dims, RowSchema
from .sql import prefilter, sql_in, sql_str
from .uris import is_uri, short_error, storage_reason, table_versions_on_disk

__all__ = [
    "SCHEMA_VERSION",
    "Candidate",
    "Database",
    "LockTimeout",
    "ModelMismatchError",
    "NoDatabaseError",
    "StoreError",
    "is_uri",
    "migrate",
    "prefilter",
    "sql_in",
    "sql_str",
    "table_versions_on_disk",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A page a table search found, with its raw score and what scored (a chunk's text, a figure's number)."""

    doc_id: str
    page: int
    score: float
    detail: str = ""


class ModelMismatchError(ValueError):
    """Vectors from a different model (or stored differently) than the database was built with. ``rebuildable``:
    the database can be started over with the new settings (``rebuild``); the CLI then names the command."""

    def __init__(self, message: str, *, what: str = "", rebuildable: bool = False) -> None:
        super().__init__(message)
        self.what = what or message  # the mismatch itself, without the remedy
        self.rebuildable = rebuildable


class StoreError(RuntimeError):
    """A table of the database cannot be read or written. The message names the table and what to do."""


class LockTimeout(StoreError):
    """Another process holds the database's writer lock."""


class NoDatabaseError(StoreError):
    """No docrag database where one was to be read (a mistyped path, or one never indexed into). The message
    starts with the reason (``Store.absent``) and says what to do."""


def _committed(table: Path) -> bool:
    """Whether a local table's folder holds a committed version (LanceDB's ``_versions/*.manifest``): a table being
    made by another process is a folder (and listed) a moment before it can be opened."""
    try:
        return any(f.suffix == ".manifest" for f in (table / "_versions").iterdir())
    except OSError:
        return False


class Database:
    """The tables of one LanceDB database (a local directory, or any URI LanceDB accepts, e.g. s3://)."""

    _DOC_STATE = ("doc_id", "status", "counts", "n_pages")  # what check and repair read of every document

    def __init__(self, uri: str | Path, storage_options: dict[str, str] | None = None) -> None:
        self.uri = str(uri)
        self.storage_options = dict(storage_options or {})
        self.writable = False
        self._lock: Any = None
        self._conn: Any = None
        self._names: set[str] | None = None
        self._handles: dict[str, Any] = {}
        self._versions: dict[str, int] = {}
        self._memo: dict[tuple[str, str], tuple[int, Any]] = {}
        self._listed_at: int | None = None  # the documents version when the tables were last listed

    @property
    def conn(self) -> Any:
        """The LanceDB connection, made (and lancedb imported: 1.6 s) when first needed: a search answered from
        derived files (``indexes.visual_codes``) never needs it."""
        if self._conn is None:
            import lancedb

            try:
                self._conn = lancedb.connect(self.uri, storage_options=self.storage_options or None)
            except Exception as exc:
                raise StoreError(f"{self.uri}: cannot open the database ({storage_reason(exc)})") from None
        return self._conn

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # -- what is there ------------------------------------------------------------------------------------------
    @classmethod
    def exists(cls, uri: str | Path, storage_options: dict[str, str] | None = None) -> bool:
        """Whether a docrag database is at ``uri`` (a StoreError when the storage cannot be listed)."""
        if not is_uri(uri):
            return _committed(Path(uri) / f"{DOCUMENTS.name}.lance")
        return cls(uri, storage_options).has(DOCUMENTS)

    def folder(self, schema: RowSchema) -> Path:
        """Where a table of a local database lies (for measuring it, or damaging it in a test)."""
        if is_uri(self.uri):
            raise ValueError(f"{self.uri}: not a local folder")
        return Path(self.uri) / f"{schema.name}.lance"  # LanceDB's layout: one folder per table

    def data_files(self, schema: RowSchema) -> list[Path]:
        """A local table's data files, oldest first."""
        return sorted((self.folder(schema) / "data").glob("*.lance"), key=lambda p: p.stat().st_mtime)

    def disk_bytes(self, schema: RowSchema) -> int:
        """Bytes a local table takes on disk (every version it keeps)."""
        return sum(p.stat().st_size for p in self.folder(schema).rglob("*") if p.is_file())

    def names(self) -> set[str]:
        """The tables there (listed once, and again when ``refresh`` finds new documents)."""
        if self._names is None:
            try:
                found = self.conn.list_tables()
            except Exception as exc:  # object storage: unreachable endpoint, bad credentials, no bucket
                raise StoreError(f"{self.uri}: cannot list the database's tables ({storage_reason(exc)})") from None
            names = set(getattr(found, "tables", found))
            if not is_uri(self.uri):  # a table another process is making is listed before it can be opened
                names = {n for n in names if _committed(Path(self.uri) / f"{n}.lance")}
            self._names = names
            self._listed_at = self._versions.get(DOCUMENTS.name)
        return self._names

    def has(self, schema: RowSchema) -> bool:
        return schema.name in self.names()

    def table(self, schema: RowSchema) -> Any:
        """The table's handle, opened once (at the version the last ``refresh`` saw)."""
        name = schema.name
        if name not in self._handles:
            with self.reading(name):
                self._handles[name] = self.conn.open_table(name)
                self._versions[name] = self._handles[name].version
            if name == DOCUMENTS.name and self._names is not None and self._listed_at is None:
                # Listed just before: tables are made before any document row, and every later document row
                # makes a new version of this table, which lists them again.
                self._listed_at = self._versions[name]
        return self._handles[name]

    def version(self, schema: RowSchema) -> int:
        self.table(schema)
        return self._versions[schema.name]

    def memo(self, schema: RowSchema, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept until the table changes (per version of the table)."""
        version = self.version(schema)
        got = self._memo.get((schema.name, key))
        if got is None or got[0] != version:
            got = (version, build())
            self._memo[(schema.name, key)] = got
        return got[1]

    def memo_set(self, schema: RowSchema, key: str, value: Any) -> None:
        self._memo[(schema.name, key)] = (self.version(schema), value)

    def count(self, schema: RowSchema) -> int:
        """Rows in the table (0 when it is not there), counted once per version."""
        if not self.has(schema):
            return 0
        tbl = self.table(schema)
        return self.memo(schema, "count", lambda: self._read(schema, tbl.count_rows))

    def refresh(self) -> None:
        """Move every open table to its latest version (another process may have written). The tables are
        listed again only when the documents table changed: tables are made before any document's rows."""
        for name, handle in list(self._handles.items()):
            if name == META.name:
                continue
            try:
                handle.checkout_latest()
                self._versions[name] = handle.version
            except Exception:  # dropped or replaced meanwhile: opened again when next needed
                self._handles.pop(name, None)
                self._versions.pop(name, None)
                self._names = None
        if self._names is not None and self._versions.get(DOCUMENTS.name) != self._listed_at:
            self._names = None

    def _forget(self, name: str) -> None:
        """A table made, replaced or dropped: its handle, version and everything kept with it go (a table made
        again starts its versions again, so a kept version number would not say it is the same)."""
        self._handles.pop(name, None)
        self._versions.pop(name, None)
        self._memo = {k: v for k, v in self._memo.items() if k[0] != name}
        self._names = None

    # -- reading ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self, name: str) -> Iterator[None]:
        """Any failure reading table ``name`` becomes one StoreError naming it."""
        try:
            yield
        except (StoreError, ModelMismatchError, ValueError):
            raise
        except Exception as exc:
            raise StoreError(
                f"{self.uri}: table {name!r} cannot be read ({short_error(exc)}); "
                f"run `docrag check --db {self.uri} --repair`"
            ) from None

    def _read(self, schema: RowSchema, fn: Callable[[], Any]) -> Any:
        with self.reading(schema.name):
            return fn()

    def scan(
        self, schema: RowSchema, columns: list[str] | None = None, where: str | None = None, row_ids: bool = False
    ) -> Any:
        """These columns (None: all) of the rows matching ``where`` (None: every row), as one Arrow table
        (``row_ids``: with LanceDB's ``_rowid``)."""
        if not self.has(schema):
            import pyarrow as pa

            return pa.table({c: [] for c in columns or schema.names})
        tbl = self.table(schema)

        def run() -> Any:
            q = tbl.search()
            if where:
                q = q.where(where)
            if columns is not None:
                q = q.select(columns)
            if row_ids:
                q = q.with_row_id(True)
            return q.limit(None).to_arrow()

        return self._read(schema, run)

    def rows(self, schema: RowSchema, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
        """Rows as dicts, JSON columns decoded."""
        return schema.decode(self.scan(schema, columns, where).to_pylist())

    def batches(self, schema: RowSchema, columns: list[str], size: int) -> Iterator[Any]:
        """These columns of every row, ``size`` rows at a time."""
        tbl = self.table(schema)
        with self.reading(schema.name):
            yield from tbl.search().select(columns).limit(None).to_batches(size)

    def take(self, schema: RowSchema, offsets: list[int], columns: list[str]) -> Any:
        """These columns of the rows at ``offsets`` (positions in the table, ascending), as one Arrow table."""
        tbl = self.table(schema)
        return self._read(schema, lambda: tbl.take_offsets(offsets).select(columns).to_arrow())

    # -- writing ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[None]:
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
            raise StoreError(f"{self.uri}: cannot write table {name!r} ({short_error(exc)})") from None
        finally:
            handle = self._handles.get(name)
            if handle is not None:
                with contextlib.suppress(Exception):
                    self._versions[name] = handle.version

    @contextlib.contextmanager
    def changing(self, schema: RowSchema) -> Iterator[Any]:
        """The table's handle, for a change (an index, compaction) made through it."""
        tbl = self.table(schema)
        with self.writing(schema.name):
            yield tbl

    def create(self, schema: RowSchema, dims: Dims, data: Any = None, overwrite: bool = False) -> None:
        """Make the table (``overwrite``: a new version replacing its rows with ``data``, or none)."""
        arrow = schema.arrow(dims)
        with self.writing(schema.name):
            if data is not None:
                data = data.cast(arrow)
            self.conn.create_table(schema.name, data, schema=arrow, mode="overwrite" if overwrite else "create")
        self._forget(schema.name)

    def drop(self, schema: RowSchema) -> None:
        with self.writing(schema.name):
            self.conn.drop_table(schema.name)
        self._forget(schema.name)

    def clear(self) -> int:
        """Drop every table of the database, the record last (call with the writer lock held); the number of
        tables dropped, the record not counted. What a rebuild with other models starts from."""
        from .schema import SCHEMAS

        present = [s for s in SCHEMAS if s is not META and self.has(s)]
        for schema in [*present, *([META] if self.has(META) else [])]:
            self.drop(schema)
        return len(present)

    def add(self, schema: RowSchema, data: Any) -> None:
        """Append an Arrow table of rows."""
        if not data.num_rows:
            return
        tbl = self.table(schema)
        with self.writing(schema.name):
            tbl.add(data)

    def update(self, schema: RowSchema, where: str, values: dict[str, Any]) -> None:
        tbl = self.table(schema)
        with self.writing(schema.name):
            tbl.update(where=where, values=values)

    def delete(self, schema: RowSchema, where: str) -> None:
        if not self.has(schema):
            return
        tbl = self.table(schema)
        with self.writing(schema.name):
            tbl.delete(where)

    # -- the meta record ----------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """What the database says about itself (``key -> value``); {} for a new one."""
        if not self.has(META):
            return {}
        return migrate({r["key"]: r["value"] for r in self.rows(META)})

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write these keys of the record (the others stay)."""
        if not self.has(META):
            self.create(META, Dims())
        data = META.to_arrow({"key": list(values), "value": list(values.values())}, Dims())
        tbl = self.table(META)
        with self.writing(META.name):
            tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data)

    @staticmethod
    def read_meta(uri: str | Path, storage_options: dict[str, str] | None = None) -> dict[str, Any]:
        """The record of the database at ``uri``; {} when there is none (nothing is created)."""
        if not is_uri(uri) and not Path(uri).exists():
            return {}
        return Database(uri, storage_options).meta()

    # -- the writer lock ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(
        self,
        wait_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        lease_s: float | None = None,
    ) -> Iterator[None]:
        """Hold the database's writer lock (one writer at a time; ``indexes/locks.py``). A lock held by another
        process is waited for (``wait_s`` seconds, None: as long as it takes; ``on_wait`` hears who holds it
        once), then ``LockTimeout``. A local folder's lock is an ``flock`` (a killed writer never leaves it
        behind); an ``s3://`` database's is a lease object renewed while it is held (a killed writer's lease
        expires: ``lease_s``, default ``locks.LEASE_S``). Other object stores have no lock: writing there is
        refused. Taking it refreshes the tables: the last writer's rows are seen."""
        from .locks import LockError, hold_writer_lock
        from .locks import LockTimeout as _Timeout

        try:
            with hold_writer_lock(self.uri, self.storage_options, wait_s, on_wait, lease_s) as lock:
                self._lock = lock
                self._names = None
                self.refresh()
                try:
                    yield
                finally:
                    self._lock = None
        except _Timeout as exc:
            raise LockTimeout(str(exc)) from None
        except LockError as exc:
            raise StoreError(str(exc)) from None

    # -- verification and repair --------------------------------------------------------------------------------
    @staticmethod
    def _read_all(tbl: Any) -> int:
        """Read every column of every row (in batches); returns the row count. Raises on unreadable data."""
        return sum(batch.num_rows for batch in tbl.search().limit(None).to_batches(4096))

    def check(self) -> dict[str, Any]:
        """Verify every table (every row read) and every ready document's row counts; changes nothing."""
        self._names = None
        tables: dict[str, Any] = {}
        for name in sorted(self.names()):
            try:
                tbl = self.conn.open_table(name)
                tables[name] = {"ok": True, "rows": self._read_all(tbl), "version": tbl.version}
            except Exception as exc:
                tables[name] = {"ok": False, "error": short_error(exc)}
        out: dict[str, Any] = {"db": self.uri, "tables": tables, "inconsistent_documents": []}
        if all(t["ok"] for t in tables.values()):
            docs = self.rows(DOCUMENTS, columns=list(self._DOC_STATE))
            out["inconsistent_documents"] = self._inconsistent(docs)
            out["unfinished_documents"] = sum(d["status"] != "ready" for d in docs)  # a run is on, or stopped
        out["ok"] = all(t["ok"] for t in tables.values()) and not out["inconsistent_documents"]
        pooled, visual = tables.get(POOLED.name, {}).get("rows"), tables.get(VISUAL.name, {}).get("rows")
        if visual:  # derived: an incomplete first stage is searched exactly and rebuilt by the next index run
            out["first_stage_complete"] = pooled == visual
        return out

    def _inconsistent(self, docs: list[dict[str, Any]]) -> list[str]:
        """Ready documents whose rows in some table differ from the counts recorded when they became ready, or
        whose page rows disagree with their page count (none of them, or more than it has), and doc_ids with rows
        but no document row (orphans)."""
        known = {d["doc_id"] for d in docs}
        have: dict[str, dict[str, int]] = {}
        for schema in COUNTED:
            for d in self.scan(schema, ["doc_id"]).column("doc_id").to_pylist():
                counts = have.setdefault(d, {})
                counts[schema.name] = counts.get(schema.name, 0) + 1
        bad = sorted(d for d in have if d not in known)
        for d in docs:
            if d["status"] != "ready" or not d.get("counts"):
                continue
            got = have.get(d["doc_id"], {})
            pages, n_pages = got.get(PAGES.name, 0), d.get("n_pages") or 0
            if any(got.get(t, 0) != n for t, n in d["counts"].items()) or not 0 < pages <= max(n_pages, 1):
                bad.append(d["doc_id"])
        return bad

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        """Every row of these documents, the ``documents`` row last (so a failure midway leaves the document
        there, not ready or re-done, rather than rows without a document)."""
        cond = sql_in("doc_id", doc_ids)
        if cond == "FALSE":
            return
        for schema in (*COUNTED, POOLED, DOCUMENTS):
            self.delete(schema, cond)

    def repair(self) -> dict[str, Any]:
        """Restore every unreadable table to its newest readable version, then delete the documents whose
        rows do not match (and orphan rows): they are indexed again by the next run. Needs ``writable``.
        A first stage put out of step with the visual rows is dropped (search is exact meanwhile; the next
        indexing run builds it again)."""
        restored: dict[str, int] = {}
        for name, info in self.check()["tables"].items():
            if info["ok"]:
                continue
            with self.writing(name):
                tbl = self.conn.open_table(name)
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
            self._forget(name)
        self._memo.clear()
        bad = self._inconsistent(self.rows(DOCUMENTS, columns=list(self._DOC_STATE)))
        self.delete_documents(bad)
        out: dict[str, Any] = {"restored": restored, "deleted_documents": bad}
        stage = {POOLED.name, CODEBOOK.name, VISUAL.name}
        if self.has(POOLED) and (stage & set(restored) or self.count(POOLED) != self.count(VISUAL)):
            for schema in (POOLED, CODEBOOK):
                if self.has(schema):
                    self.drop(schema)
            out["first_stage_dropped"] = True
        return out
