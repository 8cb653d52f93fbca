"""A document's metadata as ``key=value`` pairs, and filters on them that LanceDB runs itself.

``Index.add(..., metadata={...})`` (``docrag index --meta k=v``) is kept twice in the ``documents`` table: as
JSON (``metadata``: returned with every hit as given) and as a list of ``key=value`` strings
(``metadata_pairs``), the column a key filter (``search(..., where={"project": "demo"})``, ``--filter
project=demo``) is written against, so that LanceDB evaluates it (``array_has_any``) rather than a ``LIKE``
over JSON text.

How values compare: by their text. A string is itself; a number or a boolean is written as JSON writes it
(``2024``, ``1.5``, ``true``; a float with no fraction as an integer: ``2024.0`` is ``2024``); ``None`` is
``null``; an object is its JSON text (keys sorted). So ``{"year": 2024}`` and ``{"year": "2024"}`` both match
``--filter year=2024``. A list value gives one pair per element: a filter matches a document whose list
holds the value. In a filter, a list of values means any of them; several keys must all match. Keys and values
compare exactly (case and spaces count).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .sql import sql_str

__all__ = ["COLUMN", "check_metadata", "filter_sql", "matches", "metadata_pairs", "value_text"]

COLUMN = "metadata_pairs"


def check_metadata(metadata: Any) -> None:
    """A ValueError naming the key whose value JSON cannot keep (a date, a set, an object …), before a run."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata is a dict of key -> value, not {type(metadata).__name__}")
    for key, value in metadata.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"metadata {key!r}: a {type(value).__name__} is not stored as JSON: give a string, number, boolean, "
                "None, or a list or dict of them (e.g. a date as its ISO text)"
            ) from None


def value_text(value: Any) -> str:
    """A metadata value as the text it is compared by."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False)  # bool → true/false, None → null, int, float


def _key(key: Any) -> str:
    return str(key).replace("\\", "\\\\").replace("=", "\\=")


def metadata_pairs(metadata: Mapping[str, Any] | None) -> list[str]:
    """The ``key=value`` strings stored for a document's metadata (a list value: one pair per element)."""
    out: list[str] = []
    for key, value in (metadata or {}).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out.append(f"{_key(key)}={value_text(v)}")
    return list(dict.fromkeys(out))


def _wanted(filters: Mapping[str, Any]) -> list[list[str]]:
    """Per key, the pairs any of which must be there. A ValueError for a key with no value to match."""
    out = []
    for key, value in filters.items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if not values:
            raise ValueError(f"metadata filter {key!r}: no value to match (give one, or a list of several)")
        out.append([f"{_key(key)}={value_text(v)}" for v in values])
    return out


def filter_sql(filters: Mapping[str, Any]) -> str | None:
    """SQL over the ``documents`` table for a key filter (None for no filter)."""
    parts = [
        f"array_has_any({COLUMN}, make_array({', '.join(sql_str(p) for p in alternatives)}))"
        for alternatives in _wanted(filters)
    ]
    return " AND ".join(parts) or None


def matches(metadata: Mapping[str, Any] | None, filters: Mapping[str, Any]) -> bool:
    """Whether a document's metadata passes a key filter, in Python: the same rule as ``filter_sql`` (for a
    database written before ``metadata_pairs`` existed, until it is written to)."""
    have = set(metadata_pairs(metadata))
    return all(any(p in have for p in alternatives) for alternatives in _wanted(filters))
