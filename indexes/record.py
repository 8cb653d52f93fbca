"""The database's record of itself (the ``meta`` table): its schema version, and how an older record is read.

The record says which model made each leg's vectors (``visual_spec``, ``text_spec``, ``image_spec``), their sizes
(``*_dim``), how visual vectors are stored (``visual_index``) and the profile. ``migrate`` reads the record of
an earlier schema as this one; a schema it does not know is refused at open (``indexes.store``).
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["OBSOLETE_KEYS", "SCHEMA_VERSION", "migrate"]

OBSOLETE_KEYS = ("unified_spec", "unified_dim")  # schema 1's keys: deleted when the record is next written

SCHEMA_VERSION = 3  # the rows and the record of ``indexes.schema``; ``migrate`` reads 1 and 2, others are refused


def migrate(record: dict[str, Any]) -> dict[str, Any]:
    """The record of a database written by an earlier schema, as this one reads it (its rows are unchanged;
    ``migrated_from`` tells the next writer to write the whole record, and ``Store.make_writable`` brings the
    rows up to date then).

    1 → 2: one ``unified`` embedder served the text chunks and the images. It becomes the text leg's model and,
    where it embeds images, the image leg's: a database keeps searching with the models that built it.
    2 → 3: the ``documents`` table gains ``metadata_pairs`` (key filters pushed down to LanceDB); the record is
    unchanged. Until it is written to, such a database applies key filters in Python (``DocumentsTable.ready``).
    """
    if record.get("schema_version") == 2:
        return record | {"migrated_from": 2, "schema_version": 3}
    if record.get("schema_version") != 1:
        return record
    from .embedders import embedder_class
    from .models import ModelSpec

    out = {k: v for k, v in record.items() if k not in ("unified_spec", "unified_dim")}
    spec, dim = record.get("unified_spec"), record.get("unified_dim")
    images = False
    if spec:
        with contextlib.suppress(ValueError):  # an unknown type: its text vectors still search
            parsed = ModelSpec.model_validate(spec)
            images = "image" in embedder_class(parsed).modalities_for(parsed)
    out |= {
        "migrated_from": 1,  # not stored: tells the next writer to write the whole record as this schema
        "schema_version": SCHEMA_VERSION,
        "text_spec": spec,
        "text_dim": dim,
        "image_spec": spec if images else None,
        "image_dim": dim if images else None,
    }
    return out
