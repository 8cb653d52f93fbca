"""The FastAPI app of ``docrag serve``: ``/search``, ``/documents``, ``/pages/{document}/{page}.png``, ``/health``,
the OpenAPI page at ``/docs`` and the search page at ``/``.

Read-only and safe to expose behind a token: every request carries it when one is set (compared in constant time);
a page image is rendered only for a document the index holds, from the paths the index stored (nothing from the
request is opened as a path); k, the query's length and the requests in flight are bounded. Each request sees the
tables as they are now (another process may be indexing): only ready documents are shown.
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docrag.api import Index

__all__ = ["Limits", "create_app", "is_loopback"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how many may run at once (more get 429)."""

    max_k: int = 100
    max_query_chars: int = 1000
    max_concurrent: int = 8
    max_dpi: int = 200


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise ImportError("docrag serve needs the serve extra: pip install 'docrag[serve]'") from None
    return fastapi


def create_app(
    index: Index,
    token: str | None = None,
    *,
    cors_origins: list[str] | tuple[str, ...] = (),
    limits: Limits | None = None,
) -> Any:
    """The HTTP app over ``index``. ``token``: every request must carry it (``Authorization: Bearer TOKEN``, or
    ``?token=TOKEN`` for links and images); ``cors_origins``: origins allowed to call from a browser (none by
    default: CORS off)."""
    fastapi = _import_fastapi()
    from fastapi import HTTPException, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    limits = limits or Limits()
    app = fastapi.FastAPI(
        title="docrag",
        summary=f"Page retrieval over {index.db}",
        description="Search pages, list documents, fetch page images (with the answer regions drawn).",
        docs_url=None,  # served below: with a token, the page must pass it on to /openapi.json
        redoc_url=None,
    )
    # One request at a time reads the index (its tables and models are shared); up to max_concurrent wait here.
    reading = threading.Lock()
    last_count = [len(index.store.documents.ready())]  # ready documents, as the last /health read them
    in_flight = threading.BoundedSemaphore(limits.max_concurrent)
    secret = token.encode() if token else None

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if secret is not None:
            given = request.headers.get("authorization", "")
            given = given[7:] if given[:7].lower() == "bearer " else request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), secret):
                return JSONResponse(
                    {"detail": "missing or wrong token: send the header 'Authorization: Bearer TOKEN' (or ?token=)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if request.url.path == "/health":  # never refused for being busy: a busy server is up
            return await call_next(request)
        if not in_flight.acquire(blocking=False):
            return JSONResponse(
                {"detail": f"too many requests at once (limit {limits.max_concurrent}): retry shortly"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        try:
            return await call_next(request)
        finally:
            in_flight.release()

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )

    def check_query(query: str) -> str:
        if not query.strip():
            raise HTTPException(422, "the query is empty: give the words to search for")
        if len(query) > limits.max_query_chars:
            raise HTTPException(
                422, f"the query is {len(query)} characters long; the limit is {limits.max_query_chars}"
            )
        return query

    def ready() -> dict[str, str]:
        """doc_id -> path of the documents search sees now (the tables as they are at this request)."""
        index.store.refresh()
        return index.store.documents.ready()

    def find(document: str) -> str:
        """The doc_id of a ready document named by its doc_id or the file name of one of its paths; else 404."""
        docs = ready()
        if document in docs:
            return document
        if "/" not in document and "\\" not in document and document not in ("", ".", ".."):
            ids = {
                row["doc_id"]
                for row in index.store.documents.rows(columns=["doc_id", "paths"])
                if row["doc_id"] in docs and any(Path(p).name == document for p in row["paths"])
            }
            if len(ids) > 1:
                raise HTTPException(
                    404, f"{document!r} names {len(ids)} indexed documents: use a doc_id (see /documents)"
                )
            if ids:
                return ids.pop()
        raise HTTPException(404, f"no document {document!r} in this index (see /documents)")

    @app.get("/docs", include_in_schema=False)
    def docs(token: str | None = Query(None, include_in_schema=False)) -> Any:
        """Swagger UI. Opened as ``/docs?token=TOKEN``, it loads the schema with the same token; "Authorize" takes
        it for the requests tried from the page."""
        from urllib.parse import urlencode

        from fastapi.openapi.docs import get_swagger_ui_html

        url = app.openapi_url
        if secret is not None and token:  # the middleware has checked it
            url += "?" + urlencode({"token": token})
        return get_swagger_ui_html(openapi_url=url, title="docrag API")

    if secret is not None:  # the schema says how to authorise, so "Try it out" works from /docs
        schema_of = app.openapi

        def openapi() -> dict[str, Any]:
            schema = schema_of()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            schema["security"] = [{"bearer": []}]
            return schema

        app.openapi = openapi

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> Any:
        return HTMLResponse(resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    def health() -> dict[str, Any]:
        """The server is up and reads the index: its ready documents. While searches hold the index, it answers at
        once with the count last seen and ``"busy": true`` (a busy server is up)."""
        if not reading.acquire(timeout=0.2):
            return {"status": "ok", "documents": last_count[0], "busy": True}
        try:
            last_count[0] = len(ready())
        finally:
            reading.release()
        return {"status": "ok", "documents": last_count[0]}

    @app.get("/documents")
    def documents() -> dict[str, Any]:
        """The documents search sees now (ready ones: a document being indexed shows once all its pages are in)."""
        with reading:
            docs = ready()
            rows = index.store.documents.rows() if docs else []
        keep = ("doc_id", "path", "paths", "n_pages", "size", "metadata", "indexed_at")
        out = [{k: r.get(k) for k in keep} | {"metadata": r.get("metadata") or {}} for r in rows if r["doc_id"] in docs]
        return {"documents": sorted(out, key=lambda r: r["path"])}

    @app.get("/search")
    def search(
        query: str = Query(..., description=f"The question (at most {limits.max_query_chars} characters)."),
        k: int = Query(10, description=f"Pages to return (1 to {limits.max_k})."),
        where: str | None = Query(None, description="SQL over the documents table (path, size, indexed_at …)."),
        min_score: float | None = Query(None, description="Only hits whose confidence (0 to 1) is at least this."),
    ) -> dict[str, Any]:
        """The ``k`` best pages for ``query``, each with its fused and per-leg scores, snippet and answer regions."""
        check_query(query)
        if not 1 <= k <= limits.max_k:
            raise HTTPException(422, f"k={k}: ask for 1 to {limits.max_k} pages")
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise HTTPException(422, f"min_score={min_score:g}: a confidence is between 0 and 1")
        try:
            with reading:
                hits = index.search(query, k, where or None, min_score=min_score)
                out = [h.to_dict(regions=True) for h in hits]
        except ValueError as exc:  # a bad where filter, a leg the database lacks …
            raise HTTPException(422, str(exc)) from None
        return {"query": query, "hits": out, "hidden": hits.hidden}

    @app.get(
        "/pages/{document}/{page}.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such document or page."}},
    )
    def page_image(
        document: str,
        page: int,
        query: str | None = Query(None, description="Draw where this query's answer is on the page."),
        dpi: int = Query(100, description="Resolution (20 to the server's limit)."),
    ) -> Any:
        """A page of an indexed document as PNG (``document``: its doc_id or file name); ``query``: with that
        query's answer regions drawn."""
        if query is not None:
            check_query(query)
        if not 20 <= dpi <= limits.max_dpi:
            raise HTTPException(422, f"dpi={dpi}: use 20 to {limits.max_dpi}")
        with reading:
            doc_id = find(document)
            n_pages = (index.store.documents.get(doc_id, ["n_pages"]) or {}).get("n_pages") or 0
            if not 1 <= page <= n_pages:
                raise HTTPException(404, f"{document!r} has no page {page} (it has {n_pages})")
            try:
                image = index.render(doc_id, page, dpi)
                if query is not None:
                    hit = index.explain(query, doc_id, page)
                    if hit is not None:
                        from docrag.pipeline.regions import draw_regions

                        image = draw_regions(image, hit.regions())
            except KeyError:
                raise HTTPException(404, f"page {page} of {document!r} cannot be rendered (its file is gone)") from None
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})

    return app
