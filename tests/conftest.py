"""Fixtures: small PDFs, images and tiny models, generated once per session under a tmp dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if "DOCRAG_CACHE_DIR" not in os.environ:  # exported graphs go to the session's own folder, never ~/.cache
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="docrag-test-cache-")
    os.environ["DOCRAG_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

from docrag.testing import pdfgen

GOOD = {
    "prose": lambda d: pdfgen.prose_pdf(d / "prose.pdf"),
    "rotated": lambda d: pdfgen.prose_pdf(d / "rotated.pdf", rotate=90),
    "code": lambda d: pdfgen.code_pdf(d / "code.pdf"),
    "table": lambda d: pdfgen.table_pdf(d / "table.pdf"),
    "chart": lambda d: pdfgen.chart_pdf(d / "chart.pdf"),
    "slide": lambda d: pdfgen.slide_pdf(d / "slide.pdf"),
    "scan": lambda d: pdfgen.scan_pdf(d / "scan.pdf"),
    "scan_ocr": lambda d: pdfgen.scan_pdf(d / "scan_ocr.pdf", ocr_layer=True),
    "unruled_table": lambda d: pdfgen.unruled_table_pdf(d / "unruled_table.pdf"),
    "refcard": lambda d: pdfgen.refcard_pdf(d / "refcard.pdf"),
    "form_diagram": lambda d: pdfgen.form_xobject_diagram_pdf(d / "form_diagram.pdf"),
    "prose_small_table": lambda d: pdfgen.prose_small_table_pdf(d / "prose_small_table.pdf"),
}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Notebooks take minutes of a kernel each: when the session runs them, they start now, beside the tests."""
    if any("test_notebooks.py::test_notebook_executes" in item.nodeid for item in session.items):
        import notebook_runs

        notebook_runs.start()


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One generated file per kind of page: prose, rotated, code, table, chart, slide, scan, scan_ocr."""
    d = tmp_path_factory.mktemp("docs")
    out = {name: make(d) for name, make in GOOD.items()}
    out["multi"] = pdfgen.multi_pdf(d / "multi.pdf")
    out["photo_png"] = pdfgen.photo_png(d / "photo.png")
    scan_png = d / "scan.png"
    pdfgen.scan_image().save(scan_png)
    out["scan_png"] = scan_png
    return out


@pytest.fixture(scope="session")
def bad_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hostile or broken inputs."""
    d = tmp_path_factory.mktemp("bad")
    empty = d / "empty.pdf"
    empty.write_bytes(b"")
    not_pdf = d / "notes.pdf"
    not_pdf.write_text("this is a text file with a .pdf name\n" * 20)
    full = pdfgen.prose_pdf(d / "_full.pdf").read_bytes()
    truncated = d / "truncated.pdf"
    truncated.write_bytes(full[: len(full) // 3])
    (d / "_full.pdf").unlink()
    return {
        "empty": empty,
        "not_pdf": not_pdf,
        "truncated": truncated,
        "encrypted": pdfgen.encrypted_pdf(d / "encrypted.pdf"),
        "zero_pages": pdfgen.zero_pages_pdf(d / "zero.pdf"),
        "huge_page": pdfgen.huge_page_pdf(d / "huge.pdf"),
        "pdf_image_bomb": pdfgen.image_bomb_pdf(d / "bomb.pdf"),
        "png_bomb": pdfgen.png_bomb(d / "bomb.png"),
    }


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models of the real architectures, saved to disk (loaded via from_pretrained)."""
    from docrag.indexes.colpali_compat import has_torchvision
    from docrag.testing import tiny_models, tiny_text

    d = tmp_path_factory.mktemp("tiny_models")
    out = {
        "colidefics3": tiny_models.build_colidefics3(d / "colidefics3"),
        "colpali": tiny_models.build_colpali(d / "colpali"),
        "colmodernvbert": tiny_models.build_colmodernvbert(d / "colmodernvbert"),
        "colgemma3": tiny_models.build_colgemma3(d / "colgemma3"),
        "siglip": tiny_models.build_siglip(d / "siglip"),
        "nomic": tiny_models.build_nomic_text(d / "nomic"),
        "arctic": tiny_text.build_st_bert(d / "arctic"),  # the cpu profile's text layout
        "qwen3_embedding": tiny_text.build_st_qwen3(d / "qwen3_embedding"),  # the gpu profile's
    }
    if has_torchvision():  # Qwen-VL processors carry a video processor, a torchvision object in transformers 5
        out["colqwen3"] = tiny_models.build_colqwen3(d / "colqwen3")
        out["colqwen3_5"] = tiny_models.build_colqwen3_5(d / "colqwen3_5")
    return out


# The sentence planted in ``hits_db``'s planted.pdf (page 2 of 3).
PLANTED = "The quarterly zanzibarite shipment left the harbour of Mombasa on a Tuesday."


@pytest.fixture(scope="session")
def hits_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lite database (the real MiniLM text model), read-only for its users (copy it to change it):
    planted.pdf (PLANTED on page 2 of 3, among generated word salad) indexed with the metadata {project: demo,
    year: 2024}; other.pdf (tests/data/two_topics.pdf: two short pages of real prose) with {project: demo-old,
    tags: [x, y]}."""
    import shutil

    import docrag

    d = tmp_path_factory.mktemp("hits")
    demo, old = d / "demo", d / "old"
    demo.mkdir()
    old.mkdir()
    pdfgen.planted_pdf(demo / "planted.pdf", PLANTED)
    shutil.copy(Path(__file__).parent / "data" / "two_topics.pdf", old / "other.pdf")
    idx = docrag.open(d / "db", profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    assert idx.add([demo], metadata={"project": "demo", "year": 2024}, workers=0).indexed == 1
    assert idx.add([old], metadata={"project": "demo-old", "tags": ["x", "y"]}, workers=0).indexed == 1
    return d / "db"


@pytest.fixture(scope="session")
def page_images():
    """Small page-like images of different sizes and content."""
    from PIL import Image, ImageDraw

    out = []
    for i, (w, h) in enumerate([(120, 160), (90, 60), (64, 64), (200, 140)]):
        img = Image.new("RGB", (w, h), (250, 250, 245))
        d = ImageDraw.Draw(img)
        for y in range(8 + i * 3, h - 8, 12):
            d.rectangle([8, y, w - 8 - 7 * i, y + 5], fill=(30 + 40 * i, 30, 30))
        out.append(img)
    return out


@pytest.fixture(scope="session")
def s3():
    """A local S3 emulator (moto, 127.0.0.1) with a bucket; its storage options and AWS_* environment."""
    from s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session's Ray-engine tests (it starts in a few seconds; shut down at the end)."""
    from docrag.pipeline.ray_engine import start_ray

    ray = start_ray()
    yield ray
    ray.shutdown()
