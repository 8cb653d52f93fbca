"""``docrag serve``: a read-only HTTP API over one index (FastAPI) and a search page served by it.

``create_app(index, token=...)`` builds the app; the command (``docrag.cli.serve``) runs it with uvicorn. Needs the
``serve`` extra (``pip install 'docrag[serve]'``).
"""

from __future__ import annotations

from .app import Limits, create_app, is_loopback

__all__ = ["Limits", "create_app", "is_loopback"]
