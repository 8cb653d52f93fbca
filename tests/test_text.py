"""Text clean-up (ligatures, line-end hyphenation, chart noise), captions, and caption headers on chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import docrag
from docrag.config import Limits
from docrag.indexes.schema import CHUNKS
from docrag.parsers import open_document
from docrag.parsers.text import captions, dehyphenate, is_noise, normalise, vocabulary


def test_normalise_folds_ligatures_and_restores_pdfium_line_end_hyphens():
    assert normalise("identi\ufb01ed \ufb02ow e\ufb00ect o\ufb03ce") == "identified flow effect office"
    assert normalise("theoret\ufffeical") == "theoret-\nical"
    assert normalise("theoret\ufffe\r\n  ical") == "theoret-\nical"
    soft = normalise("hyphen\u00adation at a soft\u00ad\nhyphen, zero\u200bwidth")
    assert soft == "hyphenation at a softhyphen, zerowidth"
    assert normalise("") == ""


def test_dehyphenate_joins_broken_words_and_keeps_compounds():
    assert dehyphenate("the smok-\ning rate") == "the smoking rate"
    assert dehyphenate("the smok- ing rate") == "the smoking rate"  # lines already joined by unstructured
    # The document writes the compound whole elsewhere: the hyphen stays.
    vocab = vocabulary(["Patients who were alcohol-dependent at intake"])
    assert dehyphenate("in alcohol-\ndependent patients", vocab) == "in alcohol-dependent patients"
    assert dehyphenate("in alcohol-\ndependent patients") == "in alcoholdependent patients"  # no evidence: join
    # The document uses the joined word: joined, even though both parts are words.
    assert dehyphenate("a fore-\ncast and another forecast") == "a forecast and another forecast"
    # Suspended hyphens, capitalised right parts and numbers are not line-broken words.
    assert dehyphenate("pre- and post-test") == "pre- and post-test"
    assert dehyphenate("see Kaplan- Meier") == "see Kaplan- Meier"
    assert dehyphenate("ISBN 978-\n0-12") == "ISBN 978-\n0-12"


def test_vocabulary_leaves_out_fragments_of_broken_words():
    v = vocabulary(["an alcohol-dependent man, smok-\ning"])
    assert {"alcohol-dependent", "alcohol", "dependent", "man"} <= v
    assert "smok" not in v and "ing" not in v


def test_captions_are_found_at_line_starts_only():
    found = captions(
        [
            "Male\nFigure 2: alzheimer data: Association of smoking behavior and disease\n"
            "stratified by gender.\n[1] 0.09",
            "Table 1 shows that the estimate is stable.",  # prose that starts with "Table 1"
            "TABLE II. Results of the\nsimulation\n\nnext paragraph",
            "as shown in Figure 4: nothing here",  # not at a line start
        ]
    )
    assert found == [
        "Figure 2: alzheimer data: Association of smoking behavior and disease stratified by gender.",
        "TABLE II. Results of the simulation",
    ]


@pytest.mark.parametrize(
    ("text", "noise"),
    [
        ("r e m e h z A", True),  # a rotated axis title, spelled out backwards
        ("0 . 2", True),
        ("10-20 >20 123", True),
        ("Male", False),
        ("Alzheimer 91 7 15 21", False),
        ("x = a + b", True),  # formula symbols: no words to embed
        ("a b word longer text", False),
    ],
)
def test_is_noise(text, noise):
    assert is_noise(text) is noise


def test_pdf_text_layer_is_cleaned_at_the_source(tmp_path):
    from docrag.testing import pdfgen

    path = pdfgen.typeset_pdf(tmp_path / "typeset.pdf")
    with open_document(path, Limits()) as doc:
        text = doc.page(1).text
    assert "\ufffe" not in text and "smok-\ning" in text  # pdfium's marker became a line-end hyphen
    assert dehyphenate(text, vocabulary([text])).count("alcohol-dependent") == 2
    assert "smoking behaviour" in dehyphenate(text) and "theoretical framework" in dehyphenate(text)


@pytest.mark.slow
def test_index_dehyphenates_and_caption_headers_lift_the_chart_page(tmp_path):
    from docrag.testing import pdfgen

    path = pdfgen.typeset_pdf(tmp_path / "typeset.pdf")
    query = "monthly rainfall in Lisbon"
    scores = {}
    for header in (False, True):
        idx = docrag.open(tmp_path / f"db{header}", profile="lite", ingest={"ocr": False, "caption_context": header})
        assert idx.add([path]).indexed == 1
        page1 = next(r["text"] for r in idx.store.pages.rows(columns=["page", "text"]) if r["page"] == 1)
        assert "smoking behaviour" in page1 and "alcohol-dependent patients" in page1
        chunks = idx.store.db.rows(CHUNKS, columns=["page", "text"])
        assert all("\ufffe" not in c["text"] and "smok- ing" not in c["text"] for c in chunks)
        # The header is embedded, not stored: chunk texts hold the caption once, where it is on the page.
        assert sum(c["text"].count("Figure 3: Monthly rainfall") for c in chunks) == 1
        # BM25 matches the rejoined word; a query typed with ligatures is folded like the documents.
        assert idx.search("smoking", k=1, legs=["bm25"])[0].page == 1
        typed, plain = (idx.search(q, k=1, legs=["text"])[0] for q in ("\ufb01nal e\ufb00ect", "final effect"))
        assert typed.page == plain.page == 1
        assert typed.legs["text"]["score"] == pytest.approx(plain.legs["text"]["score"])
        hits = idx.search(query, k=2, legs=["text"])
        assert Path(hits[0].file).name == "typeset.pdf" and hits[0].page == 2
        scores[header] = hits[0].legs["text"]["score"]
    assert scores[True] > scores[False] + 0.05, scores


@pytest.mark.slow
def test_chunk_headers_fit_the_token_budget():
    from docrag.indexes.chunking import chunk_page_texts
    from docrag.indexes.embedders import create_embedder
    from docrag.indexes.models import MINILM_ID, ModelSpec

    emb = create_embedder(ModelSpec(type="sentence-transformers", model=MINILM_ID))
    body = [" ".join(f"word{i} alpha beta." for i in range(300))]
    caption = "Figure 1: " + "a very long caption " * 100
    chunks = chunk_page_texts([(1, body), (2, ["plain page"])], emb, contexts={1: [caption], 2: []})
    p1 = [c for c in chunks if c.page == 1]
    assert len(p1) > 1 and all(c.context and c.embed_text.startswith("Figure 1:") for c in p1)
    assert all(emb.count_tokens(c.embed_text) + 2 <= emb.max_tokens for c in chunks)
    # the header is capped at half the budget, so bodies keep the other half
    assert all(emb.count_tokens(c.context) <= (emb.max_tokens - 2) // 2 for c in p1)
    assert [(c.context, c.embed_text) for c in chunks if c.page == 2] == [("", "plain page")]
    vec = emb.embed_documents([p1[0].embed_text, p1[0].text])
    assert not np.allclose(vec[0], vec[1])
