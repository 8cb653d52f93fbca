"""``docrag mcp``: a read-only MCP server over one database, for LLM agents and desktop assistants (stdio).

Three tools, each a thin call into the ``docrag.api`` facade:

- ``search(query, k, where)``: the best pages, each with its file, page, fused score, confidence, every leg's
  raw score and rank, a snippet and its answer regions (boxes in page fractions);
- ``page_image(document, page, regions_for)``: the page as a PNG, with the regions of a query drawn on it;
- ``documents()``: what is indexed and ready (doc_id, path, pages, status, metadata).

Nothing is written to the database. A bad argument (an unknown document, a page out of range, an empty query,
a k out of bounds, a bad filter) is a tool error with one line that says what to do; the server keeps running.
The ``mcp`` package is an extra: ``pip install 'docrag[mcp]'``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from docrag.api import Index

__all__ = ["MAX_K", "MAX_QUERY_CHARS", "MISSING_MCP", "build_server", "require_mcp", "serve_stdio"]

MAX_K = 100  # pages one search may return
MAX_QUERY_CHARS = 1000  # a question, not a document (as docrag serve)
MISSING_MCP = "the MCP server needs the mcp package: pip install 'docrag[mcp]'"
T = TypeVar("T")

INSTRUCTIONS = (
    "docrag retrieves the pages of indexed documents (PDFs, images, Office files, HTML, Markdown, text) that "
    "answer a question. Call `search` with the question; each hit names its file and page, with scores and answer "
    "regions (boxes as fractions of the page). Call `page_image` with a hit's doc_id (or file) and page to look at "
    "the page, with `regions_for` set to the question to see where it matched. `documents` lists what is indexed."
)


def require_mcp() -> Any:
    """The SDK's high-level server module, or an ImportError naming the extra."""
    try:
        from mcp.server import mcpserver
    except ImportError as exc:
        raise ImportError(MISSING_MCP) from exc
    return mcpserver


def _document_row(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "doc_id": d["doc_id"],
        "path": d["path"],
        "pages": d.get("n_pages"),
        "status": d.get("status"),
        "metadata": d.get("metadata") or {},
    }


def build_server(index: Index, name: str = "docrag") -> Any:
    """An ``mcp.server.mcpserver.MCPServer`` with the three read-only tools over ``index``."""
    sdk = require_mcp()
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp_types import ToolAnnotations

    server = sdk.MCPServer(name, instructions=INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
    lock = threading.Lock()  # the SDK runs each call in a worker thread: one at a time on the index

    def guarded(fn: Callable[[], T]) -> T:
        """``fn()`` on the index; an anticipated failure (a bad filter, a model that cannot load, an unreadable
        store) is a tool error with its one line, never a crash of the server."""
        from docrag.indexes.database import StoreError
        from docrag.indexes.models import ModelUnavailableError

        with lock:
            try:
                return fn()
            except (ValueError, StoreError, ModelUnavailableError) as exc:
                raise ToolError(str(exc)) from exc

    def check_query(query: str, what: str = "query") -> str:
        if not query or not query.strip():
            raise ToolError(f"the {what} is empty: give the words to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise ToolError(
                f"the {what} has {len(query)} characters: at most {MAX_QUERY_CHARS}, ask a shorter question"
            )
        return query

    @server.tool(annotations=read_only)
    def search(query: str, k: int = 10, where: str | dict[str, Any] | None = None) -> dict[str, Any]:
        """The k pages that best answer the query, best first. Each hit: file, doc_id, page (1-based), score (fused),
        confidence (0 to 1, comparable across queries), legs (each leg's raw score and rank), snippet, metadata, and
        regions (where on the page each leg matched: boxes [x0, y0, x1, y1] as fractions of the page width and
        height). `where`: SQL over the documents (e.g. "path LIKE '%2024%'") or a metadata filter
        ({"project": "demo"}; a list of values matches any of them)."""
        check_query(query)
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k={k}: ask for 1 to {MAX_K} pages")

        def run() -> dict[str, Any]:
            hits = index.search(query, k, where or None)
            out = []
            for h in hits:
                d = h.to_dict(regions=True)
                out.append({key: d[key] for key in ("file", "doc_id", "page", "score", "confidence", "legs")})
                out[-1] |= {"snippet": d["snippet"], "metadata": d["metadata"], "regions": d["regions"]}
            return {"query": query, "hits": out, "hidden": hits.hidden}

        return guarded(run)

    @server.tool(annotations=read_only, structured_output=False)
    def page_image(document: str, page: int, regions_for: str | None = None) -> Any:
        """Page `page` (1-based) of an indexed document as a PNG. `document`: its doc_id, or its path or file name
        as indexed (from `search` or `documents`). `regions_for`: a query whose answer regions are drawn on the
        page (a colour per leg)."""
        if regions_for is not None:
            check_query(regions_for, "regions_for query")

        def run() -> Any:
            doc = index.find(document)
            if doc is None or doc.get("status") != "ready":
                raise ToolError(f"{document} is not an indexed document: use a doc_id or file from `documents`")
            n = doc.get("n_pages") or 0
            if not 1 <= page <= n:
                raise ToolError(f"page {page} is out of range: {Path(doc['path']).name} has {n} page(s)")
            from docrag.parsers import IMAGE_SUFFIXES

            # An image file comes at its own size (never scaled up); a PDF page at 100 dpi.
            dpi = float("inf") if Path(doc["path"]).suffix.lower() in IMAGE_SUFFIXES else 100.0
            note = None
            hit = index.explain(regions_for, doc["doc_id"], page) if regions_for else None
            try:
                if hit is not None:
                    img = index.page_image(hit, dpi, regions=True)
                else:
                    img = index.render(doc["doc_id"], page, dpi)
                    if regions_for:
                        note = f"no leg scored page {page} for the query: no regions to draw"
            except KeyError:
                raise ToolError(
                    f"{Path(doc['path']).name} page {page}: the file cannot be read now and no thumbnail was stored"
                ) from None
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG")
            image = sdk.Image(data=buf.getvalue(), format="png")
            return [image, note] if note else image

        return guarded(run)

    @server.tool(annotations=read_only)
    def documents() -> dict[str, Any]:
        """The indexed documents: doc_id, path, pages, status and metadata. Only ready ones are listed (and
        searched): a document still being indexed appears once all its pages are in."""
        return guarded(
            lambda: {"documents": [_document_row(d) for d in index.documents() if d.get("status") == "ready"]}
        )

    return server


def serve_stdio(index: Index) -> None:
    """Serve ``index`` over stdin/stdout until the client closes it (only protocol messages on stdout)."""
    build_server(index).run("stdio")
