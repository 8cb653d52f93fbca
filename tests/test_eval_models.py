"""evaluate(), routing_accuracy() and the ``eval`` and ``models`` commands, on a small lite index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import docrag
from docrag.pipeline.eval import Query, evaluate, routing_accuracy

EXE = str(Path(sys.executable).parent / "docrag")


@pytest.fixture(scope="module")
def lite_index(tmp_path_factory, docs):
    from docrag.testing import pdfgen

    d = tmp_path_factory.mktemp("evalcorpus")
    folder = d / "corpus"
    folder.mkdir()
    pdfgen.planted_pdf(folder / "planted.pdf", "The zanzibarite shipment left the harbour of Mombasa.")
    (folder / "table.pdf").write_bytes(docs["table"].read_bytes())
    db = d / "db"
    idx = docrag.open(db, profile="lite", ingest={"ocr": False, "elements": "text-layer"})
    assert idx.add([folder]).indexed == 2
    return idx, db


@pytest.mark.slow
def test_evaluate_scores_fused_and_each_leg(lite_index):
    idx, _ = lite_index
    queries = [
        Query("hit", "zanzibarite shipment Mombasa harbour", "text", {("planted.pdf", 2)}),
        Query("miss", "zanzibarite shipment Mombasa harbour", "text", {("planted.pdf", 3)}),  # a wrong label
    ]
    out = evaluate(idx.searcher, queries, ks=(1, 5))
    assert out["queries"] == 2 and out["k"] == [1, 5]
    assert set(out["legs"]) == {"text", "bm25"}  # lite: no visual leg, no image leg stored
    fused = out["fused"]["overall"]
    # The right page is first: the labelled query scores 1, the mislabelled one gets only what page 3 earns.
    assert out["fused"]["by_kind"]["text"]["n"] == 2
    assert fused["ndcg@1"] == pytest.approx(0.5) and fused["mrr@10"] < 1.0
    assert out["legs"]["bm25"]["overall"]["recall@1"] == pytest.approx(0.5)
    only_bm25 = evaluate(idx.searcher, queries[:1], ks=(5,), legs=["bm25"])
    assert set(only_bm25["legs"]) == {"bm25"} and only_bm25["fused"]["overall"]["ndcg@5"] == pytest.approx(1.0)


@pytest.mark.slow
def test_routing_accuracy_against_labels(lite_index, tmp_path):
    idx, _ = lite_index
    labels = tmp_path / "labels.tsv"
    # planted.pdf is prose on all 3 pages; the table page is layout. One label is wrong on purpose.
    labels.write_text("file\tpage\tlabel\nplanted.pdf\t1\ttext\nplanted.pdf\t2\tlayout\ntable.pdf\t1\tlayout\n")
    acc = routing_accuracy(idx.store, labels)
    assert acc["pages"] == 3
    assert acc["label_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert acc["route_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    bad = tmp_path / "bad.tsv"
    bad.write_text("name\tpage\nplanted.pdf\t1\n")
    with pytest.raises(ValueError, match="needs the columns file, page, label"):
        routing_accuracy(idx.store, bad)
    prose = tmp_path / "prose.tsv"  # a label the router never gives: refused, not scored as a miss
    prose.write_text("file\tpage\tlabel\nplanted.pdf\t1\ttext\nplanted.pdf\t2\tprose\n")
    with pytest.raises(ValueError, match=r"prose\.tsv:3: needs a page number and a label among scanned, layout, text"):
        routing_accuracy(idx.store, prose)


@pytest.mark.slow
def test_eval_command_json(lite_index, tmp_path):
    _, db = lite_index
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps(
            {"id": "a", "text": "zanzibarite Mombasa", "kind": "text", "relevant": [{"file": "planted.pdf", "page": 2}]}
        )
        + "\n"
    )
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tpage\tlabel\ntable.pdf\t1\tlayout\n")
    res = subprocess.run(
        [EXE, "eval", "--db", str(db), "--queries", str(queries), "--labels", str(labels), "--k", "1,5", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["fused"]["overall"]["ndcg@1"] == pytest.approx(1.0)
    assert out["routing"] == {
        "pages": 1,
        "label_accuracy": 1.0,
        "route_accuracy": 1.0,
        "confusion": {"layout": {"layout": 1}},
    }
    assert out["fusion"] == "weighted"  # the lite profile's own default, remembered by the database
    table = subprocess.run(
        [EXE, "eval", "--db", str(db), "--queries", str(queries)], capture_output=True, text=True, timeout=300
    )
    assert table.returncode == 0 and "fused" in table.stdout and "bm25 only" in table.stdout


def test_models_command_lists_every_profile(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}  # an empty cache: only the packaged model is here
    res = subprocess.run([EXE, "models", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["profiles"]) == {"cpu", "gpu", "lite"}
    rows = {(r["profile"], r["leg"], r["model"]): r for r in out["models"]}
    lite = rows[("lite", "text", "sentence-transformers/all-MiniLM-L6-v2")]
    assert lite["available"] is True and "packaged copy" in lite["where"] and lite["pooling"] == "mean"
    assert not any(r["profile"] == "lite" and r["leg"] in ("image", "visual") for r in out["models"])
    for profile in ("cpu", "gpu"):  # each leg by its role: a passage retriever for text, an image–text model
        legs = {r["leg"]: r for r in out["models"] if r["profile"] == profile and r["setting"].endswith(".model")}
        assert set(legs) == {"visual", "text", "image"}, profile
        assert legs["text"]["type"] == "sentence-transformers" and legs["image"]["type"] == "siglip"
        assert legs["text"]["pooling"] in ("cls", "lasttoken") and legs["text"]["query_prefix"]
        assert all(r["pinned"] and len(r["revision"]) == 40 for r in legs.values()), profile
    assert rows[("cpu", "text", "Snowflake/snowflake-arctic-embed-m-v1.5")]["pooling"] == "cls"
    assert rows[("gpu", "text", "Qwen/Qwen3-Embedding-0.6B")]["pooling"] == "lasttoken"
    cpu_visual = rows[("cpu", "visual", "ModernVBERT/colmodernvbert")]
    assert cpu_visual["available"] is False and cpu_visual["pinned"] and "--revision" in cpu_visual["download"]
    base = rows[("cpu", "visual", "ModernVBERT/colmodernvbert-base")]  # the adapter's base: a second checkpoint
    assert base["setting"] == "visual.options.base_model" and not base["pinned"]
    # How each visual model runs and at what edge it renders (issue 24): the cpu profile's exported int8 tower.
    assert cpu_visual["runs_as"] == "openvino int8; edge 1024 px"
    assert rows[("gpu", "visual", "vidore/colqwen2.5-v0.2")]["runs_as"] == "torch; checkpoint's resolution"
    assert rows[("cpu", "text", "Snowflake/snowflake-arctic-embed-m-v1.5")]["runs_as"] == "torch"
    assert all(r["pinned"] for r in out["models"] if r["setting"].endswith(".model")), "every default is pinned"
    res = subprocess.run([EXE, "models"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and "colmodernvbert" in res.stdout and "unverified" in res.stdout
    assert "openvino int8; edge 1024 px" in res.stdout


@pytest.mark.slow
def test_a_config_file_applies_on_top_of_the_databases_profile(lite_index, tmp_path):
    """`docrag search --config search.toml` on a lite database: the config's search settings, the database's
    models (not the default profile's, which would be refused as a model mismatch)."""
    from docrag.api import open_index

    _, db = lite_index
    cfg = tmp_path / "search.toml"
    cfg.write_text('[search]\nvisual_search = "exact"\nvisual_candidates = 12\n')
    idx = open_index(db, config=cfg)
    assert idx.settings.profile == "lite" and idx.settings.search.visual_candidates == 12
    hits = idx.search("zanzibarite shipment Mombasa harbour", k=1)
    assert (Path(hits[0].file).name, hits[0].page) == ("planted.pdf", 2)


def test_eval_of_no_queries_is_one_line(lite_index, tmp_path):
    from clirun import invoke

    idx, db = lite_index
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    res = invoke("eval", "--db", str(db), "--queries", str(empty))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f'error {empty}: no queries (one JSON object a line: {{"id", "text", "relevant"}})'
    ]
    with pytest.raises(ValueError, match="no queries to evaluate"):
        idx.evaluate([])
