"""The ``documents`` table: one row per distinct content, its paths, its status and its rows per table.

A document's row is written first with status ``indexing`` and flipped to ``ready`` once all its rows are in:
search sees ready documents only (``ready``, kept per version of the table), so an interrupted run never
leaves a half-indexed document visible.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from .database import Database, StoreError
from .schema import DOCUMENTS, Dims
from .sql import sql_str

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

    def rows(self, where: str | None = None, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Document rows, JSON columns (paths, metadata, counts) decoded."""
        return self.db.rows(DOCUMENTS, where, columns)

    def get(self, doc_id: str, columns: list[str] | None = None) -> dict[str, Any] | None:
        rows = self.rows(f"doc_id = {sql_str(doc_id)}", columns)
        return rows[0] if rows else None

    def ready(self, where: str | None = None) -> dict[str, str]:
        """doc_id -> path of the searchable documents (status ready, and matching ``where``: SQL over this
        table). Without a filter, read once per version of the table; with one, only the matching rows are
        read, by LanceDB."""
        cond = "status = 'ready'" + (f" AND ({where})" if where else "")

        def read() -> dict[str, str]:
            try:
                rows = self.db.scan(DOCUMENTS, ["doc_id", "path"], cond).to_pylist()
            except StoreError:
                raise
            except Exception as exc:
                raise ValueError(f"bad where filter {where!r}: {exc}") from None
            return {r["doc_id"]: r["path"] for r in rows}

        if not self.db.has(DOCUMENTS):
            return {}
        return read() if where else dict(self.db.memo(DOCUMENTS, "ready", read))
