"""The ``docrag`` command line (Typer + rich), a thin shell over the library; ``--json`` output is for scripts.

``docrag.cli:app`` is the console script; ``python -m docrag.cli`` runs the same app with the same commands.
"""

from __future__ import annotations

from . import admin, index, mcp_cmd, models, route, search, serve  # noqa: F401  (each registers its commands on the app)
from .app import app, main

__all__ = ["app", "main"]
