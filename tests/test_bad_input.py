"""Hostile or broken inputs: each gives a clear per-file error (or a capped, logged render); the batch goes on."""

from __future__ import annotations

import logging
import shutil

import pytest

from docrag.config import Limits
from docrag.parsers import DocumentError, open_document
from docrag.pipeline.routing import route_files

REASONS = {
    "empty": "empty",
    "not_pdf": "not a PDF",
    "truncated": "truncated",
    "encrypted": "password",
    "zero_pages": "zero pages",
    "png_bomb": "pixels",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_open_gives_an_error_naming_file_and_reason(bad_docs, name):
    path = bad_docs[name]
    with pytest.raises(DocumentError) as info, open_document(path) as doc:
        list(doc.pages())
    err = info.value
    assert err.file == str(path)
    assert REASONS[name] in err.reason
    assert str(err).startswith(str(path))


def test_huge_page_is_parsed_and_its_render_is_capped(bad_docs, caplog):
    limits = Limits(max_render_pixels=2_000_000)
    with open_document(bad_docs["huge_page"], limits) as doc:
        page = doc.page(1)
        assert page.width_pt == 14400 and "Huge page" in page.text
        with caplog.at_level(logging.INFO, logger="docrag.parsers.pdf"):
            img = page.render(150)  # 30000 x 30000 px uncapped
    assert img.width * img.height <= 2_000_000
    assert any("render capped" in rec.message for rec in caplog.records)


def test_embedded_image_bomb_is_routed_but_never_decoded(bad_docs):
    with open_document(bad_docs["pdf_image_bomb"]) as doc:
        page = doc.page(1)
        assert page.figures and page.figures[0].width_px == 60000
        with pytest.raises(DocumentError, match="max_image_pixels"):
            page.render(100)


def test_a_folder_of_bad_files_reports_each_and_routes_the_good_ones(bad_docs, docs, tmp_path):
    for p in bad_docs.values():
        shutil.copy(p, tmp_path / p.name)
    shutil.copy(docs["prose"], tmp_path / "good.pdf")
    (tmp_path / "readme.xyz").write_text("not a document")
    report = route_files([tmp_path])
    routed = {r.file.rsplit("/", 1)[-1] for r in report.pages}
    assert routed == {"good.pdf", "huge.pdf", "bomb.pdf"}
    failed = {e["file"].rsplit("/", 1)[-1]: e["error"] for e in report.errors}
    assert set(failed) == {
        "empty.pdf",
        "notes.pdf",
        "truncated.pdf",
        "encrypted.pdf",
        "zero.pdf",
        "bomb.png",
    }
    assert [p.rsplit("/", 1)[-1] for p in report.skipped] == ["readme.xyz"]
    assert all(failed.values())


def test_unexpected_parser_crash_is_contained(monkeypatch, docs, tmp_path):
    import docrag.parsers.pdf as pdf_mod

    shutil.copy(docs["prose"], tmp_path / "a.pdf")
    shutil.copy(docs["table"], tmp_path / "b.pdf")
    real = pdf_mod.PdfReader._parse

    def flaky(self, page, number):
        if self.file.endswith("a.pdf"):
            raise ZeroDivisionError("boom")
        return real(self, page, number)

    monkeypatch.setattr(pdf_mod.PdfReader, "_parse", flaky)
    report = route_files([tmp_path], workers=0)  # in this process, where the patch is
    assert [r.file.rsplit("/", 1)[-1] for r in report.pages] == ["b.pdf"]
    assert "ZeroDivisionError" in report.errors[0]["error"] and report.errors[0]["file"].endswith("a.pdf")


def test_oversized_file_is_refused_before_parsing(docs):
    with pytest.raises(DocumentError, match="max_file_bytes"):
        open_document(docs["prose"], Limits(max_file_bytes=100))


def test_missing_file(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        open_document(tmp_path / "nope.pdf")
