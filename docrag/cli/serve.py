"""``docrag serve``: the HTTP API and search page over a database (``docrag.serve``, FastAPI + uvicorn)."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from .app import ConfigOpt, DbOpt, ProfileOpt, app, call, fail, note, open_db


@app.command()
def serve(
    db: DbOpt = "docrag.db",
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one).")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="DOCRAG_SERVE_TOKEN", help="Every request must carry it (Authorization: Bearer …)."
        ),
    ] = None,
    cors_origins: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="An origin allowed to call from a browser (repeatable; default none)."),
    ] = None,
    max_k: Annotated[int, typer.Option("--max-k", help="Most pages one search may ask for.")] = 100,
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", help="Requests in flight at once; more get 429.")
    ] = 8,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the database over HTTP (read-only): /search, /documents, /pages/DOC/N.png, /health, /docs, and a
    search page at /."""
    from docrag.serve import Limits, create_app, is_loopback

    if not is_loopback(host) and not token:
        fail(
            f"--host {host} is reachable from other machines: give --token TOKEN (or set DOCRAG_SERVE_TOKEN), "
            "or serve on 127.0.0.1"
        )
    if not 0 <= port <= 65535:
        fail(f"--port {port}: use 0 to 65535")
    if max_k < 1 or max_concurrent < 1:
        fail("--max-k and --max-concurrent must be at least 1")
    try:
        import uvicorn
    except ImportError:
        fail("docrag serve needs the serve extra: pip install 'docrag[serve]'")
    idx = open_db(db, profile, config)
    call(lambda: idx.store, profile)  # a --profile whose models the database was not built with: said now
    limits = Limits(max_k=max_k, max_concurrent=max_concurrent)
    web = create_app(idx, token, cors_origins=tuple(cors_origins or ()), limits=limits)
    try:  # bound here, so a port in use is one line, and port 0's pick is the one shown
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    shown = f"[{host}]" if ":" in host else host
    note(f"serving {db} on http://{shown}:{sock.getsockname()[1]}/ (API docs at /docs; Ctrl-C stops)")
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning"))
    with sock:
        server.run(sockets=[sock])
