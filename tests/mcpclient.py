"""An MCP client for the tests: the SDK's own ``ClientSession`` over stdio to a ``docrag mcp`` process, and the
helpers that read its tool results."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from pathlib import Path
from typing import Any

from clirun import EXE
from live import LIVE, held_add, live_pdf

__all__ = ["Client", "assert_mcp_live", "tool_error", "tool_json", "tool_png"]


class Client:
    """An MCP ``ClientSession`` over stdio to a ``docrag mcp`` process, kept open in a thread of its own (its
    event loop) so that the module's tests share one server; ``call`` runs a session coroutine there."""

    def __init__(self, args: list[str], errlog: Path, env: dict[str, str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready, self.failed = threading.Event(), None
        self.errlog = errlog.open("w")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.main = asyncio.run_coroutine_threadsafe(self._main(args, env), self.loop)
        self.ready.wait(timeout=120)
        if self.failed is not None or not self.ready.is_set():
            raise RuntimeError(f"the MCP server did not start: {self.failed}")

    async def _main(self, args: list[str], env: dict[str, str] | None) -> None:
        from mcp import ClientSession, StdioServerParameters, stdio_client

        self.stop = asyncio.Event()
        params = StdioServerParameters(command=EXE, args=args, env=env)
        try:
            async with stdio_client(params, errlog=self.errlog) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                self.session = s
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:
            self.failed = exc
            self.ready.set()
            raise

    def call(self, make: Any, timeout: float = 60) -> Any:
        async def run() -> Any:
            return await make(self.session)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def tool(self, name: str, **arguments: Any) -> Any:
        return self.call(lambda s: s.call_tool(name, arguments))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.main.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.errlog.close()


def tool_json(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    (text,) = [c.text for c in result.content if c.type == "text"]
    return json.loads(text)


def tool_error(result: Any) -> str:
    assert result.is_error, result.content
    return result.content[0].text


def tool_png(result: Any) -> Any:
    from PIL import Image

    assert not result.is_error, result.content
    (image,) = [c for c in result.content if c.type == "image"]
    assert image.mime_type == "image/png"
    data = base64.b64decode(image.data)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(data)).convert("RGB")


def assert_mcp_live(client: Client, writer: Any, tmp_path: Path) -> None:
    """While ``writer`` adds a 6-page document to the database the server reads, held after its first pages:
    neither ``search`` nor ``documents`` shows any of it, and the server keeps answering; after: all its pages,
    listed as ready, its page images served."""
    n = 6
    new = live_pdf(tmp_path / "live.pdf", n, LIVE)

    def seen() -> tuple[int, list[dict[str, Any]], int]:
        hits = tool_json(client.tool("search", query="ornithopter gearbox calibration", k=20))["hits"]
        docs = tool_json(client.tool("documents"))["documents"]
        assert {h["doc_id"] for h in hits} <= {d["doc_id"] for d in docs}
        live = [d for d in docs if Path(d["path"]).name == "live.pdf"]
        return sum(Path(h["file"]).name == "live.pdf" for h in hits), live, len(docs)

    found, listed, before = seen()
    assert (found, listed) == (0, [])
    with held_add(writer, [new]) as out:
        assert seen() == (0, [], before), "a document was visible before it was ready"
        assert tool_error(client.tool("page_image", document="live.pdf", page=1)).endswith(
            "live.pdf is not an indexed document: use a doc_id or file from `documents`"
        )
    assert out["report"].indexed == 1
    found, listed, after = seen()
    assert found == n and [(d["pages"], d["status"]) for d in listed] == [(n, "ready")]  # all of it, at once
    assert after == before + 1
    assert tool_png(client.tool("page_image", document="live.pdf", page=n)).size[0] > 100
