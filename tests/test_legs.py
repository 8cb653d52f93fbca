"""Legs as parts: the registry, query kinds, scales in fusion — with a fake store and fake embedders (no models)."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from docrag.indexes.models import ModelSpec
from docrag.indexes.store import Candidate
from docrag.pipeline import legs as legs_mod
from docrag.pipeline.legs import LegParts, QueryInput, Scale, build_legs, register_leg
from docrag.pipeline.options import SearchConfig
from docrag.pipeline.search import LEGS, Searcher

SIGLIP = ModelSpec(type="siglip", model="fake/siglip")  # image-capable, known from the spec alone
MINILM = ModelSpec(type="sentence-transformers", model="fake/minilm")  # text only


class FakeStore:
    """Two ready documents, a and b, two pages each; every search is recorded with its query."""

    def __init__(self, unified_spec=SIGLIP, visual=1):
        self.unified_spec = unified_spec
        self.counts = {"documents": 2, "pages": 4, "chunks": 3, "images": 1, "visual": visual}
        self.calls: Counter[str] = Counter()
        self.searched: list[tuple[str, object]] = []

    def row_counts(self):
        self.calls["row_counts"] += 1
        return dict(self.counts)

    def documents(self, where=None, columns=None):
        return [{"doc_id": d, "path": f"/corpus/{d}.pdf"} for d in ("a", "b")]

    def page_rows(self, doc_ids, columns=None):
        rows = [("a", 1, "alpha page"), ("a", 2, "alpha figure"), ("b", 1, "beta"), ("b", 2, "beta table")]
        return [dict(zip(("doc_id", "page", "text"), r, strict=True), route="text", label="text") for r in rows]

    def search_visual(self, qv, k=10, allowed=None, method="exact", candidates=96):
        self.searched.append(("visual", qv))
        self.visual_options = (method, candidates)
        return [[Candidate("a", 2, 4.0), Candidate("b", 1, 2.0)]]

    def search_text(self, vector, k=10, where=None, allowed=None):
        self.searched.append(("text", vector))
        return [Candidate("a", 1, 0.8, "alpha chunk"), Candidate("b", 2, 0.5, "beta chunk")]

    def search_images(self, vector, k=10, where=None, allowed=None):
        self.searched.append(("image", vector))
        return [Candidate("a", 2, 0.3, "0")]

    def search_bm25(self, query, k=10, where=None, allowed=None):
        self.searched.append(("bm25", query))
        return [Candidate("b", 2, 7.0)]


class FakeUnified:
    type, modalities = "siglip", frozenset({"text", "image"})

    def __init__(self):
        self.calls: Counter[str] = Counter()

    def embed_queries(self, queries):
        self.calls["queries"] += 1
        return np.ones((len(queries), 4), np.float32)

    def embed_images(self, images):
        self.calls["images"] += 1
        return np.full((len(images), 4), 2.0, np.float32)


class FakeVisual:
    def embed_queries(self, queries):
        return [np.ones((5, 4), np.float32) for _ in queries]  # 5 query tokens


class FixedLeg:
    """A leg of the user's: fixed candidates on the cosine scale, for text queries."""

    name, scale = "fixed", Scale.cosine
    accepts, accepts_when_named = frozenset({"text"}), frozenset()

    def __init__(self, parts):
        self.queries: list[str] = []

    def available(self, counts=None):
        return True

    def search(self, query, k, allowed):
        self.queries.append(query.text)
        return legs_mod.LegResult([Candidate("b", 1, 0.9, "fixed")], self.scale)


@pytest.fixture
def registry(monkeypatch):
    """A copy of the leg registry for one test (registering there leaves the real one alone)."""
    monkeypatch.setattr(legs_mod, "LEG_TYPES", dict(legs_mod.LEG_TYPES))
    return legs_mod.LEG_TYPES


def searcher(store=None, unified=None, visual=True, fusion="rrf"):
    store = store or FakeStore()
    unified = unified or FakeUnified()
    settings = SearchConfig(fusion=fusion)
    parts = LegParts(store, settings, lambda: unified, (lambda: FakeVisual()) if visual else None)
    return Searcher(store, settings, build_legs(parts)), store, unified


def test_a_registered_leg_is_searched_and_fused_with_the_others(registry):
    register_leg("fixed")(FixedLeg)
    s, store, _ = searcher(visual=False)
    assert [leg.name for leg in s.legs] == ["text", "image", "bm25", "fixed"]  # registry order, no visual model
    assert s.present() == {"visual": False, "text": True, "image": True, "bm25": True, "fixed": True}
    hits = s.search("beta ﬁgure", k=4)  # normalised first: the ligature folds
    fixed = next(leg for leg in s.legs if leg.name == "fixed")
    assert fixed.queries == ["beta figure"] and ("bm25", "beta figure") in store.searched
    top = {(h.doc_id, h.page): h for h in hits}
    assert top[("b", 1)].legs["fixed"] == {"score": 0.9, "rank": 1, "detail": "fixed"}
    # RRF: b2 is first in bm25 and second in text; a1 and b1 tie on one first rank; the image leg weighs 0.5.
    assert [(h.doc_id, h.page) for h in hits] == [("b", 2), ("a", 1), ("b", 1), ("a", 2)]
    assert hits[0].file == "/corpus/b.pdf" and hits[0].snippet == "beta chunk"
    only = s.search("x", legs=["fixed"])
    assert [(h.doc_id, h.page, set(h.legs)) for h in only] == [("b", 1, {"fixed"})]
    with pytest.raises(ValueError, match=r"unknown leg 'colour': choose from visual, text, image, bm25, fixed$"):
        s.search("x", legs=["colour"])


def test_the_unified_embedder_runs_once_per_query_and_row_counts_once_per_call():
    s, store, unified = searcher()
    results = s.search_many(["first query", "second query"], k=3)
    assert len(results) == 2 and all(results)
    assert unified.calls == {"queries": 2}  # text and image legs share the query vector
    assert store.calls["row_counts"] == 1
    assert [name for name, _ in store.searched] == ["visual", "text", "image", "bm25"] * 2
    assert store.visual_options == ("auto", SearchConfig().visual_candidates)  # the search settings reach the store
    q = QueryInput("q")
    assert q.kind == "text" and q.embedding("k", lambda: 1) == 1 and q.embedding("k", lambda: 2) == 1


def test_weighted_fusion_calibrates_by_each_legs_scale(registry):
    class LateLeg(FixedLeg):
        name, scale = "late", Scale.maxsim

        def search(self, query, k, allowed):
            return legs_mod.LegResult([Candidate("b", 1, 8.0)], self.scale, n_query_tokens=10)

    register_leg("late")(LateLeg)
    s, _, _ = searcher(fusion="weighted")
    hits = {(h.doc_id, h.page): h for h in s.search("q", k=10)}
    assert hits[("a", 2)].legs["visual"]["calibrated"] == pytest.approx(4.0 / 5)  # the visual query's 5 tokens
    assert hits[("b", 1)].legs["visual"]["calibrated"] == pytest.approx(2.0 / 5)
    assert hits[("b", 1)].legs["late"]["calibrated"] == pytest.approx(8.0 / 10)  # its own token count
    assert hits[("b", 2)].legs["bm25"]["calibrated"] == pytest.approx(1.0)  # the best BM25 score of the query
    assert hits[("a", 1)].legs["text"]["calibrated"] == pytest.approx(0.8)  # cosine as is
    weights = SearchConfig().weights
    assert hits[("b", 1)].score == pytest.approx(weights["visual"] * 0.4 + 0.8)  # "late" has no weight: 1


def test_image_queries_skip_the_legs_that_do_not_take_them(caplog):
    image = Image.new("RGB", (8, 8))
    s, store, unified = searcher()
    hits = s.search(image, k=5)
    assert [(h.doc_id, h.page, set(h.legs)) for h in hits] == [("a", 2, {"image"})]
    assert [name for name, _ in store.searched] == ["image"] and unified.calls == {"images": 1}
    assert hits[0].snippet == "alpha figure"
    # Named: the text leg takes the image (cross-modal); visual and bm25 say they do not and are skipped.
    store.searched.clear()
    with caplog.at_level(logging.INFO, logger="docrag.pipeline.search"):
        hits = s.search(image, k=5, legs=["visual", "text", "bm25"])
    assert [name for name, _ in store.searched] == ["text"]
    np.testing.assert_array_equal(store.searched[0][1], np.full(4, 2.0))  # the image's vector
    assert {leg for h in hits for leg in h.legs} == {"text"}
    assert "the visual leg does not take image queries: it takes text queries" in caplog.text
    assert "the bm25 leg does not take image queries" in caplog.text


def test_image_queries_with_a_text_only_embedder_are_refused_before_any_model_loads():
    def no_model():
        raise AssertionError("a model loaded")

    store = FakeStore(unified_spec=MINILM)
    parts = LegParts(store, SearchConfig(), no_model)
    s = Searcher(store, SearchConfig(), build_legs(parts))
    assert [leg.name for leg in s.legs] == list(LEGS[1:])  # no visual embedder: no visual leg
    for legs in (None, ["text"], ["bm25"]):
        with pytest.raises(ValueError, match="image-capable unified embedder; 'sentence-transformers' embeds text"):
            s.search(Image.new("RGB", (8, 8)), legs=legs)
    # A text query on legs that need no embedder loads none (the image leg knows from the spec it takes none).
    assert [set(h.legs) for h in s.search("beta", legs=["bm25", "image"])] == [{"bm25"}]


def test_unknown_legs_name_the_registry():
    assert LEGS == ("visual", "text", "image", "bm25")
    s, _, _ = searcher()
    with pytest.raises(ValueError, match=r"^unknown leg 'colour': choose from visual, text, image, bm25$"):
        s.search("x", legs=["colour"])
    with pytest.raises(ValueError, match="unknown leg 'colour'"):
        build_legs(LegParts(FakeStore(), SearchConfig(), FakeUnified), ["colour"])
    with pytest.raises(ValueError, match="k must be at least 1"):
        s.search("x", k=0)
