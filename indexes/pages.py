"""The ``pages`` table: route, label, signals, text, thumbnail and words of every page, and the BM25 leg.

BM25 is LanceDB's native full-text search over the page text (text layer or OCR), kept current by ``maintain``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .database import Candidate, Database
from .schema import PAGES
from .sql import prefilter, sql_in, sql_str

__all__ = ["PagesTable", "maintain_table", "page_where"]

log = logging.getLogger(__name__)

# When ``maintain`` runs LanceDB's optimize on a table (see ``maintain_table``).
OPTIMIZE_UNINDEXED_SHARE = 0.1
OPTIMIZE_SMALL_FRAGMENTS = 256


def page_where(doc_id: str, page: int) -> str:
    return f"doc_id = {sql_str(doc_id)} AND page = {int(page)}"


def small_fragments(tbl: Any) -> int:
    try:
        return int(tbl.stats()["fragment_stats"]["num_small_fragments"])
    except (KeyError, TypeError, AttributeError):
        return 0


def maintain_table(db: Database, schema: Any, force: bool = False) -> None:
    """Compact a table once it has ``OPTIMIZE_SMALL_FRAGMENTS`` small fragments (or ``force``).

    Ingestion writes each table a page batch at a time, and every write is a LanceDB fragment; scans slow down
    as they pile up (``benchmarks/fts.py``: 20k chunks in 834 fragments, a text-leg search took 80 ms; 33 ms
    compacted). ``optimize`` compacts them and folds new rows into the indexes, but it rewrites every fragment
    below LanceDB's target size, i.e. most of the table, so it runs only past a threshold."""
    if not db.has(schema):
        return
    with db.changing(schema) as tbl:
        if force or small_fragments(tbl) >= OPTIMIZE_SMALL_FRAGMENTS:
            tbl.optimize()


class PagesTable:
    schema = PAGES

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        return self.db.count(PAGES)

    def add(self, data: Any) -> None:
        """Append page rows (an Arrow table of ``PAGES`` rows)."""
        self.db.add(PAGES, data)

    def rows(self, doc_ids: Iterable[str] | None = None, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Page rows of these documents (None: of every document), JSON columns decoded."""
        return self.db.rows(PAGES, None if doc_ids is None else sql_in("doc_id", doc_ids), columns)

    def _one(self, doc_id: str, page: int, column: str) -> Any:
        rows = self.db.rows(PAGES, page_where(doc_id, page), [column])
        return rows[0].get(column) if rows else None

    def thumbnail(self, doc_id: str, page: int) -> bytes | None:
        """The stored page thumbnail (WEBP bytes), or None."""
        return self._one(doc_id, page, "thumbnail") or None

    def words(self, doc_id: str, page: int) -> list[list[Any]] | None:
        """A page's stored words (``parsers.words.encode_words`` rows; None when not stored)."""
        return self._one(doc_id, page, "words")

    def size(self, doc_id: str, page: int) -> tuple[float, float]:
        """A page's size in points (0, 0 when unknown)."""
        signals = self._one(doc_id, page, "signals") or {}
        return float(signals.get("width_pt", 0)), float(signals.get("height_pt", 0))

    def search_bm25(self, query: str, k: int = 10, allowed: set[str] | None = None) -> list[Candidate]:
        """BM25 over page text with LanceDB's native full-text index; the best ``k`` pages."""
        if not self.count() or not query.strip():
            return []
        q = self.db.table(PAGES).search(query, query_type="fts")
        sql = prefilter(None, allowed)
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

    def maintain(self, force: bool = False) -> None:
        """Keep the full-text index current: made once there are pages, folded in (``optimize``) once more than
        ``OPTIMIZE_UNINDEXED_SHARE`` of the rows are outside it. Until then LanceDB's flat scan covers the rows
        the index has not seen (``benchmarks/fts.py``: 20k pages in 40 runs, upkeep 15 s in all against 25 s
        for a rebuild per run, and BM25 queries 2.4x faster at the end)."""
        from lancedb.index import FTS

        if not self.db.has(PAGES):
            return
        with self.db.changing(PAGES) as tbl:
            fts = [i for i in tbl.list_indices() if i.index_type == "FTS" and list(i.columns) == ["text"]]
            if not fts:
                if tbl.count_rows():
                    tbl.create_index("text", config=FTS(), replace=True)
                return
            stats = tbl.index_stats(fts[0].name)
            indexed, unindexed = (stats.num_indexed_rows, stats.num_unindexed_rows) if stats else (0, 1)
            run = force or small_fragments(tbl) >= OPTIMIZE_SMALL_FRAGMENTS
            if run or unindexed > OPTIMIZE_UNINDEXED_SHARE * max(indexed, 1):
                tbl.optimize()
