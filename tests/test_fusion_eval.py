"""Fusion arithmetic and evaluation metrics against hand-computed cases."""

from __future__ import annotations

import json
import math

import pytest

from docrag.indexes.store import Candidate
from docrag.pipeline.eval import load_queries, mrr, ndcg, recall
from docrag.pipeline.fusion import Ranking, Scale, calibrate, fuse


def C(doc, page, score):
    return Candidate(doc, page, score)


def R(scale, *cands, n_query_tokens=1):
    return Ranking(list(cands), scale, n_query_tokens)


def test_rrf_by_hand():
    rankings = {
        "text": R(Scale.cosine, C("a", 1, 0.9), C("b", 1, 0.8)),
        "bm25": R(Scale.bm25, C("b", 1, 12.0), C("c", 2, 3.0)),
    }
    fused = fuse(rankings, "rrf", {"text": 1.0, "bm25": 1.0}, rrf_k=60)
    assert [(f.doc_id, f.page) for f in fused] == [("b", 1), ("a", 1), ("c", 2)]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    assert fused[0].legs == {
        "text": {"score": 0.8, "rank": 2, "detail": ""},
        "bm25": {"score": 12.0, "rank": 1, "detail": ""},
    }
    weighted = fuse(rankings, "rrf", {"text": 2.0, "bm25": 1.0}, rrf_k=60)
    assert weighted[0].doc_id == "b" and weighted[0].score == pytest.approx(2 / 62 + 1 / 61)
    assert weighted[1].doc_id == "a" and weighted[1].score == pytest.approx(2 / 61)


def test_weighted_calibrates_each_leg():
    rankings = {
        "visual": R(Scale.maxsim, C("v", 1, 20.0), C("t", 1, 10.0), n_query_tokens=25),  # MaxSim, 25 tokens
        "text": R(Scale.cosine, C("t", 1, 0.5)),
        "bm25": R(Scale.bm25, C("t", 1, 8.0), C("v", 1, 4.0)),
    }
    fused = fuse(rankings, "weighted", {"visual": 1.0, "text": 1.0, "bm25": 0.5})
    scores = {f.doc_id: f.score for f in fused}
    assert scores["v"] == pytest.approx(20 / 25 + 0.5 * 4 / 8)
    assert scores["t"] == pytest.approx(10 / 25 + 0.5 + 0.5 * 8 / 8)
    assert fused[0].doc_id == "t" and fused[0].legs["visual"]["calibrated"] == pytest.approx(0.4)
    assert fused[0].legs["bm25"]["calibrated"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(rankings, "borda")


def test_calibration_follows_the_scale_not_the_leg_name():
    assert calibrate(Scale.maxsim, 12.0, 20.0, 4) == pytest.approx(3.0)
    assert calibrate(Scale.bm25, 6.0, 8.0, 4) == pytest.approx(0.75) and calibrate(Scale.bm25, 1.0, 0.0) == 0.0
    assert calibrate(Scale.cosine, 0.3, 0.9, 4) == pytest.approx(0.3)
    # A leg named "visual" on the cosine scale is not divided by tokens; any name on the maxsim scale is.
    rankings = {"visual": R(Scale.cosine, C("a", 1, 0.6)), "late": R(Scale.maxsim, C("b", 1, 8.0), n_query_tokens=10)}
    scores = {f.doc_id: f.score for f in fuse(rankings, "weighted")}
    assert scores == pytest.approx({"a": 0.6, "b": 0.8})


def test_metrics_by_hand():
    ranked = [("a", 1), ("x", 1), ("b", 2), ("y", 1), ("z", 1)]
    rel = {("a", 1), ("b", 2)}
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.6309
    assert ndcg(ranked, rel, 5) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg(ranked, rel, 1) == 1.0
    assert ndcg([("x", 1)], rel, 5) == 0.0
    assert recall(ranked, rel, 2) == 0.5 and recall(ranked, rel, 5) == 1.0
    assert mrr(ranked, {("b", 2)}) == pytest.approx(1 / 3)
    assert mrr(ranked, {("q", 9)}) == 0.0


def test_load_queries_devset_and_beir(tmp_path):
    dev = tmp_path / "q.jsonl"
    dev.write_text(
        json.dumps({"id": "d1", "text": "t", "kind": "table", "relevant": [{"file": "dir/a.pdf", "page": 3}]}) + "\n"
    )
    (q,) = load_queries(dev)
    assert (q.id, q.kind, q.relevant) == ("d1", "table", {("a.pdf", 3)})
    beir = tmp_path / "b.jsonl"
    beir.write_text('{"_id": "1", "text": "x"}\n{"_id": "2", "text": "y"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\ta.pdf#2\t1\n2\tb.pdf:5\t1\n2\tc.pdf_p1\t0\n")
    qs = load_queries(beir, qrels)
    assert [q.relevant for q in qs] == [{("a.pdf", 2)}, {("b.pdf", 5)}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "z", "text": "no relevant"}\n')
    with pytest.raises(ValueError, match="without relevant pages: z"):
        load_queries(bad)


def test_load_queries_refuses_empty_input_naming_the_file_and_line(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match=r"e\.jsonl: no queries"):
        load_queries(empty)
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"id": "a", "text": "   ", "relevant": [{"file": "a.pdf", "page": 1}]}\n')
    with pytest.raises(ValueError, match=r"blank\.jsonl:1: the query text is empty"):
        load_queries(blank)
    beir = tmp_path / "b.jsonl"
    beir.write_text('{"_id": "1", "text": "x"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\ta.pdf#2\thigh\n")
    with pytest.raises(ValueError, match=r"qrels\.tsv:2: the score 'high' is not a number"):
        load_queries(beir, qrels)


def test_confidence_by_hand():
    from docrag.pipeline.confidence import (
        MEANING_WEIGHT,
        TERMS_WEIGHT,
        Z_MID,
        confidence,
        meaning,
        query_terms,
        term_coverage,
    )

    # Content words only, folded and stemmed as BM25 folds them: stop and question words out.
    terms = query_terms("Which tables show the Zanzibarite shipments?")
    assert terms == query_terms("zanzibarite table shipment show") and len(terms) == 4
    assert query_terms("what is it?") == set()
    assert term_coverage(terms, "The TABLE shows crates; shipment of zanzibarite.") == 1.0
    assert term_coverage(query_terms("table zanzibarite"), "A table of crates.") == 0.5
    assert term_coverage(set(), "anything") is None
    # Meaning: standard deviations above the query's cosines with unrelated text; Z_MID of them is even odds.
    null = [0.1, 0.2, 0.3]  # mean 0.2, std 0.0816
    std = math.sqrt(2 / 3) / 10
    assert meaning(0.2 + Z_MID * std, null) == pytest.approx(0.5)
    assert meaning(0.2 + (Z_MID - 4) * std, null) < 0.02 and meaning(0.2 + (Z_MID + 4) * std, null) > 0.98
    assert meaning(0.25, [0.25, 0.25]) < 0.01  # identical cosines: a floor on the spread, no division by zero
    assert meaning(None, null) == 0.0 and meaning(0.9, []) == 0.0
    # A noisy-or of the two, each capped: words alone or meaning alone never reach 1.
    assert confidence(1.0, 1.0) == pytest.approx(1 - (1 - MEANING_WEIGHT) * (1 - TERMS_WEIGHT))
    assert confidence(0.0, 1.0) == pytest.approx(TERMS_WEIGHT) and confidence(1.0, None) == pytest.approx(
        MEANING_WEIGHT
    )
    assert confidence(0.0, None) == 0.0
