"""Two-stage visual search and compressed storage against exact MaxSim, on clustered synthetic pages."""

from __future__ import annotations

import numpy as np
import pytest

from docrag.indexes import visual as visual_mod
from docrag.indexes.codecs import decode, encode
from docrag.indexes.maxsim import maxsim_naive
from docrag.indexes.schema import POOLED, VISUAL
from docrag.indexes.store import ModelMismatchError, Store
from docrag.indexes.visual_index import FIRST_STAGES, VisualIndexSpec, hierarchical_pool, kmeans_pool
from docrag.testing.rows import new_store, write_pages, write_visual

DIM = 128
STAGES = sorted(FIRST_STAGES)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _pages(n: int, seed: int = 0, topics: int = 40) -> list[np.ndarray]:
    """Pages of 80–120 vectors around three of ``topics`` centres each (structure, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((topics, DIM)))
    out = []
    for _ in range(n):
        mine = centres[rng.choice(topics, 3, replace=False)]
        m = int(rng.integers(80, 121))
        v = mine[rng.integers(0, 3, m)] + 0.6 * rng.standard_normal((m, DIM)) / np.sqrt(DIM)
        out.append(_unit(v))
    return out


def _query(page: np.ndarray, seed: int = 1, n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = page[rng.choice(len(page), n, replace=False)]
    return _unit(rows + 0.2 * rng.standard_normal(rows.shape) / np.sqrt(DIM))


def _fill(store: Store, pages: list[np.ndarray], start: int = 0, per_doc: int = 10) -> list[tuple[str, int]]:
    keys = [(f"doc{(start + i) // per_doc}", (start + i) % per_doc + 1) for i in range(len(pages))]
    for a in range(0, len(pages), 25):
        chunk = keys[a : a + 25]
        write_visual(store, [k[0] for k in chunk], [k[1] for k in chunk], pages[a : a + 25])
    return keys


def _keys(cands) -> list[tuple[str, int]]:
    return [(c.doc_id, c.page) for c in cands]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """60 pages, maintained: pooled rows, a trained codebook (60 × 64 pooled vectors)."""
    store = new_store(tmp_path_factory.mktemp("vis") / "db")
    pages = _pages(60)
    keys = _fill(store, pages)
    store.maintain()
    return store, pages, keys


def test_codecs_and_pooling_keep_the_geometry():
    v = _pages(1)[0]
    assert np.allclose(decode(encode(v, "float16"), "float16", DIM, np.float32), v, atol=1e-3)
    i8 = decode(encode(v, "int8"), "int8", DIM, np.float32)
    assert np.min(np.sum(_unit(i8) * v, axis=1)) > 0.999
    bits = encode(v, "binary")
    assert bits.shape == (len(v), DIM // 8) and bits.dtype == np.uint8
    assert np.array_equal(decode(bits, "binary", DIM, np.float32) > 0, v > 0)
    with pytest.raises(ValueError, match="unknown visual storage"):
        encode(v, "int4")
    pooled = hierarchical_pool(v, 3)
    assert len(v) // 3 - 1 <= len(pooled) <= len(v) // 3
    # each pooled vector is the mean of some of the page's vectors: it lies inside their span and is closer
    # to its nearest original vector than to a random direction
    assert np.all(np.max(_unit(pooled) @ v.T, axis=1) > 0.5)
    assert hierarchical_pool(v, 1) is v or np.array_equal(hierarchical_pool(v, 1), v)
    km = kmeans_pool(v, 16).astype(np.float32)
    assert len(km) <= 16 and np.allclose(np.linalg.norm(km, axis=1), 1, atol=1e-2)
    assert len(kmeans_pool(v[:5], 16)) == 5  # fewer vectors than centroids: kept


@pytest.mark.parametrize("stage", STAGES)
def test_two_stage_matches_exact(built, stage):
    store, pages, keys = built
    assert store.db.count(POOLED) == store.visual.count() == 60
    assert store.visual.codebook_vectors >= visual_mod.CODEBOOK_MIN_VECTORS
    for target in (3, 41):
        q = _query(pages[target], seed=target)
        exact = store.visual.search(q, 10, method="exact")[0]
        assert _keys(exact)[0] == keys[target]
        ref = sorted(range(60), key=lambda i: -maxsim_naive(q, pages[i]))[:10]
        assert _keys(exact) == [keys[i] for i in ref]  # the reference: the definition, page by page
        # every page a candidate, reranked from the stored vectors: exactly the exact ranking and scores
        full = store.visual.search(q, 10, method="two-stage", candidates=60, stage=stage, rerank="exact")[0]
        assert _keys(full) == _keys(exact)
        assert [c.score for c in full] == pytest.approx([c.score for c in exact], rel=1e-5)
        # a few candidates: the planted page still first, scores still exact MaxSim
        few = store.visual.search(q, 5, method="two-stage", candidates=8, stage=stage, rerank="exact")[0]
        assert _keys(few)[0] == keys[target]
        assert few[0].score == pytest.approx(exact[0].score, rel=1e-5)


@pytest.mark.parametrize("stage", STAGES)
def test_two_stage_honours_filters(built, stage):
    store, pages, keys = built
    q = _query(pages[3], seed=3)
    allowed = {"doc2", "doc5"}
    for method in ("exact", "two-stage"):
        got = store.visual.search(q, 10, allowed=allowed, method=method, candidates=8, stage=stage)[0]
        assert got and {c.doc_id for c in got} <= allowed
        assert keys[3] not in _keys(got)
    small = store.visual.search(q, 10, allowed={"doc0"}, method="two-stage", candidates=40, stage=stage)[0]
    assert _keys(small)[0] == keys[3] and {c.doc_id for c in small} == {"doc0"}


def test_adds_and_deletes_keep_both_stages_consistent(tmp_path):
    store = new_store(tmp_path / "db")
    pages = _pages(80, seed=5)
    keys = _fill(store, pages[:50])
    store.maintain()
    assert store.visual.codebook_vectors and store.db.count(POOLED) == 50
    # added after the codebook: found before any maintenance (uncoded pages are always candidates) ...
    keys += _fill(store, pages[50:], start=50)
    for stage in STAGES:
        hit = store.visual.search(_query(pages[72], seed=2), 3, method="two-stage", candidates=8, stage=stage)[0]
        assert _keys(hit)[0] == keys[72], stage
    # ... and coded by it
    store.maintain()
    codes = store.db.rows(POOLED, columns=["doc_id", "page", "codes"])
    assert len(codes) == 80 and all(r["codes"] for r in codes)
    for stage in STAGES:
        hit = store.visual.search(_query(pages[72], seed=2), 3, method="two-stage", candidates=8, stage=stage)[0]
        assert _keys(hit)[0] == keys[72], stage
    # deleted: gone from both stages
    gone = keys[72][0]
    store.delete_documents([gone])
    assert store.db.count(POOLED) == store.visual.count() == 70
    for stage in STAGES:
        got = store.visual.search(_query(pages[72], seed=2), 10, method="two-stage", candidates=80, stage=stage)[0]
        assert gone not in {c.doc_id for c in got}
        exact = store.visual.search(_query(pages[72], seed=2), 10, method="exact")[0]
        assert _keys(got) == _keys(exact)


def test_growth_retrains_the_codebook(tmp_path, monkeypatch):
    monkeypatch.setattr(visual_mod, "RETRAIN_GROWTH", 1.5)
    store = new_store(tmp_path / "db")
    pages = _pages(60, seed=9)
    _fill(store, pages[:20])
    store.maintain()
    first = store.visual.codebook_vectors
    assert first > 0
    _fill(store, pages[20:], start=20)
    store.maintain()
    assert store.visual.codebook_vectors > 1.5 * first - 1
    reopened = Store(tmp_path / "db", writable=False)
    assert reopened.visual.codebook_vectors == store.visual.codebook_vectors  # recorded in the database


def test_auto_picks_by_size_and_a_missing_first_stage_falls_back(tmp_path, monkeypatch):
    store = new_store(tmp_path / "db")
    pages = _pages(30, seed=3)
    keys = _fill(store, pages)
    assert store.visual.method("auto") == "exact"
    monkeypatch.setattr(visual_mod, "EXACT_RAM_BYTES", 1000)  # vectors that would not fit in RAM
    assert store.visual.method("auto") == "two-stage"
    monkeypatch.undo()
    monkeypatch.setattr(visual_mod, "TWO_STAGE_FROM_PAGES", 10)
    assert store.visual.method("auto") == "two-stage"
    with pytest.raises(ValueError, match="unknown visual search"):
        store.visual.method("fast")
    # a first stage that is missing (dropped by a repair): no pooled rows -> exact, and maintain builds them
    store.db.drop(POOLED)
    store.make_writable()
    assert store.db.count(POOLED) == 0 and store.visual.method("two-stage") == "exact"
    # a page added before the upkeep ran: the first stage covers only it, so search stays exact
    keys += _fill(store, _pages(1, seed=99), start=30)
    assert store.db.count(POOLED) == 1 and store.visual.method("two-stage") == "exact"
    q = _query(pages[7], seed=7)
    assert _keys(store.visual.search(q, 3, method="two-stage")[0])[0] == keys[7]
    store.maintain()
    assert store.db.count(POOLED) == 31 and store.visual.method("two-stage") == "two-stage"
    assert _keys(store.visual.search(q, 3, method="two-stage", candidates=5)[0])[0] == keys[7]


def test_exact_streams_when_the_vectors_exceed_ram_budget(built, monkeypatch):
    store, pages, _ = built
    q = _query(pages[41], seed=41)
    packed = store.visual.search(q, 10, method="exact")[0]
    monkeypatch.setattr(visual_mod, "EXACT_RAM_BYTES", 1)
    streamed = store.visual.search(q, 10, method="exact")[0]
    assert _keys(streamed) == _keys(packed)
    assert [c.score for c in streamed] == pytest.approx([c.score for c in packed], rel=1e-5)


@pytest.mark.parametrize(("storage", "factor"), [("int8", 1), ("binary", 1), ("float16", 3), ("int8", 2)])
def test_compressed_storage_is_recorded_and_searchable(tmp_path, storage, factor):
    spec = VisualIndexSpec(storage=storage, pool_factor=factor)
    store = new_store(tmp_path / "db", visual_index=spec)
    pages = _pages(40, seed=11)
    keys = _fill(store, pages)
    store.maintain()
    n_vectors = sum(r["n_vectors"] for r in store.db.rows(VISUAL, columns=["n_vectors"]))
    assert n_vectors <= sum(len(p) for p in pages) // factor + 40
    for target in (4, 33):
        q = _query(pages[target], seed=target)
        assert _keys(store.visual.search(q, 3, method="exact")[0])[0] == keys[target]
        assert _keys(store.visual.search(q, 3, method="two-stage", candidates=8)[0])[0] == keys[target]
    reopened = Store(tmp_path / "db", writable=False)
    assert reopened.visual_index == spec.model_copy(update={"first_stage": "centroids"})  # lives with the database
    other = VisualIndexSpec(storage="binary" if storage != "binary" else "int8")
    with pytest.raises(ModelMismatchError, match="stores visual vectors as"):
        Store(tmp_path / "db", writable=False, visual_index=other)
    # the first stage is a search-time choice: another one opens the same database, and is not recorded
    other_stage = Store(tmp_path / "db", visual_index=spec.model_copy(update={"first_stage": "pooled"}))
    assert other_stage.visual_index.first_stage == "pooled"
    other_stage.make_writable()
    assert Store(tmp_path / "db", writable=False).visual_index.first_stage == "centroids"


def test_a_database_without_visual_vectors_has_no_storage_to_keep():
    """Settings: the stored spec holds once visual vectors are there; before (a lite database), what is asked."""
    from docrag.config import resolve

    stored = {"visual_index": VisualIndexSpec().record(), "visual_dim": None, "profile": "lite"}
    asked = {"visual_index": {"storage": "int8"}}
    assert resolve(stored, None, asked, env={}).visual_index.storage == "int8"
    with pytest.raises(ModelMismatchError, match="stores visual vectors as"):
        resolve({**stored, "visual_dim": 128}, None, asked, env={})


class _Vectors:
    """A visual embedder whose query "texts" name precomputed token vectors."""

    def __init__(self, queries: dict[str, np.ndarray]) -> None:
        self.queries = queries

    def embed_queries(self, texts):
        return [self.queries[t] for t in texts]


def test_searcher_two_stage_keeps_the_ready_rule_and_where(tmp_path):
    from docrag.pipeline.legs import LegParts, build_legs
    from docrag.pipeline.options import SearchConfig
    from docrag.pipeline.search import Searcher

    store = new_store(tmp_path / "db")
    pages = _pages(40, seed=21)
    keys = _fill(store, pages)
    store.maintain()
    for i in range(4):
        store.documents.add(f"doc{i}", f"/d/doc{i}.pdf", 1, 0.0, 10, {"team": "a" if i % 2 else "b"})
        if i != 1:
            store.documents.mark_ready(f"doc{i}", {"visual": 10})
    emb = _Vectors({"q12": _query(pages[12], seed=12), "q25": _query(pages[25], seed=25)})
    cfg = SearchConfig(visual_search="two-stage", visual_candidates=8)
    searcher = Searcher(store, cfg, build_legs(LegParts(store, cfg, None, visual=lambda: emb), ["visual"]))
    hits = searcher.search("q25", k=3, legs=["visual"])
    assert (hits[0].doc_id, hits[0].page) == keys[25] and hits[0].legs["visual"]["rank"] == 1
    # doc1 is still indexing: its pages are invisible to both stages
    assert all(h.doc_id != "doc1" for h in searcher.search("q12", k=10, legs=["visual"]))
    # a filter that closes its own parenthesis cannot lift the ready rule
    escaped = searcher.search("q12", k=10, legs=["visual"], where="1=1) OR (1=1")
    assert escaped and all(h.doc_id != "doc1" for h in escaped)
    only_b = searcher.search("q25", k=10, legs=["visual"], where="metadata LIKE '%\"b\"%'")
    assert only_b and {h.doc_id for h in only_b} <= {"doc0", "doc2"}


def test_repair_drops_a_first_stage_out_of_step(tmp_path):
    store = new_store(tmp_path / "db")
    pages = _pages(40, seed=8)
    keys = _fill(store, pages)
    for i in range(4):
        store.documents.add(f"doc{i}", f"/d/doc{i}.pdf", 1, 0.0, 10, {})
        # a ready document has its page rows (check flags one without)
        write_pages(store, f"doc{i}", [""] * 10, route=["visual"] * 10, label=["table"] * 10)
        store.documents.mark_ready(f"doc{i}", {"visual": 10})
    store.maintain()
    assert store.check()["first_stage_complete"] is True and store.check()["ok"]
    store.db.delete(POOLED, "doc_id = 'doc1'")  # a first stage that lost rows
    assert store.check()["first_stage_complete"] is False
    report = store.repair()
    assert report["first_stage_dropped"] is True and not store.db.has(POOLED)
    store.make_writable()
    assert store.visual.method("two-stage") == "exact"
    store.maintain()  # the next index run's upkeep rebuilds it, codebook included
    assert store.db.count(POOLED) == 40 and store.check()["first_stage_complete"] is True
    q = _query(pages[12], seed=12)
    assert _keys(store.visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]
