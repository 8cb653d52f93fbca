"""The compact rerank codes of the visual leg (indexes/visual_codes.py): recall against exact MaxSim, kept in step
with adds and deletes, versioned with the tables, rebuilt by `check --repair`, and a local cache for s3://."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from clirun import invoke
from test_visual_index import _fill, _keys, _pages, _query

from docrag.indexes import codes_search, codes_vnni, visual_codes
from docrag.indexes.codes_build import drop_pack
from docrag.indexes.store import Store
from docrag.indexes.visual_codes import codes_root, pack_state
from docrag.testing.rows import new_store, write_pages


def _documents(store: Store, docs: range, per_doc: int = 10) -> None:
    """Document rows for the visual pages ``_fill`` wrote (ready, with their page rows): a consistent database."""
    for i in docs:
        store.documents.add(f"doc{i}", f"/d/doc{i}.pdf", 1, 0.0, per_doc, {})
        write_pages(store, f"doc{i}", [""] * per_doc, route=["visual"] * per_doc, label=["table"] * per_doc)
        store.documents.mark_ready(f"doc{i}", {"visual": per_doc, "pages": per_doc})


def _segments(db) -> list:
    """The segment folders the current generation of the codes reads."""
    root = codes_root(str(db))
    info = json.loads((root / (root / "CURRENT").read_text() / "pack.json").read_text())
    return [root / name for name in info["segments"]]


def _recall(got, ref) -> float:
    return float(np.mean([len(set(_keys(a)) & set(_keys(b))) / max(len(b), 1) for a, b in zip(got, ref, strict=True)]))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """80 pages in 8 documents, maintained: first stage, codebook and codes."""
    store = new_store(tmp_path_factory.mktemp("codes") / "db")
    pages = _pages(80, seed=3)
    keys = _fill(store, pages)
    _documents(store, range(8))
    store.maintain()
    queries = [_query(pages[i], seed=i) for i in range(0, 80, 4)]
    return store, pages, keys, queries


@pytest.mark.parametrize(
    "kernels",
    [
        "float32",
        pytest.param(
            "int8", marks=pytest.mark.skipif(not codes_vnni.cpu_has_vnni(), reason="this CPU has no AVX-512 VNNI")
        ),
    ],
)
def test_codes_rerank_keeps_the_exact_top_10_without_lancedb(built, monkeypatch, kernels):
    store, _, keys, queries = built
    # the int8 kernels where the CPU has AVX-512 VNNI, else (and on request) the float32 ones: the same answers
    monkeypatch.setattr(codes_vnni, "_available", {} if kernels == "int8" else {"all": False, "codes": False})
    assert codes_vnni.available() == (kernels == "int8")
    assert pack_state(store.db, verify=True) == "current"
    exact = store.visual.search(queries, 10, method="exact")
    # the default: the best 32 from the codes scored again at 12 bits a dimension (near-exact scores)
    final = store.visual.search(queries, 10, method="two-stage", candidates=8)
    assert _recall(final, exact) >= 0.97
    assert [c.score for c in final[0]] == pytest.approx([c.score for c in exact[0]][: len(final[0])], rel=2e-4)
    monkeypatch.setattr(codes_search, "REFINE_FINAL", 0)  # from the 4-bit codes alone
    codes = store.visual.search(queries, 10, method="two-stage", candidates=8)
    assert _recall(codes, exact) >= 0.95
    # the planted page first, with its MaxSim to within the 4-bit residuals
    for got, ref, target in zip(codes, exact, range(0, 80, 4), strict=True):
        assert _keys(got)[0] == keys[target] == _keys(ref)[0]
        assert got[0].score == pytest.approx(ref[0].score, rel=0.01)
    # every page scored from its codes: the codes' own error only
    every = store.visual.search(queries, 10, method="two-stage", candidates=80)
    assert _recall(every, exact) >= 0.97
    # a new reader answers from the codes alone: LanceDB is never opened (nor imported for that)
    reader = Store(store.uri)
    assert [_keys(r) for r in reader.visual.search(queries, 10, method="two-stage", candidates=8)] == [
        _keys(r) for r in codes
    ]
    assert not reader.db.connected
    # a filter reaches the codes' stages: only the allowed documents' pages
    allowed = {"doc2", "doc7"}
    got = store.visual.search(queries[3], 10, allowed=allowed, method="two-stage", candidates=8)[0]
    ref = store.visual.search(queries[3], 10, allowed=allowed, method="exact")[0]
    assert {c.doc_id for c in got} <= allowed and _keys(got)[:5] == _keys(ref)[:5] and _recall([got], [ref]) >= 0.9
    # odd queries get the same answer from the codes as from the stored vectors: no tokens, a wrong shape or
    # values that are not numbers are refused (the pack stays in use), k < 0 too, no queries find nothing
    bad = queries[0].copy()
    bad[0, 0] = np.nan
    for method in ("two-stage", "exact"):
        for query, match in ((queries[0][:0], "shape"), (queries[0][0], "shape"), (bad, "not all finite")):
            with pytest.raises(ValueError, match=match):
                store.visual.search(query, 10, method=method, candidates=8)
        with pytest.raises(ValueError, match="k must be"):
            store.visual.search(queries[0], -1, method=method)
        assert store.visual.search([], 10, method=method) == []
    # MaxSim is linear in the query: one of 1e36s (or of subnormals) ranks as the unit one, scores scaled with it
    for factor in (1e36, 1e-40):
        got = store.visual.search(queries[2] * np.float32(factor), 10, method="two-stage", candidates=8)[0]
        ref = store.visual.search(queries[2] * np.float32(factor), 10, method="exact")[0]
        assert _keys(got)[:5] == _keys(ref)[:5] and got[0].score == pytest.approx(ref[0].score, rel=1e-3)
    assert store.visual.codes() is not None


def test_codes_follow_adds_and_deletes_as_a_rebuild_would(tmp_path, monkeypatch):
    store = new_store(tmp_path / "db")
    pages = _pages(90, seed=11)
    keys = _fill(store, pages[:60])
    store.maintain()
    first = (codes_root(store.uri) / "CURRENT").read_text()
    (seg0,) = _segments(store.uri)
    size0 = (seg0 / "codes.bin").stat().st_size
    keys += _fill(store, pages[60:], start=60)  # 30 more pages: doc6 .. doc8
    assert pack_state(store.db) == "stale" and store.visual.codes() is None  # not used while stale
    store.visual.build_first_stage()
    assert store.visual.update_codes() == "updated"  # the 60 pages stay, 30 are encoded into a new segment
    assert (codes_root(store.uri) / "CURRENT").read_text() != first
    seg0_, seg1 = _segments(store.uri)
    assert seg0_ == seg0 and (seg0 / "codes.bin").stat().st_size == size0  # appended, not copied
    assert json.loads((seg1 / "seg.json").read_text())["vectors"] == sum(len(p) for p in pages[60:])
    store.delete_documents(["doc2"])
    store.visual.build_first_stage()
    assert store.visual.update_codes() == "updated"
    assert _segments(store.uri) == [seg0, seg1]  # a tombstone: the generation leaves doc2's pages out
    assert store.visual.codes().n_pages == 80
    queries = [_query(pages[i], seed=i) for i in (5, 25, 65, 85)]
    updated = store.visual.search(queries, 10, method="two-stage", candidates=8)
    assert all("doc2" not in {c.doc_id for c in r} for r in updated)
    assert _keys(updated[2])[0] == keys[65] and _keys(updated[3])[0] == keys[85]
    assert store.visual.update_codes(force=True) == "built"  # every page encoded again, into one segment
    assert len(_segments(store.uri)) == 1 and not seg0.exists() and not seg1.exists()
    rebuilt = store.visual.search(queries, 10, method="two-stage", candidates=8)
    assert [[(c.doc_id, c.page, c.score) for c in r] for r in updated] == [
        [(c.doc_id, c.page, c.score) for c in r] for r in rebuilt
    ]
    # mostly tombstones: the kept pages are copied into one new segment (their bytes as they were)
    (seg,) = _segments(store.uri)
    store.delete_documents([f"doc{i}" for i in (0, 1, 3, 4, 5)])
    store.visual.build_first_stage()
    assert store.visual.update_codes() == "updated"
    (compact,) = _segments(store.uri)
    assert compact != seg and not seg.exists()
    assert store.visual.codes().n_vectors == json.loads((compact / "seg.json").read_text())["vectors"]
    after = store.visual.search(queries[2:], 10, method="two-stage", candidates=8)
    assert _keys(after[0])[0] == keys[65] and _keys(after[1])[0] == keys[85]
    assert store.visual.update_codes(force=True) == "built"
    again = store.visual.search(queries[2:], 10, method="two-stage", candidates=8)
    assert [[(c.doc_id, c.page, c.score) for c in r] for r in after] == [
        [(c.doc_id, c.page, c.score) for c in r] for r in again
    ]


def test_stale_missing_and_corrupt_codes_are_found_and_check_repair_rebuilds_them(tmp_path, caplog):
    db = tmp_path / "db"
    store = new_store(db)
    pages = _pages(40, seed=8)
    keys = _fill(store, pages)
    _documents(store, range(4))
    store.maintain()
    q = _query(pages[12], seed=12)

    def check(*extra):
        ran = invoke("check", "--db", str(db), "--json", *extra)
        return ran.returncode, json.loads(ran.stdout)

    code, out = check()
    assert code == 0 and out["visual_codes"] == "current" and out["ok"]
    drop_pack(str(db))  # deleted: reported, not a problem (search reranks from the vectors); --repair builds them
    code, out = check()
    assert code == 0 and out["visual_codes"] == "missing" and out["ok"]
    assert _keys(Store(db).visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]  # from vectors
    code, out = check("--repair")
    assert code == 0 and out["repair"]["visual_codes"] == "built" and out["after"]["visual_codes"] == "current"
    # corrupt: a flipped byte is found by the checksums; a truncated file already when opened
    (segment,) = _segments(db)
    data = bytearray((segment / "codes.bin").read_bytes())
    data[100] ^= 0xFF
    (segment / "codes.bin").write_bytes(bytes(data))
    code, out = check()
    assert code == 1 and out["visual_codes"] == "corrupt"
    (segment / "refine.bin").write_bytes((segment / "refine.bin").read_bytes()[:-2])
    assert Store(db).visual.codes() is None
    code, out = check("--repair")
    assert code == 0 and out["after"]["ok"] and out["after"]["visual_codes"] == "current"
    assert Store(db).visual.codes() is not None
    # damaged in place, same sizes: centroid ids out of range are refused while searching (the stored vectors
    # answer, once warned), a generation's small files by their checksums when opened
    (segment,) = _segments(db)
    records = np.frombuffer((segment / "codes.bin").read_bytes(), np.uint8).reshape(-1, 68).copy()
    records[:, :2] = 0xFF
    (segment / "codes.bin").write_bytes(records.tobytes())
    reader = Store(db)
    with caplog.at_level(logging.WARNING, logger="docrag.indexes"):
        for _ in range(3):
            assert _keys(reader.visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 1 and reader.visual.codes() is None
    assert check("--repair")[1]["after"]["visual_codes"] == "current"
    # the same for the inverted lists: pages outside the segment are refused, not read
    (segment,) = _segments(db)
    n_lists = json.loads((segment / "seg.json").read_text())["lists"]
    data = bytearray((segment / "lists.bin").read_bytes())
    data[: 4 * n_lists] = b"\xff" * (4 * n_lists)
    (segment / "lists.bin").write_bytes(bytes(data))
    caplog.clear()
    reader = Store(db)
    with caplog.at_level(logging.WARNING, logger="docrag.indexes"):
        for _ in range(2):
            assert _keys(reader.visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 1 and reader.visual.codes() is None
    assert check()[1]["visual_codes"] == "corrupt"
    assert check("--repair")[1]["after"]["visual_codes"] == "current"
    # cut short under a reader that maps them (by hand: a pack's files are never rewritten): the next search finds
    # it before reading (a read past the end of a map would end the process), warns once and answers from the
    # stored vectors
    for name in ("codes.bin", "lists.bin", "pooled.bin"):
        (segment,) = _segments(db)
        reader = Store(db)
        assert _keys(reader.visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]
        os.truncate(segment / name, 4096)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="docrag.indexes"):
            for _ in range(2):
                assert _keys(reader.visual.search(q, 1, method="two-stage", candidates=8)[0]) == [keys[12]]
        assert sum("cut short" in r.getMessage() for r in caplog.records) == 1 and reader.visual.codes() is None
        assert check("--repair")[1]["after"]["visual_codes"] == "current"
    gen = codes_root(str(db)) / (codes_root(str(db)) / "CURRENT").read_text()
    np.save(gen / "page.npy", np.load(gen / "page.npy")[::-1].copy())
    assert Store(db).visual.codes() is None and check()[1]["visual_codes"] == "corrupt"
    (codes_root(str(db)) / "CURRENT").write_text("../../etc")
    assert check()[1]["visual_codes"] == "corrupt"
    assert check("--repair")[1]["after"]["visual_codes"] == "current"
    # stale: the visual table moved on (a run stopped before its upkeep): not used, and repair brings it in step
    _fill(store, _pages(10, seed=9), start=40)
    _documents(store, range(4, 5))
    store.visual.build_first_stage()
    assert Store(db).visual.codes() is None
    code, out = check()
    assert code == 0 and out["visual_codes"] == "stale"
    code, out = check("--repair")
    assert code == 0 and out["repair"]["visual_codes"] == "updated" and out["after"]["visual_codes"] == "current"
    # the database started over: its codes go with it
    Store.clear(db)
    assert not codes_root(str(db)).exists()
    # too few pages for a codebook: no codes are expected, and check is content
    small = new_store(tmp_path / "small")
    _fill(small, _pages(10, seed=1))
    _documents(small, range(1))
    small.maintain()
    ran = invoke("check", "--db", str(tmp_path / "small"), "--json")
    assert ran.returncode == 0 and json.loads(ran.stdout)["visual_codes"] == "none"


def test_an_s3_database_keeps_its_codes_in_a_local_cache(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCRAG_CACHE_DIR", str(tmp_path / "cache"))
    uri = s3.uri("codes")
    store = new_store(uri, storage_options=s3.options)
    pages = _pages(40, seed=4)
    keys = _fill(store, pages)
    store.maintain()
    root = codes_root(uri)
    assert root.is_relative_to(tmp_path / "cache") and (root / "CURRENT").is_file()
    reader = Store(uri, storage_options=s3.options)
    q = _query(pages[30], seed=30)
    assert reader.visual.codes() is not None
    got = reader.visual.search(q, 5, method="two-stage", candidates=4)[0]
    assert _keys(got)[0] == keys[30]
    shutil.rmtree(root)  # the cache gone: search reranks from the stored vectors
    assert Store(uri, storage_options=s3.options).visual.codes() is None
    assert _keys(Store(uri, storage_options=s3.options).visual.search(q, 5, method="two-stage")[0])[0] == keys[30]


def _resident_kb(path_end: str) -> int:
    """Resident kB of this process's mappings of files whose path ends with ``path_end`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line: range perms offset dev inode [path]
            inside = line.endswith(path_end)
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


def test_the_mapped_codes_are_given_back_and_read_again(built, monkeypatch):
    store, _, _, queries = built
    before = store.visual.search(queries, 10, method="two-stage", candidates=80)  # every page from its codes
    pack = store.visual.codes()
    assert pack.codes_maps and all(getattr(m, "_mmap", None) is not None for m in pack.codes_maps)
    assert _resident_kb("/codes.bin") > 0  # read in place: resident until given back
    monkeypatch.setattr(visual_codes, "RELEASE_BYTES", 1)  # give them back after every search
    after = store.visual.search(queries, 10, method="two-stage", candidates=80)
    assert pack._mapped_bytes == 0 and _resident_kb("/codes.bin") == 0
    assert [[(c.doc_id, c.page, c.score) for c in r] for r in after] == [
        [(c.doc_id, c.page, c.score) for c in r] for r in before
    ]
