"""docrag: retrieve the right *page* from large collections of PDFs, images and Office, HTML and text files.

A router sends each page to the index that serves it best (ColPali-family late interaction for scans,
tables, charts, slides and forms; a text embedder for prose and an image–text model for pictures),
both stored in LanceDB and fused at query time.

The role packages are importable as ``docrag.parsers``, ``docrag.pipeline`` and ``docrag.indexes``.
Heavy libraries (torch, colpali-engine, unstructured) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Hit",
    "Index",
    "Limits",
    "NoDatabaseError",
    "Route",
    "RouterConfig",
    "Settings",
    "__version__",
    "open",
    "route_files",
]

if TYPE_CHECKING:
    from docrag.api import Index
    from docrag.config import Limits, RouterConfig, Settings
    from docrag.indexes.store import NoDatabaseError
    from docrag.pipeline.router import Route
    from docrag.pipeline.routing import route_files
    from docrag.pipeline.search import Hit

_LAZY = {
    "Index": "docrag.api",
    "Hit": "docrag.pipeline.search",
    "Settings": "docrag.config",
    "Limits": "docrag.config",
    "NoDatabaseError": "docrag.indexes.store",
    "RouterConfig": "docrag.config",
    "Route": "docrag.pipeline.router",
    "route_files": "docrag.pipeline.routing",
}


def open(
    db: str,
    profile: str | None = None,
    config: str | None = None,
    *,
    create: bool = False,
    rebuild: bool = False,
    **overrides: Any,
) -> Index:
    """Open a docrag database. ``profile``: cpu (default), gpu or lite; ``config``: a TOML file.

    Searching or inspecting a database that is not there raises ``NoDatabaseError`` ("no database at …"):
    ``create=True`` makes a missing one now, and the first ``add`` makes it with its documents. ``rebuild``:
    start the database over with this profile's models at the next ``add`` (another model's vectors cannot be
    mixed in).

    >>> import docrag                                        # doctest: +SKIP
    >>> index = docrag.open("my.db", profile="lite")
    >>> index.add(["papers/"])                               # makes my.db
    >>> for hit in index.search("which table reports recall at 5?", k=5):
    ...     print(hit.file, hit.page, hit.score, hit.legs)
    """
    from docrag.api import open_index

    return open_index(db, profile, config, create=create, rebuild=rebuild, **overrides)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'docrag' has no attribute {name!r}")
