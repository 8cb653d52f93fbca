"""benchmarks/quality.py: the quality harness on a tiny BEIR text set and a tiny ViDoRe page-image set (lite)."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_json(quality, capsys, monkeypatch, tmp_path: Path, *args: str) -> dict:
    monkeypatch.setattr(sys.modules["_common"], "RESULTS", tmp_path / "RESULTS.md")  # never the real file
    assert quality.main(["--profile", "lite", "--no-save", "--json", *args]) == 0
    out = capsys.readouterr()
    assert not (tmp_path / "RESULTS.md").exists()
    assert "| **fused (weighted)** |" in out.err  # the table goes to stderr with --json
    return json.loads(out.out)


PASSAGES = {
    "volcano": ("Volcanoes", "A volcano is a rupture in the crust through which lava, ash and gases escape."),
    "bread": ("Sourdough", "Sourdough bread rises with wild yeast; bakers feed the starter with flour and water."),
    "chess": ("Chess openings", "The Sicilian Defence begins 1.e4 c5 and fights for the centre from the flank."),
    "bees/1": ("Honey bees", "A colony has one queen, female workers and male drones; workers make honey in combs."),
    "jet": ("Jet engines", "A turbofan compresses air, burns fuel in the combustor and drives turbines for thrust."),
    "tax": ("Tax returns", "People file an annual income tax return listing wages, deductions and credits."),
}
QUERIES = {
    "q1": ("How do bakers keep a sourdough starter alive?", "bread"),
    "q2": ("What do the queen, workers and drones do in a bee colony?", "bees/1"),
    "q3": ("How does a turbofan aircraft engine produce thrust?", "jet"),
    "q4": ("Who won the football world cup?", "not-in-corpus"),
}


def beir_dir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": i, "title": t, "text": x} for i, (t, x) in PASSAGES.items()]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
    )
    qrels = "".join(f"{q}\t{rel}\t1\n" for q, (_, rel) in QUERIES.items())
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return root


def test_select_keeps_relevant_passages_and_caps_distractors(quality):
    queries = [("a", "x"), ("b", "y"), ("c", "z")]
    qrels = {"a": {"d3"}, "b": {"d1", "gone"}, "c": {"gone"}}
    kept, ids, dropped = quality.select(queries, qrels, ["d1", "d2", "d3", "d4"], None, None)
    assert dropped == 1 and [k[0] for k in kept] == ["a", "b"] and kept[1][2] == {"d1"}
    assert ids == ["d1", "d2", "d3", "d4"]
    kept, ids, _ = quality.select(queries, qrels, ["d1", "d2", "d3", "d4"], 1, 2)
    assert [k[0] for k in kept] == ["a"] and ids == ["d1", "d3"]  # d3 relevant, d1 the first distractor
    kept, ids, _ = quality.select(queries, qrels, ["d1", "d2", "d3", "d4"], None, 1)
    assert ids == ["d1", "d3"]  # the cap never drops a relevant passage


def test_safe_names_are_unique_and_tame(quality):
    names = quality.safe_names(["a/b", "a:b", "A_B", "../x", ""], ".pdf")
    assert names == {"a/b": "a_b.pdf", "a:b": "a_b-2.pdf", "A_B": "A_B-3.pdf", "../x": "_x.pdf", "": "doc.pdf"}


@pytest.mark.slow
def test_beir_text_set(quality, capsys, monkeypatch, tmp_path):
    res = run_json(quality, capsys, monkeypatch, tmp_path, "--dataset", str(beir_dir(tmp_path / "beir")))
    assert res["format"] == "beir" and res["models"]["text"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert res["corpus"]["files"] == 6 and res["corpus"]["pages"] == 6 and not res["corpus"]["failed"]
    assert "1 of 4 queries have no relevant document in the corpus: dropped" in res["notes"]
    m = res["metrics"]
    assert m["queries"] == 3 and set(m["legs"]) == {"text", "bm25"}
    # Each query's passage ranks first for MiniLM alone, for BM25 alone and fused.
    for ranking in (m["legs"]["text"], m["legs"]["bm25"], m["fused"]):
        assert ranking["overall"]["ndcg@10"] == 1.0 and ranking["overall"]["mrr@10"] == 1.0


def vidore_dir(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    pages = {101: "Volcano eruptions release lava and ash", 102: "Sourdough bread needs a wild yeast starter"}
    pages[103] = "Honey bees make honey in wax combs"
    corpus = []
    for cid, text in pages.items():
        image = Image.new("RGB", (1000, 500), "white")
        ImageDraw.Draw(image).text((50, 200), text, fill="black", font=font)
        buf = io.BytesIO()
        image.save(buf, "JPEG" if cid == 103 else "PNG")  # JPEG bytes are written out as PNG
        corpus.append({"corpus-id": cid, "image": {"bytes": buf.getvalue(), "path": None}})  # as HF datasets write
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(corpus), root / "corpus.parquet")
    queries = [{"query-id": 1, "query": "volcano lava and ash"}, {"query-id": 2, "query": "wild yeast sourdough"}]
    queries.append({"query-id": 3, "query": "bees make honey in wax combs"})
    pq.write_table(pa.Table.from_pylist(queries), root / "queries.parquet")
    qrels = [{"query-id": q, "corpus-id": c, "score": 1} for q, c in ((1, 101), (2, 102), (3, 103))]
    pq.write_table(pa.Table.from_pylist(qrels), root / "qrels.parquet")
    return root


@pytest.mark.slow
def test_vidore_page_images(quality, capsys, monkeypatch, tmp_path):
    res = run_json(quality, capsys, monkeypatch, tmp_path, "--dataset", str(vidore_dir(tmp_path / "vidore")))
    assert res["format"] == "vidore" and res["corpus"]["pages"] == 3 and not res["corpus"]["failed"]
    m = res["metrics"]
    assert m["queries"] == 3 and "bm25" in m["legs"]
    if shutil.which("tesseract"):  # lite OCRs the page images: the drawn words are found
        assert "text" in m["legs"]
        assert m["fused"]["overall"]["ndcg@10"] == 1.0 and m["legs"]["bm25"]["overall"]["ndcg@10"] == 1.0
    else:  # no text to search, and the result says so
        assert "text" not in m["legs"] and m["fused"]["overall"]["ndcg@10"] == 0.0
        assert any("no tesseract" in n for n in res["notes"])


def test_missing_dataset_is_one_line_exit_2(tmp_path):
    for args in (["--dataset", str(tmp_path / "nope")], ["--dataset", str(tmp_path), "--profile", "lite"]):
        proc = subprocess.run([sys.executable, str(SCRIPT), "--no-save", *args], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert ("no such dataset directory" if "nope" in args[1] else "unknown dataset format") in proc.stderr


def test_user_mistakes_exit_2(quality, capsys, tmp_path):
    beir = beir_dir(tmp_path / "beir")
    (beir / "qrels" / "test.tsv").unlink()
    assert quality.main(["--dataset", str(beir), "--profile", "lite", "--no-save"]) == 2
    assert "no qrels" in capsys.readouterr().err
    assert quality.main(["--dataset", str(tmp_path / "beir"), "--profile", "bogus", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile 'bogus'" in err
