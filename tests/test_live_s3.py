"""Servers over an ``s3://`` database (a local S3 emulator) keep answering while an indexer writes to it, and show
a document only once it is ready: ``docrag serve``'s app and a ``docrag mcp`` process, each with an indexer held
right after its first pages are in the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest
from live import Served, assert_http_live
from mcpclient import Client, assert_mcp_live

import docrag
from docrag.serve import create_app

pytestmark = [pytest.mark.s3, pytest.mark.slow]
LITE = {"ingest": {"ocr": False, "elements": "text-layer"}}


@pytest.fixture(scope="module")
def on_s3(s3, tmp_path_factory) -> tuple[str, docrag.Index]:
    """A lite database in the bucket holding one planted PDF; its URI and the index that wrote it (the indexer)."""
    from docrag.testing import pdfgen

    corpus = tmp_path_factory.mktemp("live_s3")
    pdfgen.planted_pdf(corpus / "planted.pdf", "The quarterly zanzibarite shipment left the harbour of Mombasa.")
    db = s3.uri("live")
    writer = docrag.open(db, profile="lite", storage_options=s3.options, **LITE)
    assert writer.add([corpus], workers=0).indexed == 1
    return db, writer


def test_serve_on_s3_shows_a_document_only_once_it_is_ready(s3, on_s3, tmp_path):
    db, writer = on_s3
    served = Served(create_app(docrag.open(db, storage_options=s3.options)))
    try:
        assert_http_live(served.url, writer, tmp_path, before=1)
    finally:
        served.stop()
    assert writer.remove(tmp_path / "live.pdf") == 1  # the database as the next test expects it


def test_mcp_on_s3_shows_a_document_only_once_it_is_ready(s3, on_s3, tmp_path):
    db, writer = on_s3
    client = Client(["mcp", "--db", db], tmp_path / "stderr.txt", env=s3.env)
    try:
        assert_mcp_live(client, writer, tmp_path)
    finally:
        client.close()
    assert Path(client.errlog.name).read_text() == ""  # quiet: nothing logged
