"""Removing documents from a database by path (a file, or a folder prefix) or doc_id."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docrag.indexes.store import Store

__all__ = ["is_under", "remove_documents"]


def is_under(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip("/") + "/")


def remove_documents(store: Store, targets: Iterable[str]) -> int:
    """Delete documents by path (file or folder prefix) or doc_id; returns how many were removed.

    A document also found at other paths keeps those: only the paths named go."""
    removed = 0
    with store.writer_lock():
        store.make_writable()
        docs = store.documents.rows(columns=["doc_id", "path", "paths"])
        for target in targets:
            resolved = Path(target).resolve()
            for d in docs:
                if d.get("gone"):
                    continue
                if d["doc_id"] == target:
                    keep: list[str] = []
                else:
                    keep = [p for p in d["paths"] if p != str(resolved) and not is_under(p, resolved)]
                    if keep == d["paths"]:
                        continue
                if keep:
                    store.documents.set_paths(d["doc_id"], keep)
                    d["paths"] = keep
                else:
                    store.delete_documents([d["doc_id"]])
                    d["gone"] = True
                    removed += 1
        if removed:
            store.maintain()
    return removed
