"""The ``docrag`` command line (Typer + rich), a thin shell over the library; ``--json`` output is for scripts.

``docrag.entry:main`` is the console script (it loads this app); ``python -m docrag.cli`` runs the same.
"""

from __future__ import annotations

from . import admin, index, mcp_cmd, models, route, search, serve  # noqa: F401  (each registers its commands on the app)
from .app import app, main

__all__ = ["app", "main"]
