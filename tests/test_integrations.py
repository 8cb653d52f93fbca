"""The LangChain and LlamaIndex retrievers (docrag.integrations), against the real packages, on one small lite
database: the planted page first with its metadata and per-leg scores, k / where / min_score honoured, the page
image on request, a missing database refused, and a missing package named with its extra."""

from __future__ import annotations

import asyncio
import base64
import importlib
import io
import sys
from pathlib import Path

import pytest
from PIL import Image

import docrag

PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."  # conftest hits_db
QUERY = "zanzibarite shipment Mombasa harbour"
NONSENSE = "zxqv blorft quantum marmalade"


@pytest.fixture(scope="module")
def lite_db(hits_db) -> Path:
    """conftest's ``hits_db``: planted.pdf (PLANTED on page 2 of 3) with {project: demo, year: 2024}; other.pdf
    (two pages of real prose) with {project: demo-old, tags: [x, y]}."""
    return hits_db


@pytest.fixture(scope="module")
def index(lite_db):
    return docrag.open(lite_db)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _png(data: str) -> Image.Image:
    raw = base64.b64decode(data)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def _check_planted_metadata(meta: dict) -> None:
    assert (Path(meta["file"]).name, meta["page"]) == ("planted.pdf", 2)
    assert meta["source"] == meta["file"] and len(meta["doc_id"]) == 64
    assert meta["project"] == "demo" and meta["year"] == 2024  # the document's own metadata
    assert 0 <= meta["confidence"] <= 1 and meta["score"] > 0
    assert "zanzibarite" in meta["snippet"]
    assert {"text", "bm25"} <= set(meta["legs"])
    assert all(v["rank"] >= 1 and isinstance(v["score"], float) for v in meta["legs"].values())


@pytest.mark.slow
def test_langchain_retriever_finds_the_planted_page_with_its_metadata(lite_db, index):
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from docrag.integrations.langchain import DocragRetriever

    retriever = DocragRetriever(db=str(lite_db), k=3)
    assert isinstance(retriever, BaseRetriever) and isinstance(retriever.index, docrag.Index)
    docs = retriever.invoke(QUERY)
    assert 1 < len(docs) <= 3 and all(isinstance(d, Document) for d in docs)
    _check_planted_metadata(docs[0].metadata)
    assert PLANTED in _flat(docs[0].page_content) and "image" not in docs[0].metadata
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    # content="chunk": the passage that matched, part of the page's text.
    chunk = DocragRetriever(index=index, k=1, content="chunk").invoke(QUERY)
    assert len(chunk) == 1 and "zanzibarite" in chunk[0].page_content
    assert len(chunk[0].page_content) < len(docs[0].page_content)
    assert _flat(chunk[0].page_content) in _flat(docs[0].page_content)
    with pytest.raises(ValueError, match="content must be one of page, chunk"):
        DocragRetriever(index=index, content="pages")


@pytest.mark.slow
def test_langchain_retriever_filters_and_thresholds_and_gives_the_image(index):
    from docrag.integrations.langchain import DocragRetriever

    old = DocragRetriever(index=index, k=5, where={"project": "demo-old"}).invoke(QUERY)
    assert old and {Path(d.metadata["file"]).name for d in old} == {"other.pdf"}
    sql = DocragRetriever(index=index, where="path LIKE '%planted%'").invoke(QUERY)
    assert sql and {Path(d.metadata["file"]).name for d in sql} == {"planted.pdf"}
    assert DocragRetriever(index=index, min_score=0.5).invoke(NONSENSE) == []
    assert DocragRetriever(index=index, min_score=0.5).invoke(QUERY)[0].metadata["page"] == 2
    [doc] = asyncio.run(DocragRetriever(index=index, k=1, with_image=True, image_dpi=40).ainvoke(QUERY))
    page = _png(doc.metadata["image"])
    assert doc.metadata["image_mimetype"] == "image/png" and page.format == "PNG"
    assert page.width > 200 and page.height > 200 and len(page.getcolors(1 << 20) or []) > 2  # a page, not blank
    [drawn] = DocragRetriever(index=index, k=1, with_image=True, image_dpi=40, image_regions=True).invoke(QUERY)
    drawn_page = _png(drawn.metadata["image"])  # the regions drawn, their legend in a band below the page
    assert drawn_page.width == page.width and drawn_page.height > page.height
    bm25 = DocragRetriever(index=index, k=2, legs="bm25").invoke(QUERY)
    assert bm25 and all(set(d.metadata["legs"]) == {"bm25"} for d in bm25)


@pytest.mark.slow
def test_llamaindex_retriever_finds_the_planted_page_with_its_metadata(lite_db, index):
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore, TextNode

    from docrag.integrations.llamaindex import DocragRetriever

    retriever = DocragRetriever(db=lite_db, k=3)
    assert isinstance(retriever, BaseRetriever) and isinstance(retriever.index, docrag.Index)
    nodes = retriever.retrieve(QUERY)
    assert 1 < len(nodes) <= 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    top = nodes[0]
    assert type(top.node) is TextNode and PLANTED in _flat(top.node.text)
    _check_planted_metadata(top.node.metadata)
    assert top.score == top.node.metadata["score"]
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    prompt = top.node.get_content(MetadataMode.LLM)  # what an LLM sees: the file and page, no scores
    assert "planted.pdf" in prompt and "page: 2" in prompt and "legs" not in prompt and "confidence" not in prompt
    # k, where, min_score, content="chunk", and the page as an ImageNode.
    assert len(DocragRetriever(index, k=1).retrieve(QUERY)) == 1
    old = DocragRetriever(index, k=5, where={"project": "demo-old"}).retrieve(QUERY)
    assert old and {Path(n.node.metadata["file"]).name for n in old} == {"other.pdf"}
    assert DocragRetriever(index, min_score=0.5).retrieve(NONSENSE) == []
    [chunk] = DocragRetriever(index, k=1, content="chunk").retrieve(QUERY)
    assert "zanzibarite" in chunk.node.text and len(chunk.node.text) < len(top.node.text)
    [pic] = DocragRetriever(index, k=1, with_image=True, image_dpi=40).retrieve(QUERY)
    assert isinstance(pic.node, ImageNode) and pic.node.image_mimetype == "image/png"
    assert pic.node.metadata["page"] == 2 and PLANTED in _flat(pic.node.text)
    assert _png(pic.node.image).width > 200


def test_a_missing_database_raises_no_database_error(tmp_path):
    from docrag.integrations import langchain, llamaindex

    typo = tmp_path / "papers.dbb"
    for make in (
        lambda: langchain.DocragRetriever(db=str(typo)),
        lambda: langchain.DocragRetriever(index=docrag.open(typo)),
        lambda: llamaindex.DocragRetriever(db=typo),
        lambda: llamaindex.DocragRetriever(docrag.open(typo)),
    ):
        with pytest.raises(docrag.NoDatabaseError, match=r"^no database at .*papers\.dbb"):
            make()
    assert not typo.exists()  # nothing made on the spot
    with pytest.raises(ValueError, match=r"either index=docrag\.open"):
        llamaindex.DocragRetriever()
    # k of 0 is said before the database is looked for
    with pytest.raises(ValueError, match=r"k\n  Input should be greater than or equal to 1"):
        langchain.DocragRetriever(db=str(typo), k=0)
    with pytest.raises(ValueError, match="k must be at least 1, not 0"):
        llamaindex.DocragRetriever(db=typo, k=0)


def test_docrag_keys_win_a_clash_with_the_documents_metadata():
    from docrag.integrations import hit_metadata

    hit = docrag.Hit("a.pdf", "d" * 64, 3, 0.5, "text", "prose", metadata={"page": "cover", "team": "x"})
    meta = hit_metadata(hit)
    assert meta["page"] == 3 and meta["team"] == "x" and meta["source"] == meta["file"] == "a.pdf"


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("langchain", "langchain_core.retrievers", "langchain"),
        ("llamaindex", "llama_index.core.retrievers", "llamaindex"),
    ],
)
def test_without_the_framework_the_error_names_the_extra(monkeypatch, module, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # as if the package were not installed
    monkeypatch.delitem(sys.modules, f"docrag.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'docrag\[{extra}\]'"):
        importlib.import_module(f"docrag.integrations.{module}")
