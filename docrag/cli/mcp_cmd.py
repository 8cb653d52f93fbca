"""``docrag mcp``: serve a database to MCP clients (LLM agents, desktop assistants) over stdio, read-only."""

from __future__ import annotations

from .app import ConfigOpt, DbOpt, ProfileOpt, app, call, fail, open_db


@app.command("mcp")
def mcp_cmd(db: DbOpt, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    """Serve the database as an MCP server on stdin/stdout (tools: search, page_image, documents; read-only).
    An MCP client starts it: put `docrag mcp --db DB` in the client's server configuration."""
    idx = open_db(db, profile, config)
    call(lambda: idx.store, profile)  # a --profile whose models the database was not built with: said now
    from docrag.mcp_server import MISSING_MCP, require_mcp, serve_stdio

    try:
        require_mcp()
    except ImportError:
        fail(MISSING_MCP)
    call(lambda: serve_stdio(idx), idx.settings.profile)
