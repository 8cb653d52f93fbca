"""Legs as parts: the registry, query kinds, scales in fusion — with a fake store and fake embedders (no models)."""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from typing import Protocol

import numpy as np
import pytest
from PIL import Image

from docrag.indexes.database import Candidate
from docrag.indexes.models import ModelSpec
from docrag.indexes.visual_index import VisualIndexSpec
from docrag.pipeline import legs as legs_mod
from docrag.pipeline import stores
from docrag.pipeline.fusion import Ranking
from docrag.pipeline.legs import LegParts, QueryInput, Scale, build_legs, leg_names, register_leg
from docrag.pipeline.options import SearchConfig
from docrag.pipeline.search import Chunk, Searcher

SIGLIP = ModelSpec(type="siglip", model="fake/siglip")  # image-capable, known from the spec alone
MINILM = ModelSpec(type="sentence-transformers", model="fake/minilm")  # text only


class _Fake:
    def __init__(self, store, name, n):
        self.store, self.name, self.n = store, name, n

    def count(self):
        self.store.calls[f"{self.name}.count"] += 1
        return self.n


class FakeDocuments(_Fake):
    def ready(self, where=None, metadata=None):
        self.store.calls["ready"] += 1
        self.store.filters.append((where, metadata))
        return {d: f"/corpus/{d}.pdf" for d in ("a", "b")}

    def get(self, doc_id, columns=None):
        return {"doc_id": doc_id, "path": f"/corpus/{doc_id}.pdf", "n_pages": 2}

    def metadata(self, doc_ids):
        return {d: {"a": {"project": "demo"}, "b": {}}[d] for d in doc_ids}


class FakePages(_Fake):
    def rows(self, doc_ids=None, columns=None):
        rows = [("a", 1, "alpha page"), ("a", 2, "alpha figure"), ("b", 1, "beta"), ("b", 2, "beta table")]
        return [dict(zip(("doc_id", "page", "text"), r, strict=True), route="text", label="text") for r in rows]

    def search_bm25(self, query, k=10, allowed=None):
        self.store.searched.append(("bm25", query))
        return [Candidate("b", 2, 7.0)]

    def words(self, doc_id, page):
        return None

    def size(self, doc_id, page):
        return (600.0, 800.0)


class FakeChunks(_Fake):
    def search(self, vector, k=10, allowed=None):
        self.store.searched.append(("text", vector))
        return [Candidate("a", 1, 0.8, "alpha chunk"), Candidate("b", 2, 0.5, "beta chunk")]

    def boxes(self, doc_id, page, text):
        return None

    def page_chunks(self, pages):
        self.store.calls["page_chunks"] += 1
        rows = [
            ("a", 1, 0, "alpha chunk", [[0.1, 0.2, 0.9, 0.3]]),
            ("b", 2, 0, "beta chunk", [[0.1, 0.1, 0.5, 0.2]]),
            ("b", 2, 1, "the table of beta results", None),  # indexed before positions were stored
        ]
        keys = set(pages)
        return [dict(zip(("doc_id", "page", "chunk", "text", "boxes"), r, strict=True)) for r in rows if r[:2] in keys]


class FakeImages(_Fake):
    def search(self, vector, k=10, allowed=None):
        self.store.searched.append(("image", vector))
        return [Candidate("a", 2, 0.3, "0")]

    def box(self, doc_id, page, image):
        return None


class FakeVisualTable(_Fake):
    def search(
        self,
        query_vectors,
        k=10,
        allowed=None,
        backend="auto",
        method="exact",
        candidates=96,
        stage=None,
        rerank="auto",
    ):
        self.store.searched.append(("visual", query_vectors))
        self.store.visual_options = (method, candidates)
        return [[Candidate("a", 2, 4.0), Candidate("b", 1, 2.0)]]

    def page(self, doc_id, page):
        return None


class FakeStore:
    """Two ready documents, a and b, two pages each; every search is recorded with its query."""

    def __init__(self, text_spec=SIGLIP, image_spec=SIGLIP, visual=1):
        self.text_spec, self.image_spec = text_spec, image_spec
        self.visual_index = VisualIndexSpec()
        self.calls: Counter[str] = Counter()
        self.searched: list[tuple[str, object]] = []
        self.filters: list[tuple[object, object]] = []
        self.documents = FakeDocuments(self, "documents", 2)
        self.pages = FakePages(self, "pages", 4)
        self.chunks = FakeChunks(self, "chunks", 3)
        self.images = FakeImages(self, "images", 1)
        self.visual = FakeVisualTable(self, "visual", visual)

    def refresh(self):
        self.calls["refresh"] += 1


def _conforms(obj, protocol, where="store"):
    """Every member of ``protocol`` is on ``obj``: methods with the same parameters, protocol-typed attributes
    conforming in turn (what keeps a fake from drifting from the real store)."""
    for name, annotation in protocol.__annotations__.items():
        assert hasattr(obj, name), f"{where}.{name} is missing"
        sub = getattr(stores, str(annotation), None)
        if isinstance(sub, type) and issubclass(sub, Protocol):
            _conforms(getattr(obj, name), sub, f"{where}.{name}")
    for klass in protocol.__mro__:
        if klass in (Protocol, object) or not getattr(klass, "_is_protocol", False):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or not callable(member):
                continue
            want = list(inspect.signature(member).parameters)[1:]
            have = list(inspect.signature(getattr(obj, name)).parameters)
            assert have == want, f"{where}.{name}{tuple(have)} differs from the protocol's {tuple(want)}"


def test_the_fake_and_the_real_store_both_are_what_search_needs(tmp_path):
    from docrag.testing.rows import new_store

    _conforms(FakeStore(), stores.SearchStore)
    _conforms(new_store(tmp_path / "db", text_dim=4), stores.SearchStore)
    with pytest.raises(AssertionError, match=r"store.pages.search_bm25"):
        broken = FakeStore()
        broken.pages.search_bm25 = lambda query, k=10: []
        _conforms(broken, stores.SearchStore)


class FakeSingle:
    type, modalities = "siglip", frozenset({"text", "image"})

    def __init__(self):
        self.calls: Counter[str] = Counter()

    def embed_queries(self, queries):
        self.calls["queries"] += 1
        return np.ones((len(queries), 4), np.float32)

    def embed_images(self, images):
        self.calls["images"] += 1
        return np.full((len(images), 4), 2.0, np.float32)

    def embed_documents(self, texts):  # unrelated text for the confidence's yardstick: orthogonal to the queries
        return np.tile(np.array([1.0, -1.0, 1.0, -1.0], np.float32), (len(texts), 1))


class FakeVisual:
    def embed_queries(self, queries):
        return [np.ones((5, 4), np.float32) for _ in queries]  # 5 query tokens


class FixedLeg:
    """A leg of the user's: fixed candidates on the cosine scale, for text queries."""

    name, scale = "fixed", Scale.cosine
    accepts, accepts_when_named = frozenset({"text"}), frozenset()

    def __init__(self, parts):
        self.queries: list[str] = []

    def available(self):
        return True

    def search(self, query, k, allowed):
        self.queries.append(query.text)
        return Ranking([Candidate("b", 1, 0.9, "fixed")], self.scale)


@pytest.fixture
def registry(monkeypatch):
    """A copy of the leg registry for one test (registering there leaves the real one alone)."""
    monkeypatch.setattr(legs_mod, "LEG_TYPES", dict(legs_mod.LEG_TYPES))
    return legs_mod.LEG_TYPES


def searcher(store=None, single=None, visual=True, fusion="rrf", image=None):
    """A searcher over the fake store; ``single`` serves the text leg and (unless ``image`` is given) the image
    leg too, as one model named by both settings."""
    store = store or FakeStore()
    single = single or FakeSingle()
    image = image or single
    settings = SearchConfig(fusion=fusion)
    parts = LegParts(store, settings, lambda: single, lambda: image, (lambda: FakeVisual()) if visual else None)
    return Searcher(store, settings, build_legs(parts)), store, single


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


def test_a_model_serving_two_legs_embeds_once_per_query_and_the_store_is_read_once_per_call():
    s, store, single = searcher()
    results = s.search_many(["first query", "second query"], k=3)
    assert len(results) == 2 and all(results)
    assert single.calls == {"queries": 2}  # text and image legs share one model, so one query vector
    assert store.calls["refresh"] == 1 and store.calls["ready"] == 1 and store.calls["documents.count"] == 1
    assert all(store.calls[f"{t}.count"] == 1 for t in ("visual", "chunks", "images", "pages"))
    assert [name for name, _ in store.searched] == ["visual", "text", "image", "bm25"] * 2
    assert store.visual_options == ("auto", SearchConfig().visual_candidates)  # the search settings reach the store
    q = QueryInput("q")
    assert q.kind == "text" and q.embedding("k", lambda: 1) == 1 and q.embedding("k", lambda: 2) == 1


def test_weighted_fusion_calibrates_by_each_legs_scale(registry):
    class LateLeg(FixedLeg):
        name, scale = "late", Scale.maxsim

        def search(self, query, k, allowed):
            return Ranking([Candidate("b", 1, 8.0)], self.scale, n_query_tokens=10)

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
    s, store, single = searcher()
    hits = s.search(image, k=5)
    assert [(h.doc_id, h.page, set(h.legs)) for h in hits] == [("a", 2, {"image"})]
    assert [name for name, _ in store.searched] == ["image"] and single.calls == {"images": 1}
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

    store = FakeStore(text_spec=MINILM, image_spec=None)
    parts = LegParts(store, SearchConfig(), no_model)  # a text model only: no image or visual leg
    s = Searcher(store, SearchConfig(), build_legs(parts))
    assert [leg.name for leg in s.legs] == ["text", "bm25"]
    for legs in (None, ["text"], ["bm25"]):
        with pytest.raises(ValueError, match="image-capable text model; 'sentence-transformers' embeds text"):
            s.search(Image.new("RGB", (8, 8)), legs=legs)
    # A text query on legs that need no embedder loads none.
    assert [set(h.legs) for h in s.search("beta", legs=["bm25"])] == [{"bm25"}]
    assert [set(h.legs) for h in s.search("beta", legs="bm25")] == [{"bm25"}]  # one name, not its letters


def test_text_and_image_models_each_embed_the_query_once():
    """Two models: the text leg's passage retriever and the image leg's image–text model, one vector each."""
    text, image = FakeSingle(), FakeSingle()
    store = FakeStore(text_spec=MINILM, image_spec=SIGLIP)
    s, store, _ = searcher(store, single=text, image=image)
    s.search("a query", k=3)
    assert text.calls == {"queries": 1} and image.calls == {"queries": 1}
    assert [name for name, _ in store.searched] == ["visual", "text", "image", "bm25"]
    # An image query goes to the image model only (the text model is not asked to embed a picture).
    s.search(Image.new("RGB", (8, 8)), k=3)
    assert image.calls == {"queries": 1, "images": 1} and text.calls == {"queries": 1}


def test_unknown_legs_name_the_registry():
    assert leg_names() == ("visual", "text", "image", "bm25")
    s, _, _ = searcher()
    with pytest.raises(ValueError, match=r"^unknown leg 'colour': choose from visual, text, image, bm25$"):
        s.search("x", legs=["colour"])
    with pytest.raises(ValueError, match="unknown leg 'colour'"):
        build_legs(LegParts(FakeStore(), SearchConfig(), FakeSingle), ["colour"])
    with pytest.raises(ValueError, match="k must be at least 1"):
        s.search("x", k=0)


def test_hits_carry_the_page_text_the_metadata_and_the_matching_chunk_read_once_for_all():
    s, store, _ = searcher(visual=False)
    hits = {(h.doc_id, h.page): h for h in s.search("beta results table", k=4)}
    a1, a2, b2 = hits[("a", 1)], hits[("a", 2)], hits[("b", 2)]
    assert (a1.text, b2.text) == ("alpha page", "beta table")
    assert a1.metadata == {"project": "demo"} and b2.metadata == {}
    assert store.calls["page_chunks"] == 0  # nothing read until a chunk is asked for
    assert b2.chunk == Chunk("beta chunk", [(0.1, 0.1, 0.5, 0.2)], "text", 0)  # the text leg's chunk, placed
    assert a1.chunk == Chunk("alpha chunk", [(0.1, 0.2, 0.9, 0.3)], "text", 0)
    assert a2.chunk is None  # found by the image leg only: no chunk matched
    assert store.calls["page_chunks"] == 1  # one read for every hit of the search
    d = b2.to_dict()
    assert d["chunk"] == {"text": "beta chunk", "boxes": [[0.1, 0.1, 0.5, 0.2]], "leg": "text", "index": 0}
    assert (d["text"], d["metadata"], d["confidence"]) == ("beta table", {}, round(b2.confidence, 4))
    # BM25 alone: of the page's chunks, the one holding most of the query's terms (no position stored for it).
    only = s.search("beta results table", legs=["bm25"])[0]
    assert only.chunk == Chunk("the table of beta results", [], "bm25", 1)


def test_where_takes_sql_a_metadata_filter_or_a_list_of_both():
    s, store, _ = searcher(visual=False)
    s.search("q", where={"project": "demo"})
    s.search("q", where="path LIKE '%a%'")
    s.search("q", where=["path LIKE 'x%'", "size > 1", {"project": ["a", "b"]}, {"year": 2024}])
    assert store.filters == [
        (None, {"project": "demo"}),
        ("path LIKE '%a%'", None),
        ("(path LIKE 'x%') AND (size > 1)", {"project": ["a", "b"], "year": 2024}),
    ]
    with pytest.raises(ValueError, match="metadata filter 'a' given twice"):
        s.search("q", where=[{"a": 1}, {"a": 2}])
    with pytest.raises(ValueError, match=r"give SQL .* a metadata filter .* or a list of them"):
        s.search("q", where=[3])


def test_min_score_keeps_the_hits_whose_confidence_reaches_it_in_their_order():
    s, _, _ = searcher(visual=False)
    ranked = s.search("beta results table", k=4)
    assert [(h.doc_id, h.page) for h in ranked] == [("b", 2), ("a", 1), ("a", 2)]
    conf = {(h.doc_id, h.page): h.confidence for h in ranked}
    # The text leg's cosines (0.5, 0.8) stand far above the query's cosine with unrelated text (0 here); the
    # image leg's page has no text evidence and no query word on it.
    assert conf[("b", 2)] > 0.8 and conf[("a", 1)] > 0.7 and conf[("a", 2)] == 0.0
    kept = s.search("beta results table", k=4, min_score=0.5)
    assert [(h.doc_id, h.page) for h in kept] == [("b", 2), ("a", 1)]
    with pytest.raises(ValueError, match=r"min_score is a confidence between 0 and 1 \(got 1.5\)"):
        s.search("q", min_score=1.5)
    with pytest.raises(ValueError, match="min_score needs text queries"):
        s.search(Image.new("RGB", (8, 8)), min_score=0.5)
    assert s.search(Image.new("RGB", (8, 8)))[0].confidence is None
