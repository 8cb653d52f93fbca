"""Element partitioning (unstructured, guarded offline) and OCR (tesseract)."""

from __future__ import annotations

import shutil

import pytest

from docrag.parsers import open_document
from docrag.parsers.elements import partition_pages, text_layer_elements
from docrag.parsers.ocr import ocr_image

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


def test_unstructured_fast_gives_elements_offline(docs):
    with open_document(docs["multi"]) as doc:
        pages = list(doc.pages())
    out = partition_pages(docs["multi"], pages)
    assert all(out[p.number] for p in pages), "a page with a text layer never comes back with zero elements"
    texts = " ".join(e.text for e in out[1])
    assert "On routing pages to the right index" in texts
    assert {e.source for els in out.values() for e in els} == {"unstructured"}
    assert not any("text layer" in d for p in pages for d in p.diagnostics)


def test_zero_elements_falls_back_to_the_text_layer_and_says_so(docs, monkeypatch):
    import unstructured.partition.pdf as updf

    monkeypatch.setattr(updf, "partition_pdf", lambda **kw: [])  # what the silent offline failures look like
    with open_document(docs["prose"]) as doc:
        pages = list(doc.pages())
    out = partition_pages(docs["prose"], pages)
    assert out[1] and all(e.source == "text-layer" for e in out[1])
    assert "On routing pages" in out[1][0].text
    assert any("unstructured returned no elements" in d for d in pages[0].diagnostics)


def test_exceptions_inside_unstructured_fall_back_too(docs, monkeypatch):
    import unstructured.partition.pdf as updf

    def broken(**kw):
        raise RuntimeError("spaCy model download failed")

    monkeypatch.setattr(updf, "partition_pdf", broken)
    with open_document(docs["prose"]) as doc:
        pages = list(doc.pages())
    out = partition_pages(docs["prose"], pages)
    assert out[1] and "spaCy model download failed" in pages[0].diagnostics[0]


def test_scanned_pages_get_no_elements_here(docs):
    with open_document(docs["scan"]) as doc:
        pages = list(doc.pages())
    assert partition_pages(docs["scan"], pages) == {1: []}


def test_text_layer_elements_split_paragraphs(docs):
    with open_document(docs["code"]) as doc:
        page = doc.page(1)
    els = text_layer_elements(page)
    assert els and all(e.page == 1 and e.text for e in els)


@needs_tesseract
@pytest.mark.ocr
def test_ocr_reads_a_rendered_page(docs):
    with open_document(docs["prose"]) as doc:
        img = doc.page(1).render(200)
    res = ocr_image(img)
    words = res.text.lower()
    assert "routing pages" in words and "right index" in words
    assert res.spans and res.confidence > 0.5
