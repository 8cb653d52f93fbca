"""Helpers for the tests of servers that keep answering while an indexer writes to their database: ``Served`` (an
app on an ephemeral 127.0.0.1 port) and ``held_add`` (an ``add`` held after its first pages are written)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = ["LIVE", "Served", "assert_http_live", "held_add", "live_pdf"]

LIVE = "Every page of this manual explains the calibration of the ornithopter gearbox."


class Served:
    """An app on an ephemeral 127.0.0.1 port, uvicorn in a thread; ``stop()`` ends it."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def held_add(index: Any, paths: list[Path]) -> Iterator[dict[str, Any]]:
    """``index.add(paths)`` in a thread, held right after its first pages are in the tables (the document not yet
    ready). Inside the block the writer is held there; leaving it lets the writer finish, and the yielded dict
    then holds its report under ``"report"``."""
    written, proceed = threading.Event(), threading.Event()
    out: dict[str, Any] = {}

    def progress(event: str, data: dict) -> None:
        if event == "pages" and not written.is_set():
            written.set()
            assert proceed.wait(120)

    writer = threading.Thread(target=lambda: out.update(report=index.add(paths, progress=progress, workers=0)))
    writer.start()
    try:
        assert written.wait(120), "the indexer wrote nothing"
        yield out
    finally:
        proceed.set()
        writer.join(120)
    assert "report" in out, "the indexer did not finish"


def live_pdf(path: Path, n_pages: int, sentence: str) -> Path:
    """A PDF of ``n_pages`` A4 pages, each "Chapter N." and ``sentence``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for p in range(1, n_pages + 1):
        c.setFont("Helvetica", 12)
        c.drawString(72, 780, f"Chapter {p}. {sentence}")
        c.showPage()
    c.save()
    return path


def assert_http_live(url: str, writer: Any, tmp_path: Path, before: int) -> None:
    """While ``writer`` adds a 6-page document to the database served at ``url``, held after its first pages: no
    hit and no listing of it, ``before`` documents; after: all its pages, ``before + 1`` documents."""
    n = 6
    new = live_pdf(tmp_path / "live.pdf", n, LIVE)

    def seen(c: httpx.Client) -> tuple[int, list[dict]]:
        hits = c.get("/search", params={"query": "ornithopter gearbox calibration", "k": 20}).json()["hits"]
        docs = c.get("/documents").json()["documents"]
        assert {h["doc_id"] for h in hits} <= {d["doc_id"] for d in docs}
        return sum(Path(h["file"]).name == "live.pdf" for h in hits), [
            d for d in docs if Path(d["path"]).name == "live.pdf"
        ]

    with httpx.Client(base_url=url, timeout=60) as c:
        assert seen(c) == (0, [])
        with held_add(writer, [new]) as out:
            assert seen(c) == (0, []), "a document was visible before it was ready"
            assert c.get("/health").json()["documents"] == before
        assert out["report"].indexed == 1
        found, listed = seen(c)
        assert found == n and [d["n_pages"] for d in listed] == [n]  # all of it, at once
        assert c.get("/health").json()["documents"] == before + 1
