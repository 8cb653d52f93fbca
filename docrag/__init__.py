"""docrag: retrieve the right *page* from large collections of PDFs and images.

A router sends each page to the index that serves it best (ColPali-family late interaction for scans,
tables, charts, slides and forms; a unified single-vector text+image embedder for prose and pictures),
both stored in LanceDB and fused at query time.

The role packages are importable as ``docrag.parsers``, ``docrag.pipeline`` and ``docrag.indexes``.
Heavy libraries (torch, colpali-engine, unstructured) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Limits", "Route", "RouterConfig", "__version__", "route_files"]

if TYPE_CHECKING:
    from docrag.config import Limits, RouterConfig
    from docrag.pipeline.router import Route, route_files

_LAZY = {
    "Limits": "docrag.config",
    "RouterConfig": "docrag.config",
    "Route": "docrag.pipeline.router",
    "route_files": "docrag.pipeline.router",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'docrag' has no attribute {name!r}")
