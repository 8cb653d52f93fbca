"""LanceDB store: rows spelled by the schema, the model record, per-leg search, round trip across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from docrag.indexes.codecs import arrow_to_multivectors, multivectors_to_arrow
from docrag.indexes.embedders import create_embedder
from docrag.indexes.maxsim import maxsim_numpy
from docrag.indexes.models import ModelSpec
from docrag.indexes.multivector import MultiVectorEmbedder
from docrag.indexes.record import SCHEMA_VERSION
from docrag.indexes.schema import CHUNKS, PAGES, VISUAL, Dims
from docrag.indexes.store import ModelMismatchError, Store, StoreError
from docrag.testing.rows import new_store, write_chunks, write_images, write_pages, write_visual


def test_multivector_arrow_round_trip_is_float16():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, 128)).astype(np.float32) for n in (3, 1, 7)]
    col = multivectors_to_arrow(arrays, 128)
    assert str(col.type) == "list<item: fixed_size_list<item: halffloat>[128]>"
    back = arrow_to_multivectors(col)
    assert [b.shape for b in back] == [(3, 128), (1, 128), (7, 128)]
    for a, b in zip(arrays, back, strict=True):
        np.testing.assert_allclose(b, a.astype(np.float16))


def _build(db, tiny, page_images):
    vis = MultiVectorEmbedder(ModelSpec(type="colidefics3", model=str(tiny["colidefics3"])))
    text = create_embedder(ModelSpec(type="sentence-transformers", model=str(tiny["arctic"])))
    image = create_embedder(ModelSpec(type="siglip", model=str(tiny["siglip"])))
    store = new_store(
        db,
        text_dim=text.dim,
        image_dim=image.dim,
        visual_spec=vis.spec,
        text_spec=text.spec,
        image_spec=image.spec,
    )
    write_visual(store, "doc-a", [1, 2, 3, 4], vis.embed_images(page_images))
    texts = ["tables and charts", "the quick brown fox", "capital of france", "late interaction scores"]
    write_chunks(store, "doc-b", [1, 1, 2, 3], [0, 1, 0, 0], texts, text.embed_documents(texts))
    write_images(
        store, "doc-b", [2, 3, 3], [(0, 0, 10, 10)] * 3, image.embed_images(page_images[:3]), image_ids=[0, 0, 1]
    )
    write_pages(store, "doc-b", ["tables and charts fox", "capital of france", "late interaction"])
    store.maintain()
    return vis, text, image, store


def _stored_visual(store):
    return arrow_to_multivectors(store.db.scan(VISUAL, ["multivector"]).column("multivector"))


def test_legs_return_page_candidates(tmp_path, tiny, page_images):
    vis, text, image, store = _build(tmp_path / "db", tiny, page_images)
    q = vis.embed_queries(["capital of france"])[0]
    (visual,) = store.visual.search(q, k=4)
    assert [c.doc_id for c in visual] == ["doc-a"] * 4 and len({c.page for c in visual}) == 4
    stored = _stored_visual(store)
    expected = maxsim_numpy([q], [s.astype(np.float32) for s in stored])[0]
    assert [c.score for c in visual] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    found = store.chunks.search(text.embed_queries(["capital of france"])[0], k=3)
    assert len({(c.doc_id, c.page) for c in found}) == len(found)  # one candidate per page (best chunk)
    assert all(-1.0 - 1e-5 <= c.score <= 1.0 + 1e-5 for c in found) and found[0].detail
    # Three stored images on two pages: the image query finds its own image's page, one candidate per page.
    images = store.images.search(image.embed_images(page_images[1:2])[0], k=3)
    assert [c.page for c in images] == [3, 2] and images[0].score == pytest.approx(1.0, abs=1e-4)
    assert images[0].detail == "0" and images[1].score < 0.9999
    bm25 = store.pages.search_bm25("france", k=3)
    assert [(c.doc_id, c.page) for c in bm25] == [("doc-b", 2)]
    assert store.pages.search_bm25("france", allowed={"doc-a"}) == []


def test_reopen_recreates_specs_and_refuses_other_models(tmp_path, tiny, page_images):
    _build(tmp_path / "db", tiny, page_images)
    again = Store(tmp_path / "db")
    assert again.visual_spec.type == "colidefics3" and again.text_spec.type == "sentence-transformers"
    assert again.image_spec.type == "siglip"
    assert again.dims == Dims(text=32, image=32, visual=128, storage="float16")
    record = Store.record(tmp_path / "db")  # the model record: one place, the meta table
    assert record["visual_spec"]["model"] == str(tiny["colidefics3"]) and record["schema_version"] == SCHEMA_VERSION
    assert record["text_spec"]["model"] == str(tiny["arctic"]) and record["image_spec"]["model"] == str(tiny["siglip"])
    assert not again.db.table(VISUAL).schema.metadata  # not repeated in every table's schema
    with pytest.raises(ModelMismatchError, match="built with the visual model colidefics3"):
        Store(tmp_path / "db", visual_spec=ModelSpec(type="colpali", model=str(tiny["colpali"])))
    with pytest.raises(ModelMismatchError, match="built with the text model sentence-transformers"):
        Store(tmp_path / "db", text_spec=ModelSpec(type="siglip", model=str(tiny["siglip"])))
    again.make_writable()
    with pytest.raises(ModelMismatchError, match="do not fit"):
        write_chunks(again, "d", [1], [0], ["x"], np.zeros((1, 8), np.float32))


def test_a_database_of_another_schema_is_refused_with_what_to_do(tmp_path):
    store = new_store(tmp_path / "db", text_dim=4)
    store.db.set_meta({"schema_version": 0})
    with pytest.raises(StoreError, match=r"another version of docrag .* index the documents again into a new --db"):
        Store(tmp_path / "db")


@pytest.mark.slow
def test_round_trip_in_a_new_process_gives_same_topk_and_scores(tmp_path, tiny, page_images):
    vis, text, _, store = _build(tmp_path / "db", tiny, page_images)
    q = "late interaction"
    here = {
        "visual": [(c.doc_id, c.page, c.score) for c in store.visual.search(vis.embed_queries([q])[0], k=3)[0]],
        "text": [(c.doc_id, c.page, c.score) for c in store.chunks.search(text.embed_queries([q])[0], k=3)],
        "bm25": [(c.doc_id, c.page, c.score) for c in store.pages.search_bm25(q, k=3)],
    }
    script = textwrap.dedent(f"""
        import json
        from docrag.indexes.store import Store
        from docrag.indexes.multivector import MultiVectorEmbedder
        from docrag.indexes.embedders import create_embedder
        store = Store({str(tmp_path / "db")!r})
        vis, text = MultiVectorEmbedder(store.visual_spec), create_embedder(store.text_spec)
        q = {q!r}
        print(json.dumps({{
            "visual": [(c.doc_id, c.page, c.score) for c in store.visual.search(vis.embed_queries([q])[0], k=3)[0]],
            "text": [(c.doc_id, c.page, c.score) for c in store.chunks.search(text.embed_queries([q])[0], k=3)],
            "bm25": [(c.doc_id, c.page, c.score) for c in store.pages.search_bm25(q, k=3)],
        }}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    for leg in here:
        assert [(d, p) for d, p, _ in there[leg]] == [(d, p) for d, p, _ in here[leg]], leg
        assert [s for *_, s in there[leg]] == pytest.approx([s for *_, s in here[leg]], abs=1e-6), leg


def test_delete_document_removes_its_rows(tmp_path, tiny, page_images):
    *_, store = _build(tmp_path / "db", tiny, page_images)
    store.delete_documents(["doc-b"])
    assert store.chunks.count() == store.images.count() == store.pages.count() == 0
    assert store.visual.count() == 4


def test_text_index_is_created_once_then_kept_current_without_rebuilds(tmp_path, monkeypatch):
    store = new_store(tmp_path / "db", text_dim=4)
    write_pages(store, "doc-a", [f"walrus colony census {i}" for i in range(20)])
    store.maintain()
    tbl = store.db.table(PAGES)
    (fts,) = [i for i in tbl.list_indices() if i.index_type == "FTS"]

    def stats():
        s = store.db.table(PAGES).index_stats(fts.name)
        return s.num_indexed_rows, s.num_unindexed_rows

    # Later runs never rebuild the index from scratch: creating it again would fail this test.
    def no_rebuild(*args, **kwargs):
        raise AssertionError("the full-text index was rebuilt instead of updated")

    monkeypatch.setattr(type(tbl), "create_index", no_rebuild)
    # A small addition stays out of the index and is searched by a flat scan.
    write_pages(store, "doc-b", ["narwhal tusks", "walrus diet"])
    store.maintain()
    assert stats() == (20, 2)
    assert {c.doc_id for c in store.pages.search_bm25("narwhal")} == {"doc-b"}
    assert ("doc-b", 2) in {(c.doc_id, c.page) for c in store.pages.search_bm25("walrus", k=30)}
    # Past the share of unindexed rows, optimize folds them in.
    write_pages(store, "doc-c", ["narwhal pod"])
    store.maintain()
    assert stats() == (23, 0)
    assert {c.doc_id for c in store.pages.search_bm25("narwhal")} == {"doc-b", "doc-c"}
    # Deleted rows disappear from results at once, and from the index when it is optimized.
    store.delete_documents(["doc-a"])
    assert {c.doc_id for c in store.pages.search_bm25("walrus", k=30)} == {"doc-b"}
    store.maintain(force=True)
    assert stats() == (3, 0)


def test_maintain_compacts_fragmented_tables_past_the_threshold(tmp_path, monkeypatch):
    import docrag.indexes.pages as pages_mod

    store = new_store(tmp_path / "db", text_dim=4)
    rng = np.random.default_rng(0)
    for b in range(6):  # six page batches: six fragments
        v = rng.standard_normal((3, 4)).astype(np.float32)
        write_chunks(store, f"doc{b}", [1, 2, 3], [0, 0, 0], ["t"] * 3, v / np.linalg.norm(v, axis=1, keepdims=True))

    def fragments():
        return store.db.table(CHUNKS).stats()["fragment_stats"]["num_fragments"]

    q = rng.standard_normal(4).astype(np.float32)
    before = [(c.doc_id, c.page, round(c.score, 5)) for c in store.chunks.search(q, k=18)]
    store.maintain()
    assert fragments() == 6  # under the threshold: left alone
    monkeypatch.setattr(pages_mod, "OPTIMIZE_SMALL_FRAGMENTS", 4)
    store.maintain()
    assert fragments() == 1
    assert [(c.doc_id, c.page, round(c.score, 5)) for c in store.chunks.search(q, k=18)] == before


def test_visual_vectors_of_another_size_are_stored_and_searched(tmp_path):
    """ColQwen3 emits 320-d vectors: a new database takes the size of its first vectors and keeps it."""
    rng = np.random.default_rng(0)
    spec = ModelSpec(type="colqwen3", model="m")
    store = new_store(tmp_path / "db", visual_spec=spec)
    pages = [rng.standard_normal((30, 320)).astype(np.float32) for _ in range(4)]
    pages = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in pages]
    write_visual(store, "doc", [1, 2, 3, 4], pages)
    query = pages[2][:5] + 0.01  # tokens of page 3
    (hits,) = store.visual.search([query], k=2)
    assert (hits[0].doc_id, hits[0].page) == ("doc", 3)
    again = Store(tmp_path / "db", visual_spec=spec, writable=True)
    assert again.dims.visual == 320
    with pytest.raises(ValueError, match=r"\(n, 320\)"):
        write_visual(again, "doc", [5], [np.ones((3, 128), np.float32)])
    assert _stored_visual(again)[0].shape == (30, 320)


DATA = Path(__file__).parent / "data"


@pytest.mark.slow
def test_a_schema_1_database_searches_with_its_models_and_a_rebuild_replaces_them(tmp_path, tiny):
    """tests/data/v1_lite.db was written before the text and image legs had models of their own (one
    "unified" all-MiniLM-L6-v2): it opens, searches and says what built it; indexing into it with another text
    model is one line naming the command that rebuilds it, and that command does."""
    import shutil

    from clirun import invoke

    import docrag
    from docrag.indexes.models import MINILM_ID

    db = tmp_path / "old.db"
    shutil.copytree(DATA / "v1_lite.db", db)
    idx = docrag.open(db)
    assert idx.settings.text.model == MINILM_ID and idx.settings.image is None and idx.settings.visual is None
    hits = idx.search("how high was the tide at the lighthouse", k=2)
    assert [h.page for h in hits] == [1, 2] and "text" in hits[0].legs and "bm25" in hits[0].legs
    built = idx.stats()["built_with"]
    assert built["text"]["model"] == MINILM_ID and built["image"] is None and built["visual"] is None
    shown = invoke("stats", "--db", db, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["built_with"]["text"]["model"] == MINILM_ID
    assert idx.search("photosynthesis in leaves", k=1)[0].page == 2

    cfg = tmp_path / "arctic.toml"
    cfg.write_text(f'profile = "lite"\n[text]\ntype = "sentence-transformers"\nmodel = "{tiny["arctic"]}"\n')
    pdf = tmp_path / "two_topics.pdf"
    shutil.copy(DATA / "two_topics.pdf", pdf)
    refused = invoke("index", pdf, "--db", db, "--config", cfg, "--workers", "0")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    line = refused.stderr.strip()
    assert f"was built with the text model sentence-transformers:{MINILM_ID}" in line, line
    assert line.endswith(f"docrag index {pdf} --db {db} --config {cfg} --rebuild"), line
    assert docrag.open(db).stats()["chunks"] == 2  # nothing was touched

    # A rebuild whose model fails to load (its pooling is not what the settings say) leaves the database as it was.
    broken = tmp_path / "broken.toml"
    broken.write_text(cfg.read_text() + '[text.options]\npooling = "mean"\n')
    failed = invoke("index", pdf, "--db", db, "--config", broken, "--workers", "0", "--rebuild")
    assert failed.returncode == 2 and "pools by 'cls'" in failed.stderr, failed.stderr
    kept = docrag.open(db)
    assert kept.stats()["chunks"] == 2 and kept.search("tide", k=1)[0].page == 1

    rebuilt = invoke("index", pdf, "--db", db, "--config", cfg, "--workers", "0", "--rebuild", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["indexed"] == 1
    again = docrag.open(db)
    assert again.stats()["built_with"]["text"]["model"] == str(tiny["arctic"])
    assert Store.record(db)["schema_version"] == SCHEMA_VERSION and again.stats()["documents"] == 1
    assert {h.page for h in again.search("tide", k=2)} == {1, 2}
    assert docrag.open(db, rebuild=True).settings.profile == "lite"  # a rebuild without a profile keeps the db's


@pytest.mark.slow
def test_a_schema_1_database_is_written_as_this_schema_and_takes_an_image_model(tmp_path, tiny, docs):
    """Written into, a schema-1 record becomes a whole record of this schema (the old keys gone); the images table
    schema 1 made at the text model's size is made again, empty, for a new image model's size."""
    import shutil

    import docrag
    from docrag.indexes.database import Database
    from docrag.indexes.schema import IMAGES, META

    db = tmp_path / "old.db"
    shutil.copytree(DATA / "v1_lite.db", db)
    assert Database(db).table(IMAGES).schema.field("vector").type.list_size == 384
    cfg = tmp_path / "image.toml"
    cfg.write_text(f'[image]\ntype = "siglip"\nmodel = "{tiny["siglip"]}"\n')
    idx = docrag.open(db, config=cfg)
    report = idx.add([docs["photo_png"]], workers=0)
    assert report.failed == [] and idx.stats()["images"] == 1
    raw = {r["key"]: r["value"] for r in Database(db).rows(META)}
    assert raw["schema_version"] == SCHEMA_VERSION and "unified_spec" not in raw and "unified_dim" not in raw
    assert raw["text_spec"]["model"] == "sentence-transformers/all-MiniLM-L6-v2" and raw["text_dim"] == 384
    assert raw["image_spec"]["model"] == str(tiny["siglip"]) and raw["image_dim"] == 32
    again = docrag.open(db)
    assert {h.page for h in again.search("how high was the tide", k=3, legs=["text"])} == {1, 2}
    from PIL import Image

    (hit,) = again.search(Image.open(docs["photo_png"]), k=1)
    assert Path(hit.file).name == Path(docs["photo_png"]).name and hit.legs["image"]["score"] > 0.999


def test_a_table_another_process_is_still_making_is_not_there_yet(tmp_path):
    """LanceDB makes a table's folder a moment before its first version: a reader then sees no table (a new
    database, or no meta record yet), not an error from opening one that cannot be opened."""
    db = tmp_path / "db"
    (db / "documents.lance" / "_versions").mkdir(parents=True)  # being made: no manifest yet
    assert not Store.exists(db)
    store = new_store(tmp_path / "made")
    assert Store.exists(tmp_path / "made") and Store(tmp_path / "made").db.meta()
    (tmp_path / "made" / "chunks_x.lance" / "_versions").mkdir(parents=True)
    reader = Store(tmp_path / "made")
    assert "chunks_x" not in reader.db.names() and reader.db.meta() == store.db.meta()
