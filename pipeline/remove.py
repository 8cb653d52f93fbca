"""Removing documents from a database by path (a file, or a folder prefix), doc_id, or bare file name."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docrag.indexes.store import Store

__all__ = ["is_under", "remove_documents"]


def is_under(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip("/") + "/")


def _named(target: str, docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """What ``target`` names, as {doc_id: its paths to drop} (every path: the whole document): its doc_id; a path
    as indexed, or a folder above some; else, when it is a bare file name (no folder in it), the one indexed path
    of that name. A name that more than one indexed path has is a ``ValueError`` listing them."""
    resolved = Path(target).resolve()
    out: dict[str, set[str]] = {}
    for d in docs:
        if d["doc_id"] == target:
            out[d["doc_id"]] = set(d["paths"])
        else:
            hit = {p for p in d["paths"] if p == str(resolved) or is_under(p, resolved)}
            if hit:
                out[d["doc_id"]] = hit
    if out or Path(target).name != target:
        return out
    by_name = {(d["doc_id"], p) for d in docs for p in d["paths"] if Path(p).name == target}
    if len(by_name) > 1:
        paths = ", ".join(sorted(p for _, p in by_name))
        raise ValueError(f"{target} names {len(by_name)} indexed files ({paths}): give the path of the one to remove")
    return {doc_id: {p} for doc_id, p in by_name}


def remove_documents(store: Store, targets: Iterable[str]) -> int:
    """Delete documents by path (file or folder prefix), doc_id or bare file name (when one indexed path has
    it); returns how many were removed. Every target is looked up before anything goes: an ambiguous file name
    is a ``ValueError`` and nothing is removed.

    A document also found at other paths keeps those: only the paths named go."""
    removed = 0
    with store.writer_lock():
        docs = store.documents.rows(columns=["doc_id", "path", "paths"])
        drop: dict[str, set[str]] = {}
        for target in targets:
            for doc_id, paths in _named(target, docs).items():
                drop.setdefault(doc_id, set()).update(paths)
        if not drop:
            return 0
        store.make_writable()
        for d in docs:
            if d["doc_id"] not in drop:
                continue
            keep = [p for p in d["paths"] if p not in drop[d["doc_id"]]]
            if keep:
                store.documents.set_paths(d["doc_id"], keep)
            else:
                store.delete_documents([d["doc_id"]])
                removed += 1
        if removed:
            store.maintain()
    return removed
