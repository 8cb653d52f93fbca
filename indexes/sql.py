"""The SQL that docrag writes for LanceDB filters: string literals, ``IN`` lists and document prefilters."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PREFILTER_MAX_IDS", "prefilter", "sql_in", "sql_str"]


def sql_str(value: str) -> str:
    """A SQL string literal (the one quoting helper)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN (...)`` over string values; a condition that matches nothing for no values."""
    vals = sorted(set(values))
    return f"{column} IN ({', '.join(sql_str(v) for v in vals)})" if vals else "FALSE"


PREFILTER_MAX_IDS = 5000  # documents named in a doc_id IN (...) prefilter; beyond this, filter after the search


def prefilter(where: str | None, allowed: set[str] | None) -> str | None:
    """SQL for LanceDB's prefilter: ``where`` and, for a subset of documents, ``doc_id IN (...)``.

    Filtering before the search (not after) keeps k results when most rows are excluded. Very large subsets
    are filtered after the search instead (the IN list would dwarf the query).
    """
    parts = [f"({where})"] if where else []
    if allowed is not None and len(allowed) <= PREFILTER_MAX_IDS:
        parts.append(sql_in("doc_id", allowed) if allowed else "doc_id IN ('')")
    return " AND ".join(parts) or None
