"""Parser behaviour on generated PDFs: text with positions, signals, figures, rendering, golden files.

Golden files live in tests/golden/; regenerate them with ``DOCRAG_UPDATE_GOLDEN=1 pytest tests/test_parsers.py``
after an intended change, and review the diff.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from docrag.config import Limits
from docrag.parsers import DocumentError, discover, open_document
from docrag.pipeline.router import route_page

GOLDEN = Path(__file__).parent / "golden"
FLOAT_TOL = 0.02  # absolute, for coverage fractions and sizes rounded by the parser
UPDATE = os.environ.get("DOCRAG_UPDATE_GOLDEN") == "1"
GOLDEN_NAMES = ["prose", "rotated", "code", "table", "chart", "slide", "scan", "scan_ocr", "photo_png", "scan_png"]


def _snapshot(path: Path) -> dict:
    with open_document(path) as doc:
        page = doc.page(1)
        r = route_page(page)
        return {
            "n_pages": doc.n_pages,
            "text_head": " ".join(page.text.split())[:120],
            "n_spans": len(page.spans),
            "n_figures": len(page.figures),
            "regions": sorted(reg.kind for reg in page.regions),
            "route": r.route,
            "label": r.label,
            "signals": page.signals.to_dict(),
        }


def _compare(actual, expected, where=""):
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{where}: keys differ"
        for k in expected:
            _compare(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert math.isclose(actual, expected, abs_tol=FLOAT_TOL), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden(docs, name):
    snap = _snapshot(docs[name])
    golden = GOLDEN / f"{name}.json"
    if UPDATE or not golden.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {golden}; run with DOCRAG_UPDATE_GOLDEN=1 to create it")
        golden.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    _compare(snap, json.loads(golden.read_text()), name)


def test_text_layer_has_positions_inside_the_page(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
    assert page.text.startswith("On routing pages to the right index")
    assert len(page.spans) > 40
    first = page.spans[0]
    assert first.text.startswith("On routing pages")
    x0, top, x1, bottom = first.bbox
    assert 60 < x0 < 80 and 50 < top < 70 and x1 > x0 and bottom > top  # top-left origin, points
    for s in page.spans:
        assert 0 <= s.bbox[0] <= s.bbox[2] <= page.width_pt + 1
        assert 0 <= s.bbox[1] <= s.bbox[3] <= page.height_pt + 1


def test_signals_separate_kinds_of_page(docs):
    sig = {}
    for name in ("prose", "code", "table", "chart", "scan", "scan_ocr", "rotated"):
        with open_document(docs[name]) as doc:
            sig[name] = doc.page(1).signals
    assert sig["prose"].n_chars > 2000 and sig["prose"].text_coverage > 0.2
    assert sig["prose"].visual_share == 0 and sig["prose"].n_images == 0
    assert sig["code"].mono_text_fraction > 0.9 and sig["prose"].mono_text_fraction == 0
    assert sig["table"].n_tables == 1 and sig["table"].n_rules_h >= 3 and sig["table"].table_share > 0.3
    assert sig["chart"].n_graphics_regions >= 1 and sig["chart"].n_paths > 30 and sig["chart"].n_tables == 0
    assert sig["scan"].n_chars == 0 and sig["scan"].largest_image_coverage > 0.95
    assert (sig["scan"].pixel_width, sig["scan"].pixel_height) == (1240, 1754)
    assert sig["scan_ocr"].invisible_text_fraction == 1.0 and sig["scan_ocr"].n_chars > 1000
    assert sig["scan_ocr"].text_coverage == 0  # invisible text does not count as visible text
    assert sig["rotated"].rotation == 90 and sig["prose"].rotation == 0


def test_scan_ocr_page_keeps_a_diagnostic(docs):
    with open_document(docs["scan_ocr"]) as doc:
        page = doc.page(1)
    assert any("invisible" in d for d in page.diagnostics)


def test_figures_are_embedded_images_with_boxes(docs):
    with open_document(docs["scan"]) as doc:
        (fig,) = doc.page(1).figures
    assert (fig.width_px, fig.height_px) == (1240, 1754)
    assert fig.bbox[0] == pytest.approx(0, abs=1) and fig.bbox[2] == pytest.approx(595.3, abs=1)


def test_rendering_respects_dpi_rotation_and_the_pixel_cap(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
        img = page.render(72)
        assert img.mode == "RGB" and abs(img.size[0] - 595) <= 1 and abs(img.size[1] - 842) <= 1
    with open_document(docs["rotated"]) as doc:
        page = doc.page(1)
        img = page.render(72)
    # The generator draws a portrait page as a landscape MediaBox with /Rotate 90: boxes are in the
    # unrotated (landscape) space, and rendering applies the rotation (portrait, as displayed).
    assert page.width_pt > page.height_pt
    assert img.height > img.width
    with open_document(docs["prose"], Limits(max_render_pixels=100_000)) as doc:
        img = doc.page(1).render(300)
        assert img.width * img.height <= 100_000 and img.width > 200


def test_render_after_close_is_a_clear_error(docs):
    with open_document(docs["prose"]) as doc:
        page = doc.page(1)
    with pytest.raises(DocumentError, match="closed"):
        page.render(50)


def test_pages_stream_one_at_a_time(docs):
    with open_document(docs["multi"]) as doc:
        assert doc.n_pages == 3
        numbers = [p.number for p in doc.pages()]
    assert numbers == [1, 2, 3]


def test_max_pages_caps_and_warns(docs):
    with open_document(docs["multi"], Limits(max_pages=2)) as doc:
        assert doc.n_pages == 2
        assert "only the first 2" in doc.warnings[0]


def test_image_files_are_documents(docs, tmp_path):
    from PIL import Image

    tiff = tmp_path / "two.tiff"
    a = Image.open(docs["scan_png"]).convert("L")
    a.save(tiff, save_all=True, append_images=[Image.open(docs["photo_png"])])
    with open_document(tiff) as doc:
        assert doc.n_pages == 2
        pages = list(doc.pages())
    assert [p.signals.source for p in pages] == ["image", "image"]
    assert [route_page(p).label for p in pages] == ["scanned", "text"]
    with open_document(docs["photo_png"]) as doc:
        img = doc.page(1).render(72)
    assert img.size == (640, 480)


def test_discover_recurses_and_flags_unsupported(tmp_path, docs):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.pdf").write_bytes(docs["prose"].read_bytes())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.pdf").write_bytes(b"x")
    found = {p.name: ok for p, ok in discover([tmp_path])}
    assert found == {"a.pdf": True, "notes.txt": False}
