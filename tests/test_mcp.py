"""``docrag mcp``: the MCP server over stdio, driven end to end by the SDK's own client (``mcp.client.stdio``)
against a real ``docrag mcp --db`` process, on one small lite database (the real MiniLM text model)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from clirun import invoke
from mcpclient import Client, assert_mcp_live, tool_error, tool_json, tool_png

import docrag

PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."
LITE = {"ingest": {"ocr": False, "elements": "text-layer"}}


@pytest.fixture(scope="module")
def lite_db(tmp_path_factory) -> tuple[Path, dict[str, str], docrag.Index]:
    """planted.pdf (A4, PLANTED on page 2 of 3) with the metadata {project: demo}, and slide.pdf (one landscape
    page); returns the database, {file name: doc_id} and the index that wrote it."""
    from docrag.testing import pdfgen

    d = tmp_path_factory.mktemp("mcp")
    src = d / "src"
    src.mkdir()
    pdfgen.planted_pdf(src / "planted.pdf", PLANTED)
    pdfgen.slide_pdf(src / "slide.pdf")
    db = d / "db"
    idx = docrag.open(db, profile="lite", **LITE)
    assert idx.add([src], metadata={"project": "demo"}, workers=0).indexed == 2
    return db, {Path(doc["path"]).name: doc["doc_id"] for doc in idx.documents()}, idx


@pytest.fixture(scope="module")
def client(lite_db, tmp_path_factory):
    db, _, _ = lite_db
    c = Client(["mcp", "--db", str(db)], tmp_path_factory.mktemp("mcp_log") / "stderr.txt")
    yield c
    c.close()


@pytest.mark.slow
def test_the_server_lists_three_read_only_tools(client):
    tools = {t.name: t for t in client.call(lambda s: s.list_tools()).tools}
    assert set(tools) == {"search", "page_image", "documents"}
    assert all(t.annotations.read_only_hint for t in tools.values())
    assert set(tools["search"].input_schema["properties"]) == {"query", "k", "where"}
    assert tools["search"].input_schema["required"] == ["query"]
    assert set(tools["page_image"].input_schema["properties"]) == {"document", "page", "regions_for"}


@pytest.mark.slow
def test_search_finds_the_planted_page_with_scores_snippet_and_regions(client, lite_db):
    _, ids, _ = lite_db
    out = tool_json(client.tool("search", query="zanzibarite shipment Mombasa harbour", k=3))
    top = out["hits"][0]
    assert (Path(top["file"]).name, top["page"], top["doc_id"]) == ("planted.pdf", 2, ids["planted.pdf"])
    assert top["score"] > 0 and 0 <= top["confidence"] <= 1
    assert "text" in top["legs"] and {"score", "rank"} <= set(top["legs"]["text"])
    assert "zanzibarite" in top["snippet"] and top["metadata"] == {"project": "demo"}
    boxes = [r["box"] for r in top["regions"]["regions"]]
    assert boxes and all(0 <= v <= 1 for b in boxes for v in b) and all(b[0] < b[2] and b[1] < b[3] for b in boxes)
    # A metadata filter and SQL over the documents reach the search.
    assert tool_json(client.tool("search", query="zanzibarite", where={"project": "other"}))["hits"] == []
    slide = tool_json(client.tool("search", query="zanzibarite", where="path LIKE '%slide.pdf'"))["hits"]
    assert {Path(h["file"]).name for h in slide} == {"slide.pdf"}


@pytest.mark.slow
def test_page_image_is_a_png_of_the_page_and_draws_the_regions_of_a_query(client, lite_db):
    _, ids, _ = lite_db
    plain = tool_png(client.tool("page_image", document=ids["planted.pdf"], page=2))
    assert abs(plain.width / plain.height - 595.2756 / 841.8898) < 0.01  # A4 portrait
    slide = tool_png(client.tool("page_image", document="slide.pdf", page=1))  # by file name
    assert abs(slide.width / slide.height - 960 / 540) < 0.01  # landscape
    drawn = tool_png(client.tool("page_image", document="planted.pdf", page=2, regions_for="zanzibarite shipment"))
    assert drawn.size[0] == plain.size[0]
    colours = lambda img: {c for _, c in img.getcolors(1 << 24) if len(set(c)) > 1}  # noqa: E731  (not grey)
    assert len(colours(drawn)) > len(colours(plain)) + 10  # boxes in the legs' colours on a black-and-white page


@pytest.mark.slow
def test_documents_lists_what_is_indexed(client, lite_db):
    _, ids, _ = lite_db
    docs = tool_json(client.tool("documents"))["documents"]
    assert {Path(d["path"]).name: (d["doc_id"], d["pages"], d["status"]) for d in docs} == {
        "planted.pdf": (ids["planted.pdf"], 3, "ready"),
        "slide.pdf": (ids["slide.pdf"], 1, "ready"),
    }
    assert all(d["metadata"] == {"project": "demo"} for d in docs)


@pytest.mark.slow
def test_bad_arguments_are_tool_errors_with_one_line_and_the_server_keeps_answering(client, lite_db):
    _, ids, _ = lite_db
    image, search = "Error executing tool page_image: ", "Error executing tool search: "  # the SDK's prefix
    assert tool_error(client.tool("page_image", document="nothere.pdf", page=1)) == (
        image + "nothere.pdf is not an indexed document: use a doc_id or file from `documents`"
    )
    assert tool_error(client.tool("page_image", document="../../etc/passwd", page=1)) == (
        image + "../../etc/passwd is not an indexed document: use a doc_id or file from `documents`"
    )
    assert tool_error(client.tool("page_image", document=ids["planted.pdf"], page=4)) == (
        image + "page 4 is out of range: planted.pdf has 3 page(s)"
    )
    assert tool_error(client.tool("search", query="harbour", k=0)) == search + "k=0: ask for 1 to 100 pages"
    assert tool_error(client.tool("search", query="harbour", k=101)) == search + "k=101: ask for 1 to 100 pages"
    assert tool_error(client.tool("search", query="  ")) == search + "the query is empty: give the words to search for"
    assert tool_error(client.tool("search", query="word " * 500)) == (
        search + "the query has 2500 characters: at most 1000, ask a shorter question"
    )
    bad_sql = tool_error(client.tool("search", query="harbour", where="no_such_column = 1"))
    assert bad_sql.startswith(search) and "\n" not in bad_sql, bad_sql
    assert tool_json(client.tool("documents"))["documents"]  # still serving
    assert client.errlog.name and Path(client.errlog.name).read_text() == ""  # quiet: nothing logged


@pytest.mark.slow
def test_a_running_server_shows_a_document_only_once_it_is_ready(client, lite_db, tmp_path):
    """(Last of the module's server tests: it adds a document to the database they share.)"""
    assert_mcp_live(client, lite_db[2], tmp_path)


def test_mcp_without_a_database_is_one_line_and_exit_2(tmp_path):
    typo = tmp_path / "typo.db"
    r = invoke("mcp", "--db", typo)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == f"error no database at {typo}: run `docrag index PATH --db {typo}` first"
    assert r.stdout == ""


@pytest.mark.slow
def test_mcp_without_the_sdk_names_the_extra(lite_db, monkeypatch):
    db, _, _ = lite_db
    monkeypatch.setitem(sys.modules, "mcp.server", None)  # as if the mcp package were not installed
    r = invoke("mcp", "--db", db)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == "error the MCP server needs the mcp package: pip install 'docrag[mcp]'"
