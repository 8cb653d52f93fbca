"""The single-vector tables: ``chunks`` (the text leg) and ``images`` (the image leg), searched by cosine.

A page scores its best row: its best chunk, or its best figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .database import Candidate, Database, ModelMismatchError
from .pages import maintain_table, page_where
from .schema import CHUNKS, IMAGES, RowSchema
from .sql import prefilter, sql_str

__all__ = ["ChunksTable", "ImagesTable", "VectorTable"]


class VectorTable:
    """One table of single vectors (``schema``: CHUNKS or IMAGES); ``detail`` names the column a candidate
    carries (what scored)."""

    schema: RowSchema
    detail: str

    def __init__(self, db: Database, dim: Any) -> None:
        self.db = db
        self._dim = dim  # () -> the database's text or image vector size (None before it is known)

    def count(self) -> int:
        return self.db.count(self.schema)

    def add(self, data: Any) -> None:
        """Append rows (an Arrow table of this table's rows)."""
        if not data.num_rows:
            return
        dim = self._dim()
        if dim is None:
            raise ValueError("this database has no text or image leg (its vector size is not known)")
        width = data.schema.field("vector").type.list_size
        if width != dim:
            raise ModelMismatchError(f"vectors of size {width} do not fit this {dim}-d index")
        self.db.add(self.schema, data)

    def search(self, vector: np.ndarray, k: int = 10, allowed: set[str] | None = None) -> list[Candidate]:
        """The ``k`` best pages by cosine (a page scores its best row), of documents in ``allowed`` (None: all)."""
        if self._dim() is None or not self.count():
            return []
        tbl = self.db.table(self.schema)
        q = tbl.search(np.asarray(vector, np.float32), vector_column_name="vector").metric("cosine")
        sql = prefilter(None, allowed)
        if sql:
            q = q.where(sql, prefilter=True)
        with self.db.reading(self.schema.name):
            rows = q.limit(max(k * 4, 20)).to_arrow().to_pylist()
        best: dict[tuple[str, int], Candidate] = {}
        for r in rows:
            if allowed is not None and r["doc_id"] not in allowed:
                continue
            key = (r["doc_id"], r["page"])
            score = 1.0 - float(r["_distance"])  # cosine similarity
            if key not in best or score > best[key].score:
                best[key] = Candidate(key[0], key[1], score, str(r.get(self.detail, "")))
        return sorted(best.values(), key=lambda c: -c.score)[:k]

    def maintain(self, force: bool = False) -> None:
        maintain_table(self.db, self.schema, force)


class ChunksTable(VectorTable):
    """Text chunks: a candidate's detail is the chunk's text."""

    schema, detail = CHUNKS, "text"

    def boxes(self, doc_id: str, page: int, text: str) -> list[list[float]] | None:
        """The page boxes stored with the chunk of this text on this page ([] when it could not be placed;
        None when no such chunk is stored)."""
        for r in self.db.rows(CHUNKS, page_where(doc_id, page), ["text", "boxes"]):
            if r["text"] == text:
                return r["boxes"]
        return None

    def page_chunks(self, pages: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
        """The chunks of these (doc_id, page) pages: doc_id, page, chunk, text and boxes (None where a database
        indexed before positions were stored has none)."""
        by_doc: dict[str, set[int]] = {}
        for doc_id, page in pages:
            by_doc.setdefault(doc_id, set()).add(int(page))
        if not by_doc or self._dim() is None or not self.count():
            return []
        cond = " OR ".join(
            f"(doc_id = {sql_str(d)} AND page IN ({', '.join(map(str, sorted(ps)))}))" for d, ps in by_doc.items()
        )
        have = self.db.memo(CHUNKS, "columns", lambda: set(self.db.table(CHUNKS).schema.names))
        columns = [c for c in ("doc_id", "page", "chunk", "text", "boxes") if c in have]
        return self.db.rows(CHUNKS, cond, columns)


class ImagesTable(VectorTable):
    """Figures and image files: a candidate's detail is the figure's number on its page."""

    schema, detail = IMAGES, "image"

    def box(self, doc_id: str, page: int, image: int) -> list[float] | None:
        """The box (points, top-left origin) of figure ``image`` of a page."""
        rows = self.db.rows(IMAGES, f"{page_where(doc_id, page)} AND image = {int(image)}", ["bbox"])
        return list(rows[0]["bbox"]) if rows else None
