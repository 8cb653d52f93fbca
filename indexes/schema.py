"""The rows of a docrag database: one ``RowSchema`` per table, the only spelling of a row.

Writers hand a table its columns (``RowSchema.to_arrow``: unknown columns are refused, absent nullable ones are
null, JSON columns are encoded here), readers decode JSON columns with ``RowSchema.decode``, and which tables
hold a document's rows (``COUNTED``, checked against ``documents.counts`` by ``check``) is read off the
schemas. Vector sizes come from the database (``Dims``).

Tables:

- ``documents``: one row per distinct content (doc_id: the sha256 of the bytes), every path it was found at,
  its status (``indexing`` until all its rows are in, then ``ready``), its rows per table, and the user's
  metadata (as given, and as ``key=value`` strings that key filters run on: ``indexes.metadata``).
- ``pages``: route, label, reasons and signals of each page, its text (the BM25 leg's full-text index), a
  thumbnail and the text's words with their boxes (answer regions).
- ``chunks``: text chunks with their text-leg vectors and where each chunk is on its page.
- ``images``: figures and image files with their image-leg vectors and boxes.
- ``visual``: each visual page's multivector (one vector per image patch, stored as ``Dims.storage`` says)
  and which vectors are which patches (``layout``; null after token pooling).
- ``visual_pooled``: a visual page's k-means centroids and their codebook ids: the first stage of two-stage
  visual search, one row per ``visual`` row.
- ``visual_codebook``: the centroids the codes refer to.
- ``meta``: key → JSON value: the model record and the database's own facts (``indexes.database``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from .codecs import multivectors_to_arrow, stored_width, vectors_to_arrow

__all__ = [
    "CHUNKS",
    "CODEBOOK",
    "COUNTED",
    "DOCUMENTS",
    "IMAGES",
    "META",
    "PAGES",
    "POOLED",
    "SCHEMAS",
    "VISUAL",
    "Column",
    "Dims",
    "Kind",
    "RowSchema",
]


class Kind(StrEnum):
    """What a column holds, and so its Arrow type."""

    string = "string"
    int32 = "int32"
    int64 = "int64"
    float32 = "float32"
    float64 = "float64"
    binary = "binary"
    json = "json"  # any JSON value, stored as its text
    vector = "vector"  # fixed_size_list<float32, Dims.text | Dims.image> (the table's ``needs``)
    bbox = "bbox"  # fixed_size_list<float32, 4>: x0, top, x1, bottom in points
    multivector = "multivector"  # list<fixed_size_list<float16 | int8 | uint8, width>>: Dims.storage
    pooled = "pooled"  # list<fixed_size_list<float16, Dims.visual>>
    codes = "codes"  # list<uint16>
    strings = "strings"  # list<string>
    centroid = "centroid"  # fixed_size_list<float32, Dims.visual>


@dataclass(frozen=True, slots=True)
class Dims:
    """The vector sizes of a database: text chunks (``text``), figures and image files (``image``), visual pages
    (``visual``), and how visual vectors are stored."""

    text: int | None = None
    image: int | None = None
    visual: int | None = None
    storage: str = "float16"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = True


def _arrow_type(kind: Kind, dims: Dims, needs: str | None = None) -> Any:
    import pyarrow as pa

    simple = {
        Kind.string: pa.string(),
        Kind.int32: pa.int32(),
        Kind.int64: pa.int64(),
        Kind.float32: pa.float32(),
        Kind.float64: pa.float64(),
        Kind.binary: pa.binary(),
        Kind.json: pa.string(),
        Kind.bbox: pa.list_(pa.float32(), 4),
        Kind.codes: pa.list_(pa.uint16()),
        Kind.strings: pa.list_(pa.string()),
    }
    if kind in simple:
        return simple[kind]
    if kind == Kind.vector:
        return pa.list_(pa.float32(), _need(getattr(dims, needs or "text"), needs or "text"))
    visual = _need(dims.visual, "visual")
    if kind == Kind.multivector:
        value = {"float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}[dims.storage]
        return pa.list_(pa.list_(value, stored_width(dims.storage, visual)))
    if kind == Kind.pooled:
        return pa.list_(pa.list_(pa.float16(), visual))
    return pa.list_(pa.float32(), visual)  # centroid


def _need(dim: int | None, what: str) -> int:
    if not dim:
        raise ValueError(f"the {what} vector size is not known yet")
    return dim


@dataclass(frozen=True)
class RowSchema:
    """One table's row: its name (spelled here and nowhere outside ``indexes/``), its columns, whether a
    document's rows in it are counted, and which vector size it needs (None: none)."""

    name: str
    columns: tuple[Column, ...]
    counted: bool = False
    needs: str | None = None  # "text" | "image" | "visual"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ready(self, dims: Dims) -> bool:
        """Whether the table can be made with these sizes."""
        return self.needs is None or bool(getattr(dims, self.needs))

    def arrow(self, dims: Dims) -> Any:
        import pyarrow as pa

        return pa.schema(
            [pa.field(c.name, _arrow_type(c.kind, dims, self.needs), nullable=c.nullable) for c in self.columns]
        )

    def to_arrow(self, columns: Mapping[str, Any], dims: Dims) -> Any:
        """An Arrow table of rows given as columns (equal-length sequences; vectors as (n, dim) arrays,
        multivectors as lists of arrays already in the stored type). Absent nullable columns are null."""
        import pyarrow as pa

        unknown = set(columns) - set(self.names)
        if unknown:
            raise ValueError(f"{self.name} rows have no column(s) {', '.join(sorted(unknown))}")
        n = len(next(iter(columns.values()))) if columns else 0
        schema = self.arrow(dims)
        out = []
        for col, field in zip(self.columns, schema, strict=True):
            values = columns.get(col.name)
            if values is None:
                if not col.nullable:
                    raise ValueError(f"{self.name} rows need {col.name!r}")
                out.append(pa.nulls(n, type=field.type))
            elif col.kind == Kind.json:
                out.append(pa.array([None if v is None else _json(v) for v in values], type=field.type))
            elif col.kind in (Kind.vector, Kind.centroid):
                out.append(vectors_to_arrow(values, field.type.list_size) if n else pa.array([], field.type))
            elif col.kind in (Kind.multivector, Kind.pooled):
                inner = field.type.value_type
                out.append(multivectors_to_arrow(values, inner.list_size, inner.value_type.to_pandas_dtype()))
            elif col.kind == Kind.codes:
                out.append(pa.array([None if v is None else np.asarray(v, np.uint16) for v in values], field.type))
            else:
                out.append(pa.array(values, type=field.type))
        return pa.Table.from_arrays(out, schema=schema)

    def decode(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows (dicts) with their JSON columns decoded (in place, and returned)."""
        keys = [c.name for c in self.columns if c.kind == Kind.json]
        out = list(rows)
        for r in out:
            for k in keys:
                if r.get(k) is not None:
                    r[k] = json.loads(r[k])
        return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _key(*extra: Column) -> tuple[Column, ...]:
    return (Column("doc_id", Kind.string, nullable=False), Column("page", Kind.int32, nullable=False), *extra)


DOCUMENTS = RowSchema(
    "documents",
    (
        Column("doc_id", Kind.string, nullable=False),
        Column("path", Kind.string),  # the first of ``paths``: the one shown
        Column("paths", Kind.json),  # every path with these bytes
        Column("size", Kind.int64),
        Column("mtime", Kind.float64),
        Column("n_pages", Kind.int32),
        Column("status", Kind.string),  # indexing | ready
        Column("metadata", Kind.json),  # the user's --meta key=value pairs (or add()'s metadata=), as given
        Column("metadata_pairs", Kind.strings),  # the same as "key=value" strings: key filters (indexes.metadata)
        Column("indexed_at", Kind.string),
        Column("counts", Kind.json),  # rows per counted table, written when the document became ready
    ),
)
PAGES = RowSchema(
    "pages",
    _key(
        Column("route", Kind.string),
        Column("label", Kind.string),
        Column("confidence", Kind.float32),
        Column("reasons", Kind.json),
        Column("signals", Kind.json),
        Column("text", Kind.string),  # the BM25 leg's full-text index
        Column("thumbnail", Kind.binary),  # WEBP
        Column("words", Kind.json),  # ``parsers.words.encode_words`` rows
    ),
    counted=True,
)
CHUNKS = RowSchema(
    "chunks",
    _key(
        Column("chunk", Kind.int32),
        Column("text", Kind.string),
        Column("vector", Kind.vector),
        Column("boxes", Kind.json),  # where the chunk is on its page ([] when its words were not found)
    ),
    counted=True,
    needs="text",
)
IMAGES = RowSchema(
    "images",
    _key(Column("image", Kind.int32), Column("bbox", Kind.bbox), Column("vector", Kind.vector)),
    counted=True,
    needs="image",
)
VISUAL = RowSchema(
    "visual",
    _key(
        Column("n_vectors", Kind.int32),
        Column("multivector", Kind.multivector),
        Column("layout", Kind.json),  # ``PatchGrid.to_list`` rows: which vectors are which patches
    ),
    counted=True,
    needs="visual",
)
POOLED = RowSchema(
    "visual_pooled",
    _key(Column("pooled", Kind.pooled), Column("codes", Kind.codes)),  # codes: null until a codebook exists
    needs="visual",
)
CODEBOOK = RowSchema(
    "visual_codebook", (Column("id", Kind.int32, nullable=False), Column("vector", Kind.centroid)), needs="visual"
)
META = RowSchema("meta", (Column("key", Kind.string, nullable=False), Column("value", Kind.json)))

SCHEMAS: tuple[RowSchema, ...] = (DOCUMENTS, PAGES, CHUNKS, IMAGES, VISUAL, POOLED, CODEBOOK, META)
COUNTED: tuple[RowSchema, ...] = tuple(s for s in SCHEMAS if s.counted)  # the tables of a document's rows


def empty_counts() -> dict[str, int]:
    """A document's rows per counted table, all zero."""
    return {s.name: 0 for s in COUNTED}


def doc_ids(rows: Sequence[Any]) -> list[str]:
    """The doc_id column of an Arrow table (or [] for None)."""
    return [] if rows is None else rows.column("doc_id").to_pylist()
