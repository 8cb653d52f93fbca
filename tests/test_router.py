"""Routing of generated pages: each kind of page lands where it should, with reasons a person can read."""

from __future__ import annotations

import pytest

from docrag.config import RouterConfig, VisualPages
from docrag.parsers import open_document
from docrag.parsers.types import PageSignals
from docrag.pipeline.router import route_page, route_signals
from docrag.pipeline.routing import route_files

EXPECTED = {
    "prose": ("text", "text"),
    "rotated": ("text", "text"),
    "code": ("text", "text"),
    "table": ("visual", "layout"),
    "chart": ("visual", "layout"),
    "slide": ("visual", "layout"),
    "scan": ("visual", "scanned"),
    "scan_ocr": ("visual", "scanned"),
    "photo_png": ("text", "text"),
    "scan_png": ("visual", "scanned"),
}


def _route(path, cfg=None):
    with open_document(path) as doc:
        return [route_page(p, cfg) for p in doc.pages()]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_kind_of_page_routes_as_expected(docs, name):
    (r,) = _route(docs[name])
    assert (r.route, r.label) == EXPECTED[name], r.reasons
    assert 0.5 <= r.confidence <= 1.0
    assert r.reasons and all(isinstance(x, str) and x for x in r.reasons)


def test_reasons_name_what_was_seen(docs):
    (scan,) = _route(docs["scan"])
    assert "no text layer" in scan.reasons[0] and "1240×1754" in scan.reasons[0]
    (ocr,) = _route(docs["scan_ocr"])
    assert any("invisible OCR text layer" in x for x in ocr.reasons)
    (table,) = _route(docs["table"])
    assert table.reasons[0].startswith("P(layout) = ")
    assert any("1 ruled table covers" in x for x in table.reasons), table.reasons
    (chart,) = _route(docs["chart"])
    assert any("chart/drawing" in x or "drawings and images" in x for x in chart.reasons), chart.reasons
    (slide,) = _route(docs["slide"])
    assert "slide-like" in slide.reasons[0]
    (prose,) = _route(docs["prose"])
    assert any("prose:" in x or "no sizeable table or figure" in x for x in prose.reasons), prose.reasons


def test_rules_decision_keeps_the_hand_set_thresholds_and_their_reasons(docs):
    rules = RouterConfig(decision="rules")
    (table,) = _route(docs["table"], rules)
    assert any("1 ruled table covers" in x for x in table.reasons)
    (chart,) = _route(docs["chart"], rules)
    assert any("chart/drawing" in x and "vector paths" in x for x in chart.reasons)
    assert not any("ruled table" in x for x in chart.reasons), "chart gridlines are not a table"
    (code,) = _route(docs["code"], rules)
    assert "code or printed output" in code.reasons[0]
    assert not any(x.startswith("P(layout)") for x in table.reasons + chart.reasons + code.reasons)


def test_policy_all_and_none_override_the_route_but_keep_the_label(docs):
    (prose,) = _route(docs["prose"], RouterConfig(visual_pages=VisualPages.all))
    assert (prose.route, prose.label) == ("visual", "text")
    assert "policy visual_pages=all" in prose.reasons
    (scan,) = _route(docs["scan"], RouterConfig(visual_pages=VisualPages.none))
    assert (scan.route, scan.label) == ("text", "scanned")


def test_thresholds_come_from_config(docs):
    rules = RouterConfig(decision="rules")
    (table,) = _route(docs["table"], rules)
    share = table.signals["visual_share"]
    (raised,) = _route(docs["table"], RouterConfig(decision="rules", layout_min_share=share + 0.01))
    assert raised.label == "text"
    (learned,) = _route(docs["table"])
    assert learned.label == "layout"
    p = float(learned.reasons[0].split("=")[1].split(":")[0])
    (strict,) = _route(docs["table"], RouterConfig(layout_threshold=min(p + 0.01, 1.0)))
    # confidence is 0.5 at the threshold: just under a strict threshold is a coin flip, not a sure text page
    assert strict.label == "text" and 0.5 <= strict.confidence < 0.52


def test_confidence_is_lower_near_the_threshold():
    cfg = RouterConfig(decision="rules")
    base = {"n_chars": 2000, "content_coverage": 0.6, "n_tables": 1}
    near = route_signals("f.pdf", 1, PageSignals(**base, visual_share=cfg.layout_min_share + 0.005), cfg)
    far = route_signals("f.pdf", 1, PageSignals(**base, visual_share=0.6), cfg)
    assert near.label == far.label == "layout"
    assert near.confidence < 0.6 < 0.99 < far.confidence + 1e-9


def test_blank_page_is_text_and_stays_out_of_the_ambiguity_band():
    blank = PageSignals(width_pt=595, height_pt=842)
    r = route_signals("f.pdf", 3, blank, RouterConfig(visual_pages=VisualPages.ambiguous_both))
    assert (r.route, r.label, r.ambiguous) == ("text", "text", False)  # nothing to see: no visual vectors
    assert "blank" in r.reasons[0]
    rules = route_signals("f.pdf", 3, blank, RouterConfig(decision="rules"))
    assert rules.label == "text" and rules.confidence <= 0.6 and "blank" in rules.reasons[0]


def test_route_files_walks_folders_and_keeps_order(docs):
    folder = docs["prose"].parent
    report = route_files([folder])
    files = [r.file for r in report.pages]
    assert files == sorted(files)
    multi = [r for r in report.pages if r.file.endswith("multi.pdf")]
    assert [(r.page, r.label) for r in multi] == [(1, "text"), (2, "layout"), (3, "layout")]
    assert report.errors == []
