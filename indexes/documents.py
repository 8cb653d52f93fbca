"""The ``documents`` table: one row per distinct content, its paths, its status and its rows per table.

A document's row is written first with status ``indexing`` and flipped to ``ready`` once all its rows are in:
search sees ready documents only (``ready``, kept per version of the table), so an interrupted run never
leaves a half-indexed document visible. A document's metadata is kept as given (JSON) and as ``key=value``
strings that key filters run on inside LanceDB (``indexes.metadata``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .database import Database, StoreError
from .metadata import COLUMN, filter_sql, matches, metadata_pairs
from .schema import DOCUMENTS, Dims
from .sql import sql_in, sql_str

__all__ = ["DocumentsTable"]


class DocumentsTable:
    schema = DOCUMENTS

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        """Documents, ready or not."""
        return self.db.count(DOCUMENTS)

    def hidden(self) -> int:
        """Documents that search does not see yet: being indexed, or left by a run that stopped."""
        return self.count() - len(self.ready())

    def add(self, doc_id: str, path: str, size: int, mtime: float, n_pages: int, metadata: dict[str, Any]) -> None:
        """A document's row, status ``indexing``: invisible to search until ``mark_ready``."""
        row = {
            "doc_id": [doc_id],
            "path": [path],
            "paths": [[path]],
            "size": [size],
            "mtime": [mtime],
            "n_pages": [n_pages],
            "status": ["indexing"],
            "metadata": [metadata],
            "metadata_pairs": [metadata_pairs(metadata)],
            "indexed_at": [dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
        }
        self.db.add(DOCUMENTS, DOCUMENTS.to_arrow(row, Dims()))

    def mark_ready(self, doc_id: str, counts: dict[str, int], paths: Sequence[str] | None = None) -> None:
        """All of a document's rows are in: it becomes visible. ``counts`` (rows per table) lets ``check``
        verify it later."""
        values: dict[str, Any] = {"status": "ready", "counts": json.dumps(counts, ensure_ascii=False)}
        if paths:
            values |= {"path": paths[0], "paths": json.dumps(list(paths), ensure_ascii=False)}
        self.db.update(DOCUMENTS, f"doc_id = {sql_str(doc_id)}", values)

    def set_paths(self, doc_id: str, paths: Sequence[str]) -> None:
        """Every path at which a document's bytes were found (the first is the one shown)."""
        values = {"path": paths[0], "paths": json.dumps(list(paths), ensure_ascii=False)}
        self.db.update(DOCUMENTS, f"doc_id = {sql_str(doc_id)}", values)

    def set_metadata(self, doc_ids: Iterable[str], metadata: Mapping[str, Any]) -> int:
        """Replace the metadata of these documents by ``metadata`` (a run's ``--meta`` applies to every document
        it names, the unchanged ones too); returns how many had other metadata."""
        rows = self.rows(sql_in("doc_id", doc_ids), ["doc_id", "metadata"])
        changed = [r["doc_id"] for r in rows if (r["metadata"] or {}) != dict(metadata)]
        if changed:
            values: dict[str, Any] = {"metadata": json.dumps(dict(metadata), ensure_ascii=False)}
            if self.has_pairs():
                values[COLUMN] = metadata_pairs(metadata)
            self.db.update(DOCUMENTS, sql_in("doc_id", changed), values)
        return len(changed)

    def rows(self, where: str | None = None, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Document rows, JSON columns (paths, metadata, counts) decoded (``metadata_pairs``, the metadata
        again as key filters read it, only when named)."""
        rows = self.db.rows(DOCUMENTS, where, columns)
        if columns is None:
            for r in rows:
                r.pop(COLUMN, None)
        return rows

    def get(self, doc_id: str, columns: list[str] | None = None) -> dict[str, Any] | None:
        rows = self.rows(f"doc_id = {sql_str(doc_id)}", columns)
        return rows[0] if rows else None

    def ready(self, where: str | None = None, metadata: Mapping[str, Any] | None = None) -> dict[str, str]:
        """doc_id -> path of the searchable documents (status ready, and matching ``where``: SQL over this
        table, and the key filter ``metadata``: ``indexes.metadata``). Without a filter, read once per version
        of the table; with one, only the matching rows are read, by LanceDB."""
        if not self.db.has(DOCUMENTS):
            return {}
        keys = filter_sql(metadata) if metadata else None  # a ValueError for a key without a value
        pushed = keys is not None and self.has_pairs()
        # The user's SQL stands alone in the scan and the ready rule is applied here, after it: a filter such as
        # "1=1) OR (1=1" cannot reach documents that are still being indexed.
        cond = " AND ".join(c for c in (f"({where})" if where else "", keys if pushed else "") if c)

        def read() -> dict[str, str]:
            columns = ["doc_id", "path", "status"] + (["metadata"] if keys is not None and not pushed else [])
            try:
                rows = self.db.scan(DOCUMENTS, columns, cond or "status = 'ready'").to_pylist()
            except StoreError:
                raise
            except Exception as exc:
                what = f"where filter {where!r}" if where else f"metadata filter {dict(metadata or {})!r}"
                raise ValueError(f"bad {what}: {exc}") from None
            if keys is not None and not pushed:  # written before metadata_pairs: the same rule, here
                rows = [r for r in DOCUMENTS.decode(rows) if matches(r["metadata"], metadata or {})]
            return {r["doc_id"]: r["path"] for r in rows if r["status"] == "ready"}

        return read() if where or keys else dict(self.db.memo(DOCUMENTS, "ready", read))

    def metadata(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """doc_id -> the metadata given when it was indexed ({} for none), for these documents."""
        rows = self.rows(sql_in("doc_id", doc_ids), ["doc_id", "metadata"])
        return {r["doc_id"]: r["metadata"] or {} for r in rows}

    def has_pairs(self) -> bool:
        """Whether the table has ``metadata_pairs`` (a database written before it existed has not)."""
        return self.db.memo(DOCUMENTS, "has_pairs", lambda: COLUMN in self.db.table(DOCUMENTS).schema.names)

    def upgrade(self) -> bool:
        """Give a table written before ``metadata_pairs`` existed that column, filled from each row's metadata
        (the table is written again: one row per document). Needs the writer lock; True when it was done."""
        if not self.db.has(DOCUMENTS) or self.has_pairs():
            return False
        rows = self.rows()
        columns = {c: [r.get(c) for r in rows] for c in DOCUMENTS.names if c != COLUMN}
        columns[COLUMN] = [metadata_pairs(r.get("metadata")) for r in rows]
        self.db.create(DOCUMENTS, Dims(), DOCUMENTS.to_arrow(columns, Dims()), overwrite=True)
        return True
